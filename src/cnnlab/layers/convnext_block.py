"""The ConvNeXt block (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

A ResNet bottleneck "modernised" step by step towards a Transformer block: a 7x7
depthwise convolution mixes space (the analogue of self-attention, one filter per
channel), then a channels-last LayerNorm and an inverted-bottleneck MLP (Linear C->4C,
GELU, Linear 4C->C, the Transformer's feed-forward network) mix channels. One
normalisation and one activation per block, as in a Transformer, instead of one after
every convolution.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from .dropout import DropPath


class Permute(nn.Module):
    """Reorder the dimensions of a tensor (``x.permute(*dims)``) as a layer of an ``nn.Sequential``.

    ConvNeXt switches an NCHW map to NHWC so that ``nn.LayerNorm`` and ``nn.Linear`` act
    on the channels of each pixel (the paper's "channels-last" LayerNorm and 1x1 convs).
    """

    def __init__(self, dims: Sequence[int]):
        super().__init__()
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.permute(*self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}"


class ConvNeXtBlock(nn.Module):
    """``x + drop_path(gamma * MLP(LN(dwconv7x7(x))))``: the ConvNeXt block (paper, Figure 4).

    ``block`` is an ``nn.Sequential`` laid out as torchvision's ``CNBlock`` so its
    checkpoints load unchanged: ``0`` depthwise ``kernel_size`` x ``kernel_size`` conv
    (with bias), ``1`` NCHW->NHWC, ``2`` LayerNorm (eps 1e-6), ``3`` Linear C->rC, ``4``
    GELU, ``5`` Linear rC->C, ``6`` NHWC->NCHW, with ``r = expansion`` (4, the paper's
    inverted bottleneck). The two Linears on NHWC tensors are exactly 1x1 convolutions.

    ``layer_scale`` is the initial value of the per-channel scale ``gamma`` (Touvron et
    al. 2021, "CaiT"): starting at 1e-6, every residual branch begins as almost nothing,
    so a deep stack starts close to the identity and trains stably. ``None`` leaves the
    branch unscaled (no parameter). ``drop_path`` is the stochastic-depth rate of this block.
    """

    def __init__(
        self,
        dim: int,
        layer_scale: float | None = 1e-6,
        drop_path: float = 0.0,
        kernel_size: int = 7,
        expansion: int = 4,
        eps: float = 1e-6,
    ):
        super().__init__()
        if dim < 1:
            raise CnnlabError(f"ConvNeXtBlock dim must be at least 1, got {dim}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise CnnlabError(f"ConvNeXtBlock kernel_size must be a positive odd number, got {kernel_size}")
        if expansion < 1:
            raise CnnlabError(f"ConvNeXtBlock expansion must be at least 1, got {expansion}")
        if layer_scale is not None and layer_scale <= 0:
            raise CnnlabError(f"ConvNeXtBlock layer_scale must be positive (or None for none), got {layer_scale}")
        hidden = expansion * dim
        self.block = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim, bias=True),
            Permute((0, 2, 3, 1)),
            nn.LayerNorm(dim, eps=eps),
            nn.Linear(dim, hidden),
            nn.GELU(),
            nn.Linear(hidden, dim),
            Permute((0, 3, 1, 2)),
        )
        # Shape (C, 1, 1) broadcasts over an NCHW map (torchvision's shape, so keys and shapes match).
        self.layer_scale = None if layer_scale is None else nn.Parameter(torch.full((dim, 1, 1), float(layer_scale)))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.block(x)
        if self.layer_scale is not None:
            branch = self.layer_scale * branch
        return x + self.drop_path(branch)
