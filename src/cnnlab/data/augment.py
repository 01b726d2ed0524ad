"""Data augmentation from the lectures, run on whole batches of tensors on the training device.

Each augmentation exists three ways, with the same options:

* batched training behaviour: ``aug(images, generator)`` on an ``N x C x H x W`` uint8 or
  float batch, vectorised (per-sample random parameters, no Python loop over images) and
  reproducible through the ``torch.Generator`` passed in (airbench's data path);
* test-time behaviour: ``aug.eval_transform(images)``, identity for most, a centre crop
  (after a resize) for the ones that change the image size;
* a per-sample ``torchvision.transforms.v2`` equivalent (``aug.v2_transforms(train)``) for
  streaming data sets read by ``DataLoader`` workers.

A recipe names its augmentations declaratively; :func:`parse_augment` turns
``"flip, crop(pad=4), cutout(16)"`` into an :class:`AugmentPipeline`.

Conventions. Image augmentations keep the dtype they are given. Pixel values are read the
way torchvision reads them: uint8 in [0, 255], floating point in [0, 1] (only colour jitter
clamps, so other floats, e.g. normalised ones, pass through the rest unchanged). Zero
padding and zero-filled cutout therefore mean black pixels before normalisation, which is
torchvision's CIFAR practice; ``fill="mean"`` fills with the image's channel means instead,
which is what the cutout paper's zero after normalisation amounts to. Mixup, cutmix and
label smoothing return soft targets (rows summing to 1) for
:func:`soft_target_cross_entropy`, or ``torch.nn.functional.cross_entropy``, which also
accepts class probabilities.
"""
from __future__ import annotations

import math
import re
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CnnlabError

__all__ = [
    "Augmentation",
    "TargetAugmentation",
    "HorizontalFlip",
    "RandomCrop",
    "RandomResizedCrop",
    "RandomScaleCrop",
    "ColorJitter",
    "Cutout",
    "Mixup",
    "CutMix",
    "LabelSmoothing",
    "AugmentPipeline",
    "AUGMENTATION_NAMES",
    "parse_augment",
    "v2_transform",
    "one_hot",
    "smooth_labels",
    "soft_target_cross_entropy",
    "resize_shorter_side",
    "center_crop",
]

# ITU-R 601 luma weights, as torchvision's rgb_to_grayscale.
_LUMA = (0.2989, 0.587, 0.114)


# --------------------------------------------------------------------------- random draws
# Parameters are drawn on the generator's device (CPU by default) and moved to the images'
# device, so one CPU generator reproduces the same augmentation on CPU and GPU.


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _to_device(values: Tensor, device) -> Tensor:
    """Move drawn parameters to ``device``; to a GPU through pinned memory, without waiting.

    A plain copy from ordinary (pageable) host memory synchronises the stream: the CPU
    would wait for the GPU to finish the previous training step before it could queue the
    next batch's augmentation, and the GPU would then idle while the CPU queued it.
    """
    device = torch.device(device)
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)


def _uniform(n: int, generator, device, low: float = 0.0, high: float = 1.0) -> Tensor:
    """``n`` draws from U[low, high) as float64 on ``device``."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator), dtype=torch.float64)
    return _to_device(low + (high - low) * u, device)


def _randint(n: int, high: Tensor | int, generator, device) -> Tensor:
    """``n`` integers uniform in [0, high) where ``high`` may differ per sample (>= 1)."""
    u = _to_device(torch.rand(n, generator=generator, device=_draw_device(generator), dtype=torch.float64), device)
    if not isinstance(high, Tensor):  # a plain bound needs no tensor (and no copy to the GPU)
        return (u * high).long().clamp_(max=int(high) - 1)
    return torch.minimum((u * high).long(), high.long() - 1)


def _beta(n: int, alpha: float, generator, device) -> Tensor:
    """``n`` draws from Beta(alpha, alpha); torch's Beta takes no generator, so numpy's,
    seeded from ``generator``, draws them (still reproducible from the one seed)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_draw_device(generator)).item())
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return _to_device(torch.as_tensor(lam, dtype=torch.float64), device)


