"""In-memory loader: the whole data set as one uint8 tensor on the device, augmented in batches.

airbench's data path: decode once, keep the uint8 tensor on the training device, and per
epoch draw a seeded permutation, slice batches, augment them as whole tensors, convert and
normalise. No worker processes, no per-image Python, no host-to-device copies per step.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import CnnlabError
from .augment import AugmentPipeline, parse_augment

__all__ = ["InMemoryLoader", "epoch_generator"]

# Mixes the run seed and the epoch into one generator seed (golden-ratio increment, as in
# splitmix64), so that nearby seeds and epochs do not give overlapping streams.
_GOLDEN = 0x9E3779B97F4A7C15
_MASK63 = (1 << 63) - 1


def epoch_generator(seed: int, epoch: int, stream: int = 0, device: str | torch.device = "cpu") -> torch.Generator:
    """The generator of one epoch: a function of (seed, epoch, stream) only, so epoch ``e``
    can be replayed without running epochs 0..e-1 (reproducible resume). The loader draws
    its order from stream 0 and the augmentation from stream 1."""
    mixed = (int(seed) * _GOLDEN + (int(epoch) + 1) * 0xBF58476D1CE4E5B9 + int(stream) * 0x94D049BB133111EB) & _MASK63
    mixed ^= mixed >> 31
    return torch.Generator(device=device).manual_seed(mixed)


def _channel_values(values: Sequence[float] | Tensor | None, channels: int, what: str) -> Tensor | None:
    if values is None:
        return None
    t = torch.as_tensor(values, dtype=torch.float64).flatten()
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise CnnlabError(f"{what} has {t.numel()} values but the images have {channels} channels")
    return t


class InMemoryLoader:
    """Iterate over an in-memory data set in augmented, normalised batches.

    ``images`` is an ``N x C x H x W`` uint8 tensor (pixel values 0..255) or a float tensor
    already in [0, 1]; it is moved to ``device`` once. Each epoch draws a permutation from
    ``epoch_generator(seed, epoch)`` (``shuffle=False``: the stored order), slices batches,
    runs the image augmentations on the uint8 batch (flip, crop and cutout move bytes, so
    they run 4x less memory than on floats), converts to ``dtype`` and normalises with
    ``mean``/``std`` (in [0, 1] units, e.g. CIFAR-10's (0.4914, 0.4822, 0.4465)), then runs
    mixup/cutmix/label smoothing. It yields ``(images, targets)``: targets are the labels,
    or soft targets (``N x num_classes``) when the augmentation mixes labels.

    ``augment`` is an :class:`AugmentPipeline` or a spec string for :func:`parse_augment`.
    ``len(loader)`` is the number of batches per epoch. Iterating runs the current epoch
    and advances it by one; ``set_epoch(e)`` chooses the epoch (same order and the same
    augmentation as any earlier run of epoch ``e`` with this seed).
    """

    def __init__(
        self,
        images: Tensor | np.ndarray,
        labels: Tensor | np.ndarray | Sequence[int],
        batch_size: int,
        *,
        shuffle: bool = True,
        drop_last: bool = False,
        augment: AugmentPipeline | str | None = None,
        device: str | torch.device = "cpu",
        seed: int = 0,
        mean: Sequence[float] | Tensor | None = None,
        std: Sequence[float] | Tensor | None = None,
        channels_last: bool = False,
        dtype: torch.dtype = torch.float32,
        num_classes: int | None = None,
    ):
        images = torch.as_tensor(images)
        labels = torch.as_tensor(labels)
        if images.dim() != 4:
            raise CnnlabError(f"images must be N x C x H x W, got shape {tuple(images.shape)}")
        if images.dtype != torch.uint8 and not images.is_floating_point():
            raise CnnlabError(f"images must be uint8 (0..255) or float (0..1), got {images.dtype}")
        if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
            raise CnnlabError(
                f"labels must be one class index per image: got shape {tuple(labels.shape)} "
                f"for {images.shape[0]} images"
            )
        if int(batch_size) != batch_size or batch_size <= 0:
            raise CnnlabError(f"batch_size must be a positive integer, got {batch_size!r}")
        if not dtype.is_floating_point:
            raise CnnlabError(f"dtype must be a floating-point type, got {dtype}")
        self.device = torch.device(device)
        self.images = images.to(self.device)
        self.labels = labels.to(self.device, torch.long)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.augment = parse_augment(augment) if augment is not None else None
        self.seed = int(seed)
        self.channels_last = channels_last
        self.dtype = dtype
        if num_classes is None and self.augment is not None and self.augment.changes_targets:
            num_classes = self.augment.num_classes
            if num_classes is None and len(self.labels):
                num_classes = int(self.labels.max()) + 1
        self.num_classes = num_classes
        self.epoch = 0

        channels = images.shape[1]
        mean_t = _channel_values(mean, channels, "mean")
        std_t = _channel_values(std, channels, "std")
        if std_t is not None and bool((std_t <= 0).any()):
            raise CnnlabError(f"std must be positive, got {std_t.tolist()}")
        # Conversion and normalisation fold into one multiply-add: x * scale + shift.
        to_unit = 1.0 / 255.0 if images.dtype == torch.uint8 else 1.0
        scale = torch.full((channels,), to_unit, dtype=torch.float64)
        shift = torch.zeros(channels, dtype=torch.float64)
        if std_t is not None:
            scale = scale / std_t
        if mean_t is not None:
            shift = -mean_t / (std_t if std_t is not None else 1.0)
        self._scale = scale.view(1, channels, 1, 1).to(self.device, dtype)
        self._shift = shift.view(1, channels, 1, 1).to(self.device, dtype)
        self._normalise_shift = mean_t is not None

    @classmethod
    def from_dataset(cls, dataset, batch_size: int, **kwargs) -> "InMemoryLoader":
        """A loader over any in-memory data set with ``images`` (uint8 N x C x H x W) and
        ``labels`` attributes, e.g. ``load_dataset("cifar10", "train")``; ``num_classes``
        defaults to ``len(dataset.classes)`` when it has them."""
        images = getattr(dataset, "images", None)
        labels = getattr(dataset, "labels", None)
        if images is None or labels is None:
            raise CnnlabError(
                f"{type(dataset).__name__} is not held in memory (no images/labels tensors); "
                "stream it through a DataLoader with v2_transform(spec) instead"
            )
        classes = getattr(dataset, "classes", None)
        if classes is not None and "num_classes" not in kwargs:
            kwargs["num_classes"] = len(classes)
        return cls(images, labels, batch_size, **kwargs)

    def __len__(self) -> int:
        n = self.images.shape[0]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration run epoch ``epoch`` (for resuming a run)."""
        self.epoch = int(epoch)

    def order(self, epoch: int) -> Tensor:
        """The sample order of ``epoch`` (a permutation when shuffling)."""
        n = self.images.shape[0]
        if not self.shuffle:
            return torch.arange(n, device=self.device)
        return torch.randperm(n, generator=epoch_generator(self.seed, epoch, stream=0)).to(self.device)

    def _convert(self, batch: Tensor) -> Tensor:
        x = batch.to(self.dtype).mul_(self._scale)
        if self._normalise_shift:
            x = x.add_(self._shift)
        return x

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        return self._batches(epoch)

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.order(epoch)
        generator = epoch_generator(self.seed, epoch, stream=1)
        n = order.shape[0]
        stop = n - n % self.batch_size if self.drop_last else n
        for start in range(0, stop, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)
            targets = self.labels.index_select(0, index)
            if self.augment is not None:
                images = self.augment.augment_images(images, generator)
            images = self._convert(images)
            if self.augment is not None and self.augment.changes_targets:
                images, targets = self.augment.mix(images, targets, generator, self.num_classes)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, targets

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        aug = self.augment.spec if self.augment is not None else "none"
        return (
            f"InMemoryLoader({n} images {c}x{h}x{w} on {self.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, augment={aug!r}, seed={self.seed})"
        )
