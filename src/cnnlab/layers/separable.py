"""Depthwise separable convolution (Howard et al. 2017, "MobileNets"), the unit MobileNet v1 is made of.

A standard ``k x k`` convolution from ``C_in`` to ``C_out`` channels filters and mixes
channels in one step, at ``k^2 * C_in * C_out`` weights. The separable version splits
the two jobs: a *depthwise* ``k x k`` convolution filters each channel on its own
(``groups = C_in``, ``k^2 * C_in`` weights), then a *pointwise* 1x1 convolution mixes
the channels (``C_in * C_out`` weights). For ``k = 3`` this costs ``1/C_out + 1/9`` of
the standard convolution, 8-9 times fewer weights and multiply-adds (the lecture's
worked example: 67,840 instead of 589,824 weights for 256 -> 256 channels).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from .conv_norm_act import ConvNormAct


class DepthwiseSeparableConv(nn.Module):
    """``depthwise`` (k x k, one filter per channel) conv-BN-act, then ``pointwise`` (1x1) conv-BN-act.

    As in the MobileNet paper (Figure 3), each of the two convolutions is followed by its
    own BN and ReLU; the stride, when there is one, is on the depthwise convolution so
    the 1x1 mixing runs on the smaller map. Children ``depthwise`` and ``pointwise`` are
    :class:`~cnnlab.layers.ConvNormAct` units (``conv``/``bn``/``act``).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        kernel_size: int = 3,
        norm: str | None = "batchnorm",
        act: str | None = "relu",
    ):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise CnnlabError(
                f"DepthwiseSeparableConv needs positive channel counts, got {in_channels} -> {out_channels}"
            )
        if stride < 1 or kernel_size < 1:
            raise CnnlabError(f"DepthwiseSeparableConv stride and kernel_size must be at least 1, "
                              f"got stride={stride}, kernel_size={kernel_size}")
        self.depthwise = ConvNormAct(in_channels, in_channels, kernel_size, stride, groups=in_channels,
                                     norm=norm, act=act)
        self.pointwise = ConvNormAct(in_channels, out_channels, 1, norm=norm, act=act)
        self.in_channels = in_channels
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))
