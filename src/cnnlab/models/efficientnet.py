"""EfficientNet B0-B7 (Tan & Le 2019): one baseline, scaled in depth, width and resolution together.

The lecture's question: given twice the compute, should a CNN get deeper, wider, or
see larger images? The paper's answer is all three at fixed ratios, the *compound
scaling* rule: for a coefficient ``phi``, depth x ``alpha^phi``, width x ``beta^phi``,
resolution x ``gamma^phi`` with ``alpha = 1.2, beta = 1.1, gamma = 1.15`` found by a
small grid search at ``phi = 1`` under ``alpha * beta^2 * gamma^2 ~ 2`` (FLOPs grow
with depth, width squared and resolution squared, so each step of ``phi`` about
doubles them). The baseline B0 is a MobileNetV2-like network of MBConv blocks (with
squeeze-and-excitation and SiLU) found by architecture search.

Here the B0 stage table (paper Table 1) is written once; every B``phi`` is derived from
it by a (width, depth) multiplier pair: widths rounded to multiples of 8, never below
90% of the scaled value, and block repeats rounded up. :func:`compound_scaling` is the
rule itself. The registered ``efficientnet_b0..b7`` use the coefficients of the
released code instead (:data:`RELEASED_COEFFICIENTS`), which torchvision's checkpoints
were trained with. Those lie near the rule but are not its values rounded (their depth
is 8-19% below ``1.2^phi``; :func:`released_vs_rule` tabulates both), so
``scaling="compound"`` builds the pure-rule network instead. ``EfficientNet`` has torchvision's module names, so its checkpoints load
unchanged.
"""
from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormActSequential
from ..layers.inverted_residual import MBConv, make_divisible
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

EFFICIENTNET_PAPER = Paper(
    title="EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks",
    authors="M. Tan, Q. V. Le",
    venue="ICML",
    year=2019,
)

# Paper, section 3.3 (equation 3) and 4: the grid-searched bases of compound scaling.
ALPHA, BETA, GAMMA = 1.2, 1.1, 1.15  # depth, width, resolution
PHI_RANGE = (0, 7)  # B0 .. B7
BASE_RESOLUTION = 224


@dataclass(frozen=True)
class StageConfig:
    """One row of the B0 table: MBConv expansion, depthwise kernel, first stride, in/out width, repeats."""

    expand_ratio: int
    kernel_size: int
    stride: int
    in_channels: int
    out_channels: int
    repeats: int


# EfficientNet-B0, paper Table 1, stages 2-8 (stage 1 is the 3x3/2 stem of 32 channels,
# stage 9 the 1x1 conv to 4x the last width, 1280, pooling and the classifier).
B0_STAGES: tuple[StageConfig, ...] = (
    StageConfig(1, 3, 1, 32, 16, 1),
    StageConfig(6, 3, 2, 16, 24, 2),
    StageConfig(6, 5, 2, 24, 40, 2),
    StageConfig(6, 3, 2, 40, 80, 3),
    StageConfig(6, 5, 1, 80, 112, 3),
    StageConfig(6, 5, 2, 112, 192, 4),
    StageConfig(6, 3, 1, 192, 320, 1),
)


@dataclass(frozen=True)
class Scaling:
    """Multipliers of one EfficientNet: width, depth, input resolution (pixels) and classifier dropout."""

    width: float
    depth: float
    resolution: int
    dropout: float


@dataclass(frozen=True)
class CompoundScaling:
    """The exact compound rule at one ``phi``: depth ``alpha^phi``, width ``beta^phi``, resolution ``gamma^phi``."""

    phi: int
    depth: float
    width: float
    resolution: float

    @property
    def flops(self) -> float:
        """FLOPs multiplier ``(alpha * beta^2 * gamma^2)^phi`` (~1.92^phi).

        FLOPs grow linearly with depth and quadratically with width and resolution.
        """
        return self.depth * self.width ** 2 * self.resolution ** 2

    @property
    def input_size(self) -> int:
        """Input side in pixels, ``round(224 * gamma^phi)``."""
        return round(BASE_RESOLUTION * self.resolution)


