"""Squeeze-and-excitation (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018)."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from .activations import get_activation


class SqueezeExcite(nn.Module):
    """Channel attention: global average pool, FC C->C/r, activation, FC C/r->C, sigmoid, rescale.

    The "squeeze" summarises each channel by its mean over the feature map; the
    "excitation" is a two-layer bottleneck MLP whose sigmoid output reweights the
    channels, so the block costs ``2 * C * C/r`` weights (32,768 for C=512, r=16) plus
    biases. The two FC layers are 1x1 convolutions named ``fc1``/``fc2`` (torchvision's
    ``SqueezeExcitation`` names, so MobileNet/EfficientNet checkpoints load unchanged);
    on a 1x1 map a 1x1 convolution is exactly a fully connected layer.

    ``squeeze_channels`` sets C/r directly (EfficientNet derives it from the block's
    input width, not from the expanded width); otherwise it is ``channels // reduction``.
    """

    def __init__(
        self,
        channels: int,
        reduction: int = 16,
        squeeze_channels: int | None = None,
        act: str = "relu",
        gate: str = "sigmoid",
    ):
        super().__init__()
        if channels < 1:
            raise CnnlabError(f"SqueezeExcite channels must be at least 1, got {channels}")
        if squeeze_channels is None:
            if reduction < 1:
                raise CnnlabError(f"SE reduction ratio r must be at least 1, got {reduction}")
            squeeze_channels = max(1, channels // reduction)
        if squeeze_channels < 1:
            raise CnnlabError(f"SE squeeze_channels must be at least 1, got {squeeze_channels}")
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, squeeze_channels, 1)
        self.fc2 = nn.Conv2d(squeeze_channels, channels, 1)
        self.activation = get_activation(act, inplace=True)
        self.scale_activation = get_activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.avgpool(x)
        scale = self.fc2(self.activation(self.fc1(scale)))
        return x * self.scale_activation(scale)
