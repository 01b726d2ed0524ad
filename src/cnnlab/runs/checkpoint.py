"""Checkpoints that survive crashes: weights as safetensors, training state as a weights-only torch file.

A checkpoint ``<tag>`` in a run directory is two files:

- ``<tag>.safetensors``: ``model.state_dict()``, loadable on its own (e.g. by
  ``cnnlab.create_model(name, weights=".../best.safetensors")``);
- ``<tag>.state.pt``: everything else needed to resume (optimiser, schedule, epoch, step,
  RNG states, config, metrics), saved with ``torch.save`` and holding only tensors and
  plain Python values, so ``torch.load(..., weights_only=True)`` reads it without running
  pickled code.

Both files are first written completely to temporary files in the same directory and
flushed to disk, then renamed over the old ones (``os.replace``), so a failure or crash
while writing leaves the previous checkpoint intact. Both files carry the same
checkpoint id; a pair that does not match (a crash in the instant between the two
renames) is reported instead of being loaded.
"""
from __future__ import annotations

import os
import random
import re
import uuid
from collections import Counter, OrderedDict
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_write_all
from ..errors import CnnlabError
from ..weights import load_state_dict_strict

LAST = "last"
BEST = "best"
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
STATE_SUFFIX = ".state.pt"
_TAG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ID_KEY = "cnnlab_checkpoint_id"


# ---------------------------------------------------------------- random number generators


def capture_rng_state() -> dict:
    """The state of every global random generator a run uses: torch (CPU, CUDA), NumPy, Python.

    Lecture idea: reproducibility, continued across a resume: after
    :func:`restore_rng_state` the next random numbers (data order, augmentation, dropout)
    are the ones the interrupted run would have drawn. Only tensors and plain values
    inside, so the result can go into a ``weights_only`` checkpoint.
    """
    numpy_state = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": str(numpy_state[0]),
            "keys": torch.from_numpy(np.asarray(numpy_state[1], dtype=np.int64)),
            "pos": int(numpy_state[2]),
            "has_gauss": int(numpy_state[3]),
            "cached_gaussian": float(numpy_state[4]),
        },
        "python": {
            "version": int(version),
            "state": torch.tensor(python_state, dtype=torch.int64),  # 625 words < 2**32
            "gauss_next": gauss_next,
        },
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping) -> None:
    """Put back the generator states captured by :func:`capture_rng_state`.

    CUDA states are restored for as many devices as both the saved run and this machine
    have; a checkpoint from a GPU run restores fine on a CPU-only machine.
    """
    try:
        torch.set_rng_state(state["torch"].to(dtype=torch.uint8, device="cpu"))
        numpy_state = state["numpy"]
        np.random.set_state((
            numpy_state["bit_generator"],
            numpy_state["keys"].numpy().astype(np.uint32),
            int(numpy_state["pos"]),
            int(numpy_state["has_gauss"]),
            float(numpy_state["cached_gaussian"]),
        ))
        python_state = state["python"]
        random.setstate((
            int(python_state["version"]),
            tuple(int(word) for word in python_state["state"].tolist()),
            python_state["gauss_next"],
        ))
    except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
        raise CnnlabError(f"not a random-generator state from capture_rng_state(): {error!r}") from None
    if "cuda" in state and torch.cuda.is_available():
        saved = list(state["cuda"])
        for device in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(saved[device].cpu(), device)


# ---------------------------------------------------------------- what may go into the state file

_PLAIN = (str, int, float, bool, complex, bytes, bytearray, type(None), torch.dtype, torch.device, torch.Size)