# (width, depth, resolution, dropout) per phi as in the released TensorFlow code and
# torchvision. Dropout grows from 0.2 to 0.5 with model size (paper, section 5.2).
RELEASED_COEFFICIENTS: dict[int, Scaling] = {
    0: Scaling(1.0, 1.0, 224, 0.2),
    1: Scaling(1.0, 1.1, 240, 0.2),
    2: Scaling(1.1, 1.2, 260, 0.3),
    3: Scaling(1.2, 1.4, 300, 0.3),
    4: Scaling(1.4, 1.8, 380, 0.4),
    5: Scaling(1.6, 2.2, 456, 0.4),
    6: Scaling(1.8, 2.6, 528, 0.5),
    7: Scaling(2.0, 3.1, 600, 0.5),
}

# torchvision builds B5-B7 with TensorFlow's BatchNorm constants (eps 1e-3, momentum
# 0.01 = TF's decay 0.99) and B0-B4 with PyTorch's defaults; matching it keeps the
# logits of its checkpoints identical.
_TF_BATCHNORM = {"eps": 1e-3, "momentum": 0.01}


def _check_phi(phi) -> int:
    try:
        if isinstance(phi, bool):
            raise TypeError
        value = operator.index(phi)
    except TypeError:
        raise CnnlabError(f"EfficientNet phi must be an integer in {PHI_RANGE[0]}..{PHI_RANGE[1]} "
                          f"(B0..B7), got {phi!r}") from None
    if not PHI_RANGE[0] <= value <= PHI_RANGE[1]:
        raise CnnlabError(f"EfficientNet phi must be in {PHI_RANGE[0]}..{PHI_RANGE[1]} (B0..B7), got {phi}")
    return value


def compound_scaling(phi: int) -> CompoundScaling:
    """The paper's compound scaling rule (equation 3): depth ``1.2^phi``, width ``1.1^phi``, resolution ``1.15^phi``."""
    phi = _check_phi(phi)
    return CompoundScaling(phi=phi, depth=ALPHA ** phi, width=BETA ** phi, resolution=GAMMA ** phi)


def released_vs_rule() -> list[dict]:
    """The released B0-B7 coefficients next to the exact rule, with their ratios.

    The released ones are not the rule evaluated at integer ``phi`` and rounded: they
    grow monotonically with ``phi`` as the rule does, but for B1-B7 their depth is 8-19%
    below ``1.2^phi``; their width is 4-10% below ``1.1^phi`` for B1-B4 and within 3% of
    it for B5-B7; their resolution is 12% below to 2% above ``224 * 1.15^phi``. Only B0
    (``phi = 0``, all multipliers 1) coincides with the rule.
    """
    rows = []
    for phi, released in RELEASED_COEFFICIENTS.items():
        rule = compound_scaling(phi)
        rows.append({
            "phi": phi,
            "rule_width": rule.width, "released_width": released.width,
            "rule_depth": rule.depth, "released_depth": released.depth,
            "rule_resolution": rule.input_size, "released_resolution": released.resolution,
            "width_ratio": released.width / rule.width,
            "depth_ratio": released.depth / rule.depth,
            "resolution_ratio": released.resolution / (BASE_RESOLUTION * rule.resolution),
        })
    return rows


def scaling_for(phi: int, scaling: str = "released") -> Scaling:
    """Multipliers of B``phi``: the released coefficients, or the exact rule (``scaling="compound"``)."""
    phi = _check_phi(phi)
    if scaling == "released":
        return RELEASED_COEFFICIENTS[phi]
    if scaling == "compound":
        rule = compound_scaling(phi)
        return Scaling(rule.width, rule.depth, rule.input_size, RELEASED_COEFFICIENTS[phi].dropout)
    raise CnnlabError(f"EfficientNet scaling must be 'released' or 'compound', got {scaling!r}")


