"""Normalisation layers by name: BatchNorm, LayerNorm over channels, GroupNorm, InstanceNorm, LRN."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError


class LayerNorm2d(nn.LayerNorm):
    """LayerNorm over the channels of an NCHW feature map (each pixel normalised on its own).

    This is the "channels-last LayerNorm" of ConvNeXt, applied to channels-first tensors
    by permuting around ``F.layer_norm``; parameters are named as in ``nn.LayerNorm``.
    """

    def __init__(self, num_channels: int, eps: float = 1e-6, affine: bool = True):
        super().__init__(num_channels, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


def _group_norm(num_channels: int, num_groups: int = 32, **kwargs) -> nn.GroupNorm:
    # Wu & He (2018) use 32 groups; fall back to fewer when the width is not divisible.
    groups = num_groups
    while num_channels % groups:
        groups //= 2
    return nn.GroupNorm(groups, num_channels, **kwargs)


def _local_response_norm(num_channels: int, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0):
    # AlexNet's constants (Krizhevsky et al. 2012, section 3.3): n=5, alpha=1e-4, beta=0.75, k=2.
    del num_channels
    return nn.LocalResponseNorm(size, alpha=alpha, beta=beta, k=k)


_NORMS = {
    "batchnorm": nn.BatchNorm2d,
    "layernorm": LayerNorm2d,
    "groupnorm": _group_norm,
    "instancenorm": lambda c, **kw: nn.InstanceNorm2d(c, affine=kw.pop("affine", True), **kw),
    "lrn": _local_response_norm,
    "none": None,
}
_ALIASES = {"bn": "batchnorm", "batch_norm": "batchnorm", "ln": "layernorm", "layer_norm": "layernorm",
            "gn": "groupnorm", "group_norm": "groupnorm", "in": "instancenorm", "instance_norm": "instancenorm",
            "local_response_norm": "lrn"}


def norm_names() -> list[str]:
    """Names accepted by :func:`get_norm`."""
    return sorted(_NORMS)


def get_norm(name: str | None, num_channels: int, **kwargs) -> nn.Module:
    """Build a 2-D normalisation layer by name for ``num_channels`` channels.

    ``"batchnorm"`` (Ioffe & Szegedy 2015), ``"layernorm"`` (over channels, per pixel),
    ``"groupnorm"``, ``"instancenorm"``, ``"lrn"`` (AlexNet's local response norm) or
    ``None``/``"none"`` for ``nn.Identity``.
    """
    key = "none" if name is None else name.lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in _NORMS:
        raise CnnlabError(f"unknown normalisation {name!r}; choose one of {', '.join(norm_names())}")
    factory = _NORMS[key]
    return nn.Identity() if factory is None else factory(num_channels, **kwargs)
