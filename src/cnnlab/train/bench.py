"""``cnnlab bench``: how fast the trainer trains a recipe's model, against two yardsticks.

Three ways of taking the same training steps (model, batch size, optimiser, loss,
precision and memory format all the recipe's), timed side by side in one process:

1. **trainer**: cnnlab's :class:`Trainer` on the recipe's data, as ``cnnlab train`` runs
   it (in-memory uint8 tensor, batched augmentation on the device), timed between two of
   its steps inside the first epoch;
2. **synthetic**: the model, loss and optimiser alone on one pre-made batch, repeated: no
   data path at all, the ceiling the trainer can at best reach;
3. **usual loop**: the loop as it is usually written: a map-style data set handing out one
   PIL image at a time (as ``torchvision.datasets.CIFAR10`` does), the recipe's
   augmentation as ``torchvision.transforms.v2``, a ``DataLoader`` with worker processes,
   and a plain fp32 step.

The ratios trainer / synthetic (how much the data path costs; the goal is >= 0.9) and
trainer / usual (what the batched data path and the device defaults buy) are what a user
compares across machines. Every timed region ends with a device synchronisation.
"""
from __future__ import annotations

import contextlib
import dataclasses
import io
import statistics
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console

from ..data import load_dataset
from ..data.augment import AugmentPipeline, HorizontalFlip, parse_augment
from ..device import autocast_context, resolve_device, resolve_precision
from ..errors import CnnlabError
from ..registry import build_model
from ..runs import TrainConfig
from .callbacks import Callback
from .fusion import fuse_for_training
from .loss import classification_loss
from .optim import build_optimizer
from .trainer import Trainer

__all__ = ["bench", "trainer_rate", "synthetic_rate", "usual_rate", "alternating_rates", "fixed_batch_step"]


def fixed_batch_step(model, images, labels, optimizer, *, bf16: bool = False):
    """One training step of ``model`` on a fixed batch, as a function of no arguments:
    cross-entropy, backward, ``optimizer.step()``; under CPU bf16 autocast if ``bf16``."""
    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = torch.nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return step


