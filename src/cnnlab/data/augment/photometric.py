"""Colour jitter and cutout: the image augmentations that change pixel values, not positions.

Each in its three forms, as in :mod:`.geometric`; both are the identity at test time.
:class:`PerSampleCutout` is cutout's per-sample v2 transform (torchvision's RandomErasing
draws its boxes differently).
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor, nn

from ...errors import CnnlabError
from ._random import _bernoulli, _randint, _uniform
from .base import Augmentation, _as_image_tensor, _check_probability, _fmt, _rewrap
from .ops import _check_batch, _max_value, _restore_dtype

__all__ = ["ColorJitter", "Cutout", "PerSampleCutout"]

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


def _grey(x: Tensor) -> Tensor:
    """Luma of an N x 3 x H x W float batch, N x 1 x H x W."""
    r, g, b = x.unbind(1)
    return (r * _LUMA[0]).add_(g, alpha=_LUMA[1]).add_(b, alpha=_LUMA[2]).unsqueeze(1)


class ColorJitter(Augmentation):
    """Random brightness, contrast and saturation (AlexNet-era colour augmentation).

    Each image gets its own factors, uniform in [max(0, 1 - x), 1 + x], applied in the fixed
    order brightness, contrast, saturation with torchvision's formulas (blend with black,
    with the mean grey level, with the grey image). Floats are taken to be in [0, 1].
    """

    name = "jitter"

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0):
        for label, value in (("brightness", brightness), ("contrast", contrast), ("saturation", saturation)):
            if value < 0:
                raise CnnlabError(f"jitter {label} must be non-negative, got {value}")
        self.brightness, self.contrast, self.saturation = float(brightness), float(contrast), float(saturation)

    def _factors(self, n: int, amount: float, generator, device) -> Tensor:
        return _uniform(n, generator, device, max(0.0, 1.0 - amount), 1.0 + amount).float().view(n, 1, 1, 1)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "jitter")
        n, c = images.shape[:2]
        if not (self.brightness or self.contrast or self.saturation) or n == 0:
            return images
        bound = _max_value(images.dtype)
        # A private float copy, so that the blends below can work in place.
        x = images.to(torch.float32, copy=True)
        device = images.device
        if self.brightness:
            x.mul_(self._factors(n, self.brightness, generator, device)).clamp_(0, bound)
        if self.contrast:
            mean = (_grey(x) if c == 3 else x).mean(dim=(1, 2, 3), keepdim=True)
            f = self._factors(n, self.contrast, generator, device)
            x.mul_(f).add_(mean * (1 - f)).clamp_(0, bound)
        if self.saturation and c == 3:
            grey = _grey(x)
            f = self._factors(n, self.saturation, generator, device)
            x.mul_(f).add_(grey.mul_(1 - f)).clamp_(0, bound)
        return _restore_dtype(x, images.dtype)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        from torchvision.transforms import v2

        if not train:
            return []
        # One ColorJitter per property keeps the batched version's fixed order
        # (a single v2.ColorJitter shuffles the order per image).
        out: list[Callable] = []
        if self.brightness:
            out.append(v2.ColorJitter(brightness=self.brightness))
        if self.contrast:
            out.append(v2.ColorJitter(contrast=self.contrast))
        if self.saturation:
            out.append(v2.ColorJitter(saturation=self.saturation))
        return out

    def spec(self) -> str:
        return f"jitter({_fmt(self.brightness)}, {_fmt(self.contrast)}, {_fmt(self.saturation)})"


_FILLS = ("zero", "mean")


def _cutout_keep(n: int, h: int, w: int, size: int, p: float, generator, device) -> Tensor:
    """uint8 N x H x W masks, 0 inside the squares: centre uniform over the image, side
    ``size``, clipped at the borders (so a hole near an edge is smaller); no hole with
    probability 1 - p. Built as "outside the rows OR outside the columns" in uint8, the
    cheapest mask to multiply a uint8 batch by."""
    cy = _randint(n, h, generator, device)
    cx = _randint(n, w, generator, device)
    apply = _bernoulli(n, p, generator, device)
    y0, x0 = cy - size // 2, cx - size // 2
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    out_rows = ((rows < y0[:, None]) | (rows >= y0[:, None] + size) | ~apply[:, None]).to(torch.uint8)
    out_cols = ((cols < x0[:, None]) | (cols >= x0[:, None] + size)).to(torch.uint8)
    return out_rows[:, :, None] | out_cols[:, None, :]


class Cutout(Augmentation):
    """Cutout (DeVries & Taylor 2017): a ``size`` x ``size`` square at a uniformly random
    centre, clipped at the borders, set to zero (``fill="zero"``), to each image's channel
    means (``fill="mean"``) or to a number; applied with probability ``p``."""

    name = "cutout"

    def __init__(self, size: int, p: float = 1.0, fill: str | float = "zero"):
        if int(size) != size or size <= 0:
            raise CnnlabError(f"cutout size must be a positive integer, got {size!r}")
        self.size = int(size)
        self.p = _check_probability(p, "cutout")
        if isinstance(fill, str) and fill not in _FILLS:
            raise CnnlabError(f"cutout fill must be one of {', '.join(_FILLS)} or a number, got {fill!r}")
        self.fill = fill

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "cutout")
        n, _, h, w = images.shape
        keep = _cutout_keep(n, h, w, self.size, self.p, generator, images.device)[:, None]
        return _fill_holes(images, keep, self.fill)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        return [PerSampleCutout(self.size, self.p, self.fill)] if train else []

    def spec(self) -> str:
        args = [str(self.size)]
        if self.p != 1.0:
            args.append(f"p={_fmt(self.p)}")
        if self.fill != "zero":
            args.append(f"fill={_fmt(self.fill)}")
        return f"cutout({', '.join(args)})"


def _fill_holes(images: Tensor, keep: Tensor, fill: str | float) -> Tensor:
    """``images`` with the pixels where the uint8 mask ``keep`` (broadcast over channels) is 0
    set to ``fill``."""
    if fill == "zero" or fill == 0:
        # Multiplying by the mask in the image dtype is ~6x faster on CPU than
        # masked_fill/torch.where with a broadcast boolean mask.
        return images * (keep if images.dtype == torch.uint8 else keep.to(images.dtype))
    if fill == "mean":
        value = images.to(torch.float32).mean(dim=(-2, -1), keepdim=True)
        if not images.is_floating_point():
            value = value.round()
        value = value.to(images.dtype)
    else:
        # torch.full fills on the device; torch.tensor would copy the value from the host (a sync on GPUs)
        value = torch.full((), float(fill), device=images.device).to(images.dtype)
    return torch.where(keep.bool(), images, value)


class PerSampleCutout(nn.Module):
    """Per-sample cutout (v2 counterpart of :class:`Cutout`), on a C x H x W tensor."""

    def __init__(self, size: int, p: float = 1.0, fill: str | float = "zero"):
        super().__init__()
        self.size, self.p, self.fill = int(size), float(p), fill

    def forward(self, image: Any) -> Tensor:
        x = _as_image_tensor(image)
        h, w = x.shape[-2:]
        keep = _cutout_keep(1, h, w, self.size, self.p, None, x.device)[0]
        return _rewrap(_fill_holes(x, keep, self.fill), image)

    def extra_repr(self) -> str:
        return f"size={self.size}, p={self.p}, fill={self.fill}"