def _plain(value, where: str):
    """A copy of ``value`` that ``torch.load(weights_only=True)`` can read, or a CnnlabError naming the culprit."""
    if isinstance(value, torch.Tensor):
        if type(value) not in (torch.Tensor, nn.Parameter):
            raise CnnlabError(f"state{where} is a tensor subclass ({type(value).__name__}); store a plain tensor")
        return value.detach()
    if type(value) in _PLAIN:
        return value
    if isinstance(value, np.generic):  # NumPy scalars (e.g. a metric from np.mean) become Python numbers
        return value.item()
    if type(value) in (dict, OrderedDict, Counter):
        result = type(value)()
        for key, item in value.items():
            if type(key) not in _PLAIN:
                raise CnnlabError(f"state{where} has a key of type {type(key).__name__}; use str or int keys")
            result[key] = _plain(item, f"{where}[{key!r}]")
        return result
    if type(value) in (list, tuple, set, frozenset):
        items = [_plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return set(items) if type(value) is frozenset else type(value)(items)
    raise CnnlabError(
        f"state{where} is a {type(value).__module__}.{type(value).__qualname__}, which a weights_only "
        "checkpoint cannot hold; store tensors, numbers, strings and lists/dicts of them "
        "(e.g. dataclasses.asdict(config), str(path), tensor.tolist())"
    )


def _weights_for_safetensors(model: nn.Module) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (tied weights) and needs contiguous
    # data; copy a tensor only when one of those is true (CUDA tensors are copied anyway).
    tensors, seen = {}, set()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        storage = tensor.untyped_storage().data_ptr()
        if storage in seen or not tensor.is_contiguous():
            tensor = tensor.contiguous().clone()
        seen.add(tensor.untyped_storage().data_ptr())
        tensors[name] = tensor
    return tensors


def _check_tag(tag: str) -> str:
    if not isinstance(tag, str) or not _TAG_PATTERN.match(tag):
        raise CnnlabError(
            f"checkpoint tag must be a name of letters, digits, '_', '-' or '.' (like 'last', 'best', "
            f"'epoch_10'), got {tag!r}"
        )
    return tag


# ---------------------------------------------------------------- save / load


def save_checkpoint(directory: str | os.PathLike, tag: str, model: nn.Module, state: Mapping,
                    *, include_rng: bool = True) -> tuple[Path, Path]:
    """Save ``model``'s weights and the training ``state`` as checkpoint ``tag`` (``"last"``, ``"best"``, ...).

    Lecture idea (training in practice): save often and atomically, keep the last and the
    best model (by validation accuracy), and resume a crashed run exactly where it
    stopped. ``state`` is a dict such as ``{"optimizer": optimizer.state_dict(),
    "schedule": schedule.state_dict(), "epoch": 3, "step": 1170, "config": {...},
    "metrics": {...}}``; it may hold tensors, numbers, strings, ``None`` and
    lists/tuples/dicts of them (NumPy scalars are converted), anything else raises
    :class:`CnnlabError` before a byte is written. With ``include_rng=True`` (and no
    ``"rng"`` key given) the generator states of :func:`capture_rng_state` are added as
    ``state["rng"]``. Returns the paths of the weights and the state file.
    """
    _check_tag(tag)
    if not isinstance(model, nn.Module):
        raise CnnlabError(f"save_checkpoint needs an nn.Module, got {type(model).__name__}")
    if not isinstance(state, Mapping):
        raise CnnlabError(f"state must be a dict, got {type(state).__name__}")
    directory = Path(directory)
    checkpoint_id = uuid.uuid4().hex
    payload = _plain(dict(state), "")
    if include_rng and "rng" not in payload:
        payload["rng"] = capture_rng_state()
    payload["format_version"] = FORMAT_VERSION
    payload["checkpoint_id"] = checkpoint_id
    weights = _weights_for_safetensors(model)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnlabError(f"cannot create checkpoint directory {str(directory)!r}: {error}") from None

    from safetensors.torch import save_file

    weights_path = directory / f"{tag}{WEIGHTS_SUFFIX}"
    state_path = directory / f"{tag}{STATE_SUFFIX}"
    metadata = {"format": "pt", _ID_KEY: checkpoint_id, "tag": tag}
    # Should a crash fall between the two renames, the ids disagree and load_checkpoint
    # says so; each file on its own is always complete.
    try:
        atomic_write_all([
            (weights_path, lambda path: save_file(weights, path, metadata=metadata)),
            (state_path, lambda path: torch.save(payload, path)),
        ])
    except OSError as error:
        raise CnnlabError(f"cannot write checkpoint {tag!r} to {str(directory)!r}: {error}") from None
    return weights_path, state_path


def checkpoint_tags(directory: str | os.PathLike) -> list[str]:
    """The tags of the complete checkpoints (both files present) in ``directory``, sorted.

    Lecture idea (training in practice): a run keeps its ``last`` checkpoint to resume and
    its ``best`` (by validation accuracy) to evaluate; this lists what a run directory holds.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    weights = {p.name[: -len(WEIGHTS_SUFFIX)] for p in directory.glob(f"*{WEIGHTS_SUFFIX}")}
    states = {p.name[: -len(STATE_SUFFIX)] for p in directory.glob(f"*{STATE_SUFFIX}")}
    return sorted(t for t in weights & states if not t.startswith("."))


def load_checkpoint(directory: str | os.PathLike, tag: str = LAST, *, model: nn.Module | None = None,
                    map_location: str | torch.device = "cpu") -> tuple[dict[str, torch.Tensor], dict]:
    """Read checkpoint ``tag`` from ``directory``: return ``(weights_state_dict, state)``.

    Lecture idea (training in practice): resume from the last checkpoint, evaluate the
    best. The state file is read with ``torch.load(weights_only=True)``. With ``model``
    given, the weights are also loaded into it with strict key and shape matching.
    Restore the rest yourself: ``optimizer.load_state_dict(state["optimizer"])``,
    ``schedule.load_state_dict(state["schedule"])``, ``restore_rng_state(state["rng"])``.
    A missing directory or tag, an unreadable (truncated, corrupt) file, a weights/state
    pair from two different saves, or weights that do not fit ``model`` raise
    :class:`CnnlabError`.
    """
    _check_tag(tag)
    directory = Path(directory)
    if not directory.is_dir():
        raise CnnlabError(f"checkpoint directory {str(directory)!r} does not exist")
    weights_path = directory / f"{tag}{WEIGHTS_SUFFIX}"
    state_path = directory / f"{tag}{STATE_SUFFIX}"
    missing = [p.name for p in (weights_path, state_path) if not p.is_file()]
    if missing:
        available = checkpoint_tags(directory)
        hint = f"available tags: {', '.join(available)}" if available else "it holds no checkpoint"
        raise CnnlabError(f"no checkpoint {tag!r} in {str(directory)!r} (missing {', '.join(missing)}); {hint}")

    from safetensors import safe_open

    try:
        weights = {}
        with safe_open(str(weights_path), framework="pt", device=str(map_location)) as handle:
            weights_id = (handle.metadata() or {}).get(_ID_KEY)
            for key in handle.keys():
                weights[key] = handle.get_tensor(key)
    except Exception as error:  # safetensors raises several types for a damaged file
        raise CnnlabError(f"cannot read {str(weights_path)!r}: the file is corrupt or incomplete ({error})") from None
    try:
        state = torch.load(state_path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise CnnlabError(f"cannot read {str(state_path)!r}: the file is corrupt or incomplete ({error})") from None
    if not isinstance(state, dict) or "checkpoint_id" not in state:
        raise CnnlabError(f"{str(state_path)!r} is not a cnnlab checkpoint state file")
    if state["checkpoint_id"] != weights_id:
        raise CnnlabError(
            f"{weights_path.name} and {state_path.name} in {str(directory)!r} come from different saves "
            "(a crash between writing the two?); resume from another tag"
        )
    if model is not None:
        load_into(model, weights, source=str(weights_path))
    return weights, state


def load_into(model: nn.Module, weights: Mapping[str, torch.Tensor], source: str = "the checkpoint") -> nn.Module:
    """Load ``weights`` into ``model`` strictly; a mismatch raises :class:`CnnlabError` listing the keys.

    Lecture idea (transfer learning, resuming): a checkpoint only means something for the
    architecture it was trained with, so a partial or mis-shaped load is refused, never silent.
    """
    return load_state_dict_strict(model, weights, source)