def alternating_rates(steps: dict, batch_size: int, warmup: int, timed: int) -> dict[str, float]:
    """Images/s of each of several training-step functions, taken in turn step by step.

    ``steps`` maps a name to a function that takes one training step of ``batch_size``
    images; after ``warmup`` rounds, ``timed`` rounds are timed and each function's median
    step time gives its rate. Alternating, rather than timing one variant after the other,
    lets machine noise hit all of them alike (the A/B comparisons of ``benchmarks/``).
    """
    times: dict[str, list[float]] = {name: [] for name in steps}
    for index in range(warmup + timed):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            if index >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: batch_size / statistics.median(values) for name, values in times.items()}


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _StepTimer(Callback):
    """Times the trainer from step ``warmup`` to step ``warmup + steps``, then stops it."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.start, self.seconds = warmup, steps, None, None

    def on_step_end(self, trainer) -> None:
        if trainer.step == self.warmup:
            _synchronize(trainer.device)
            self.start = time.perf_counter()
        elif trainer.step == self.warmup + self.steps:
            _synchronize(trainer.device)
            self.seconds = time.perf_counter() - self.start
            raise KeyboardInterrupt  # the trainer saves `last` in the scratch folder and stops


def _bench_config(config: TrainConfig) -> TrainConfig:
    """The recipe as the trainer will time it: no validation split to evaluate in the middle
    of the timed steps, one epoch, and no milestone outside it."""
    return dataclasses.replace(config, val_fraction=0.0, epochs=1, milestones=[], warmup_epochs=0.0,
                               tensorboard=False)


def trainer_rate(config: TrainConfig, warmup: int, steps: int) -> tuple[float, int]:
    """Images per second of :class:`Trainer` on ``config`` over ``steps`` steps after ``warmup``,
    and how many BN -> ReLU chains the trainer really ran fused."""
    timer = _StepTimer(warmup, steps)
    with tempfile.TemporaryDirectory(prefix="cnnlab-bench-") as scratch:
        # The trainer's "interrupted, continue with --resume" lines are about the scratch folder: not shown.
        trainer = Trainer(_bench_config(config), Path(scratch) / "run", quiet=True, callbacks=[timer],
                          console=Console(file=io.StringIO()))
        if warmup + steps > trainer.steps_per_epoch:
            raise CnnlabError(f"{warmup} warm-up + {steps} timed steps do not fit in one epoch of "
                              f"{trainer.steps_per_epoch} steps; ask for fewer --steps")
        with contextlib.suppress(KeyboardInterrupt):
            trainer.fit()
    if timer.seconds is None:
        raise CnnlabError("the trainer stopped before the timed steps ended")
    return steps * config.batch_size / timer.seconds, trainer.fused


def _model_and_optimizer(config: TrainConfig, num_classes: int, in_chans: int, device: torch.device):
    model = build_model(config, num_classes=num_classes, in_chans=in_chans).train().to(device)
    optimizer = build_optimizer(model, config.optimizer, config.lr, momentum=config.momentum,
                                nesterov=config.nesterov, weight_decay=config.weight_decay, betas=config.betas,
                                no_decay_norm_and_bias=config.no_decay_norm_and_bias,
                                norm_bias_lr_scale=config.norm_bias_lr_scale)
    return model, optimizer


def _step(forward, optimizer, images, targets, config: TrainConfig, autocast) -> None:
    with autocast():
        outputs = forward(images)
    loss, _ = classification_loss(outputs, targets, label_smoothing=config.label_smoothing,
                                  aux_weight=config.aux_loss_weight)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def synthetic_rate(config: TrainConfig, image_shape: tuple[int, int, int], num_classes: int, warmup: int,
                   steps: int) -> tuple[float, int]:
    """Images per second of the model alone on one batch, in the trainer's precision, memory
    format and compile mode for the device: the ceiling of any data path; and how many
    BN -> ReLU chains it fused (as the trainer would)."""
    device = resolve_device(config.device)
    precision = resolve_precision(device, config.precision, config.channels_last)
    model, optimizer = _model_and_optimizer(config, num_classes, image_shape[0], device)
    images = torch.randn(config.batch_size, *image_shape, device=device)
    targets = torch.randint(0, num_classes, (config.batch_size,), device=device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    fused = fuse_for_training(model, config.fuse_bn_relu, device, precision, config.compile)  # as the trainer does
    forward = model
    if config.compile:
        forward = torch.compile(model, mode=config.compile if isinstance(config.compile, str) else "default")
    autocast = lambda: autocast_context(device, precision)  # noqa: E731
    for _ in range(warmup):
        _step(forward, optimizer, images, targets, config, autocast)
    _synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        _step(forward, optimizer, images, targets, config, autocast)
    _synchronize(device)
    return steps * config.batch_size / (time.perf_counter() - start), fused


class _PILImages(torch.utils.data.Dataset):
    """One PIL image and its label at a time from uint8 arrays, as torchvision's CIFAR10 and MNIST serve them."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        # N x H x W x C numpy array, torchvision's layout for CIFAR-10.
        self.images = images.permute(0, 2, 3, 1).contiguous().numpy()
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        from PIL import Image

        array = self.images[index]
        image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
        return self.transform(image), self.labels[index]


def _per_sample_pipeline(pipeline: AugmentPipeline) -> AugmentPipeline:
    """The recipe's augmentation with a random flip for the alternating one (which has no per-sample form)."""
    steps = [HorizontalFlip(0.5) if aug.keyed_by_sample else aug for aug in pipeline.augmentations]
    return AugmentPipeline(steps, num_classes=pipeline.num_classes)


