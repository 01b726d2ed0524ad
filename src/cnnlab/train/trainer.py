"""The trainer: the lectures' training loop around any model of the zoo, with checkpoints, resume and logs.

The loop, as a reader should be able to hold it in their head (nanoGPT's plainness)::

    for epoch in epochs:
        model.train()
        for images, targets in training batches:
            with autocast: loss = cross_entropy(model(images), targets)
            optimizer.zero_grad(); scaler.scale(loss).backward()
            scaler.step(optimizer); scaler.update(); schedule.step()
            stop (saving nothing) if the loss was NaN or infinite
        model.eval(); evaluate on the validation split
        plateau.step(val_loss); log the epoch; save "last" (and "best" by val top-1)
    evaluate on the test split; write report.json and curves.png

What the model computes stays in the model; everything around it (device, precision,
data, optimiser, schedule, checkpoints, logging) is here (Lightning's separation).
Output goes through one :class:`~cnnlab.train.logger.RunLogger`, which only acts on
rank 0, so data-parallel training can be added without touching the loop.
"""
from __future__ import annotations

import contextlib
import dataclasses
import shutil
import signal
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data import (InMemoryLoader, channel_stats, load_dataset, parse_augment, smooth_labels,
                    soft_target_cross_entropy)
from ..data.loader import epoch_generator
from ..errors import CnnlabError, ModelArgumentError, first_line, is_out_of_memory
from ..registry import create_model, model_info
from .checkpoint import (BEST, LAST, STATE_SUFFIX, WEIGHTS_SUFFIX, checkpoint_tags, load_checkpoint,
                         restore_rng_state)
from .config import RUNTIME_KEYS, TRAIN_TTA_MODES, TrainConfig, load_recipe, to_yaml
from .init import init_weights
from .logger import RunLogger
from .optim import build_optimizer, scaled_lr
from .precision import Precision, autocast_context, build_grad_scaler, resolve_precision
from .report import describe_device, library_versions
from .schedule import schedule_from_config
from .seed import seed_everything

# What a run directory holds; a directory with any of these is an earlier run.
RUN_FILES = ("metrics.csv", "report.json", "curves.png", "config.yaml", "tensorboard")
STATE_VERSION = 1
FINITE_CHECK_EVERY_GPU = 50  # steps between checks that the training loss is finite, on a GPU


class Callback:
    """Hooks into the loop; override what you need. ``trainer.step``/``trainer.epoch`` say where it is.

    Raising ``KeyboardInterrupt`` from a hook stops the run as Ctrl-C does: the state after
    the step just completed is saved as the resumable ``last`` checkpoint.
    """

    def on_step_end(self, trainer: "Trainer") -> None:
        pass

    def on_epoch_end(self, trainer: "Trainer", row: dict) -> None:
        pass


class _Stop(Exception):
    """Internal: a stop was requested (Ctrl-C or a callback) at a step boundary."""


# ---------------------------------------------------------------------- helpers


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise CnnlabError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"device {name!r} asked for, but CUDA is not available on this machine; use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CnnlabError("device 'mps' asked for, but Apple's MPS is not available here; use cpu or auto")
    return device


def build_model(config: TrainConfig, num_classes: int, in_chans: int) -> nn.Module:
    """The config's model for this data set: ``num_classes`` and ``in_chans`` from the data, regularisation
    overrides (``dropout``, ``drop_path_rate``) for models that take them, then the named initialisation."""
    model_info(config.model)  # an unknown name fails here, with suggestions
    overrides = dict(config.model_args)
    for key in ("dropout", "drop_path_rate"):
        if getattr(config, key) is not None:
            overrides[key] = getattr(config, key)
    try:
        model = create_model(config.model, num_classes=num_classes, in_chans=in_chans, **overrides)
    except ModelArgumentError as error:
        key = error.argument
        origin = "model_args" if key in config.model_args and key not in ("dropout", "drop_path_rate") else key
        has = {"dropout": "alexnet, zfnet, vgg*, googlenet, nin", "drop_path_rate": "the ResNet families"}
        hint = f" (models that take it: {has[key]})" if key in has else ""
        raise CnnlabError(f"model {config.model!r} has no {key!r} setting, so `{origin}` cannot be applied; "
                          f"set it to null (the model's default) or choose another model{hint}") from None
    if config.init != "default" or config.zero_init_residual:
        init_weights(model, config.init, std=config.init_std, zero_init_residual=config.zero_init_residual)
    return model


INIT_SAMPLE_PIXELS = 5000 * 32 * 32  # 5,000 CIFAR-sized images; fewer when they are larger


