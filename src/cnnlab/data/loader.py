"""The two loaders, with one interface: ``len(loader)`` batches, and ``loader.epoch(e, skip)``.

- :class:`InMemoryLoader`, airbench's data path: decode once, keep the uint8 tensor on the
  training device, and per epoch draw a seeded permutation, slice batches, augment them as
  whole tensors, convert and normalise. No worker processes, no per-image Python, no
  host-to-device copies per step.
- :class:`StreamingLoader`, for image folders too large for memory: ``DataLoader`` workers
  decode files and run the per-sample ``transforms.v2`` twins of the augmentation; label
  mixing then runs on the collated batch on the device.

Both draw epoch ``e``'s order and augmentation from :func:`epoch_generator` (a function of
the seed and the epoch only), so ``epoch(e, skip=b)`` replays batches ``b, b+1, ...`` of epoch
``e`` exactly as an uninterrupted run saw them: the exact mid-epoch resume. The order is one
permutation per epoch, the seam where data-parallel training splits it by rank: with
``world_size=N``, process ``rank`` gets samples ``rank, rank+N, ...`` of each batch of the
single-process order (the batch size stays the global one), so N processes with B/N images
each see exactly the batch one process with B images sees.
:func:`build_loader` picks the loader a data set needs, for training or for evaluation.
"""
from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import CnnlabError
from .augment import AugmentPipeline, parse_augment

