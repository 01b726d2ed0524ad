"""Convolution followed by normalisation and activation: the unit most CNNs are made of."""
from __future__ import annotations

import torch
from torch import nn

from .activations import get_activation
from .norm import get_norm


class ConvNormAct(nn.Module):
    """``conv -> norm -> act`` with 'same' padding by default.

    Children are named ``conv``, ``bn`` and ``act`` whatever the normalisation is, the
    names torchvision uses in GoogLeNet's ``BasicConv2d``, so its checkpoints load
    unchanged. The convolution has no bias when a normalisation follows (the norm's
    shift makes it redundant).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int | None = None,
        groups: int = 1,
        dilation: int = 1,
        norm: str | None = "batchnorm",
        act: str | None = "relu",
        bias: bool | None = None,
        inplace: bool = True,
        **norm_kwargs,
    ):
        super().__init__()
        if padding is None:
            padding = dilation * (kernel_size - 1) // 2
        if bias is None:
            bias = norm in (None, "none")
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                              dilation=dilation, groups=groups, bias=bias)
        self.bn = get_norm(norm, out_channels, **norm_kwargs)
        self.act = get_activation(act, inplace=inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class ConvNormActSequential(nn.Sequential):
    """``conv -> norm -> act`` as an ``nn.Sequential``, children numbered ``0``, ``1``, ``2``.

    The same unit as :class:`ConvNormAct`, with the same arguments, laid out like
    torchvision's ``Conv2dNormActivation`` (MobileNet, EfficientNet, ConvNeXt stems),
    whose checkpoints address the parts by index (``features.0.1.running_mean``). As
    there, a missing norm or activation is left out rather than replaced by an identity,
    so the indices of what follows do not shift.
    """

    def __init__(self, *args, **kwargs):
        unit = ConvNormAct(*args, **kwargs)
        super().__init__(*(m for m in (unit.conv, unit.bn, unit.act) if not isinstance(m, nn.Identity)))
        self.out_channels = unit.conv.out_channels
