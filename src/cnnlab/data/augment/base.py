"""The two kinds of augmentation, and the small helpers the augmentation modules share.

An :class:`Augmentation` changes images only; a :class:`TargetAugmentation` (mixup, cutmix,
label smoothing) also turns the labels into soft targets. Both know their test-time
behaviour and the spec token that :func:`~cnnlab.data.augment.parse_augment` reads back.
The helpers: writing a spec argument back (``_fmt``), checking a probability, and the
input and output conversions of the per-sample v2 modules.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from ...errors import CnnlabError


class Augmentation:
    """An image augmentation: batched training behaviour, test-time behaviour and its
    per-sample torchvision v2 equivalent. Subclasses set ``name`` (the spec word)."""

    name: str = ""
    #: True for augmentations whose choice for an image depends on which image it is and
    #: on the epoch (the alternating flip), not on fresh random draws: the loader then
    #: calls :meth:`by_sample` with the batch's data-set indices.
    keyed_by_sample: bool = False

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training behaviour on a batch N x C x H x W (dtype kept), random draws from ``generator``."""
        raise NotImplementedError

    def by_sample(self, images: Tensor, indices: Tensor, epoch: int, seed: int) -> Tensor:
        """Training behaviour as a function of each image's data-set index, the epoch and the
        run's seed (only for ``keyed_by_sample`` augmentations)."""
        raise NotImplementedError

    def eval_transform(self, images: Tensor) -> Tensor:
        """Test-time behaviour: identity unless the augmentation changes the image size."""
        return images

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        """Per-sample torchvision v2 transforms with the same options."""
        raise NotImplementedError

    def spec(self) -> str:
        """The spec token that :func:`parse_augment` turns back into this augmentation."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self.spec()}>"


class TargetAugmentation:
    """An augmentation that also changes the labels: returns ``(images, soft_targets)``.

    Targets come in as class indices (``N``, then ``num_classes`` is needed) or soft targets
    (``N x K``); they leave as soft targets whose rows sum to 1. At test time it is the
    identity on images and leaves labels alone.
    """

    name: str = ""

    def __call__(self, images: Tensor, targets: Tensor, generator: torch.Generator | None = None,
                 num_classes: int | None = None) -> tuple[Tensor, Tensor]:
        """Training behaviour: ``(images, soft_targets)``, random draws from ``generator``."""
        raise NotImplementedError

    def eval_transform(self, images: Tensor) -> Tensor:
        """Test-time behaviour: the identity."""
        return images

    def spec(self) -> str:
        """The spec token that :func:`parse_augment` turns back into this augmentation."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}<{self.spec()}>"


def _fmt(value: Any) -> str:
    """A spec argument as written back: floats without trailing zeros."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _check_probability(p: float, what: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise CnnlabError(f"{what} probability p must lie in [0, 1], got {p}")
    return p


# The per-sample (v2) modules take what a v2 pipeline hands them: a tensor, a
# tv_tensors.Image (given back as one, so later v2 steps still see an image) or a PIL image.


def _as_image_tensor(image: Any) -> Tensor:
    if isinstance(image, Tensor):
        return image
    from torchvision.transforms.v2 import functional as TF

    return TF.pil_to_tensor(image)


def _rewrap(result: Tensor, like: Any) -> Tensor:
    from torchvision import tv_tensors

    if isinstance(like, tv_tensors.Image):
        return tv_tensors.wrap(result, like=like)
    return result