def init_sample(dataset, mean, std, pixels: int = INIT_SAMPLE_PIXELS) -> torch.Tensor:
    """Training images (before augmentation), normalised: what a model's ``init_from_data`` sees.

    As many images as fit in ``pixels`` (5,000 at 32x32), evenly spaced through the split,
    so that a class-ordered folder gives every class."""
    images = getattr(dataset, "images", None)
    first = images[0] if isinstance(images, torch.Tensor) else dataset.load_image(0)
    count = max(1, min(len(dataset), pixels // (first.shape[-2] * first.shape[-1])))
    indices = torch.linspace(0, len(dataset) - 1, count).round().long()
    if isinstance(images, torch.Tensor):
        batch = images[indices]
    else:
        loaded = [dataset.load_image(int(index)) for index in indices]
        if len({tuple(image.shape) for image in loaded}) > 1:
            raise CnnlabError("this model initialises itself from training images, which here have different "
                              "sizes; set image_size (e.g. --set image_size=32)")
        batch = torch.stack(loaded)
    mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
    return (batch.float() / 255 - mean) / std


def _split_or_none(load, split: str):
    try:
        return load(split)
    except CnnlabError as error:
        if f"has no {split} split" in str(error) or "val_fraction is 0" in str(error):
            return None
        raise


def top_k_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many rows of ``logits`` have their label among the ``k`` highest scores (a 0-d tensor).

    Equal scores are ranked by class index, lowest first, as ``argmax`` picks them, so that
    top-1 agrees with a confusion matrix built from ``argmax`` whatever the batch. Ties are
    common under bf16 autocast (8 bits of mantissa), and ``topk`` breaks them in an order
    that depends on the kernel, which depends on the batch size. A NaN score ranks first,
    as ``argmax`` takes NaN for the largest value, so a NaN true score always counts as
    wrong, and a NaN among the others pushes the true class down one place.
    """
    true_score = logits.gather(1, labels[:, None])
    lower_index = torch.arange(logits.shape[1], device=logits.device)[None, :] < labels[:, None]
    ranked_ahead = (logits > true_score) | ((logits == true_score) & lower_index) | logits.isnan()
    return ((ranked_ahead.sum(dim=1) < k) & ~true_score[:, 0].isnan()).sum()


# ---------------------------------------------------------------------- batches


class _InMemoryBatches:
    """airbench's path: the uint8 tensor on the device, batched augmentation (cnnlab.data.InMemoryLoader)."""

    def __init__(self, loader, eval_transform=None):
        self.loader = loader
        self.eval_transform = eval_transform

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator:
        self.loader.set_epoch(epoch)
        for index, (images, targets) in enumerate(self.loader):
            # Skipped batches still run their augmentation, so the random stream of the rest
            # is the one an uninterrupted epoch would have drawn (exact mid-epoch resume).
            if index < skip:
                continue
            if self.eval_transform is not None:
                images = self.eval_transform(images)
            yield images, targets


class _EpochOrder(torch.utils.data.Sampler):
    """The same seeded per-epoch order as the in-memory loader, from an offset (for mid-epoch resume)."""

    def __init__(self, size: int, seed: int, shuffle: bool):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.epoch, self.start = 0, 0

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch, stream=0))
        else:
            order = torch.arange(self.size)
        return iter(order[self.start:].tolist())

    def __len__(self) -> int:
        return self.size - self.start


class _StreamingBatches:
    """Large image folders: DataLoader workers decode files and run the per-sample v2 transforms;
    mixup/cutmix/label mixing then runs on the collated batch on the device."""

    def __init__(self, dataset, batch_size: int, *, device, seed: int, shuffle: bool, drop_last: bool,
                 num_workers: int, pipeline=None, channels_last: bool = False, num_classes: int | None = None):
        self.sampler = _EpochOrder(len(dataset), seed, shuffle)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, sampler=self.sampler, num_workers=num_workers, drop_last=drop_last,
            pin_memory=torch.device(device).type == "cuda", persistent_workers=False)
        self.device, self.seed, self.pipeline = torch.device(device), seed, pipeline
        self.channels_last, self.num_classes = channels_last, num_classes
        self.size = len(dataset)

    def __len__(self) -> int:
        return self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)

    def epoch(self, epoch: int, skip: int = 0) -> Iterator:
        self.sampler.epoch, self.sampler.start = epoch, skip * self.batch_size
        generator = epoch_generator(self.seed, epoch, stream=1)
        for images, targets in self.loader:
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            if self.pipeline is not None and self.pipeline.changes_targets:
                images, targets = self.pipeline.mix(images, targets, generator, self.num_classes)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, targets