def usual_rate(config: TrainConfig, train_set, warmup: int, steps: int, workers: int) -> float:
    """Images per second of the usual loop: per-sample PIL images, ``transforms.v2``, a
    ``DataLoader`` with ``workers`` processes, an fp32 channels-first step."""
    device = resolve_device(config.device)
    if not hasattr(train_set, "images"):
        raise CnnlabError("the usual loop is measured on an in-memory data set")
    pipeline = _per_sample_pipeline(parse_augment(config.augment, num_classes=len(train_set.classes)))
    transform = pipeline.to_v2(train=True, mean=config.mean, std=config.std)
    dataset = _PILImages(train_set.images, train_set.labels, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, shuffle=True, num_workers=workers,
                                         drop_last=True, pin_memory=device.type == "cuda",
                                         persistent_workers=False)
    if warmup + steps > len(loader):
        raise CnnlabError(f"{warmup} warm-up + {steps} timed steps do not fit in one epoch of {len(loader)} "
                          "steps; ask for fewer --steps")
    model, optimizer = _model_and_optimizer(config, len(train_set.classes), train_set.images.shape[1], device)
    start = None
    for step, (images, targets) in enumerate(loader):
        if step == warmup:
            _synchronize(device)
            start = time.perf_counter()
        elif step == warmup + steps:
            _synchronize(device)
            return steps * config.batch_size / (time.perf_counter() - start)
        images, targets = images.to(device, non_blocking=True), targets.to(device, non_blocking=True)
        if pipeline.changes_targets:
            images, targets = pipeline.mix(images, targets, num_classes=len(train_set.classes))
        _step(model, optimizer, images, targets, config, contextlib.nullcontext)
    raise CnnlabError("the usual loop ran out of batches")  # unreachable: the epoch was checked above


def bench(config: TrainConfig, *, warmup: int = 5, steps: int = 30, workers: int = 2, usual: bool = True) -> dict:
    """Time the three loops on ``config``; return their images per second and the two ratios."""
    if warmup < 1 or steps < 1:
        raise CnnlabError(f"warm-up and timed steps must be at least 1, got {warmup} and {steps}")
    if config.cpu_threads is not None:
        torch.set_num_threads(config.cpu_threads)
    config = config.validate()
    device = resolve_device(config.device)
    precision = resolve_precision(device, config.precision, config.channels_last)
    train_set = load_dataset(config.data, "train", root=config.data_root, download=config.download, val_fraction=0,
                             image_size=config.image_size, in_memory=config.in_memory)
    if config.mean is None:
        from ..data import channel_stats

        mean, std = channel_stats(train_set)
        config = dataclasses.replace(config, mean=list(mean), std=list(std))
    image_shape = tuple(train_set.images.shape[1:]) if hasattr(train_set, "images") else None
    if image_shape is None:
        raise CnnlabError("cnnlab bench measures in-memory data sets; this one streams from disk")
    trainer, trainer_fused = trainer_rate(config, warmup, steps)
    synthetic, synthetic_fused = synthetic_rate(config, image_shape, len(train_set.classes), warmup, steps)
    result = {
        "model": config.model, "data": train_set.name, "batch_size": config.batch_size, "device": str(device),
        "precision": precision.reason, "threads": torch.get_num_threads(), "compile": config.compile,
        # The setting, and what it did: "auto" fuses only where the fused kernel is the faster path
        # (cnnlab.train.fusion), so a figure says whether its step really ran fused.
        "fuse_bn_relu": config.fuse_bn_relu,
        "fused_bn_relu_chains": {"trainer": trainer_fused, "synthetic": synthetic_fused},
        "warmup_steps": warmup, "timed_steps": steps, "workers": workers,
        "trainer": trainer, "synthetic": synthetic,
        "usual": usual_rate(config, train_set, warmup, steps, workers) if usual else None,
    }
    result["trainer_over_synthetic"] = result["trainer"] / result["synthetic"]
    result["trainer_over_usual"] = result["trainer"] / result["usual"] if usual else None
    return result

