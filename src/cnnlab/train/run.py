"""A run from start to finish: :func:`train`, and the rules of the folder a run writes into."""
from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import Sequence

import torch

from ..errors import CnnlabError
from .callbacks import Callback
from .optim import build_optimizer
from .schedule import schedule_from_config
from ..runs import STATE_SUFFIX, WEIGHTS_SUFFIX, TrainConfig, checkpoint_tags, load_recipe

# What a run directory holds; a directory with any of these is an earlier run.
RUN_FILES = ("metrics.csv", "report.json", "curves.png", "config.yaml", "tensorboard")


def check_config(config: TrainConfig) -> TrainConfig:
    """``config`` validated (:meth:`TrainConfig.validate`), and its optimiser and schedule built
    on a stand-in layer, so that a bad name or value fails before the data loads, with the
    builder's own message. (The stand-in is left uninitialised: checking draws nothing from
    the random generators.)"""
    config.validate()
    optimizer = build_optimizer(
        torch.nn.utils.skip_init(torch.nn.Linear, 1, 1), config.optimizer, config.lr, momentum=config.momentum,
        nesterov=config.nesterov, weight_decay=config.weight_decay, betas=config.betas,
        no_decay_norm_and_bias=config.no_decay_norm_and_bias, norm_bias_lr_scale=config.norm_bias_lr_scale)
    schedule_from_config(optimizer, config, steps_per_epoch=1000)  # any epoch length will do
    return config


def writable_folder(out: str | Path, what: str) -> Path:
    """Create ``out`` if needed and prove it writable before hours of work go into it."""
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / ".write-test").write_text("")
        (out / ".write-test").unlink()
    except OSError as error:
        raise CnnlabError(f"cannot write {what} into {str(out)!r}: {error}") from None
    return out


def default_out_dir(recipe: str) -> Path:
    """``runs/<recipe>-<timestamp>``, with a ``-2``, ``-3``... suffix if two runs start in the same second."""
    base = Path("runs") / f"{recipe}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def existing_run(out_dir: Path, overwrite: bool) -> list[Path]:
    """The files of an earlier run in ``out_dir``; refused unless ``overwrite`` (then they are to be removed)."""
    if out_dir.exists() and not out_dir.is_dir():
        raise CnnlabError(f"--out {str(out_dir)!r} is a file, not a directory")
    if not out_dir.is_dir():
        return []
    tags = checkpoint_tags(out_dir)
    files = [name for name in RUN_FILES if (out_dir / name).exists()]
    if (tags or files) and not overwrite:
        what = f"checkpoints {', '.join(tags)}" if tags else ", ".join(files)
        raise CnnlabError(f"{str(out_dir)!r} already holds a run ({what}); continue it with --resume {out_dir}, "
                          "replace it with --overwrite, or choose another --out")
    return [out_dir / f"{tag}{suffix}" for tag in tags for suffix in (WEIGHTS_SUFFIX, STATE_SUFFIX)] + [
        out_dir / name for name in files]


def remove(paths: list[Path]) -> None:
    """Delete the files and folders of an earlier run (once the new run has been set up)."""
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def train(config: TrainConfig | None = None, out_dir: str | Path | None = None, *, resume: str | Path | None = None,
          overwrite: bool = False, quiet: bool = False, callbacks: Sequence[Callback] = ()) -> dict:
    """Train ``config`` (default: the ``lenet5-digits`` recipe) into ``out_dir`` and return the report;
    or, with ``resume=DIR``, continue the run in ``DIR``.

    Lecture idea: the whole recipe (data, model, initialisation, BN, regularisation,
    optimiser, schedule) as one call, e.g. ``train(load_recipe("resnet20-cifar10", epochs=2))``.
    """
    from .trainer import Trainer

    if resume is not None:
        if out_dir is not None and Path(out_dir).resolve() != Path(resume).resolve():
            raise CnnlabError("a resumed run continues in its own directory; drop out_dir or make it the same")
        return Trainer.resume(resume, quiet=quiet, callbacks=callbacks).fit()
    if config is None:
        config = load_recipe()
    return Trainer(config, out_dir, overwrite=overwrite, quiet=quiet, callbacks=callbacks).fit()