# ---------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterator, *, device_type: str = "cpu", precision: Precision | None = None,
             num_classes: int | None = None, tta: str = "none") -> dict:
    """Loss (mean cross-entropy), top-1 and top-5 accuracy (percent) of ``model`` over ``batches``.

    Lecture idea (batch normalisation at test time): the model is put in eval mode, so BN
    uses its running statistics and dropout is off, and every image's prediction depends on
    that image alone, not on the batch it comes in. The model's mode is restored afterwards.
    Top-5 is ``None`` for fewer than 10 classes. ``tta="flip"`` averages the class
    probabilities of each image and its mirror image (test-time augmentation), as
    ``cnnlab eval --tta flip`` does; the loss is then that of the averaged probabilities.
    """
    if tta not in TRAIN_TTA_MODES:
        raise CnnlabError(f"tta must be one of {', '.join(TRAIN_TTA_MODES)}, got {tta!r}")
    was_training = model.training
    model.eval()
    loss_sum = correct1 = correct5 = None
    count = 0
    try:
        for images, labels in batches:
            # One forward pass per view (not one of a stacked batch, as tta_predict does) keeps
            # the batch's channels-last layout.
            views = [images, images.flip(-1)] if tta == "flip" else [images]
            outputs = []
            for view in views:
                with (autocast_context(device_type, precision) if precision is not None else contextlib.nullcontext()):
                    logits = model(view)
                outputs.append((logits[0] if isinstance(logits, (tuple, list)) else logits).float())
            if len(outputs) == 1:
                log_probs = F.log_softmax(outputs[0], dim=1)
            else:
                probs = torch.stack([F.softmax(out, dim=1) for out in outputs]).mean(dim=0)
                log_probs = probs.clamp_min(torch.finfo(probs.dtype).tiny).log()
            loss = F.nll_loss(log_probs, labels, reduction="sum")
            c1 = top_k_correct(log_probs, labels, 1)
            c5 = top_k_correct(log_probs, labels, 5)
            loss_sum = loss if loss_sum is None else loss_sum + loss
            correct1 = c1 if correct1 is None else correct1 + c1
            correct5 = c5 if correct5 is None else correct5 + c5
            count += labels.shape[0]
            if num_classes is None:
                num_classes = log_probs.shape[1]
    finally:
        model.train(was_training)
    if count == 0:
        return {"loss": None, "top1": None, "top5": None, "images": 0}
    return {"loss": float(loss_sum) / count, "top1": 100.0 * float(correct1) / count,
            "top5": 100.0 * float(correct5) / count if num_classes >= 10 else None, "images": count}


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterator) -> torch.Tensor:
    """The eval-mode logits of ``model`` for every image of ``batches``, concatenated (float32)."""
    was_training = model.training
    model.eval()
    try:
        outputs = []
        for images, _ in batches:
            logits = model(images)
            outputs.append((logits[0] if isinstance(logits, (tuple, list)) else logits).float())
        return torch.cat(outputs)
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------- the trainer


