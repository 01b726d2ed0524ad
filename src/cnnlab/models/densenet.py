"""DenseNet (Huang, Liu, van der Maaten, Weinberger, CVPR 2017): dense connectivity.

The lecture's "feature reuse" idea: inside a dense block every layer receives the
concatenation of the feature maps of *all* preceding layers, ``x_l = H_l([x_0, ...,
x_{l-1}])``, and contributes only ``k`` (the growth rate) new channels, so layers can be
very narrow (k = 12..48) and the block is both deep and cheap. Transition layers
between blocks downsample and, in DenseNet-BC, halve the channels.

Two layouts from one class: the ImageNet nets (7x7/2 stem + max-pool, four blocks) with
torchvision's module names, so ``torchvision.models.densenet*`` checkpoints load
unchanged; and the CIFAR DenseNet-BC (a single 3x3 conv stem of 2k channels, three
blocks of (L-4)/6 bottleneck layers) of the paper's Table 2.
"""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers.dense import DenseBlock, Transition, check_drop_rate, compressed_channels
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

DENSENET_PAPER = Paper(
    title="Densely Connected Convolutional Networks",
    authors="G. Huang, Z. Liu, L. van der Maaten, K. Q. Weinberger",
    venue="CVPR",
    year=2017,
)

_STEMS = ("imagenet", "cifar")


