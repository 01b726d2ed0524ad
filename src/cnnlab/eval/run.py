"""A trained run read back from its folder: its model rebuilt and loaded, its data found again.

A run directory written by :class:`cnnlab.train.Trainer` holds everything needed to rebuild
its model exactly: the config (model name, model arguments, image size, augmentation spec)
and the data statistics (classes, per-channel mean/std, channels, image size) in
``<tag>.state.pt``, and the weights in ``<tag>.safetensors``. Lecture idea (data
preprocessing, lecture 7): test images are normalised with the *training* split's
statistics stored with the run, never their own.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..data import load_dataset
from ..data.decode import target_size
from ..device import resolve_device
from ..errors import CnnlabError, MissingSplitError
from ..registry import build_model
from ..runs import (BEST, LAST, STATE_SUFFIX, WEIGHTS_SUFFIX, TrainConfig, checkpoint_tags, load_checkpoint,
                   load_into)

__all__ = ["LoadedRun", "load_run", "load_split"]


@dataclass
class LoadedRun:
    """A trained model rebuilt from its run directory, in eval mode, with what evaluating it needs."""

    directory: Path
    tag: str
    model: nn.Module
    config: object  # cnnlab.train.TrainConfig
    classes: list[str]
    mean: list[float]
    std: list[float]
    in_chans: int
    state: dict
    device: torch.device

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def weights_path(self) -> Path:
        return self.directory / f"{self.tag}{WEIGHTS_SUFFIX}"

    @property
    def image_size(self) -> tuple[int, int] | None:
        """The size the run's images were stored at before augmentation (what its model was fed,
        or what its test-time crop starts from): recorded in the run's state, or its
        ``image_size`` setting; ``None`` when neither says (a folder of mixed sizes)."""
        recorded = self.state["data"].get("image_size")
        if recorded:
            return int(recorded[0]), int(recorded[1])
        return target_size(self.config.image_size)


def _resolve_checkpoint(path: str | Path, tag: str | None) -> tuple[Path, str]:
    path = Path(path).expanduser()
    if not path.exists():
        raise CnnlabError(f"checkpoint {str(path)!r} does not exist; give a run directory (written by "
                          f"`cnnlab train`) or a {WEIGHTS_SUFFIX} file inside one")
    if path.is_file():
        if not path.name.endswith(WEIGHTS_SUFFIX):
            raise CnnlabError(f"{str(path)!r} is not a run directory or a {WEIGHTS_SUFFIX} weights file")
        file_tag = path.name[: -len(WEIGHTS_SUFFIX)]
        if tag is not None and tag != file_tag:
            raise CnnlabError(f"--tag {tag} contradicts the weights file {path.name}; drop one of them")
        if not (path.parent / f"{file_tag}{STATE_SUFFIX}").is_file():
            raise CnnlabError(f"{str(path)!r} has no {file_tag}{STATE_SUFFIX} beside it, so it is not part of a "
                              "cnnlab run (the state file holds the model config and data statistics)")
        return path.parent, file_tag
    tags = checkpoint_tags(path)
    if not tags:
        raise CnnlabError(f"{str(path)!r} is not a run directory: it holds no checkpoint "
                          f"(<tag>{WEIGHTS_SUFFIX} with <tag>{STATE_SUFFIX}); `cnnlab train --out DIR` writes one")
    if tag is None:
        tag = BEST if BEST in tags else LAST if LAST in tags else tags[0]
    elif tag not in tags:
        raise CnnlabError(f"run {str(path)!r} has no checkpoint {tag!r}; it has {', '.join(tags)}")
    return path, tag


def load_run(path: str | Path, tag: str | None = None, *, device: str = "auto") -> LoadedRun:
    """Rebuild the model of the run at ``path`` (a run directory, or a ``.safetensors`` file in one)
    from its saved config and load checkpoint ``tag`` (default ``best`` if present, else ``last``)
    strictly. The model is returned in eval mode on ``device``."""
    directory, tag = _resolve_checkpoint(path, tag)
    weights, state = load_checkpoint(directory, tag)
    if "config" not in state or not isinstance(state.get("data"), dict) or "classes" not in state["data"]:
        raise CnnlabError(f"checkpoint {tag!r} in {str(directory)!r} was not written by cnnlab's Trainer "
                          "(no config or data statistics in its state file)")
    config = TrainConfig.from_dict(state["config"], where=f"the config saved in {directory}/{tag}")
    data = state["data"]
    classes = [str(c) for c in data["classes"]]
    mean = list(data.get("mean") or config.mean or [])
    std = list(data.get("std") or config.std or [])
    if not mean or not std:
        raise CnnlabError(f"the run in {str(directory)!r} stores no normalisation statistics")
    in_chans = int(data["in_chans"]) if "in_chans" in data else _infer_in_chans(weights, len(mean))
    model = build_model(config, num_classes=len(classes), in_chans=in_chans)
    load_into(model, weights, source=str(directory / f"{tag}.safetensors"))
    run_device = resolve_device(device)
    model.to(run_device).eval()
    return LoadedRun(directory, tag, model, config, classes, mean, std, in_chans, state, run_device)


def _infer_in_chans(weights: dict, stats_channels: int) -> int:
    """Input channels of a run saved before its state recorded them: one per statistic when
    there are several, else the first 4-d weight's second dimension (the first convolution,
    in the zoo's classic models), else the statistics'."""
    if stats_channels > 1:
        return stats_channels
    for tensor in weights.values():
        if tensor.dim() == 4:
            return int(tensor.shape[1])
    return stats_channels


def load_split(run: LoadedRun, data: str | None, split: str):
    """``split`` of the run's data set (or of ``data``), read as the run read it (same root,
    validation part and image size); its classes must be the run's."""
    config = run.config
    spec = data if data is not None else config.data
    try:
        dataset = load_dataset(spec, split, root=config.data_root, val_fraction=config.val_fraction,
                               seed=config.split_seed, image_size=config.image_size, in_memory=config.in_memory)
    except MissingSplitError as error:
        other = "val" if split == "test" else "test"
        raise MissingSplitError(f"{error}; try --split {other}", error.split) from None
    if list(dataset.classes) != run.classes:
        raise CnnlabError(f"the classes of {spec!r} ({_short(dataset.classes)}) differ from the run's "
                          f"({_short(run.classes)}); evaluate on the data set the run was trained on")
    return dataset


def _short(names: Sequence[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(map(str, names[:limit]))
    return f"{len(names)}: {shown}" + (", ..." if len(names) > limit else "")
