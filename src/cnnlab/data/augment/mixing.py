"""The augmentations that mix labels: mixup, cutmix, label smoothing.

They take class indices or soft targets and return soft targets (rows summing to 1), which
``torch.nn.functional.cross_entropy`` takes as class probabilities (the trainer's loss). Mixup and cutmix draw a partner and a mixing weight per
sample; at test time all three are the identity.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ...errors import CnnlabError
from ._random import _bernoulli, _beta, _permutation, _randint
from .base import TargetAugmentation, _check_probability, _fmt
from .ops import _check_batch, _restore_dtype, _to_float

__all__ = ["one_hot", "smooth_labels", "Mixup", "CutMix", "LabelSmoothing"]


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
        perm = _permutation(n, generator, device)
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
        perm = _permutation(n, generator, device)
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