def _check_int(name: str, value, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise CnnlabError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def _init_weights(model: nn.Module) -> None:
    # The authors' Torch code (after fb.resnet.torch): He-normal convs with fan_out, BN
    # scale 1 / shift 0, zero classifier bias.
    init_he_fan_out(model, zero_linear_bias=True)


class DenseNet(ClassifierModel):
    """DenseNet-BC: dense blocks of bottleneck layers joined by compressing transitions.

    ``features`` is an ``nn.Sequential`` with torchvision's names: the stem (``conv0``
    7x7/2, ``norm0``, ``relu0``, ``pool0`` 3x3/2 max-pool for ``stem="imagenet"``; only
    ``conv0``, a 3x3 conv, for ``stem="cifar"``, as the paper's CIFAR nets, whose first
    dense layer starts with its own BN-ReLU), ``denseblock1..N`` (see
    :class:`~cnnlab.layers.dense.DenseBlock`), ``transition1..N-1`` (BN-ReLU-1x1 conv to
    ``floor(compression * m)`` channels, 2x2 average pool) and a final BN ``norm{N+1}``
    (``norm5`` for four blocks). Then ReLU, global average pooling and ``classifier``.

    ``growth_rate`` is the paper's ``k``; ``bn_size`` sets the bottleneck width
    ``bn_size * k`` (4 in the paper); ``compression`` is ``theta`` (0.5 in DenseNet-BC, 1
    keeps every channel); ``drop_rate`` is dropout after each dense layer's 3x3 conv.
    ``num_init_features`` defaults to ``2 * growth_rate``, the paper's choice.
    """

    classifier_name = "classifier"

    def __init__(
        self,
        growth_rate: int = 32,
        block_config: Sequence[int] = (6, 12, 24, 16),
        num_init_features: int | None = None,
        bn_size: int = 4,
        drop_rate: float = 0.0,
        compression: float = 0.5,
        stem: str = "imagenet",
        num_classes: int = 1000,
        in_chans: int = 3,
    ):
        super().__init__()
        _check_int("growth_rate", growth_rate)
        _check_int("bn_size", bn_size)
        if isinstance(compression, bool) or not isinstance(compression, (int, float)) or not 0.0 < compression <= 1.0:
            raise CnnlabError(f"compression must be in (0, 1] (0.5 in DenseNet-BC, 1 for no compression), "
                              f"got {compression!r}")
        check_drop_rate("DenseNet", drop_rate)
        block_config = tuple(block_config)
        if not block_config or any(not isinstance(n, int) or isinstance(n, bool) or n < 1 for n in block_config):
            raise CnnlabError(f"block_config must be one or more positive layer counts, got {block_config}")
        if stem not in _STEMS:
            raise CnnlabError(f"stem must be one of {', '.join(_STEMS)}, got {stem!r}")
        if num_init_features is None:
            num_init_features = 2 * growth_rate
        _check_int("num_init_features", num_init_features)
        self.num_classes = num_classes
        self.growth_rate = growth_rate
        self.block_config = block_config

        if stem == "imagenet":
            stem_layers = [
                ("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=7, stride=2, padding=3, bias=False)),
                ("norm0", nn.BatchNorm2d(num_init_features)),
                ("relu0", nn.ReLU(inplace=True)),
                ("pool0", nn.MaxPool2d(kernel_size=3, stride=2, padding=1)),
            ]
        else:
            # No BN-ReLU here: the first dense layer (and every later one) normalises the
            # stem's output itself, so a bias would be redundant too.
            stem_layers = [("conv0", nn.Conv2d(in_chans, num_init_features, kernel_size=3, padding=1, bias=False))]
        self.features = nn.Sequential(OrderedDict(stem_layers))

        channels = num_init_features
        for index, num_layers in enumerate(block_config, start=1):
            block = DenseBlock(num_layers, channels, growth_rate, bn_size=bn_size, drop_rate=drop_rate)
            self.features.add_module(f"denseblock{index}", block)
            channels = block.out_channels
            if index < len(block_config):
                transition = Transition(channels, compressed_channels(channels, compression))
                self.features.add_module(f"transition{index}", transition)
                channels = transition.out_channels
        # Dense layers are pre-activation: the concatenated output of the last block still
        # needs its BN-ReLU before pooling.
        self.features.add_module(f"norm{len(block_config) + 1}", nn.BatchNorm2d(channels))
        self.relu = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = channels
        self.classifier = nn.Linear(channels, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.features(x))


# Dense layers per block and growth rate of the ImageNet nets (paper Table 1; DenseNet-161,
# k=48, is from the authors' released models). All have a 2k-channel stem.
_IMAGENET_CONFIGS: dict[int, tuple[int, tuple[int, int, int, int]]] = {
    121: (32, (6, 12, 24, 16)),
    161: (48, (6, 12, 36, 24)),
    169: (32, (6, 12, 32, 32)),
    201: (32, (6, 12, 48, 32)),
}


def _densenet(depth: int, num_classes: int, in_chans: int, **kwargs) -> DenseNet:
    growth_rate, block_config = _IMAGENET_CONFIGS[depth]
    kwargs.setdefault("growth_rate", growth_rate)
    kwargs.setdefault("block_config", block_config)
    return DenseNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


def cifar_densenet_bc(depth: int = 100, growth_rate: int = 12, num_classes: int = 10, in_chans: int = 3,
                      **kwargs) -> DenseNet:
    """DenseNet-BC for 32x32 images (DenseNet paper, section 4.2 and Table 2).

    A 3x3 conv stem of ``2k`` channels, three dense blocks of ``(L-4)/6`` bottleneck
    layers (two convs each) on 32x32, 16x16 and 8x8 maps, transitions with compression
    0.5, global average pooling and a linear classifier: ``3 * 2 * (L-4)/6`` convs in
    the blocks + stem + 2 transitions + classifier = ``L`` weight layers.
    """
    if not isinstance(depth, int) or isinstance(depth, bool) or depth < 10 or (depth - 4) % 6:
        raise CnnlabError(f"DenseNet-BC depth must be 6n+4 with n >= 1 (e.g. 40, 100, 190, 250): (L-4)/6 "
                          f"bottleneck layers per block, got {depth!r}")
    layers = (depth - 4) // 6
    kwargs.setdefault("block_config", (layers, layers, layers))
    kwargs.setdefault("stem", "cifar")
    kwargs.setdefault("compression", 0.5)
    return DenseNet(growth_rate=growth_rate, num_classes=num_classes, in_chans=in_chans, **kwargs)


_TV_NOTE = ("torchvision's documented ImageNet-1K val accuracy of its {name} weights (single 224 crop of a "
            "256 resize); the authors' Torch model reports {err}% top-1 error, 1-crop (DenseNet README).")


@register_model(
    family="densenet", paper=DENSENET_PAPER, weight_layers=121, torchvision_name="densenet121",
    reference_top1=74.434, reference_top5=91.972,
    reference_note=_TV_NOTE.format(name="densenet121", err="25.0"),
)
def densenet121(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-121 (k=32): dense blocks of 6, 12, 24, 16 bottleneck layers (paper Table 1)."""
    return _densenet(121, num_classes, in_chans, **kwargs)


@register_model(
    family="densenet", paper=DENSENET_PAPER, weight_layers=161, torchvision_name="densenet161",
    reference_top1=77.138, reference_top5=93.560,
    reference_note=_TV_NOTE.format(name="densenet161", err="22.2")
    + " DenseNet-161 is not in the paper's Table 1; it is one of the authors' released models.",
)
def densenet161(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-161 (k=48, 96-channel stem): blocks of 6, 12, 36, 24 layers, the widest released net."""
    return _densenet(161, num_classes, in_chans, **kwargs)


@register_model(
    family="densenet", paper=DENSENET_PAPER, weight_layers=169, torchvision_name="densenet169",
    reference_top1=75.600, reference_top5=92.806,
    reference_note=_TV_NOTE.format(name="densenet169", err="23.6"),
)
def densenet169(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-169 (k=32): dense blocks of 6, 12, 32, 32 bottleneck layers (paper Table 1)."""
    return _densenet(169, num_classes, in_chans, **kwargs)


@register_model(
    family="densenet", paper=DENSENET_PAPER, weight_layers=201, torchvision_name="densenet201",
    reference_top1=76.896, reference_top5=93.370,
    reference_note=_TV_NOTE.format(name="densenet201", err="22.5"),
)
def densenet201(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-201 (k=32): dense blocks of 6, 12, 48, 32 bottleneck layers (paper Table 1)."""
    return _densenet(201, num_classes, in_chans, **kwargs)


# Reference top-1 = 100 - the paper's Table 2 CIFAR-10+ test error (standard 4-pixel
# pad/crop + flip augmentation, no dropout).
_TABLE2 = ("DenseNet paper Table 2: CIFAR-10+ test error {err}% (pad/crop/flip augmentation); "
           "the paper lists {params} parameters.")


def _register_bc(depth: int, error: float, params: str):
    return register_model(
        family="densenet", paper=DENSENET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
        weight_layers=depth, reference_top1=round(100 - error, 2),
        reference_note=_TABLE2.format(err=error, params=params),
    )


@_register_bc(100, 4.51, "0.8M")
def densenet_bc100_k12(num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC (L=100, k=12) for CIFAR: three blocks of 16 bottleneck layers, 0.8M parameters."""
    return cifar_densenet_bc(100, kwargs.pop("growth_rate", 12), num_classes, in_chans, **kwargs)


@_register_bc(250, 3.62, "15.3M")
def densenet_bc250_k24(num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC (L=250, k=24) for CIFAR: three blocks of 41 bottleneck layers, 15.3M parameters."""
    return cifar_densenet_bc(250, kwargs.pop("growth_rate", 24), num_classes, in_chans, **kwargs)


@_register_bc(190, 3.46, "25.6M")
def densenet_bc190_k40(num_classes: int = 10, in_chans: int = 3, **kwargs) -> DenseNet:
    """DenseNet-BC (L=190, k=40) for CIFAR: three blocks of 31 bottleneck layers, 25.6M parameters."""
    return cifar_densenet_bc(190, kwargs.pop("growth_rate", 40), num_classes, in_chans, **kwargs)
