"""MobileNet v1 (Howard et al. 2017) and MobileNetV2 (Sandler et al. 2018): CNNs for phones.

MobileNet v1 replaces every 3x3 convolution after the stem by a depthwise separable
one (a per-channel 3x3 filter, then a 1x1 channel mix), 8-9x cheaper, and adds two
knobs that trade accuracy for cost: the width multiplier ``alpha`` thins every layer
(cost ~ alpha^2) and the resolution multiplier ``rho`` shrinks the input (cost ~ rho^2).
MobileNetV2 stacks inverted residuals with linear bottlenecks: expand a narrow tensor,
filter it depthwise, project it back linearly, with the shortcut between the narrow
ends. ``MobileNetV2`` has torchvision's module names, so its state_dicts load unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormAct, ConvNormActSequential
from ..layers.inverted_residual import InvertedResidual, make_divisible
from ..layers.separable import DepthwiseSeparableConv
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

MOBILENET_V1_PAPER = Paper(
    title="MobileNets: Efficient Convolutional Neural Networks for Mobile Vision Applications",
    authors="A. G. Howard, M. Zhu, B. Chen, D. Kalenichenko, W. Wang, T. Weyand, M. Andreetto, H. Adam",
    venue="arXiv:1704.04861",
    year=2017,
)
MOBILENET_V2_PAPER = Paper(
    title="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
    authors="M. Sandler, A. Howard, M. Zhu, A. Zhmoginov, L.-C. Chen",
    venue="CVPR",
    year=2018,
)

# MobileNet v1 paper, Table 1: (output channels, stride) of the 13 depthwise separable
# layers after the 3x3/2 stem of 32 channels. The table's second-to-last "Conv dw / s2"
# maps 7x7 to 7x7, i.e. it is a stride-1 layer (a known misprint), as in the reference code.
_V1_STEM = 32
_V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1),
    (1024, 2), (1024, 1),
)

# MobileNetV2 paper, Table 2: expansion t, output channels c, repeats n, first stride s.
_V2_STEM, _V2_LAST = 32, 1280
_V2_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


def _check_multiplier(value: float, name: str, symbol: str, examples: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise CnnlabError(f"{name} (the paper's {symbol}) must be a number in (0, inf), e.g. {examples}; "
                          f"got {value!r}")
    return float(value)


def _init_weights(model: nn.Module) -> None:
    # He init (fan_out) for convolutions as in the MobileNet reference implementations,
    # unit BN, and a small normal init for the classifier so the first logits are near zero.
    init_he_fan_out(model, linear_weight=lambda weight: nn.init.normal_(weight, 0.0, 0.01))


class MobileNetV1(ClassifierModel):
    """MobileNet v1 (paper Table 1): a 3x3/2 conv, 13 depthwise separable layers, global pool, FC.

    Children: ``stem`` (:class:`~cnnlab.layers.ConvNormAct`, 32 channels), ``blocks``
    (13 :class:`~cnnlab.layers.separable.DepthwiseSeparableConv`, each with ``depthwise``
    and ``pointwise`` conv-BN-ReLU units), ``avgpool``, ``dropout`` and ``fc``. Counting
    the depthwise and pointwise convolutions separately it has the paper's 28 layers.

    ``width_mult`` is the paper's width multiplier alpha: every layer's width ``c``
    becomes ``max(8, int(alpha * c))`` (the reference code's rule). ``resolution_mult``
    is the resolution multiplier rho: it changes no weight (the network is fully
    convolutional up to the global pool) but sets the model's default input size to
    ``round(224 * rho)``, which ``cnnlab summary`` and the data tools use.
    """

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        resolution_mult: float = 1.0,
        dropout: float = 0.0,
        norm: str | None = "batchnorm",
        act: str = "relu",
    ):
        super().__init__()
        alpha = _check_multiplier(width_mult, "width_mult", "width multiplier alpha", "1.0, 0.75, 0.5 or 0.25")
        rho = _check_multiplier(resolution_mult, "resolution_mult", "resolution multiplier rho",
                                "1.0 or 192/224, 160/224, 128/224")
        size = round(224 * rho)
        if size < 1:
            raise CnnlabError(f"resolution_mult (rho) must give an input of at least 1 pixel: round(224 * rho) "
                              f"= {size} for rho={rho}; use rho >= {0.5 / 224:.4f}")
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"dropout must be in [0, 1), got {dropout}")
        self.width_mult, self.resolution_mult = alpha, rho
        self.default_input_size = (in_chans, size, size)
        self.num_classes = num_classes

        def width(channels: int) -> int:
            return max(8, int(channels * alpha))

        channels = width(_V1_STEM)
        self.stem = ConvNormAct(in_chans, channels, 3, stride=2, norm=norm, act=act)
        blocks = []
        for out_channels, stride in _V1_LAYERS:
            blocks.append(DepthwiseSeparableConv(channels, width(out_channels), stride, norm=norm, act=act))
            channels = width(out_channels)
        self.blocks = nn.Sequential(*blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.num_features = channels
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(self.dropout(x))


class MobileNetV2(ClassifierModel):
    """MobileNetV2 (paper Table 2) with torchvision's module names.

    ``features``: ``0`` the 3x3/2 stem conv-BN-ReLU6 (32 channels), ``1..17`` the
    :class:`~cnnlab.layers.inverted_residual.InvertedResidual` blocks of the seven
    stages (expansion 6, except 1 in the first), ``18`` a 1x1 conv-BN-ReLU6 to 1280
    channels; then global average pooling and ``classifier`` = dropout (0.2, as
    torchvision), ``Linear``. ``width_mult`` scales every width, rounded to multiples
    of ``round_nearest`` (8) by :func:`~cnnlab.layers.inverted_residual.make_divisible`;
    the last conv is never thinned below 1280 (paper, section 5.1).
    """

    classifier_name = "classifier.1"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        width_mult: float = 1.0,
        dropout: float = 0.2,
        round_nearest: int = 8,
        norm: str | None = "batchnorm",
        act: str = "relu6",
    ):
        super().__init__()
        width_mult = _check_multiplier(width_mult, "width_mult", "width multiplier", "1.0, 0.75, 0.5 or 1.4")
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"dropout must be in [0, 1), got {dropout}")
        if round_nearest < 1:
            raise CnnlabError(f"round_nearest must be at least 1 (8 in the paper), got {round_nearest}")
        self.num_classes = num_classes
        self.width_mult = width_mult

        channels = make_divisible(_V2_STEM * width_mult, round_nearest)
        layers: list[nn.Module] = [ConvNormActSequential(in_chans, channels, 3, stride=2, norm=norm, act=act)]
        for expand_ratio, out_channels, repeats, stride in _V2_STAGES:
            out_channels = make_divisible(out_channels * width_mult, round_nearest)
            for i in range(repeats):
                # Only a stage's first block changes the resolution; the rest keep the shape
                # and so get the residual connection.
                layers.append(InvertedResidual(channels, out_channels, stride if i == 0 else 1, expand_ratio,
                                               act=act, norm=norm))
                channels = out_channels
        self.num_features = make_divisible(_V2_LAST * max(1.0, width_mult), round_nearest)
        layers.append(ConvNormActSequential(channels, self.num_features, 1, norm=norm, act=act))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.num_features, num_classes))
        _init_weights(self)


def _v1_weight_layers() -> int:
    return 1 + 2 * len(_V1_LAYERS) + 1  # stem, depthwise + pointwise per layer, FC: 28


def _v2_weight_layers() -> int:
    # Stem, (expand +) depthwise + project per block, the last 1x1 conv and the FC.
    blocks = sum(repeats * (2 if t == 1 else 3) for t, _, repeats, _ in _V2_STAGES)
    return 1 + blocks + 1 + 1


def _register_v1(alpha: str, top1: float, macs: int, params: str, extra: str = ""):
    note = (f"MobileNet paper Table 6: {alpha} MobileNet-224 gets {top1}% ImageNet top-1 with {macs}M "
            f"multiply-adds and {params}M parameters; the paper reports no top-5.")
    return register_model(family="mobilenet", paper=MOBILENET_V1_PAPER, weight_layers=_v1_weight_layers(),
                          reference_top1=top1, reference_note=note + extra)


def _mobilenet_v1(alpha: float, num_classes: int, in_chans: int, **kwargs) -> MobileNetV1:
    # The paper's alpha is the default; a ``width_mult`` override wins.
    kwargs.setdefault("width_mult", alpha)
    return MobileNetV1(num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_v1("1.0", 70.6, 569, "4.2", " Table 7 gives 69.1/67.2/64.4% at resolution_mult 192/224, 160/224, 128/224.")
def mobilenet_v1(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """1.0 MobileNet-224: the baseline (alpha = 1, rho = 1); pass ``width_mult``/``resolution_mult`` to scale it."""
    return _mobilenet_v1(1.0, num_classes, in_chans, **kwargs)


@_register_v1("0.75", 68.4, 325, "2.6")
def mobilenet_v1_075(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.75 MobileNet-224: width multiplier alpha = 0.75."""
    return _mobilenet_v1(0.75, num_classes, in_chans, **kwargs)


@_register_v1("0.5", 63.7, 149, "1.3")
def mobilenet_v1_050(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.5 MobileNet-224: width multiplier alpha = 0.5."""
    return _mobilenet_v1(0.5, num_classes, in_chans, **kwargs)


@_register_v1("0.25", 50.6, 41, "0.5")
def mobilenet_v1_025(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV1:
    """0.25 MobileNet-224: width multiplier alpha = 0.25."""
    return _mobilenet_v1(0.25, num_classes, in_chans, **kwargs)


@register_model(
    family="mobilenet", paper=MOBILENET_V2_PAPER, weight_layers=_v2_weight_layers(),
    torchvision_name="mobilenet_v2", reference_top1=72.0,
    reference_note="MobileNetV2 paper Table 4: 72.0% ImageNet top-1 with 300M multiply-adds and 3.4M "
                   "parameters; the paper reports no top-5. torchvision documents 71.878/90.286 "
                   "(IMAGENET1K_V1) and 72.154/90.822 (IMAGENET1K_V2) for its own weights.",
)
def mobilenet_v2(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> MobileNetV2:
    """MobileNetV2 1.0-224: 17 inverted residual blocks with linear bottlenecks (paper Table 2)."""
    return MobileNetV2(num_classes=num_classes, in_chans=in_chans, **kwargs)
