"""Flip and the three crops: the image augmentations that move pixels.

Each in its three forms: batched training behaviour (``aug(images, generator)``), test-time
behaviour (``aug.eval_transform(images)``: identity, or a resize and centre crop for the
ones that change the image size) and the per-sample ``torchvision.transforms.v2``
equivalent (``aug.v2_transforms(train)``). :class:`PadRandomCrop` is the one v2 transform
torchvision lacks: pad, then crop back to the input size.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import CnnlabError
from ._random import _bernoulli, _randint, _sample_bits, _uniform
from .base import Augmentation, _as_image_tensor, _check_probability, _fmt, _rewrap
from .ops import _check_batch, _crop_resize_boxes, _crop_windows, _pair, center_crop, resize_shorter_side

__all__ = ["HorizontalFlip", "RandomCrop", "RandomScaleCrop", "RandomResizedCrop", "PadRandomCrop"]


_FLIP_MODES = ("random", "alternate")


class HorizontalFlip(Augmentation):
    """Mirror each image left-right with probability ``p`` (AlexNet, Krizhevsky et al. 2012).

    ``mode="alternate"`` is airbench's derandomised flip (Jordan 2024): each image gets one
    fair coin for the whole run (from its index and the seed); it is mirrored in the even
    epochs where its coin says so and in the odd epochs where it does not, so every image is
    seen both ways in every two epochs, where independent coins show ~1/4 of the images the
    same way twice running. It needs the in-memory loader, which knows each image's index.
    """

    name = "flip"

    def __init__(self, p: float = 0.5, mode: str = "random"):
        self.p = _check_probability(p, "flip")
        if mode not in _FLIP_MODES:
            raise CnnlabError(f"flip mode must be one of {', '.join(_FLIP_MODES)}, got {mode!r}")
        if mode == "alternate" and self.p != 0.5:
            raise CnnlabError(f"flip(mode=alternate) mirrors each image every other epoch, so p is 0.5; got p={p}")
        self.mode = mode
        self.keyed_by_sample = mode == "alternate"

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "flip")
        n = images.shape[0]
        if self.p >= 1.0:
            return images.flip(-1)
        if self.p <= 0.0 or n == 0:
            return images
        return self._mirror_where(images, _bernoulli(n, self.p, generator, images.device))

    def by_sample(self, images: Tensor, indices: Tensor, epoch: int, seed: int) -> Tensor:
        _check_batch(images, "flip")
        if images.shape[0] == 0:
            return images
        flip = _sample_bits(indices, seed).to(images.device) ^ bool(epoch % 2)
        return self._mirror_where(images, flip)

    @staticmethod
    def _mirror_where(images: Tensor, flip: Tensor) -> Tensor:
        """The images mirrored where ``flip`` (one bool per image) is true."""
        n = images.shape[0]
        flip = flip.view(n, 1, 1, 1)
        images = images.contiguous()
        mirrored = images.flip(-1)
        # torch.where on single bytes is ~10x slower on CPU than on 4- or 8-byte words, and
        # selecting whole rows needs no per-byte choice: view each row as words when it can.
        row_bytes = images.shape[-1] * images.element_size()
        offset_bytes = images.storage_offset() * images.element_size()
        word = next(
            (d for d in (torch.int64, torch.int32) if row_bytes % d.itemsize == 0 and offset_bytes % d.itemsize == 0),
            None,
        )
        if word is None or images.dtype == torch.bool:
            return torch.where(flip, mirrored, images)
        return torch.where(flip, mirrored.view(word), images.view(word)).view(images.dtype)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        from torchvision.transforms import v2

        if train and self.mode == "alternate":
            raise CnnlabError("flip(mode=alternate) needs the in-memory loader (a per-sample transform does not know "
                              "the image's index or the epoch); use flip, or load the data set into memory")
        return [v2.RandomHorizontalFlip(self.p)] if train else []

    def spec(self) -> str:
        if self.mode == "alternate":
            return "flip(mode=alternate)"
        return "flip" if self.p == 0.5 else f"flip(p={_fmt(self.p)})"


_PAD_MODES = ("zero", "reflect")


class RandomCrop(Augmentation):
    """Pad by ``pad`` pixels, then take a random ``size`` window (CIFAR: pad 4, crop 32;
    He et al. 2016); ``size=None`` keeps the input size. ``mode`` is ``zero`` or ``reflect``.

    Test time: a centre crop to ``size`` (identity when that is the input size).
    """

    name = "crop"

    def __init__(self, size: int | Sequence[int] | None = None, pad: int = 0, mode: str = "zero"):
        self.size = _pair(size, "crop")
        if int(pad) != pad or pad < 0:
            raise CnnlabError(f"crop padding must be a non-negative integer, got {pad!r}")
        self.pad = int(pad)
        if mode not in _PAD_MODES:
            raise CnnlabError(f"crop padding mode must be one of {', '.join(_PAD_MODES)}, got {mode!r}")
        self.mode = mode

    def _padded(self, images: Tensor) -> Tensor:
        p = self.pad
        if p == 0:
            return images
        n, c, h, w = images.shape
        if self.mode == "reflect":
            if p >= min(h, w):
                raise CnnlabError(f"reflect padding {p} needs images larger than {p} pixels, got {h}x{w}")
            return F.pad(images, (p, p, p, p), mode="reflect")
        out = images.new_zeros(n, c, h + 2 * p, w + 2 * p)
        out[:, :, p : p + h, p : p + w] = images
        return out

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "crop")
        n, _, h, w = images.shape
        height, width = self.size or (h, w)
        if n == 0:
            return images.new_empty(0, images.shape[1], height, width)
        padded = self._padded(images)
        ph, pw = padded.shape[-2:]
        if height > ph or width > pw:
            raise CnnlabError(f"crop size {height}x{width} is larger than the padded images ({ph}x{pw})")
        top = _randint(n, ph - height + 1, generator, images.device)
        left = _randint(n, pw - width + 1, generator, images.device)
        return _crop_windows(padded, top, left, height, width)

    def eval_transform(self, images: Tensor) -> Tensor:
        if self.size is None or tuple(images.shape[-2:]) == self.size:
            return images
        return center_crop(images, self.size)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        from torchvision.transforms import v2

        if not train:
            return [v2.CenterCrop(self.size)] if self.size is not None else []
        if self.size is None:
            return [PadRandomCrop(self.pad, self.mode)] if self.pad else []
        padding_mode = "constant" if self.mode == "zero" else "reflect"
        return [v2.RandomCrop(self.size, padding=self.pad or None, padding_mode=padding_mode, fill=0)]

    def spec(self) -> str:
        args = []
        if self.size is not None:
            args.append(str(self.size[0]) if self.size[0] == self.size[1] else f"{self.size[0]}x{self.size[1]}")
        if self.pad:
            args.append(f"pad={self.pad}")
        if self.mode != "zero":
            args.append(f"mode={self.mode}")
        return f"crop({', '.join(args)})" if args else "crop"


class RandomScaleCrop(Augmentation):
    """ResNet's scale augmentation (He et al. 2016, after Simonyan & Zisserman): resize the
    shorter side to L ~ U{min_size..max_size}, then take a random ``size`` crop.

    On a batch each image gets its own L and offset, and the resize and crop happen in one
    ``roi_align`` (only the cropped window is ever resampled). Test time: shorter side to
    ``min_size``, centre crop ``size`` (the usual "resize 256, centre 224").
    """

    name = "scale"

    def __init__(self, min_size: int = 256, max_size: int = 480, size: int = 224):
        if int(min_size) != min_size or int(max_size) != max_size or min_size <= 0:
            raise CnnlabError(f"scale bounds must be positive integers, got ({min_size!r}, {max_size!r})")
        if max_size < min_size:
            raise CnnlabError(f"scale needs min <= max, got ({min_size}, {max_size})")
        self.min_size, self.max_size = int(min_size), int(max_size)
        self.size = _pair(size, "scale crop")
        if max(self.size) > self.min_size:
            raise CnnlabError(f"crop size {size} is larger than the smallest scale {min_size}")

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "scale")
        n, _, h, w = images.shape
        device = images.device
        shorter = self.min_size + _randint(n, self.max_size - self.min_size + 1, generator, device)
        # Resized size as torchvision's RandomShortestSize (int() of the scaled sides), in
        # integer arithmetic so that the shorter side comes out exactly L.
        new_h = ((h * shorter) // min(h, w)).double()
        new_w = ((w * shorter) // min(h, w)).double()
        height, width = self.size
        top = _randint(n, (new_h - height + 1).long(), generator, device).double()
        left = _randint(n, (new_w - width + 1).long(), generator, device).double()
        sy, sx = h / new_h, w / new_w
        boxes = torch.stack([left * sx, top * sy, (left + width) * sx, (top + height) * sy], dim=1)
        return _crop_resize_boxes(images, boxes, self.size)

    def eval_transform(self, images: Tensor) -> Tensor:
        return center_crop(resize_shorter_side(images, self.min_size), self.size)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        from torchvision.transforms import v2

        if not train:
            return [v2.Resize(self.min_size, antialias=True), v2.CenterCrop(self.size)]
        return [
            v2.RandomShortestSize(list(range(self.min_size, self.max_size + 1)), antialias=True),
            v2.RandomCrop(self.size),
        ]

    def spec(self) -> str:
        h, w = self.size
        return f"scale({self.min_size}, {self.max_size}), crop({h if h == w else f'{h}x{w}'})"


class RandomResizedCrop(Augmentation):
    """Inception-style random-resized crop (Szegedy et al. 2015): a box of random area
    fraction in ``scale`` and aspect ratio in ``ratio``, resized to ``size``.

    Sampling follows torchvision (10 tries, then the centre crop fallback), vectorised over
    the batch. Test time: shorter side to ``size / crop_fraction``, centre crop ``size``.
    """

    name = "random_resized_crop"

    def __init__(
        self,
        size: int,
        scale: tuple[float, float] = (0.08, 1.0),
        ratio: tuple[float, float] = (3 / 4, 4 / 3),
        crop_fraction: float = 0.875,
    ):
        self.size = _pair(size, "random_resized_crop")
        lo, hi = float(scale[0]), float(scale[1])
        if not 0.0 < lo <= hi <= 1.0:
            raise CnnlabError(f"random_resized_crop area scale must satisfy 0 < min <= max <= 1, got ({lo}, {hi})")
        r_lo, r_hi = float(ratio[0]), float(ratio[1])
        if not 0.0 < r_lo <= r_hi:
            raise CnnlabError(f"random_resized_crop aspect ratio must satisfy 0 < min <= max, got ({r_lo}, {r_hi})")
        if not 0.0 < crop_fraction <= 1.0:
            raise CnnlabError(f"random_resized_crop crop_fraction must lie in (0, 1], got {crop_fraction}")
        self.scale, self.ratio, self.crop_fraction = (lo, hi), (r_lo, r_hi), float(crop_fraction)

    _TRIES = 10

    def sample_boxes(self, n: int, h: int, w: int, generator, device) -> Tensor:
        """Boxes (x1, y1, x2, y2) for ``n`` images of ``h x w``, as torchvision's get_params."""
        tries = self._TRIES
        area = _uniform(n * tries, generator, device, *self.scale).view(n, tries) * (h * w)
        log_ratio = _uniform(n * tries, generator, device, math.log(self.ratio[0]), math.log(self.ratio[1]))
        aspect = log_ratio.view(n, tries).exp()
        bw = (area * aspect).sqrt().round()
        bh = (area / aspect).sqrt().round()
        valid = (bw > 0) & (bw <= w) & (bh > 0) & (bh <= h)
        first = valid.long().argmax(dim=1, keepdim=True)
        bw, bh = bw.gather(1, first).squeeze(1), bh.gather(1, first).squeeze(1)
        found = valid.any(dim=1)
        # Fallback: the whole image, cut to the nearest allowed aspect ratio, centred.
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            fw, fh = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            fh, fw = h, int(round(h * self.ratio[1]))
        else:
            fw, fh = w, h
        bw = torch.where(found, bw, torch.full_like(bw, fw))
        bh = torch.where(found, bh, torch.full_like(bh, fh))
        top = _randint(n, (h - bh + 1).long(), generator, device).double()
        left = _randint(n, (w - bw + 1).long(), generator, device).double()
        top = torch.where(found, top, torch.full_like(top, (h - fh) // 2))
        left = torch.where(found, left, torch.full_like(left, (w - fw) // 2))
        return torch.stack([left, top, left + bw, top + bh], dim=1)

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "random_resized_crop")
        n, _, h, w = images.shape
        return _crop_resize_boxes(images, self.sample_boxes(n, h, w, generator, images.device), self.size)

    def _eval_resize(self) -> int:
        return int(round(min(self.size) / self.crop_fraction))

    def eval_transform(self, images: Tensor) -> Tensor:
        return center_crop(resize_shorter_side(images, self._eval_resize()), self.size)

    def v2_transforms(self, train: bool = True) -> list[Callable]:
        from torchvision.transforms import v2

        if not train:
            return [v2.Resize(self._eval_resize(), antialias=True), v2.CenterCrop(self.size)]
        return [v2.RandomResizedCrop(self.size, scale=self.scale, ratio=self.ratio, antialias=True)]

    def spec(self) -> str:
        args = [str(self.size[0])]
        if self.scale != (0.08, 1.0):
            args += [f"min_scale={_fmt(self.scale[0])}", f"max_scale={_fmt(self.scale[1])}"]
        if self.ratio != (3 / 4, 4 / 3):
            args += [f"min_ratio={_fmt(self.ratio[0])}", f"max_ratio={_fmt(self.ratio[1])}"]
        if self.crop_fraction != 0.875:
            args.append(f"crop_fraction={_fmt(self.crop_fraction)}")
        return f"random_resized_crop({', '.join(args)})"


class PadRandomCrop(nn.Module):
    """Per-sample pad-then-crop back to the input size (v2 counterpart of ``crop(pad=k)``),
    for when no crop size is given; uses torch's global RNG like every v2 transform."""

    def __init__(self, pad: int, mode: str = "zero"):
        super().__init__()
        self.pad, self.mode = int(pad), mode

    def forward(self, image: Any) -> Tensor:
        x = _as_image_tensor(image)
        h, w = x.shape[-2:]
        p = self.pad
        batch = x.reshape(-1, *x.shape[-3:])
        padded = RandomCrop(None, p, self.mode)._padded(batch)
        top, left = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        out = padded[..., top : top + h, left : left + w].reshape(x.shape)
        return _rewrap(out, image)

    def extra_repr(self) -> str:
        return f"pad={self.pad}, mode={self.mode}"