def _bernoulli(n: int, p: float, generator, device) -> Tensor:
    if p >= 1.0:
        return torch.ones(n, dtype=torch.bool, device=device)
    return _uniform(n, generator, device) < p


# --------------------------------------------------------------------------- small helpers


def _check_batch(images: Tensor, what: str) -> None:
    if not isinstance(images, Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, Tensor) else type(images).__name__
        raise CnnlabError(f"{what} expects a batch N x C x H x W, got {shape}; add a batch dimension with images[None]")


def _max_value(dtype: torch.dtype) -> float:
    return 1.0 if dtype.is_floating_point else float(torch.iinfo(dtype).max)


def _to_float(images: Tensor) -> Tensor:
    return images if images.is_floating_point() else images.to(torch.float32)


def _restore_dtype(result: Tensor, dtype: torch.dtype) -> Tensor:
    """Back to the input dtype; integers are rounded (torchvision truncates) and clamped."""
    if dtype.is_floating_point:
        return result.to(dtype)
    return result.round_().clamp_(0, _max_value(dtype)).to(dtype)


def _pair(size: int | Sequence[int] | None, what: str) -> tuple[int, int] | None:
    if size is None:
        return None
    if isinstance(size, (int, np.integer)) and not isinstance(size, bool):
        pair = (int(size), int(size))
    elif isinstance(size, Sequence) and len(size) == 2:
        pair = (int(size[0]), int(size[1]))
    else:
        raise CnnlabError(f"{what} size must be an integer or (height, width), got {size!r}")
    if min(pair) <= 0:
        raise CnnlabError(f"{what} size must be positive, got {size!r}")
    return pair


def _check_probability(p: float, what: str) -> float:
    p = float(p)
    if not 0.0 <= p <= 1.0:
        raise CnnlabError(f"{what} probability p must lie in [0, 1], got {p}")
    return p


def _crop_windows(images: Tensor, top: Tensor, left: Tensor, height: int, width: int) -> Tensor:
    """Per-sample windows ``images[n, :, top[n]:top[n]+height, left[n]:left[n]+width]``.

    Every window row is a run of ``width`` consecutive elements of the flattened batch, so
    the whole crop is one ``index_select`` over an unfolded (overlapping, zero-copy) view:
    a memcpy per row instead of index arithmetic per pixel.
    """
    n, c, h, w = images.shape
    flat = images.contiguous().view(-1)
    runs = flat.unfold(0, width, 1)
    device = images.device
    row_offsets = (
        torch.arange(c, device=device)[:, None] * (h * w) + torch.arange(height, device=device)[None, :] * w
    )
    starts = (torch.arange(n, device=device) * (c * h * w) + top * w + left)[:, None, None] + row_offsets
    return runs.index_select(0, starts.reshape(-1)).view(n, c, height, width)


def center_crop(images: Tensor, size: int | Sequence[int]) -> Tensor:
    """Centre ``size`` crop of a batch (or single image); torchvision's rounding of the offset."""
    height, width = _pair(size, "centre crop")
    h, w = images.shape[-2:]
    if height > h or width > w:
        raise CnnlabError(f"cannot centre-crop {height}x{width} from {h}x{w} images; resize them first")
    top = int(round((h - height) / 2.0))
    left = int(round((w - width) / 2.0))
    return images[..., top : top + height, left : left + width]


