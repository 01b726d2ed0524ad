"""A plain stacked network whose every layer is a choice: the macro search space (Zoph & Le, ICLR 2017).

"Neural Architecture Search with Reinforcement Learning" searched whole CIFAR-10 networks
layer by layer: for each convolutional layer the controller RNN picked the filter size and
the number of filters (and, in a larger space, the stride and skip connections). This is
the small version of that space that ``cnnlab nas --space macro`` searches: each layer is
one operation, a 3x3 or 5x5 convolution or a 3x3 or 5x5 depthwise separable convolution
(MobileNet's unit, :class:`~cnnlab.layers.DepthwiseSeparableConv`), at one width; the
resolution halves at fixed layers (a third and two thirds of the depth, where ENAS's macro
space pools), so that every choice is an operation and a width, never a shape to repair.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormAct, DepthwiseSeparableConv
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

NAS_RL_PAPER = Paper(
    title="Neural Architecture Search with Reinforcement Learning",
    authors="B. Zoph, Q. V. Le",
    venue="ICLR",
    year=2017,
)

#: The operations a layer may be.
MACRO_OPS = ("conv3x3", "conv5x5", "sep3x3", "sep5x5")

# A plain VGG-like default: two layers a stage, widths doubling at each reduction.
DEFAULT_LAYERS = (("conv3x3", 32), ("conv3x3", 32), ("conv3x3", 64), ("conv3x3", 64), ("conv3x3", 128),
                  ("conv3x3", 128))


def reduction_layers(depth: int) -> tuple[int, ...]:
    """The layers that halve the resolution (stride 2): the first of the second and third thirds."""
    return tuple(sorted({depth // 3, 2 * depth // 3} - {0}))


def _layer(op: str, in_channels: int, width: int, stride: int) -> nn.Module:
    kernel = int(op[-1])
    if op.startswith("sep"):
        return DepthwiseSeparableConv(in_channels, width, stride=stride, kernel_size=kernel)
    return ConvNormAct(in_channels, width, kernel, stride=stride)


class MacroNet(ClassifierModel):
    """``features``: one conv-BN-ReLU or separable unit per entry of ``layers`` (``[op, width]``),
    stride 2 at :func:`reduction_layers`; then global average pooling and ``fc``."""

    classifier_name = "fc"

    def __init__(self, num_classes: int = 10, in_chans: int = 3, layers: list | None = None):
        super().__init__()
        self._check_sizes(num_classes, in_chans)
        layers = [list(layer) for layer in (DEFAULT_LAYERS if layers is None else layers)]
        if not layers:
            raise CnnlabError("layers must list at least one [op, width]")
        strides = reduction_layers(len(layers))
        units, channels = [], in_chans
        for index, layer in enumerate(layers):
            if len(layer) != 2 or layer[0] not in MACRO_OPS or isinstance(layer[1], bool) \
                    or not isinstance(layer[1], int) or layer[1] < 1:
                raise CnnlabError(f"layer {index} must be [op, width] with op one of {', '.join(MACRO_OPS)} and a "
                                  f"positive width, got {layer!r}")
            units.append(_layer(layer[0], channels, layer[1], 2 if index in strides else 1))
            channels = layer[1]
        self.features = nn.Sequential(*units)
        self.num_classes = num_classes
        self.num_features = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels, num_classes)
        init_he_fan_out(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@register_model(family="nas", paper=NAS_RL_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
                weight_layers=7)
def nas_macro(num_classes: int = 10, in_chans: int = 3, **kwargs) -> MacroNet:
    """A plain net of the macro search space; by default six 3x3 conv layers, 32-32-64-64-128-128 wide
    (``layers`` builds a NAS child). The paper's own networks (15-39 layers with skip connections)
    are outside this small space, so there is no reference accuracy."""
    return MacroNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
