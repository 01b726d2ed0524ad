"""ResNet (He et al. 2016) and pre-activation ResNet v2 (He et al. 2016b) for ImageNet.

The lecture's answer to the degradation problem: instead of asking a stack of layers
to fit ``H(x)``, let it fit the residual ``F(x) = H(x) - x`` and add ``x`` back through
an identity shortcut, so extra depth can at worst learn ``F = 0``. ``ResNet`` has
torchvision's module names, so its state_dicts (and checkpoints) are interchangeable
with ``torchvision.models.resnet*``.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, get_activation, get_norm
from ..layers.residual import ResidualBlock
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

RESNET_PAPER = Paper(
    title="Deep Residual Learning for Image Recognition",
    authors="K. He, X. Zhang, S. Ren, J. Sun",
    venue="CVPR",
    year=2016,
)
PREACT_RESNET_PAPER = Paper(
    title="Identity Mappings in Deep Residual Networks",
    authors="K. He, X. Zhang, S. Ren, J. Sun",
    venue="ECCV",
    year=2016,
)

# Blocks per stage (conv2_x..conv5_x) of the ResNet paper's Table 1.
_STAGE_DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
_PREACT_BLOCK = {BasicBlock: PreActBasicBlock, Bottleneck: PreActBottleneck}


def drop_path_rates(drop_path_rate: float, num_blocks: int) -> list[float]:
    """Per-block stochastic-depth rates growing linearly with depth (Huang et al. 2016).

    The paper's "linear decay" rule: block ``l`` of ``L`` is dropped with probability
    ``l / L * drop_path_rate``, so the early blocks, whose features every later block
    needs, are almost never dropped and the last one is dropped at the full rate.
    """
    if not 0.0 <= drop_path_rate < 1.0:
        raise CnnlabError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    return [drop_path_rate * (i + 1) / num_blocks for i in range(num_blocks)]


def _check_layers(layers: Sequence[int], stages: int) -> tuple[int, ...]:
    layers = tuple(layers)
    if len(layers) != stages or any(not isinstance(n, int) or n < 1 for n in layers):
        raise CnnlabError(f"layers must be {stages} positive block counts, one per stage, got {layers}")
    return layers


def _init_weights(model: nn.Module) -> None:
    # He et al. 2015 ("Delving deep into rectifiers") init, as the ResNet paper and
    # torchvision; the classifier keeps PyTorch's default.
    init_he_fan_out(model)


class ResNetBase(ClassifierModel):
    """The skeleton every ResNet of the zoo shares: a stem, stages ``layer1..layerN`` of residual blocks, ``fc``.

    A subclass builds its stem (and runs it in :meth:`forward_stem`), then calls
    :meth:`_make_stages` and :meth:`_make_head`. In each stage the first block strides
    (except in the first stage, which the stem has already downsampled) and changes the
    width; its shortcut is then :meth:`_projection` of the input, and every other
    shortcut is the identity (the ResNet paper's option B). A pre-activation net
    (``preactivation``) ends with an addition, so its features get a last ``norm`` +
    ``relu`` before the global average pooling.
    """

    classifier_name = "fc"
    preactivation: bool = False

    def _make_stages(self, block: type[ResidualBlock], inplanes: int, widths: Sequence[int], depths: Sequence[int],
                     drop_path_rate: float, block_kwargs: dict, first_block_kwargs: dict | None = None) -> int:
        """Register the stages; ``first_block_kwargs`` go to the net's very first block. Returns its output width."""
        rates = iter(drop_path_rates(drop_path_rate, sum(depths)))
        self.num_stages = len(depths)
        for index, (planes, blocks) in enumerate(zip(widths, depths), start=1):
            stride = 1 if index == 1 else 2
            out_planes = planes * block.expansion
            downsample = None
            if stride != 1 or inplanes != out_planes:
                downsample = self._projection(inplanes, out_planes, stride, block_kwargs["norm"])
            first = dict(block_kwargs, **(first_block_kwargs or {})) if index == 1 else block_kwargs
            stage = [block(inplanes, planes, stride, downsample, drop_path=next(rates), **first)]
            stage += [block(out_planes, planes, drop_path=next(rates), **block_kwargs) for _ in range(1, blocks)]
            self.add_module(f"layer{index}", nn.Sequential(*stage))
            inplanes = out_planes
        return inplanes

    def _projection(self, inplanes: int, out_planes: int, stride: int, norm: str | None) -> nn.Module | None:
        """The shortcut of a block that changes the shape: a 1x1 conv, followed by a norm unless pre-activated."""
        conv = nn.Conv2d(inplanes, out_planes, kernel_size=1, stride=stride, bias=False)
        if self.preactivation:
            # It reads the block's pre-activated input, which is already normalised.
            return conv
        return nn.Sequential(conv, get_norm(norm, out_planes))

    def _make_head(self, num_features: int, num_classes: int, norm: str | None) -> None:
        if self.preactivation:
            self.norm = get_norm(norm, num_features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = num_features
        self.fc = nn.Linear(num_features, num_classes)

    def _zero_init_residual(self) -> None:
        # Each residual branch starts at zero, so each block starts as the identity (Goyal et al. 2017).
        for module in self.modules():
            if isinstance(module, ResidualBlock):
                module.zero_init_last()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.forward_stem(x)
        for index in range(1, self.num_stages + 1):
            x = self.get_submodule(f"layer{index}")(x)
        return self.relu(self.norm(x)) if self.preactivation else x


class ResNet(ResNetBase):
    """ResNet-18...152 (ResNet paper, Table 1) with torchvision's module names.

    Stem ``conv1`` (7x7/2, 64) -> ``bn1`` -> ``relu`` -> ``maxpool`` (3x3/2), four stages
    ``layer1..layer4`` at 64/128/256/512 ``planes`` (x4 channels for bottlenecks) with
    strides 1/2/2/2, then ``avgpool`` and ``fc``. Shortcuts are identities except where
    the shape changes, where they are 1x1 projections followed by BN (the paper's
    option B). ``zero_init_residual`` zeroes every block's last BN scale so each
    residual branch starts at zero (Goyal et al. 2017); ``groups``/``width_per_group``
    turn the bottlenecks into ResNeXt or Wide-ResNet ones (see ``cnnlab.models.resnext``);
    ``se_reduction=r`` puts a squeeze-and-excitation unit in every block (SE-ResNet);
    ``drop_path_rate`` enables stochastic depth, linearly increasing per block.
    """

    def __init__(
        self,
        block: type[ResidualBlock],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path_rate: float = 0.0,
        se_reduction: int | None = None,
    ):
        super().__init__()
        layers = _check_layers(layers, 4)
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = get_norm(norm, 64)
        self.relu = get_activation(act, inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        block_kwargs = dict(groups=groups, base_width=width_per_group, norm=norm, act=act, se_reduction=se_reduction)
        # A pre-activation net's stem keeps its BN-ReLU, which is then the first unit's
        # pre-activation (Identity Mappings paper, section 4.1).
        first_block_kwargs = {"preact": False} if self.preactivation else None
        channels = self._make_stages(block, 64, (64, 128, 256, 512), layers, drop_path_rate, block_kwargs,
                                     first_block_kwargs)
        self._make_head(channels, num_classes, norm)

        _init_weights(self)
        if zero_init_residual:
            self._zero_init_residual()

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))


class PreActResNet(ResNet):
    """Pre-activation ResNet ("ResNet v2", Identity Mappings paper) in the ImageNet layout.

    Same stages as :class:`ResNet`, built from :class:`~cnnlab.layers.PreActBasicBlock` or
    :class:`~cnnlab.layers.PreActBottleneck`. As in the paper (section 4.1, and the
    authors' Torch code) the stem keeps its BN-ReLU, which then serves as the first
    unit's pre-activation; every stage's first unit projects its *pre-activated* input
    with a bare 1x1 conv where the shape changes; and since the last unit ends with an
    addition, an extra ``norm`` + ReLU precedes the global pooling. Options as in
    :class:`ResNet` (``zero_init_residual`` zeroes each unit's last conv).
    """

    preactivation = True


def _resnet(depth: int, num_classes: int, in_chans: int, **kwargs) -> ResNet:
    block, layers = _STAGE_DEPTHS[depth]
    return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _preact_resnet(depth: int, num_classes: int, in_chans: int, **kwargs) -> PreActResNet:
    block, layers = _STAGE_DEPTHS[depth]
    return PreActResNet(_PREACT_BLOCK[block], layers, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _register_resnet(depth: int, top1: float, top5: float | None, note: str):
    return register_model(family="resnet", paper=RESNET_PAPER, weight_layers=depth, torchvision_name=f"resnet{depth}",
                          reference_top1=top1, reference_top5=top5, reference_note=note)


# Reference accuracies: 100 - the paper's single-model top-1/top-5 errors with 10-crop
# testing on the ImageNet validation set (224 crops, shorter side 256).
_TABLE3 = "ResNet paper Table 3: ImageNet val error {top1}% top-1 / {top5}% top-5, single model, 10-crop testing."
_V15_NOTE = (" torchvision's layout (and this one) puts the stride on the 3x3 conv of each bottleneck"
             " ('ResNet v1.5'); the paper strides the first 1x1 conv.")


@_register_resnet(18, 72.12, None, "ResNet paper Table 2: ImageNet val top-1 error 27.88%, 10-crop testing; "
                  "the paper reports no top-5 for ResNet-18.")
def resnet18(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2] (ResNet paper, Table 1)."""
    return _resnet(18, num_classes, in_chans, **kwargs)


@_register_resnet(34, 75.48, 92.54, "ResNet paper Table 3, ResNet-34 B (projection shortcuts where dimensions grow, "
                  "as here): ImageNet val error 24.52% top-1 / 7.46% top-5, single model, 10-crop testing.")
def resnet34(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3], the residual twin of the paper's plain-34."""
    return _resnet(34, num_classes, in_chans, **kwargs)


@_register_resnet(50, 77.15, 93.29, _TABLE3.format(top1=22.85, top5=6.71) + _V15_NOTE)
def resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], each 2-layer block of ResNet-34 made a 3-layer bottleneck."""
    return _resnet(50, num_classes, in_chans, **kwargs)


@_register_resnet(101, 78.25, 93.95, _TABLE3.format(top1=21.75, top5=6.05) + _V15_NOTE)
def resnet101(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3] (ResNet paper, Table 1)."""
    return _resnet(101, num_classes, in_chans, **kwargs)


@_register_resnet(152, 78.57, 94.29, _TABLE3.format(top1=21.43, top5=5.71) + _V15_NOTE)
def resnet152(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-152: bottleneck blocks [3, 8, 36, 3]; 11.3 GFLOPs, fewer than VGG-16's 15.3 (paper, section 4.1)."""
    return _resnet(152, num_classes, in_chans, **kwargs)


_PREACT_NO_REFERENCE = ("The Identity Mappings paper reports ImageNet results only for ResNet-152 and "
                        "ResNet-200 (Table 5); no reference for this depth.")


@register_model(family="resnet", paper=PREACT_RESNET_PAPER, weight_layers=18, reference_note=_PREACT_NO_REFERENCE)
def preact_resnet18(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-18 (v2): BN-ReLU-conv basic units [2, 2, 2, 2]."""
    return _preact_resnet(18, num_classes, in_chans, **kwargs)


@register_model(family="resnet", paper=PREACT_RESNET_PAPER, weight_layers=34, reference_note=_PREACT_NO_REFERENCE)
def preact_resnet34(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-34 (v2): BN-ReLU-conv basic units [3, 4, 6, 3]."""
    return _preact_resnet(34, num_classes, in_chans, **kwargs)


@register_model(family="resnet", paper=PREACT_RESNET_PAPER, weight_layers=50, reference_note=_PREACT_NO_REFERENCE)
def preact_resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-50 (v2): BN-ReLU-conv bottleneck units [3, 4, 6, 3]."""
    return _preact_resnet(50, num_classes, in_chans, **kwargs)


@register_model(family="resnet", paper=PREACT_RESNET_PAPER, weight_layers=101, reference_note=_PREACT_NO_REFERENCE)
def preact_resnet101(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-101 (v2): BN-ReLU-conv bottleneck units [3, 4, 23, 3]."""
    return _preact_resnet(101, num_classes, in_chans, **kwargs)


@register_model(
    family="resnet", paper=PREACT_RESNET_PAPER, weight_layers=152,
    reference_top1=78.9, reference_top5=94.5,
    reference_note="Identity Mappings paper Table 5: ImageNet val error 21.1% top-1 / 5.5% top-5, single "
                   "model, single 320x320 crop at test time (trained on 224 crops); the original ResNet-152 "
                   "gets 21.3% / 5.5% under the same protocol.",
)
def preact_resnet152(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> PreActResNet:
    """Pre-activation ResNet-152 (v2): BN-ReLU-conv bottleneck units [3, 8, 36, 3]."""
    return _preact_resnet(152, num_classes, in_chans, **kwargs)
