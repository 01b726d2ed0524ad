"""Loading weights from safetensors or torch state_dict files, safely and strictly."""
from __future__ import annotations

import os
from collections.abc import Mapping

import torch
from torch import nn

from .errors import CnnlabError


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a state_dict from a ``.safetensors`` file or a torch file.

    Torch files are opened with ``weights_only=True``, so no arbitrary pickle code runs.
    A checkpoint that wraps its weights (``{"state_dict": ...}`` or ``{"model": ...}``)
    is unwrapped.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise CnnlabError(f"weights file {path!r} does not exist")
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            return load_file(path, device="cpu")
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # every reader error means the same thing to a user
        kind = "safetensors" if path.endswith(".safetensors") else "torch state_dict"
        raise CnnlabError(f"cannot read {path!r} as a {kind} file: {error}") from None
    if isinstance(state, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CnnlabError(f"{path!r} does not hold a state_dict (a mapping of names to tensors)")
    # Checkpoints saved from DataParallel/DDP prefix every key with "module.".
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a weights file into ``model`` with strict key and shape matching (see :func:`load_state_dict_strict`)."""
    return load_state_dict_strict(model, read_state_dict(path), f"{os.fspath(path)!r}")


def load_state_dict_strict(model: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> nn.Module:
    """Load ``state`` into ``model`` only if every key and shape fits.

    A mismatch raises :class:`CnnlabError` listing the missing and unexpected keys and
    the tensors whose shapes differ, instead of loading a half-initialised model.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in expected
        if k in state and state[k].shape != expected[k].shape
    ]
    if missing or unexpected or wrong_shape:
        name = getattr(getattr(model, "pretrained_cfg", None), "name", type(model).__name__)
        lines = [f"weights in {source} do not fit {name}:"]
        for label, keys in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", wrong_shape)):
            if keys:
                shown = ", ".join(keys[:10]) + (f", ... ({len(keys) - 10} more)" if len(keys) > 10 else "")
                lines.append(f"  {label} ({len(keys)}): {shown}")
        raise CnnlabError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return model