def resize_shorter_side(images: Tensor, size: int) -> Tensor:
    """Resize a batch so that its shorter side is ``size`` (bilinear, antialiased), keeping
    the aspect ratio, as torchvision's ``Resize(int)``; the test-time scale of the lectures."""
    _check_batch(images, "resize_shorter_side")
    h, w = images.shape[-2:]
    if min(h, w) == size:
        return images
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    out = F.interpolate(_to_float(images), size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    return _restore_dtype(out, images.dtype)


def _crop_resize_boxes(images: Tensor, boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Per-sample box (x1, y1, x2, y2 in pixel-edge coordinates) resized to ``size``.

    ``roi_align`` with adaptive sampling averages ceil(box/size) bilinear samples per output
    pixel, a box filter that stands in for antialiasing when the box shrinks.
    """
    from torchvision.ops import roi_align

    index = torch.arange(images.shape[0], device=images.device, dtype=boxes.dtype)[:, None]
    rois = torch.cat([index, boxes], dim=1).to(torch.float32)
    x = _to_float(images)
    out = roi_align(x, rois.to(x.dtype), output_size=size, spatial_scale=1.0, sampling_ratio=-1, aligned=True)
    return _restore_dtype(out, images.dtype)


# --------------------------------------------------------------------------- base classes


class Augmentation:
    """An image augmentation: batched training behaviour, test-time behaviour and its
    per-sample torchvision v2 equivalent. Subclasses set ``name`` (the spec word)."""

    name: str = ""

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Training behaviour on a batch N x C x H x W (dtype kept), random draws from ``generator``."""
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

    def __call__(
        self,
        images: Tensor,
        targets: Tensor,
        generator: torch.Generator | None = None,
        num_classes: int | None = None,
    ) -> tuple[Tensor, Tensor]:
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
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# --------------------------------------------------------------------------- image augmentations


class HorizontalFlip(Augmentation):
    """Mirror each image left-right with probability ``p`` (AlexNet, Krizhevsky et al. 2012)."""

    name = "flip"

    def __init__(self, p: float = 0.5):
        self.p = _check_probability(p, "flip")

    def __call__(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        _check_batch(images, "flip")
        n = images.shape[0]
        if self.p >= 1.0:
            return images.flip(-1)
        if self.p <= 0.0 or n == 0:
            return images
        flip = _bernoulli(n, self.p, generator, images.device).view(n, 1, 1, 1)
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

        return [v2.RandomHorizontalFlip(self.p)] if train else []

    def spec(self) -> str:
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


# --------------------------------------------------------------------------- per-sample v2 modules


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


# --------------------------------------------------------------------------- targets


def one_hot(labels: Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """Class indices (N) to one-hot rows (N x num_classes)."""
    return F.one_hot(labels.long(), num_classes).to(dtype)


def smooth_labels(targets: Tensor, num_classes: int | None = None, eps: float = 0.1) -> Tensor:
    """Label smoothing (Szegedy et al. 2016): (1 - eps) * one-hot + eps / K on every class."""
    soft = _soft_targets(targets, num_classes, "label_smoothing")
    return soft * (1.0 - eps) + eps / soft.shape[1]


def _soft_targets(targets: Tensor, num_classes: int | None, what: str) -> Tensor:
    if targets.dim() == 2 and targets.is_floating_point():
        return targets
    if targets.dim() != 1:
        raise CnnlabError(f"{what} expects class indices (N) or soft targets (N x K), got shape {tuple(targets.shape)}")
    if num_classes is None:
        raise CnnlabError(f"{what} needs num_classes to turn class indices into soft targets")
    return one_hot(targets, num_classes)


def soft_target_cross_entropy(logits: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
    """Cross-entropy against a distribution over classes: -sum_k t_k log softmax(z)_k.

    The loss for mixup, cutmix and label smoothing; hard class indices also work.
    """
    if targets.dim() == 1:
        return F.cross_entropy(logits, targets, reduction=reduction)
    loss = -(targets.to(logits.dtype) * F.log_softmax(logits, dim=-1)).sum(dim=-1)
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _check_alpha(alpha: float, what: str) -> float:
    alpha = float(alpha)
    if not alpha > 0:
        raise CnnlabError(f"{what} alpha must be positive, got {alpha}")
    return alpha


class Mixup(TargetAugmentation):
    """Mixup (Zhang et al. 2018): x = lam * x_i + (1 - lam) * x_j and the same mix of the
    labels, lam ~ Beta(alpha, alpha), j a shuffled partner. Each sample draws its own lam
    (the paper draws one per batch: same expectation, less gradient noise); with
    probability 1 - ``p`` a sample is left alone (lam = 1)."""

    name = "mixup"

    def __init__(self, alpha: float = 1.0, p: float = 1.0):
        self.alpha = _check_alpha(alpha, "mixup")
        self.p = _check_probability(p, "mixup")

    def __call__(self, images, targets, generator=None, num_classes=None):
        _check_batch(images, "mixup")
        soft = _soft_targets(targets, num_classes, "mixup")
        n = images.shape[0]
        device = images.device
        lam = _beta(n, self.alpha, generator, device)
        lam = torch.where(_bernoulli(n, self.p, generator, device), lam, torch.ones_like(lam))
        perm = _to_device(torch.randperm(n, generator=generator, device=_draw_device(generator)), device)
        x = _to_float(images)
        lam_x = lam.to(x.dtype).view(n, 1, 1, 1)
        mixed = torch.lerp(x.index_select(0, perm), x, lam_x)  # lam * x + (1 - lam) * partner
        lam_t = lam.to(soft.dtype)[:, None]
        return _restore_dtype(mixed, images.dtype), soft * lam_t + soft.index_select(0, perm) * (1 - lam_t)

    def spec(self) -> str:
        return f"mixup({_fmt(self.alpha)})" if self.p == 1.0 else f"mixup({_fmt(self.alpha)}, p={_fmt(self.p)})"


class CutMix(TargetAugmentation):
    """CutMix (Yun et al. 2019): paste a box from a shuffled partner; the box covers a
    fraction 1 - lam of the image, lam ~ Beta(alpha, alpha), centred uniformly and clipped at
    the borders; the labels mix by the area actually pasted."""

    name = "cutmix"

    def __init__(self, alpha: float = 1.0, p: float = 1.0):
        self.alpha = _check_alpha(alpha, "cutmix")
        self.p = _check_probability(p, "cutmix")

    def sample_boxes(self, n: int, h: int, w: int, generator, device) -> Tensor:
        """Clipped boxes (y1, y2, x1, x2) as N x 4 integers."""
        lam = _beta(n, self.alpha, generator, device)
        side = (1.0 - lam).sqrt()
        cut_h = (side * h).long()
        cut_w = (side * w).long()
        cy = _randint(n, h, generator, device)
        cx = _randint(n, w, generator, device)
        apply = _bernoulli(n, self.p, generator, device)
        cut_h, cut_w = cut_h * apply, cut_w * apply
        y1 = (cy - cut_h // 2).clamp(0, h)
        y2 = (cy - cut_h // 2 + cut_h).clamp(0, h)
        x1 = (cx - cut_w // 2).clamp(0, w)
        x2 = (cx - cut_w // 2 + cut_w).clamp(0, w)
        return torch.stack([y1, y2, x1, x2], dim=1)

    def __call__(self, images, targets, generator=None, num_classes=None):
        _check_batch(images, "cutmix")
        soft = _soft_targets(targets, num_classes, "cutmix")
        n, _, h, w = images.shape
        device = images.device
        boxes = self.sample_boxes(n, h, w, generator, device)
        perm = _to_device(torch.randperm(n, generator=generator, device=_draw_device(generator)), device)
        y1, y2, x1, x2 = boxes.unbind(1)
        rows = torch.arange(h, device=device)
        cols = torch.arange(w, device=device)
        in_rows = (rows >= y1[:, None]) & (rows < y2[:, None])
        in_cols = (cols >= x1[:, None]) & (cols < x2[:, None])
        box = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
        mixed = torch.where(box, images.index_select(0, perm), images)
        pasted = ((y2 - y1) * (x2 - x1)).to(soft.dtype) / (h * w)
        keep = (1.0 - pasted)[:, None]
        return mixed, soft * keep + soft.index_select(0, perm) * (1.0 - keep)

    def spec(self) -> str:
        return f"cutmix({_fmt(self.alpha)})" if self.p == 1.0 else f"cutmix({_fmt(self.alpha)}, p={_fmt(self.p)})"


class LabelSmoothing(TargetAugmentation):
    """Label-smoothing targets (Szegedy et al. 2016): eps of the mass spread over all classes."""

    name = "label_smoothing"

    def __init__(self, eps: float = 0.1):
        eps = float(eps)
        if not 0.0 <= eps < 1.0:
            raise CnnlabError(f"label_smoothing eps must lie in [0, 1), got {eps}")
        self.eps = eps

    def __call__(self, images, targets, generator=None, num_classes=None):
        return images, smooth_labels(targets, num_classes, self.eps)

    def spec(self) -> str:
        return f"label_smoothing({_fmt(self.eps)})"


# --------------------------------------------------------------------------- pipeline


class AugmentPipeline:
    """An ordered list of augmentations: image ones first (in order), then label ones.

    ``pipeline(images, generator=g)`` augments a batch; ``pipeline(images, labels,
    generator=g, num_classes=K)`` returns ``(images, targets)``, soft targets when the
    pipeline has mixup, cutmix or label smoothing and the labels unchanged otherwise.
    ``train=False`` (or :meth:`eval_transform`) applies the test-time behaviour.
    """

    def __init__(
        self,
        augmentations: Sequence[Augmentation | TargetAugmentation] = (),
        *,
        num_classes: int | None = None,
    ):
        image_ops, target_ops = [], []
        for aug in augmentations:
            if isinstance(aug, TargetAugmentation):
                target_ops.append(aug)
            elif isinstance(aug, Augmentation):
                image_ops.append(aug)
            else:
                raise CnnlabError(f"not an augmentation: {aug!r}")
        self.image_augmentations: tuple[Augmentation, ...] = tuple(image_ops)
        self.target_augmentations: tuple[TargetAugmentation, ...] = tuple(target_ops)
        self.num_classes = num_classes

    @property
    def augmentations(self) -> tuple:
        """All steps in the order they run: image augmentations, then label ones."""
        return self.image_augmentations + self.target_augmentations

    @property
    def changes_targets(self) -> bool:
        """Whether the pipeline turns labels into soft targets."""
        return bool(self.target_augmentations)

    def __len__(self) -> int:
        return len(self.augmentations)

    def __iter__(self):
        return iter(self.augmentations)

    @property
    def spec(self) -> str:
        """The canonical spec string; ``parse_augment(p.spec)`` rebuilds ``p``."""
        return ", ".join(a.spec() for a in self.augmentations)

    def __repr__(self) -> str:
        return f"AugmentPipeline({self.spec!r})"

    def augment_images(self, images: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The image augmentations only, at training time (dtype preserved)."""
        for aug in self.image_augmentations:
            images = aug(images, generator)
        return images

    def mix(
        self,
        images: Tensor,
        targets: Tensor,
        generator: torch.Generator | None = None,
        num_classes: int | None = None,
    ) -> tuple[Tensor, Tensor]:
        """The label augmentations only (mixup, cutmix, label smoothing), on a collated batch:
        what a streaming loader runs after its per-sample v2 transforms."""
        k = num_classes if num_classes is not None else self.num_classes
        for aug in self.target_augmentations:
            images, targets = aug(images, targets, generator, k)
        return images, targets

    def eval_transform(self, images: Tensor) -> Tensor:
        """Test-time behaviour: identity, or the centre crop/resize of size-changing steps."""
        for aug in self.image_augmentations:
            images = aug.eval_transform(images)
        return images

    def __call__(
        self,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        train: bool = True,
        num_classes: int | None = None,
    ):
        if not train:
            images = self.eval_transform(images)
            return images if targets is None else (images, targets)
        images = self.augment_images(images, generator)
        if targets is None:
            if self.changes_targets:
                names = ", ".join(a.name for a in self.target_augmentations)
                raise CnnlabError(f"the pipeline mixes labels ({names}); pass the labels too: pipeline(images, labels)")
            return images
        return self.mix(images, targets, generator, num_classes)

    def to_v2(self, *, train: bool = True, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        """Per-sample ``torchvision.transforms.v2.Compose`` with the same options, for
        streaming data sets; see :func:`v2_transform`."""
        from torchvision.transforms import v2

        steps: list[Callable] = [v2.ToImage()]
        for aug in self.image_augmentations:
            steps.extend(aug.v2_transforms(train))
        if mean is not None or std is not None:
            if mean is None or std is None:
                raise CnnlabError("give both mean and std to normalise, or neither")
            steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        return v2.Compose(steps)


# --------------------------------------------------------------------------- spec parser


def _parse_value(text: str) -> Any:
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _word(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a word, got {value!r}")
    return value


def _size(value: Any) -> int | tuple[int, int]:
    if isinstance(value, str) and re.fullmatch(r"\d+x\d+", value):
        h, w = value.split("x")
        return int(h), int(w)
    return _integer(value)


def _fill(value: Any) -> str | float:
    return value if isinstance(value, str) else _number(value)


# name -> (builder, [(parameter, converter, default)]); a default of ... means required.
_SPECS: dict[str, tuple[Callable, list[tuple[str, Callable, Any]]]] = {
    "flip": (HorizontalFlip, [("p", _number, 0.5)]),
    "crop": (RandomCrop, [("size", _size, None), ("pad", _integer, 0), ("mode", _word, "zero")]),
    "scale": (None, [("min_size", _integer, 256), ("max_size", _integer, 480)]),
    "random_resized_crop": (
        lambda size, min_scale, max_scale, min_ratio, max_ratio, crop_fraction: RandomResizedCrop(
            size, (min_scale, max_scale), (min_ratio, max_ratio), crop_fraction
        ),
        [
            ("size", _size, ...),
            ("min_scale", _number, 0.08),
            ("max_scale", _number, 1.0),
            ("min_ratio", _number, 3 / 4),
            ("max_ratio", _number, 4 / 3),
            ("crop_fraction", _number, 0.875),
        ],
    ),
    "jitter": (ColorJitter, [("brightness", _number, 0.0), ("contrast", _number, 0.0), ("saturation", _number, 0.0)]),
    "cutout": (Cutout, [("size", _integer, ...), ("p", _number, 1.0), ("fill", _fill, "zero")]),
    "mixup": (Mixup, [("alpha", _number, 1.0), ("p", _number, 1.0)]),
    "cutmix": (CutMix, [("alpha", _number, 1.0), ("p", _number, 1.0)]),
    "label_smoothing": (LabelSmoothing, [("eps", _number, 0.1)]),
}
_ALIASES = {
    "hflip": "flip",
    "horizontal_flip": "flip",
    "random_crop": "crop",
    "rrc": "random_resized_crop",
    "color_jitter": "jitter",
    "colour_jitter": "jitter",
    "smoothing": "label_smoothing",
}

#: The names :func:`parse_augment` accepts (aliases not included).
AUGMENTATION_NAMES: tuple[str, ...] = tuple(_SPECS)

_TOKEN = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _split_top_level(spec: str) -> list[str]:
    tokens, depth, current = [], 0, []
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise CnnlabError(f"unbalanced ')' in augmentation spec {spec!r}")
        if ch in ",;" and depth == 0:
            tokens.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise CnnlabError(f"unbalanced '(' in augmentation spec {spec!r}")
    tokens.append("".join(current))
    return [t.strip() for t in tokens]


def _bind(token: str, name: str, args_text: str | None) -> dict[str, Any]:
    params = _SPECS[name][1]
    names = [p[0] for p in params]
    usage = f"{name}({', '.join(p if d is ... else f'{p}={_fmt(d)}' for p, _, d in params)})"
    values: dict[str, Any] = {}
    if args_text is not None and args_text.strip():
        positional_done = False
        for i, raw in enumerate(args_text.split(",")):
            raw = raw.strip()
            if not raw:
                raise CnnlabError(f"empty argument in augmentation {token!r}; usage: {usage}")
            if "=" in raw:
                key, _, value = raw.partition("=")
                key = key.strip()
                if key not in names:
                    raise CnnlabError(f"{name} has no argument {key!r} (in {token!r}); usage: {usage}")
                positional_done = True
            else:
                if positional_done:
                    raise CnnlabError(f"positional argument after keyword in {token!r}; usage: {usage}")
                if i >= len(names):
                    raise CnnlabError(f"too many arguments in {token!r}; usage: {usage}")
                key, value = names[i], raw
            if key in values:
                raise CnnlabError(f"argument {key!r} given twice in {token!r}; usage: {usage}")
            values[key] = _parse_value(value)
    bound = {}
    for pname, convert, default in params:
        if pname not in values:
            if default is ...:
                raise CnnlabError(f"{name} needs its {pname} in {token!r}; usage: {usage}")
            bound[pname] = default
            continue
        try:
            bound[pname] = convert(values[pname])
        except ValueError as exc:
            raise CnnlabError(f"bad {pname} in augmentation {token!r}: {exc}; usage: {usage}") from None
    return bound


def parse_augment(spec: str | AugmentPipeline | None, *, num_classes: int | None = None) -> AugmentPipeline:
    """Build an :class:`AugmentPipeline` from a recipe's declarative spec.

    Comma-separated steps, each ``name`` or ``name(args)`` with positional or ``key=value``
    arguments, e.g. ``"flip, crop(pad=4), cutout(16)"``,
    ``"scale(256, 480), crop(224), flip, jitter(0.4, 0.4, 0.4)"``, ``"mixup(0.2)"``,
    ``"cutmix(1.0)"``, ``"label_smoothing(0.1)"``. ``scale(a, b)`` must be followed by
    ``crop(size)`` (on a batch every image must leave with the same size). An empty spec or
    ``"none"`` gives the empty pipeline. Unknown names or bad arguments raise CnnlabError.
    """
    if isinstance(spec, AugmentPipeline):
        return spec
    if spec is None or not spec.strip() or spec.strip().lower() == "none":
        return AugmentPipeline([], num_classes=num_classes)
    if not isinstance(spec, str):
        raise CnnlabError(f"an augmentation spec is a string like 'flip, crop(pad=4)', got {type(spec).__name__}")
    valid = ", ".join(AUGMENTATION_NAMES)
    parsed: list[tuple[str, str, dict[str, Any]]] = []
    for token in _split_top_level(spec):
        if not token:
            raise CnnlabError(f"empty step in augmentation spec {spec!r}")
        match = _TOKEN.match(token)
        if not match:
            raise CnnlabError(f"cannot read augmentation {token!r}; write name or name(args). Valid names: {valid}")
        raw_name, args_text = match.group(1), match.group(2)
        name = _ALIASES.get(raw_name.lower(), raw_name.lower())
        if name not in _SPECS:
            raise CnnlabError(f"unknown augmentation {raw_name!r} in {spec!r}. Valid names: {valid}")
        parsed.append((token, name, _bind(token, name, args_text)))

    augmentations: list = []
    i = 0
    while i < len(parsed):
        token, name, kwargs = parsed[i]
        try:
            if name == "scale":
                follower = parsed[i + 1] if i + 1 < len(parsed) else None
                if follower is None or follower[1] != "crop" or follower[2]["size"] is None or follower[2]["pad"]:
                    raise CnnlabError(
                        f"{token!r} must be followed by crop(size) without padding, e.g. 'scale(256, 480), crop(224)': "
                        "on a batch every image must leave with the same size"
                    )
                augmentations.append(RandomScaleCrop(kwargs["min_size"], kwargs["max_size"], follower[2]["size"]))
                i += 2
                continue
            augmentations.append(_SPECS[name][0](**kwargs))
        except CnnlabError as exc:
            message = str(exc)
            if token not in message:
                message = f"in augmentation {token!r}: {message}"
            raise CnnlabError(message) from None
        i += 1
    return AugmentPipeline(augmentations, num_classes=num_classes)


def v2_transform(
    spec: str | AugmentPipeline,
    *,
    train: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
):
    """Per-sample ``torchvision.transforms.v2.Compose`` built from the same spec, for
    streaming data sets (DataLoader workers).

    Starts with ``v2.ToImage()``; with ``mean``/``std`` it ends with ``ToDtype(float32,
    scale=True)`` and ``Normalize``. Mixup, cutmix and label smoothing work on batches, so
    they are left out: run ``pipeline.mix(images, labels, generator, num_classes)`` on each
    collated batch.
    """
    return parse_augment(spec).to_v2(train=train, mean=mean, std=std)
