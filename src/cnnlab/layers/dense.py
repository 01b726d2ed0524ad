"""Dense connectivity (Huang et al., "Densely Connected Convolutional Networks", CVPR 2017).

Where a residual block *adds* its input to its output, a dense block *concatenates*:
layer ``l`` of a block computes ``x_l = H_l([x_0, x_1, ..., x_{l-1}])`` from the
channel-wise concatenation of the block input and of every earlier layer's output, and
adds only ``growth_rate`` (``k``) new channels. Features are reused instead of
re-learned, so each layer can be narrow. Between blocks a transition layer (BN-ReLU-1x1
conv-2x2 average pool) halves the resolution and, in DenseNet-C/BC, compresses the
channels by a factor ``theta``.

Child names follow torchvision's ``densenet`` (``denselayerN`` with ``norm1``/``conv1``/
``norm2``/``conv2``; transitions with ``norm``/``conv``/``pool``) so its checkpoints load
unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError


def _check_positive_int(kind: str, name: str, value, valid: str = ">= 1") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise CnnlabError(f"{kind}: {name} must be an integer {valid}, got {value!r}")


def check_drop_rate(kind: str, drop_rate: float) -> None:
    """Dropout probabilities live in [0, 1): 1 would zero every activation."""
    if not isinstance(drop_rate, (int, float)) or isinstance(drop_rate, bool) or not 0.0 <= drop_rate < 1.0:
        raise CnnlabError(f"{kind}: drop_rate must be in [0, 1), got {drop_rate!r}")


class DenseLayer(nn.Module):
    """One composite function ``H_l`` of a DenseNet-B block: the bottleneck layer.

    Concatenates all its inputs along channels, then BN-ReLU-1x1 conv to
    ``bn_size * growth_rate`` channels (the paper's "bottleneck", 4k) and BN-ReLU-3x3 conv
    to ``growth_rate`` new channels; dropout after that when ``drop_rate > 0`` (the
    paper's choice for its runs without augmentation). Pre-activation order (BN-ReLU
    before each conv) as in the paper, section 3. Children: ``norm1``, ``relu1``,
    ``conv1``, ``norm2``, ``relu2``, ``conv2``.

    ``forward`` takes the list of feature maps seen so far (block input and every
    earlier layer's output) or a single tensor, and returns only the new ``growth_rate``
    channels; :class:`DenseBlock` does the bookkeeping.
    """

    def __init__(self, in_channels: int, growth_rate: int, bn_size: int = 4, drop_rate: float = 0.0):
        super().__init__()
        _check_positive_int("DenseLayer", "in_channels", in_channels)
        _check_positive_int("DenseLayer", "growth_rate", growth_rate)
        _check_positive_int("DenseLayer", "bn_size", bn_size)
        check_drop_rate("DenseLayer", drop_rate)
        width = bn_size * growth_rate
        self.in_channels = in_channels
        self.growth_rate = growth_rate
        self.drop_rate = float(drop_rate)
        self.norm1 = nn.BatchNorm2d(in_channels)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=1, stride=1, bias=False)
        self.norm2 = nn.BatchNorm2d(width)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(width, growth_rate, kernel_size=3, stride=1, padding=1, bias=False)

    def forward(self, inputs: torch.Tensor | list[torch.Tensor]) -> torch.Tensor:
        x = torch.cat(inputs, 1) if isinstance(inputs, (list, tuple)) else inputs
        if x.shape[1] != self.in_channels:
            raise CnnlabError(f"DenseLayer expects {self.in_channels} input channels in all, got {x.shape[1]}")
        # In-place ReLUs are safe: each acts on a fresh BN output, never on a stored feature map.
        x = self.conv1(self.relu1(self.norm1(x)))
        x = self.conv2(self.relu2(self.norm2(x)))
        if self.drop_rate > 0:
            x = F.dropout(x, p=self.drop_rate, training=self.training)
        return x


class DenseBlock(nn.ModuleDict):
    """``num_layers`` :class:`DenseLayer` s, each fed the concatenation of all earlier maps.

    With ``k_0`` input channels, layer ``l`` (1-based) sees ``k_0 + (l-1) * k`` channels
    and the block outputs the concatenation of its input and all ``num_layers`` new maps,
    ``k_0 + num_layers * k`` channels at the input's resolution. Children:
    ``denselayer1`` .. ``denselayerN``.
    """

    def __init__(self, num_layers: int, in_channels: int, growth_rate: int, bn_size: int = 4,
                 drop_rate: float = 0.0):
        super().__init__()
        _check_positive_int("DenseBlock", "num_layers", num_layers)
        self.in_channels = in_channels
        self.out_channels = in_channels + num_layers * growth_rate
        for index in range(num_layers):
            self[f"denselayer{index + 1}"] = DenseLayer(in_channels + index * growth_rate, growth_rate,
                                                        bn_size=bn_size, drop_rate=drop_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The list keeps every map once; each layer concatenates what it needs (all of it).
        features = [x]
        for layer in self.values():
            features.append(layer(features))
        return torch.cat(features, 1)


def compressed_channels(channels: int, compression: float) -> int:
    """Output width of a transition layer: ``floor(theta * m)`` (DenseNet paper, section 3)."""
    return max(1, int(math.floor(compression * channels)))


class Transition(nn.Sequential):
    """Transition layer between dense blocks: BN-ReLU-1x1 conv-2x2 average pool, stride 2.

    The 1x1 conv maps ``in_channels`` to ``out_channels`` (``floor(theta * m)`` with
    compression ``theta``; the paper's DenseNet-C/BC use ``theta = 0.5``). Children:
    ``norm``, ``relu``, ``conv``, ``pool``.
    """

    def __init__(self, in_channels: int, out_channels: int):
        _check_positive_int("Transition", "in_channels", in_channels)
        _check_positive_int("Transition", "out_channels", out_channels)
        super().__init__()
        self.norm = nn.BatchNorm2d(in_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=1, stride=1, bias=False)
        self.pool = nn.AvgPool2d(kernel_size=2, stride=2)
        self.out_channels = out_channels