class Trainer:
    """Train ``config``'s model on ``config``'s data, writing the run into ``out_dir``.

    ``Trainer(config, out_dir).fit()`` runs it and returns the report (also written as
    ``report.json``); ``Trainer.resume(out_dir).fit()`` continues an interrupted run.
    ``out_dir`` defaults to ``runs/<recipe>-<timestamp>``; a directory that already holds a
    run is refused unless ``overwrite=True``. ``quiet`` hides the per-epoch lines and the
    progress bar; ``callbacks`` are :class:`Callback` objects.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path | None = None, *, overwrite: bool = False,
                 quiet: bool = False, callbacks: Sequence[Callback] = (), console=None,
                 _resume_state: dict | None = None):
        if not isinstance(config, TrainConfig):
            raise CnnlabError(f"config must be a TrainConfig (see cnnlab.train.load_recipe), "
                              f"got {type(config).__name__}")
        self.config = dataclasses.replace(config).validate()
        if out_dir is None:
            out_dir = _default_out_dir(config.recipe)
        self.out_dir = Path(out_dir)
        self.callbacks = list(callbacks)
        self._resume_state = _resume_state
        # Checked now, removed only once the new run has been set up: a mistake in the new
        # config never costs the old run.
        old_run = _existing_run(self.out_dir, overwrite) if _resume_state is None else []
        self.logger = RunLogger(self.out_dir, quiet=quiet, tensorboard=self.config.tensorboard, console=console)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches completed in the current epoch
        self.step = 0  # optimiser steps completed in all
        self.history: list[dict] = []
        self.best = {"epoch": None, "val_top1": None}
        self._sums = None
        self._wall_before = 0.0  # wall time of earlier sessions of this run
        self._stop_requested = False
        self._phase = "setting up"  # then "training" or "evaluating": what a memory error is reported against
        with self._out_of_memory_hint():
            self._setup()
        _remove(old_run)
        self.logger.write_text("config.yaml", to_yaml(self.config))

    # ------------------------------------------------------------------ construction

    @classmethod
    def resume(cls, out_dir: str | Path, *, overrides: dict | None = None, quiet: bool = False,
               callbacks: Sequence[Callback] = (), console=None) -> "Trainer":
        """Continue the run in ``out_dir`` from its ``last`` checkpoint, with its saved config.

        Only the runtime settings (``device``, ``compile``, ``num_workers``, ``tensorboard``,
        ``cpu_threads``, ``eval_batch_size``) may be changed through ``overrides``; anything else would make the
        continued run a different experiment, so it raises :class:`CnnlabError`.
        """
        out_dir = Path(out_dir)
        if not out_dir.is_dir():
            raise CnnlabError(f"cannot resume: {str(out_dir)!r} is not a directory")
        if LAST not in checkpoint_tags(out_dir):
            found = checkpoint_tags(out_dir)
            raise CnnlabError(f"cannot resume: {str(out_dir)!r} holds no 'last' checkpoint"
                              + (f" (it has {', '.join(found)})" if found else "")
                              + "; a run writes one at the end of every epoch and on Ctrl-C")
        _, state = load_checkpoint(out_dir, LAST)
        if state.get("trainer_state_version") != STATE_VERSION:
            raise CnnlabError(f"{str(out_dir)!r}/last was not written by cnnlab's Trainer; cannot resume from it")
        config = TrainConfig.from_dict(state["config"], where=f"the config saved in {out_dir}/last")
        if overrides:
            new = config.updated(overrides, where="the resume overrides")
            changed = [f.name for f in dataclasses.fields(TrainConfig)
                       if getattr(new, f.name) != getattr(config, f.name) and f.name not in RUNTIME_KEYS]
            if changed:
                raise CnnlabError(
                    f"a resumed run keeps the config it started with; these would change: {', '.join(changed)}. "
                    f"Only {', '.join(RUNTIME_KEYS)} may change on --resume; start a new run (--out) to change more")
            config = new
        return cls(config, out_dir, quiet=quiet, callbacks=callbacks, console=console, _resume_state=state)

    def _setup(self) -> None:
        config = self.config
        self._started = time.perf_counter()
        if config.cpu_threads is not None:
            torch.set_num_threads(config.cpu_threads)
        seed_everything(config.seed, deterministic=config.deterministic)
        self.device = resolve_device(config.device)
        # How often the loop checks that the loss is finite: each step costs nothing on a CPU;
        # on a GPU each check waits for the GPU to finish, so it is done every few steps.
        self._finite_check_every = 1 if self.device.type == "cpu" else FINITE_CHECK_EVERY_GPU
        if self.device.type == "cuda" and not config.deterministic:
            # Every step has the same shapes, so cuDNN's autotuner pays for itself after a
            # few steps (timm and torchvision's reference scripts do the same).
            torch.backends.cudnn.benchmark = True
        self.precision = resolve_precision(self.device, config.precision, config.channels_last)
        self._setup_data()
        self.model = build_model(config, self.num_classes, self.in_chans)
        self.model.to(self.device)
        if self.precision.channels_last:
            self.model.to(memory_format=torch.channels_last)
        state = self._resume_state
        if state is not None:
            load_checkpoint(self.out_dir, LAST, model=self.model)  # strict: same architecture
        elif hasattr(self.model, "init_from_data"):
            # Data-dependent initialisation (airbench's patch whitening): from the training images,
            # normalised as the model will see them; a resumed run has these weights already.
            self.model.init_from_data(init_sample(self.train_set, self.config.mean, self.config.std).to(self.device))
        self.lr = scaled_lr(config.lr, config.batch_size, config.reference_batch) if config.scale_lr else config.lr
        self.optimizer = build_optimizer(
            self.model, config.optimizer, self.lr, momentum=config.momentum, nesterov=config.nesterov,
            weight_decay=config.weight_decay, betas=config.betas, no_decay_norm_and_bias=config.no_decay_norm_and_bias)
        self._setup_schedule()
        self.scaler = build_grad_scaler(self.device, self.precision)
        # torch.compile wraps the module; the weights and checkpoints stay those of self.model.
        if config.compile:
            mode = config.compile if isinstance(config.compile, str) else "default"
            self.forward = torch.compile(self.model, mode=mode)
        else:
            self.forward = self.model
        if state is not None:
            self._load_state(state)

    def _setup_data(self) -> None:
        config = self.config

        def load(split):
            return load_dataset(config.data, split, root=config.data_root, download=config.download,
                                val_fraction=config.val_fraction, seed=config.split_seed,
                                image_size=config.image_size, in_memory=config.in_memory)

        self.train_set = load("train")
        self.val_set = _split_or_none(load, "val")
        self.test_set = _split_or_none(load, "test")
        self.num_classes = len(self.train_set.classes)
        in_memory = hasattr(self.train_set, "images")
        if in_memory:
            self.in_chans = self.train_set.images.shape[1]
        else:
            self.in_chans = self.train_set.load_image(0).shape[0]
        if config.mean is None:
            # Lecture 7: normalise every split with the training split's statistics, computed once
            # and stored with the run, so a resumed or evaluated run uses the very same numbers.
            mean, std = channel_stats(self.train_set)
            self.config = config = dataclasses.replace(config, mean=[round(m, 6) for m in mean],
                                                       std=[round(s, 6) for s in std])
        if len(config.mean) not in (1, self.in_chans):
            raise CnnlabError(f"mean/std have {len(config.mean)} values but the images have {self.in_chans} channels")
        self.pipeline = parse_augment(config.augment, num_classes=self.num_classes)
        if config.label_smoothing and any(a.name == "label_smoothing" for a in self.pipeline.target_augmentations):
            raise CnnlabError("label smoothing is set twice (label_smoothing and label_smoothing(...) in augment); "
                              "keep one")
        eval_batch = config.evaluation_batch_size
        # Size-changing augmentations (scale + crop) have a test-time form: resize and centre crop.
        eval_transform = self.pipeline.eval_transform if self.pipeline.image_augmentations else None
        common = dict(mean=config.mean, std=config.std, channels_last=self.precision.channels_last)
        if in_memory:
            self.train_batches = _InMemoryBatches(InMemoryLoader.from_dataset(
                self.train_set, config.batch_size, shuffle=True, drop_last=config.drop_last, augment=self.pipeline,
                device=self.device, seed=config.seed, **common))

            def eval_batches(dataset):
                if dataset is None:
                    return None
                return _InMemoryBatches(InMemoryLoader.from_dataset(
                    dataset, eval_batch, shuffle=False, device=self.device, **common), eval_transform)
        else:
            self.train_set.transform = self.pipeline.to_v2(train=True, mean=config.mean, std=config.std)
            self.train_batches = _StreamingBatches(
                self.train_set, config.batch_size, device=self.device, seed=config.seed, shuffle=True,
                drop_last=config.drop_last, num_workers=config.num_workers, pipeline=self.pipeline,
                channels_last=self.precision.channels_last, num_classes=self.num_classes)

            def eval_batches(dataset):
                if dataset is None:
                    return None
                dataset.transform = self.pipeline.to_v2(train=False, mean=config.mean, std=config.std)
                return _StreamingBatches(dataset, eval_batch, device=self.device, seed=0, shuffle=False,
                                         drop_last=False, num_workers=config.num_workers,
                                         channels_last=self.precision.channels_last)

        self.val_batches = eval_batches(self.val_set)
        self.test_batches = eval_batches(self.test_set)
        self.steps_per_epoch = len(self.train_batches)
        if self.steps_per_epoch == 0:
            raise CnnlabError(f"the training split has {len(self.train_set)} images, fewer than one batch of "
                              f"{config.batch_size} with drop_last; lower batch_size")

    def _setup_schedule(self) -> None:
        if self.config.schedule == "plateau" and self.val_batches is None:
            raise CnnlabError("schedule: plateau watches the validation loss, but this run has no validation "
                              "split; set val_fraction > 0 or choose another schedule")
        self.schedule, self.plateau = schedule_from_config(self.optimizer, self.config, self.steps_per_epoch)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything besides the weights that a resume needs (what goes into ``<tag>.state.pt``)."""
        sums = self._sums or {}
        return {
            "trainer_state_version": STATE_VERSION,
            "config": self.config.to_dict(),
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict(),
            "partial_epoch": {k: float(v) for k, v in sums.items()} if self.batch else None,
            "history": self.history,
            "best": self.best,
            "wall_seconds": self._wall_before + (time.perf_counter() - self._started),
            "data": {"mean": self.config.mean, "std": self.config.std, "num_classes": self.num_classes,
                     "in_chans": self.in_chans, "classes": list(self.train_set.classes)},
        }

    def _load_state(self, state: dict) -> None:
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            if self.plateau is not None:
                self.plateau.load_state_dict(state["plateau"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise CnnlabError(f"the checkpoint in {self.out_dir} does not fit this run: {error}") from None
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.history = [dict(row) for row in state["history"]]
        self.best = dict(state["best"])
        self._wall_before = float(state["wall_seconds"])
        partial = state.get("partial_epoch")
        self._sums = dict(partial) if partial else None
        self._rng_state = state["rng"]
        self.logger.rewrite_metrics(self.history)

    def _save(self, tag: str) -> None:
        self._stop_if_weights_not_finite()
        self.logger.save_checkpoint(tag, self.model, self.state_dict())
        if tag == LAST:
            self._saved_step = (self.epoch, self.batch, self.step)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> dict:
        """Train to ``config.epochs``, evaluate on the test split, write the report; return it.

        Ctrl-C (or ``KeyboardInterrupt`` from a callback) stops at the end of the current
        optimiser step, saves that state as ``last`` (the last *completed step*; resuming
        replays the rest of the epoch exactly) and re-raises ``KeyboardInterrupt``. A second
        Ctrl-C aborts at once without saving; the previous ``last`` stays intact.

        A NaN or infinite training loss (or weights), or running out of memory, raises
        :class:`CnnlabError` naming the step or the batch size to change, and saves nothing:
        ``last`` and ``best`` keep the last state saved before it.
        """
        config, log = self.config, self.logger
        resumed = self._resume_state is not None
        if resumed:
            restore_rng_state(self._rng_state)  # last of all: the run continues with the saved random streams
            log.info(f"resuming {self.out_dir} at epoch {self.epoch + 1}, step {self.step}")
        else:
            log.info(f"training {config.model} on {self.train_set.name} ({len(self.train_set):,} train, "
                     f"{_size(self.val_set):,} val, {_size(self.test_set):,} test images) for {config.epochs} epochs "
                     f"on {self.device} ({self.precision.reason}); writing {self.out_dir}")
        if self.epoch >= config.epochs:
            log.info(f"{self.out_dir} has already finished its {config.epochs} epochs; writing its report again")
        try:
            with self._graceful_interrupt(), self._out_of_memory_hint():
                while self.epoch < config.epochs:
                    self._train_epoch()
                    self._end_epoch()
        except _Stop:
            self._save_on_interrupt()
            raise KeyboardInterrupt from None
        finally:
            log.close()
        with self._out_of_memory_hint():
            return self._finish()

    def _train_epoch(self) -> None:
        config, log = self.config, self.logger
        self.model.train()
        self._phase = "training"
        if self._sums is None:
            self._sums = {"loss": 0.0, "correct": 0.0, "images": 0.0, "seconds": 0.0}
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        images_seen = 0
        log.start_epoch(self.epoch + 1, config.epochs, self.steps_per_epoch, self.batch)
        started = time.perf_counter()
        batches = self.train_batches.epoch(self.epoch, skip=self.batch)
        # A NaN or infinite loss makes loss_sum NaN or infinite too, so reading loss_sum tells
        # whether every step since the last read was finite: every step on a CPU, every few
        # steps on a GPU (a read waits for the GPU), and always before anything is saved.
        finite_until = self.step
        while self.batch < self.steps_per_epoch:
            try:
                images, targets = next(batches)
            except StopIteration:
                break
            except Exception:
                if self._stop_requested:  # e.g. DataLoader workers that caught the Ctrl-C
                    raise _Stop from None
                raise
            with autocast_context(self.device, self.precision):
                outputs = self.forward(images)
            loss, logits = self._loss(outputs, targets)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            if config.grad_clip_norm is not None:
                self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.schedule.step()
            self.step += 1
            self.batch += 1

            labels = targets.argmax(dim=1) if targets.dim() == 2 else targets
            count = labels.shape[0]
            loss_sum += loss.detach().float() * count
            correct += (logits.detach().argmax(dim=1) == labels).sum()
            images_seen += count
            if self.step % self._finite_check_every == 0:
                finite_until = self._stop_if_diverged(loss_sum, finite_until)
            if log.wants_update():
                seconds = self._sums["seconds"] + time.perf_counter() - started
                total = self._sums["images"] + images_seen
                log.update_step(self.batch, (self._sums["loss"] + float(loss_sum)) / total,
                                100.0 * (self._sums["correct"] + float(correct)) / total, total / max(seconds, 1e-9))
            for callback in self.callbacks:
                try:
                    callback.on_step_end(self)
                except KeyboardInterrupt:
                    self._stop_requested = True
            if self._stop_requested:
                self._stop_if_diverged(loss_sum, finite_until)
                self._accumulate(loss_sum, correct, images_seen, started)
                raise _Stop
        self._stop_if_diverged(loss_sum, finite_until)
        self._accumulate(loss_sum, correct, images_seen, started)

    def _stop_if_diverged(self, loss_sum: torch.Tensor, finite_until: int) -> int:
        """Stop the run, saving nothing, once a training loss has been NaN or infinite; else
        return the step up to which every loss is known to be finite.

        Lecture idea (babysitting the learning process): a loss that explodes, or turns NaN,
        almost always means too high a learning rate. The weights are no good from that
        step on, so the run stops without saving: ``last`` keeps its last good state.
        """
        if bool(torch.isfinite(loss_sum)):
            return self.step
        first = finite_until + 1
        epoch, batch = divmod(first - 1, self.steps_per_epoch)
        position = f"epoch {epoch + 1}, batch {batch + 1} of {self.steps_per_epoch}"
        if first == self.step:
            self._diverged(f"the training loss became NaN or infinite at step {first}", position)
        self._diverged(f"the training loss became NaN or infinite between steps {first} and {self.step}",
                       f"from {position}")

    def _stop_if_weights_not_finite(self) -> None:
        """Never save weights that are NaN or infinite: a step can break them (an infinite
        gradient norm under clipping, say) while its own loss, computed before it, was finite."""
        tensors = [t for t in (*self.model.parameters(), *self.model.buffers()) if t.is_floating_point()]
        if not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            return
        self._diverged(f"the model's weights became NaN or infinite by step {self.step}",
                       "while the training losses were finite")

    def _diverged(self, what: str, detail: str) -> None:
        """Raise the error of a diverged run: ``what`` happened (``detail``), nothing is saved."""
        self.logger.end_progress()
        if LAST in checkpoint_tags(self.out_dir):
            kept = f"its last checkpoint ({self.out_dir / LAST}.*, from before that step) is unchanged"
        else:
            kept = "no checkpoint had been written yet"
        raise CnnlabError(
            f"{what} ({detail}; learning rate {self.optimizer.param_groups[0]['lr']:.4g}), so the run stopped "
            f"without saving; {kept}. A loss that explodes usually means the learning rate is too high: try a smaller --lr, a "
            f"warm-up (--set warmup_epochs=1), gradient clipping (--set grad_clip_norm=1) or --set precision=fp32")

    def _accumulate(self, loss_sum, correct, images, started) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self._sums["loss"] += float(loss_sum)
        self._sums["correct"] += float(correct)
        self._sums["images"] += images
        self._sums["seconds"] += time.perf_counter() - started

    def _loss(self, outputs, targets):
        """Cross-entropy of the main logits (plus GoogLeNet's weighted auxiliary losses); hard or soft targets."""
        aux = []
        if isinstance(outputs, (tuple, list)):
            outputs, aux = outputs[0], [o for o in outputs[1:] if o is not None]
        eps = self.config.label_smoothing

        def cross_entropy(logits):
            logits = logits.float()
            if targets.dim() == 2:  # soft targets from mixup / cutmix / label_smoothing(...)
                soft = smooth_labels(targets, eps=eps) if eps else targets
                return soft_target_cross_entropy(logits, soft)
            return F.cross_entropy(logits, targets, label_smoothing=eps)

        loss = cross_entropy(outputs)
        for extra in aux:
            loss = loss + self.config.aux_loss_weight * cross_entropy(extra)
        return loss, outputs

    def _end_epoch(self) -> None:
        epoch_started = time.perf_counter()
        val = self.evaluate("val") if self.val_batches is not None else None
        if self._stop_requested:
            raise _Stop
        sums = self._sums
        row = {
            "epoch": self.epoch + 1,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train_loss": sums["loss"] / max(sums["images"], 1),
            "train_top1": 100.0 * sums["correct"] / max(sums["images"], 1),
            "val_loss": val["loss"] if val else None,
            "val_top1": val["top1"] if val else None,
            "val_top5": val["top5"] if val else None,
            "images_per_second": sums["images"] / max(sums["seconds"], 1e-9),
            "seconds": sums["seconds"] + time.perf_counter() - epoch_started,
        }
        if self.plateau is not None:
            self.plateau.step(row["val_loss"])
        self.history.append(row)
        self.logger.log_epoch(row, self.history, self.config.epochs)
        self.epoch, self.batch, self._sums = self.epoch + 1, 0, None
        is_best = val is not None and (self.best["val_top1"] is None or val["top1"] > self.best["val_top1"])
        if is_best:
            self.best = {"epoch": row["epoch"], "val_top1": val["top1"]}
        # "last" first: the most recent state is never older on disk than "best".
        self._save(LAST)
        if is_best:
            self._save(BEST)
        for callback in self.callbacks:
            try:
                callback.on_epoch_end(self, row)
            except KeyboardInterrupt:
                self._stop_requested = True
        if self._stop_requested and self.epoch < self.config.epochs:
            raise _Stop

    def evaluate(self, split: str = "val") -> dict | None:
        """Loss, top-1 and top-5 (percent) of the current model on ``"val"`` or ``"test"`` (``None`` if absent)."""
        batches = {"val": self.val_batches, "test": self.test_batches}.get(split, KeyError)
        if batches is KeyError:
            raise CnnlabError(f"split must be 'val' or 'test', got {split!r}")
        if batches is None:
            return None
        # Left as "evaluating" if the evaluation fails, so that a memory error names its batch size.
        previous, self._phase = self._phase, "evaluating"
        result = evaluate(self.forward, batches.epoch(0), device_type=self.device.type, precision=self.precision,
                          num_classes=self.num_classes, tta=self.config.tta)
        self._phase = previous
        return result

    # ------------------------------------------------------------------ interruption

    @contextlib.contextmanager
    def _out_of_memory_hint(self):
        """Turn running out of memory into a message that says which batch to shrink; nothing is saved."""
        try:
            yield
        except (RuntimeError, MemoryError, OSError) as error:
            if not is_out_of_memory(error):
                raise
            self.logger.end_progress()
            batch, eval_batch = self.config.batch_size, self.config.evaluation_batch_size
            if self._phase == "setting up":
                advice = (f"while setting up the run (loading {self.config.data!r}, building {self.config.model!r}): "
                          f"an image folder too large for memory can be streamed from disk with --set "
                          f"in_memory=false; otherwise try a smaller model or --set image_size")
            elif self._phase == "evaluating":
                advice = (f"while evaluating with batch size {eval_batch}: try --set eval_batch_size="
                          f"{max(1, eval_batch // 2)}")
            elif self._resume_state is not None:
                advice = (f"while training with batch size {batch}: a resumed run keeps its batch size, so resume "
                          f"on a device with more memory, or start a new run with e.g. --batch-size "
                          f"{max(1, batch // 2)}")
            else:
                advice = (f"while training with batch size {batch}: try a smaller batch, e.g. --batch-size "
                          f"{max(1, batch // 2)} (with --lr scaled by the same factor, the linear scaling rule)")
            kept = (f"; the last checkpoint ({self.out_dir / LAST}.*) is unchanged"
                    if LAST in checkpoint_tags(self.out_dir) else "")
            raise CnnlabError(f"out of memory on {getattr(self, 'device', self.config.device)} {advice}{kept} "
                              f"({first_line(error)})") from None

    @contextlib.contextmanager
    def _graceful_interrupt(self):
        """First Ctrl-C: finish the current step, then stop and save. Second Ctrl-C: stop at once."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum, frame):
            if self._stop_requested:
                signal.signal(signal.SIGINT, previous)
                raise KeyboardInterrupt
            self._stop_requested = True
            self.logger.end_progress()
            self.logger.info("Ctrl-C: stopping after this step and saving a resumable checkpoint "
                             "(Ctrl-C again to stop at once without saving)", always=True)

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)

    def _save_on_interrupt(self) -> None:
        self.logger.end_progress()
        if getattr(self, "_saved_step", None) != (self.epoch, self.batch, self.step):
            self._save(LAST)
        where = (f"epoch {self.epoch + 1}, after batch {self.batch}/{self.steps_per_epoch}" if self.batch
                 else f"the end of epoch {self.epoch}")
        self.logger.info(f"interrupted at step {self.step} ({where}); saved the state after the last completed "
                         f"step to {self.out_dir / LAST}.*\ncontinue with: cnnlab train --resume {self.out_dir}",
                         always=True)

    # ------------------------------------------------------------------ the end

    def _finish(self) -> dict:
        config = self.config
        test = self.evaluate("test")
        test_split = "test"
        if test is None and self.val_batches is not None:
            test, test_split = self.evaluate("val"), "val (the data set has no test split)"
        last = self.history[-1] if self.history else {}
        speeds = sorted(row["images_per_second"] for row in self.history)
        wall = self._wall_before + (time.perf_counter() - self._started)
        report = {
            "model": config.model,
            "dataset": self.train_set.name,
            "data_source": self.train_set.source,
            "recipe": config.recipe,
            "epochs": config.epochs,
            "steps": self.step,
            "train_loss": last.get("train_loss"),
            "train_top1": last.get("train_top1"),
            "val_top1": last.get("val_top1"),
            "best_val_top1": self.best["val_top1"],
            "best_epoch": self.best["epoch"],
            "test_loss": test["loss"] if test else None,
            "test_top1": test["top1"] if test else None,
            "test_top5": test["top5"] if test else None,
            "test_split": test_split if test else None,
            "test_tta": config.tta,
            "test_weights": "last (the weights after the final epoch)",
            "wall_seconds": wall,
            "images_per_second": speeds[len(speeds) // 2] if speeds else None,  # median over epochs
            "seed": config.seed,
            "versions": library_versions(self.device.type),
            "device": describe_device(self.device),
            "precision": self.precision.as_dict(),
            "compile": config.compile,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "data": {"train_images": len(self.train_set), "val_images": _size(self.val_set),
                     "test_images": _size(self.test_set), "num_classes": self.num_classes,
                     "classes": list(self.train_set.classes), "mean": config.mean, "std": config.std,
                     "augment": self.pipeline.spec},
            "lr": {"base": config.lr, "used": self.lr, "scaled": config.scale_lr},
            "files": {"report": str(self.out_dir / "report.json"), "curves": str(self.out_dir / "curves.png"),
                      "metrics": str(self.out_dir / "metrics.csv"), "last": str(self.out_dir / f"{LAST}.safetensors"),
                      "best": str(self.out_dir / f"{BEST}.safetensors") if self.best["epoch"] else None,
                      "config": str(self.out_dir / "config.yaml")},
            "config": config.to_dict(),
        }
        self.logger.write_report(report, self.history, f"{config.model} on {self.train_set.name} ({config.recipe})")
        if test:
            top5 = f", top-5 {test['top5']:.2f}%" if test["top5"] is not None else ""
            label = "test" if test_split == "test" else f"test on {test_split}"
            best = (f"best val top-1 {self.best['val_top1']:.2f}% at epoch {self.best['epoch']}; "
                    if self.best["val_top1"] is not None else "")
            self.logger.info(f"{label}: top-1 {test['top1']:.2f}%{top5}, loss {test['loss']:.4f}; {best}"
                             f"{wall:.1f} s", always=True)
        files = report["files"]
        self.logger.info(f"report:     {files['report']}\ncurves:     {files['curves']}\n"
                         f"metrics:    {files['metrics']}\ncheckpoint: {files['last']}"
                         + (f" (best: {files['best']})" if files["best"] else ""), always=True)
        return report


def _default_out_dir(recipe: str) -> Path:
    """``runs/<recipe>-<timestamp>``, with a ``-2``, ``-3``... suffix if two runs start in the same second."""
    base = Path("runs") / f"{recipe}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    candidate, number = base, 1
    while candidate.exists():
        number += 1
        candidate = base.with_name(f"{base.name}-{number}")
    return candidate


def _size(dataset) -> int:
    return 0 if dataset is None else len(dataset)


def _existing_run(out_dir: Path, overwrite: bool) -> list[Path]:
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


def _remove(paths: list[Path]) -> None:
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
    if resume is not None:
        if out_dir is not None and Path(out_dir).resolve() != Path(resume).resolve():
            raise CnnlabError("a resumed run continues in its own directory; drop out_dir or make it the same")
        return Trainer.resume(resume, quiet=quiet, callbacks=callbacks).fit()
    if config is None:
        config = load_recipe()
    return Trainer(config, out_dir, overwrite=overwrite, quiet=quiet, callbacks=callbacks).fit()