__all__ = ["InMemoryLoader", "StreamingLoader", "build_loader", "epoch_generator"]

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
    ``transform`` runs last, on the normalised batch (evaluation's resize and centre crop).
    ``len(loader)`` is the number of batches per epoch. ``epoch(e, skip)`` runs epoch ``e``
    from batch ``skip`` on; iterating runs the current epoch and advances it by one, and
    ``set_epoch(e)`` chooses it (same order and the same augmentation as any earlier run of
    epoch ``e`` with this seed).

    ``rank``/``world_size`` shard it for data-parallel training: ``batch_size`` stays the
    global batch, and each batch (augmented whole, so every image gets the draws it gets in
    a single process) gives this process its images ``rank, rank + world_size, ...``. With
    several processes a last batch of fewer than ``world_size`` images is left out.
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
        transform: Callable[[Tensor], Tensor] | None = None,
        rank: int = 0,
        world_size: int = 1,
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
        _check_shard(batch_size, rank, world_size)
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
        self.transform = transform
        self.rank, self.world_size = int(rank), int(world_size)
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
        return _batch_count(self.images.shape[0], self.batch_size, self.drop_last, self.world_size)

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

    def epoch_batches(self, epoch: int, skip: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``epoch`` from batch ``skip`` on.

        Skipped batches still run their augmentation, so the random stream of the rest is
        the one an uninterrupted epoch would have drawn (exact mid-epoch resume)."""
        for index, batch in enumerate(self._batches(epoch)):
            if index >= skip:
                yield batch

    def _batches(self, epoch: int) -> Iterator[tuple[Tensor, Tensor]]:
        order = self.order(epoch)
        generator = epoch_generator(self.seed, epoch, stream=1)
        stop = _batch_count(order.shape[0], self.batch_size, self.drop_last, self.world_size) * self.batch_size
        mixes = self.augment is not None and self.augment.changes_targets
        shard = slice(self.rank, None, self.world_size)
        for start in range(0, stop, self.batch_size):
            index = order[start : start + self.batch_size]
            images = self.images.index_select(0, index)
            targets = self.labels.index_select(0, index)
            if self.augment is not None:
                images = self.augment.augment_images(images, generator, indices=index, epoch=epoch, seed=self.seed)
            if self.world_size > 1 and not mixes:
                images, targets = images[shard], targets[shard]
            images = self._convert(images)
            if mixes:
                images, targets = self.augment.mix(images, targets, generator, self.num_classes)
                if self.world_size > 1:  # mixing pairs images across the whole batch: shard after it
                    images, targets = images[shard], targets[shard]
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            if self.transform is not None:
                images = self.transform(images)
            yield images, targets

    def __repr__(self) -> str:
        n, c, h, w = self.images.shape
        aug = self.augment.spec if self.augment is not None else "none"
        return (
            f"InMemoryLoader({n} images {c}x{h}x{w} on {self.device}, batch_size={self.batch_size}, "
            f"shuffle={self.shuffle}, drop_last={self.drop_last}, augment={aug!r}, seed={self.seed})"
        )


def _check_shard(batch_size: int, rank: int, world_size: int) -> None:
    if int(world_size) != world_size or world_size < 1 or not 0 <= rank < world_size:
        raise CnnlabError(f"rank must lie in [0, world_size) and world_size be at least 1, got rank {rank} "
                          f"of {world_size}")
    if batch_size % world_size:
        raise CnnlabError(f"the global batch of {batch_size} images does not split evenly into {world_size} "
                          f"processes; choose a batch size divisible by {world_size}")


def _batch_count(size: int, batch_size: int, drop_last: bool, world_size: int) -> int:
    """Batches per epoch; a last batch too small to give each of ``world_size`` processes an image is dropped."""
    full, rest = divmod(size, batch_size)
    return full + (1 if rest and not drop_last and rest >= world_size else 0)


class _EpochOrder(torch.utils.data.Sampler):
    """The in-memory loader's seeded per-epoch order, from an offset (for mid-epoch resume); with
    ``world_size`` processes, this process's share of each global batch of ``batch_size``
    (DistributedSampler's interleaving, applied batch by batch)."""

    def __init__(self, size: int, seed: int, shuffle: bool, batch_size: int = 1, drop_last: bool = False,
                 rank: int = 0, world_size: int = 1):
        self.size, self.seed, self.shuffle = size, seed, shuffle
        self.batch_size, self.drop_last, self.rank, self.world_size = batch_size, drop_last, rank, world_size
        self.epoch, self.start = 0, 0

    def _indices(self) -> Tensor:
        if self.shuffle:
            order = torch.randperm(self.size, generator=epoch_generator(self.seed, self.epoch, stream=0))
        else:
            order = torch.arange(self.size)
        if self.world_size > 1:
            stop = _batch_count(self.size, self.batch_size, self.drop_last, self.world_size) * self.batch_size
            order = order[self.start:stop][self.rank::self.world_size]
        else:
            order = order[self.start:]
        return order

    def __iter__(self):
        return iter(self._indices().tolist())

    def __len__(self) -> int:
        return len(self._indices())


class StreamingLoader:
    """Iterate over a streamed data set (e.g. a :class:`~cnnlab.data.StreamingImageDataset`) in batches.

    ``DataLoader`` workers decode the files and run ``transform`` (the per-sample
    ``transforms.v2`` form of the augmentation, ending in normalisation; it becomes the data
    set's ``transform``); the collated batch moves to ``device``, where ``augment``'s label
    mixing (mixup, cutmix, label smoothing) runs as in the in-memory loader. Same interface as
    :class:`InMemoryLoader`: ``len(loader)`` batches, ``epoch_batches(e, skip)``. With
    ``rank``/``world_size`` each process reads its share of every global batch, as the
    in-memory loader gives it; the workers' random draws and the label mixing (within the
    share) are then not those of a single process.
    """

    def __init__(self, dataset, batch_size: int, *, device: str | torch.device = "cpu", seed: int = 0,
                 shuffle: bool = True, drop_last: bool = False, num_workers: int = 0,
                 transform: Callable | None = None, augment: AugmentPipeline | None = None,
                 channels_last: bool = False, num_classes: int | None = None, rank: int = 0, world_size: int = 1):
        dataset.transform = transform
        _check_shard(batch_size, rank, world_size)
        self.sampler = _EpochOrder(len(dataset), seed, shuffle, batch_size, drop_last, rank, world_size)
        self.batch_size, self.drop_last, self.world_size = int(batch_size), drop_last, int(world_size)
        self.device, self.seed = torch.device(device), int(seed)
        self.augment = augment if augment is not None and augment.changes_targets else None
        self.channels_last, self.num_classes = channels_last, num_classes
        self.size = len(dataset)
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=self.batch_size // self.world_size, sampler=self.sampler, num_workers=num_workers,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda", persistent_workers=False)

    def __len__(self) -> int:
        return _batch_count(self.size, self.batch_size, self.drop_last, self.world_size)

    def epoch_batches(self, epoch: int, skip: int = 0) -> Iterator[tuple[Tensor, Tensor]]:
        """The batches of ``epoch`` from batch ``skip`` on (the skipped files are not read)."""
        self.sampler.epoch, self.sampler.start = epoch, skip * self.batch_size
        generator = epoch_generator(self.seed, epoch, stream=1)
        for images, targets in self.loader:
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            if self.augment is not None:
                images, targets = self.augment.mix(images, targets, generator, self.num_classes)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            yield images, targets


def build_loader(dataset, batch_size: int, *, train: bool, augment: AugmentPipeline, mean, std,
                 device: str | torch.device = "cpu", seed: int = 0, drop_last: bool = False, num_workers: int = 0,
                 channels_last: bool = False, rank: int = 0,
                 world_size: int = 1) -> "InMemoryLoader | StreamingLoader":
    """The loader of ``dataset``: in memory when it is (it has an ``images`` tensor), else streamed.

    ``train=True``: shuffled by ``seed``, augmented by ``augment``. ``train=False`` (validation,
    test, a saved run's evaluation): the stored order, with only the test-time form of the
    augmentation (resize and centre crop for the size-changing ones), so the trainer and
    ``cnnlab eval`` see the same evaluation batches. ``rank``/``world_size`` shard a training
    loader for data-parallel training (see :class:`InMemoryLoader`)."""
    num_classes = len(dataset.classes) if getattr(dataset, "classes", None) is not None else None
    if hasattr(dataset, "images"):
        if train:
            return InMemoryLoader.from_dataset(dataset, batch_size, shuffle=True, drop_last=drop_last,
                                               augment=augment, device=device, seed=seed, mean=mean, std=std,
                                               channels_last=channels_last, rank=rank, world_size=world_size)
        # Size-changing augmentations (scale + crop) have a test-time form: resize and centre crop.
        transform = augment.eval_transform if augment.image_augmentations else None
        return InMemoryLoader.from_dataset(dataset, batch_size, shuffle=False, device=device, mean=mean, std=std,
                                           channels_last=channels_last, transform=transform)
    return StreamingLoader(dataset, batch_size, device=device, seed=seed if train else 0, shuffle=train,
                           drop_last=drop_last if train else False, num_workers=num_workers,
                           transform=augment.to_v2(train=train, mean=mean, std=std),
                           augment=augment if train else None, channels_last=channels_last,
                           num_classes=num_classes, rank=rank if train else 0, world_size=world_size if train else 1)
