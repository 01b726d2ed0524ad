"""Per-channel statistics for input normalisation (lecture 7: "subtract the per-channel mean, divide by the std")."""
from __future__ import annotations

import math
from fractions import Fraction

import torch

from ..errors import CnnlabError

# Elements per chunk when summing a uint8 tensor in int64 (128 MB of int64 at most).
_CHUNK_ELEMENTS = 1 << 24


def channel_stats(dataset) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation on a 0-1 scale: ``((mean_c, ...), (std_c, ...))``.

    Compute them on the training split only, and use them to normalise every split.
    ``dataset`` is an :class:`ArrayDataset`, a :class:`StreamingImageDataset`, a uint8 or
    float ``N x C x H x W`` tensor (float taken as already 0-1), or any sequence whose items
    are images or ``(image, label)`` pairs. The standard deviation is the population one
    (numpy's default, ``ddof=0``) over all pixels of all images. For uint8 data the sums of
    values and squares are exact integers, so no precision is lost however many images
    there are; float data is accumulated in float64. A dataset's ``transform`` is not applied.
    """
    images = getattr(dataset, "images", None)
    if isinstance(dataset, torch.Tensor):
        images = dataset
    if isinstance(images, torch.Tensor):
        return _tensor_stats(images)
    count = len(dataset)
    if count == 0:
        raise CnnlabError("cannot compute channel statistics of an empty data set")
    load = getattr(dataset, "load_image", None)
    sums = squares = None
    pixels = 0
    exact = True
    for index in range(count):
        if load is not None:
            image = load(index)
        else:
            item = dataset[index]
            image = item[0] if isinstance(item, (tuple, list)) else item
        if not isinstance(image, torch.Tensor) or image.ndim != 3:
            raise CnnlabError("channel_stats needs C x H x W image tensors; set no transform, or pass the images")
        if image.dtype == torch.uint8:
            values = image.reshape(image.shape[0], -1).to(torch.int64)
        else:
            exact = False
            values = image.reshape(image.shape[0], -1).to(torch.float64) * 255.0
        s, q = values.sum(dim=1), (values * values).sum(dim=1)
        if sums is None:
            sums, squares = s, q
        elif s.shape != sums.shape:
            raise CnnlabError(f"image {index} has {len(s)} channels, earlier ones {len(sums)}")
        else:
            sums, squares = sums + s, squares + q
        pixels += values.shape[1]
    return _finish(sums, squares, pixels, exact)


def _tensor_stats(images: torch.Tensor):
    if images.ndim != 4 or images.shape[0] == 0:
        raise CnnlabError(f"channel_stats needs a non-empty N x C x H x W tensor, got shape {tuple(images.shape)}")
    channels = images.shape[1]
    pixels = images.shape[0] * images.shape[2] * images.shape[3]
    step = max(1, _CHUNK_ELEMENTS // images[0].numel())
    if images.dtype == torch.uint8:
        # A histogram of the 256 values per channel gives the exact sums of values and squares,
        # and is faster than summing the values in int64.
        histogram = torch.zeros(channels, 256, dtype=torch.int64)
        for start in range(0, images.shape[0], step):
            chunk = images[start:start + step]
            for c in range(channels):
                histogram[c] += torch.bincount(chunk[:, c].reshape(-1), minlength=256)
        values = torch.arange(256, dtype=torch.int64)
        return _finish((histogram * values).sum(dim=1), (histogram * values * values).sum(dim=1), pixels, True)
    sums = torch.zeros(channels, dtype=torch.float64)
    squares = torch.zeros(channels, dtype=torch.float64)
    for start in range(0, images.shape[0], step):
        chunk = images[start:start + step].to(torch.float64) * 255.0
        sums += chunk.sum(dim=(0, 2, 3))
        squares += (chunk * chunk).sum(dim=(0, 2, 3))
    return _finish(sums, squares, pixels, False)


def _finish(sums: torch.Tensor, squares: torch.Tensor, pixels: int, exact: bool):
    means, stds = [], []
    for s, q in zip(sums.tolist(), squares.tolist()):
        if exact:
            # mean = S/n, var = Q/n - (S/n)^2 computed in exact rationals: no cancellation.
            mean = Fraction(s, pixels)
            variance = Fraction(q, pixels) - mean * mean
            means.append(float(mean) / 255.0)
            stds.append(math.sqrt(float(variance)) / 255.0)
        else:
            mean = s / pixels
            means.append(mean / 255.0)
            stds.append(math.sqrt(max(0.0, q / pixels - mean * mean)) / 255.0)
    return tuple(means), tuple(stds)


def describe_dataset(spec, split: str = "train", **load_options) -> dict:
    """What ``cnnlab data stats`` prints: size, classes, image shape and per-channel mean/std of a split.

    ``load_options`` go to :func:`load_dataset` (``root``, ``image_size``, ``val_fraction``, ...).
    """
    from .datasets import load_dataset

    dataset = load_dataset(spec, split, **load_options)
    mean, std = channel_stats(dataset)
    images = getattr(dataset, "images", None)
    counts = dataset.class_counts()
    return {
        "name": dataset.name,
        "source": dataset.source,
        "split": split,
        "num_images": len(dataset),
        "num_classes": len(dataset.classes),
        "classes": dataset.classes,
        "class_counts": dict(zip(dataset.classes, counts)),
        "image_shape": list(images.shape[1:]) if images is not None else None,
        "mean": list(mean),
        "std": list(std),
        "scale": "0-1 (uint8 value / 255)",
        "skipped_files": len(dataset.skipped),
        "cache": getattr(dataset, "cache_status", "off"),
    }


INIT_SAMPLE_PIXELS = 5000 * 32 * 32  # 5,000 CIFAR-sized images; fewer when they are larger


def init_sample(dataset, mean, std, pixels: int = INIT_SAMPLE_PIXELS) -> torch.Tensor:
    """Training images (before augmentation), normalised: what a model's ``init_from_data`` sees
    (airbench's patch whitening).

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