def scale_stages(width: float, depth: float, stages: tuple[StageConfig, ...] = B0_STAGES) -> list[StageConfig]:
    """The B0 table scaled: widths ``make_divisible(c * width, 8)``, repeats ``ceil(n * depth)``."""
    for name, value in (("width", width), ("depth", depth)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
            raise CnnlabError(f"EfficientNet {name} multiplier must be a number in (0, inf), got {value!r}")
    return [
        StageConfig(s.expand_ratio, s.kernel_size, s.stride,
                    make_divisible(s.in_channels * width, 8), make_divisible(s.out_channels * width, 8),
                    math.ceil(s.repeats * depth))
        for s in stages
    ]


def _init_weights(model: nn.Module) -> None:
    # He init (fan_out) for convolutions; the classifier uniform in +-1/sqrt(outputs),
    # the reference implementation's dense initialiser.
    def uniform_by_outputs(weight: torch.Tensor) -> None:
        bound = 1.0 / math.sqrt(weight.shape[0])
        nn.init.uniform_(weight, -bound, bound)

    init_he_fan_out(model, linear_weight=uniform_by_outputs)


class EfficientNet(ClassifierModel):
    """EfficientNet with torchvision's module names.

    ``features``: ``0`` the 3x3/2 stem conv-BN-SiLU, ``1..7`` the seven MBConv stages
    (each an ``nn.Sequential`` of :class:`~cnnlab.layers.inverted_residual.MBConv`; a
    stage's first block strides and changes the width, the others are residual), ``8``
    a 1x1 conv-BN-SiLU to 4x the last stage's width; then global average pooling and
    ``classifier`` = dropout, ``Linear``. Stochastic depth rises linearly over the
    blocks, block ``i`` of ``N`` dropping its branch with probability
    ``drop_path_rate * i / N`` (torchvision's schedule, 0 for the first block).
    ``resolution`` is recorded as the model's default input size; ``norm_kwargs`` go to every
    normalisation layer (B5-B7 use TensorFlow's BN eps and momentum).
    """

    classifier_name = "classifier.1"

    def __init__(
        self,
        stages: list[StageConfig],
        num_classes: int = 1000,
        in_chans: int = 3,
        dropout: float = 0.2,
        drop_path_rate: float = 0.2,
        resolution: int = BASE_RESOLUTION,
        norm: str | None = "batchnorm",
        act: str = "silu",
        norm_kwargs: dict | None = None,
    ):
        super().__init__()
        norm_kwargs = dict(norm_kwargs or {})
        if not stages:
            raise CnnlabError("EfficientNet needs at least one MBConv stage")
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"dropout must be in [0, 1), got {dropout}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise CnnlabError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.num_classes = num_classes
        self.stages_config = list(stages)
        self.default_input_size = (in_chans, resolution, resolution)

        layers: list[nn.Module] = [ConvNormActSequential(in_chans, stages[0].in_channels, 3, stride=2,
                                                         norm=norm, act=act, **norm_kwargs)]
        total_blocks = sum(s.repeats for s in stages)
        block_index = 0
        for stage in stages:
            blocks = []
            channels = stage.in_channels
            for i in range(stage.repeats):
                blocks.append(MBConv(channels, stage.out_channels, stage.stride if i == 0 else 1,
                                     stage.expand_ratio, stage.kernel_size, act=act,
                                     drop_path=drop_path_rate * block_index / total_blocks,
                                     norm=norm, **norm_kwargs))
                channels = stage.out_channels
                block_index += 1
            layers.append(nn.Sequential(*blocks))
        self.num_features = 4 * stages[-1].out_channels
        layers.append(ConvNormActSequential(stages[-1].out_channels, self.num_features, 1,
                                            norm=norm, act=act, **norm_kwargs))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(self.num_features, num_classes))
        _init_weights(self)


