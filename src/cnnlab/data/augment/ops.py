"""Batch operations the augmentations are built from, and test-time evaluation uses too.

Deterministic tensor operations only (random parameters come in as arguments): the dtype
round trip (integers are resampled in float32, then rounded and clamped back), centre
crops, the shorter-side resize of test time (also :func:`cnnlab.eval.tta_predict`'s
multi-scale resize), per-sample crop windows and per-sample crop-and-resize boxes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import CnnlabError

__all__ = ["center_crop", "resize_shorter_side"]


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
    the aspect ratio, as torchvision's ``Resize(int)``; the test-time scale of the lectures.

    The dtype is kept: floats are resampled as they are, integers in float32, then rounded
    and clamped back. A batch whose shorter side is already ``size`` comes back as it is.
    """
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
