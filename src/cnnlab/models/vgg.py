"""VGG (Simonyan & Zisserman 2015): stacks of 3x3 convolutions, configurations A, B, D, E."""
from __future__ import annotations

from torch import nn

from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import FCHeadModel, fc_head

VGG_PAPER = Paper(
    title="Very Deep Convolutional Networks for Large-Scale Image Recognition",
    authors="K. Simonyan, A. Zisserman",
    venue="ICLR",
    year=2015,
)

# Table 1 of the paper: numbers are 3x3 conv widths, "M" a 2x2 stride-2 max-pool.
VGG_CONFIGS: dict[int, list[int | str]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}

# Table 3 of the paper (ILSVRC-2012 val, single test scale): top-1 / top-5 error in percent.
_REFERENCE_ERRORS = {11: (29.6, 10.4), 13: (28.7, 9.9), 16: (25.6, 8.1), 19: (25.5, 8.0)}


def make_vgg_features(config: list[int | str], in_chans: int = 3, batch_norm: bool = False) -> nn.Sequential:
    """The convolutional body: 3x3 stride-1 pad-1 convs (+BN) + ReLU, 2x2 max-pools.

    Three stacked 3x3 convs see a 7x7 region with 27C^2 weights instead of one 7x7
    conv's 49C^2, with three non-linearities instead of one (the lecture's argument).
    """
    layers: list[nn.Module] = []
    channels = in_chans
    for item in config:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            continue
        layers.append(nn.Conv2d(channels, item, kernel_size=3, padding=1))
        if batch_norm:
            layers.append(nn.BatchNorm2d(item))
        layers.append(nn.ReLU(inplace=True))
        channels = item
    return nn.Sequential(*layers)


class VGG(FCHeadModel):
    """VGG: ``features`` (conv body), ``avgpool`` (adaptive to 7x7) and ``classifier`` FC-FC-FC.

    The FC head is AlexNet's (dropout after FC6 and FC7). Key names and parameter shapes
    equal torchvision's, so its checkpoints load unchanged.
    """

    classifier_name = "classifier.6"

    def __init__(self, features: nn.Sequential, num_classes: int = 1000, dropout: float = 0.5,
                 init_weights: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = fc_head(512 * 7 * 7, num_classes, dropout)
        if init_weights:
            # The paper pre-trained shallow nets to initialise deep ones; He init (fan_out,
            # as torchvision) made that unnecessary. The FC layers start at N(0, 0.01).
            init_he_fan_out(self, linear_weight=lambda weight: nn.init.normal_(weight, 0.0, 0.01))


def _vgg(depth: int, batch_norm: bool, num_classes: int, in_chans: int, **kwargs) -> VGG:
    return VGG(make_vgg_features(VGG_CONFIGS[depth], in_chans, batch_norm), num_classes, **kwargs)


def _register(depth: int, batch_norm: bool):
    top1_error, top5_error = _REFERENCE_ERRORS[depth]
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")
    if batch_norm:
        reference = dict(reference_note="the paper predates batch normalisation: no reference accuracy")
    else:
        reference = dict(
            reference_top1=round(100 - top1_error, 2),
            reference_top5=round(100 - top5_error, 2),
            reference_note=f"ILSVRC-2012 val, single test scale (paper Table 3: {top1_error}% top-1, "
            f"{top5_error}% top-5 error)",
        )

    def builder(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> VGG:
        return _vgg(depth, batch_norm, num_classes, in_chans, dropout=dropout)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = (f"VGG-{depth} (configuration {'ABDE'[[11, 13, 16, 19].index(depth)]} of the paper)"
                       + (" with batch normalisation after every conv." if batch_norm else "."))
    return register_model(family="vgg", paper=VGG_PAPER, weight_layers=depth, torchvision_name=name,
                          **reference)(builder)


vgg11 = _register(11, False)
vgg11_bn = _register(11, True)
vgg13 = _register(13, False)
vgg13_bn = _register(13, True)
vgg16 = _register(16, False)
vgg16_bn = _register(16, True)
vgg19 = _register(19, False)
vgg19_bn = _register(19, True)