def efficientnet(phi: int, num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                 **kwargs) -> EfficientNet:
    """EfficientNet-B``phi``: the B0 table scaled by the released coefficients or the exact compound rule."""
    coefficients = scaling_for(phi, scaling)
    kwargs.setdefault("dropout", coefficients.dropout)
    kwargs.setdefault("resolution", coefficients.resolution)
    if _check_phi(phi) >= 5:
        kwargs.setdefault("norm_kwargs", _TF_BATCHNORM)
    return EfficientNet(scale_stages(coefficients.width, coefficients.depth), num_classes=num_classes,
                        in_chans=in_chans, **kwargs)


def _weight_layers(phi: int) -> int:
    # Stem, (expand +) depthwise + project per MBConv, head conv, FC; the two 1x1 convs of
    # each squeeze-and-excitation branch are not counted (a side branch, like a ResNet's
    # projection shortcuts).
    released = RELEASED_COEFFICIENTS[phi]
    stages = scale_stages(released.width, released.depth)
    return 1 + sum(s.repeats * (2 if s.expand_ratio == 1 else 3) for s in stages) + 1 + 1


_TORCHVISION_NOTE = ("torchvision's documented ImageNet accuracy of its IMAGENET1K_V1 weights (ported from the "
                     "paper's TensorFlow checkpoints), single {crop}x{crop} crop; the paper's own figures are "
                     "in its Table 2.")

# torchvision's evaluation crop per model (B2's is 288, not the paper's 260).
_TORCHVISION_ACCURACY = {
    0: (77.692, 93.532, 224), 1: (78.642, 94.186, 240), 2: (80.608, 95.310, 288), 3: (82.008, 96.054, 300),
    4: (83.384, 96.594, 380), 5: (83.444, 96.628, 456), 6: (84.008, 96.916, 528), 7: (84.122, 96.908, 600),
}


def _register(phi: int):
    top1, top5, crop = _TORCHVISION_ACCURACY[phi]
    resolution = RELEASED_COEFFICIENTS[phi].resolution
    return register_model(
        family="efficientnet", paper=EFFICIENTNET_PAPER, input_size=(3, resolution, resolution),
        weight_layers=_weight_layers(phi), torchvision_name=f"efficientnet_b{phi}",
        reference_top1=top1, reference_top5=top5, reference_note=_TORCHVISION_NOTE.format(crop=crop),
    )


@_register(0)
def efficientnet_b0(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B0 (phi = 0): the searched baseline of paper Table 1, 224x224."""
    return efficientnet(0, num_classes, in_chans, scaling, **kwargs)


@_register(1)
def efficientnet_b1(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B1 (phi = 1): width 1.0, depth 1.1, 240x240 (released coefficients)."""
    return efficientnet(1, num_classes, in_chans, scaling, **kwargs)


@_register(2)
def efficientnet_b2(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B2 (phi = 2): width 1.1, depth 1.2, 260x260 (released coefficients)."""
    return efficientnet(2, num_classes, in_chans, scaling, **kwargs)


@_register(3)
def efficientnet_b3(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B3 (phi = 3): width 1.2, depth 1.4, 300x300 (released coefficients)."""
    return efficientnet(3, num_classes, in_chans, scaling, **kwargs)


@_register(4)
def efficientnet_b4(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B4 (phi = 4): width 1.4, depth 1.8, 380x380 (released coefficients)."""
    return efficientnet(4, num_classes, in_chans, scaling, **kwargs)


@_register(5)
def efficientnet_b5(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B5 (phi = 5): width 1.6, depth 2.2, 456x456 (released coefficients)."""
    return efficientnet(5, num_classes, in_chans, scaling, **kwargs)


@_register(6)
def efficientnet_b6(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B6 (phi = 6): width 1.8, depth 2.6, 528x528 (released coefficients)."""
    return efficientnet(6, num_classes, in_chans, scaling, **kwargs)


@_register(7)
def efficientnet_b7(num_classes: int = 1000, in_chans: int = 3, scaling: str = "released",
                    **kwargs) -> EfficientNet:
    """EfficientNet-B7 (phi = 7): width 2.0, depth 3.1, 600x600 (released coefficients)."""
    return efficientnet(7, num_classes, in_chans, scaling, **kwargs)
