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
from ..layers import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    get_activation,
    get_norm,
)
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


class ResNet(ClassifierModel):
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

    classifier_name = "fc"

    def __init__(
        self,
        block: type[nn.Module],
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
        self._block_kwargs = dict(groups=groups, base_width=width_per_group, norm=norm, act=act)
        if se_reduction is not None:
            # Only when asked for, so a block class without the option still builds a plain ResNet.
            self._block_kwargs["se_reduction"] = se_reduction
        self._norm = norm
        self._inplanes = 64
        rates = iter(drop_path_rates(drop_path_rate, sum(layers)))

        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = get_norm(norm, 64)
        self.relu = get_activation(act, inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1, rates)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, rates)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, rates)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, rates)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = 512 * block.expansion
        self.fc = nn.Linear(self.num_features, num_classes)

        _init_weights(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (BasicBlock, Bottleneck)):
                    module.zero_init_last()

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int, rates) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or self._inplanes != out_planes:
            # Option B: project only where the shape changes; identities elsewhere.
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, out_planes, kernel_size=1, stride=stride, bias=False),
                get_norm(self._norm, out_planes),
            )
        stage = [block(self._inplanes, planes, stride, downsample, drop_path=next(rates), **self._block_kwargs)]
        self._inplanes = out_planes
        stage += [block(out_planes, planes, drop_path=next(rates), **self._block_kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        return self.layer4(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


class PreActResNet(ClassifierModel):
    """Pre-activation ResNet ("ResNet v2", Identity Mappings paper) in the ImageNet layout.

    Same stages as :class:`ResNet`, built from :class:`~cnnlab.layers.PreActBasicBlock` or
    :class:`~cnnlab.layers.PreActBottleneck`. As in the paper (section 4.1, and the
    authors' Torch code) the stem keeps its BN-ReLU, which then serves as the first
    unit's pre-activation; every stage's first unit projects its *pre-activated* input
    with a bare 1x1 conv where the shape changes; and since the last unit ends with an
    addition, an extra ``norm`` + ReLU precedes the global pooling. Options as in
    :class:`ResNet` (``zero_init_residual`` zeroes each unit's last conv).
    """

    classifier_name = "fc"

    def __init__(
        self,
        block: type[nn.Module],
        layers: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        zero_init_residual: bool = False,
        groups: int = 1,
        width_per_group: int = 64,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        layers = _check_layers(layers, 4)
        self.num_classes = num_classes
        self._block_kwargs = dict(groups=groups, base_width=width_per_group, norm=norm, act=act)
        self._inplanes = 64
        rates = iter(drop_path_rates(drop_path_rate, sum(layers)))

        self.conv1 = nn.Conv2d(in_chans, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = get_norm(norm, 64)
        self.relu = get_activation(act, inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0], 1, rates, first=True)
        self.layer2 = self._make_layer(block, 128, layers[1], 2, rates)
        self.layer3 = self._make_layer(block, 256, layers[2], 2, rates)
        self.layer4 = self._make_layer(block, 512, layers[3], 2, rates)
        self.num_features = 512 * block.expansion
        self.norm = get_norm(norm, self.num_features)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, num_classes)

        _init_weights(self)
        if zero_init_residual:
            for module in self.modules():
                if isinstance(module, (PreActBasicBlock, PreActBottleneck)):
                    module.zero_init_last()

    def _make_layer(self, block: type[nn.Module], planes: int, blocks: int, stride: int, rates,
                    first: bool = False) -> nn.Sequential:
        out_planes = planes * block.expansion
        downsample = None
        if stride != 1 or self._inplanes != out_planes:
            # No BN after the projection: the pre-activated input is already normalised.
            downsample = nn.Conv2d(self._inplanes, out_planes, kernel_size=1, stride=stride, bias=False)
        stage = [block(self._inplanes, planes, stride, downsample, drop_path=next(rates),
                       preact=not first, **self._block_kwargs)]
        self._inplanes = out_planes
        stage += [block(out_planes, planes, drop_path=next(rates), **self._block_kwargs) for _ in range(1, blocks)]
        return nn.Sequential(*stage)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer1(x)
        x = self.layer2(x)
        x = self.layer3(x)
        x = self.layer4(x)
        return self.relu(self.norm(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        return x if pre_logits else self.fc(x)


def _resnet(depth: int, num_classes: int, in_chans: int, **kwargs) -> ResNet:
    block, layers = _STAGE_DEPTHS[depth]
    return ResNet(block, layers, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _preact_resnet(depth: int, num_classes: int, in_chans: int, **kwargs) -> PreActResNet:
    block, layers = _STAGE_DEPTHS[depth]
    return PreActResNet(_PREACT_BLOCK[block], layers, num_classes=num_classes, in_chans=in_chans, **kwargs)


# Reference accuracies: 100 - the paper's single-model top-1/top-5 errors with 10-crop
# testing on the ImageNet validation set (224 crops, shorter side 256).
_V15_NOTE = (" torchvision's layout (and this one) puts the stride on the 3x3 conv of each bottleneck"
             " ('ResNet v1.5'); the paper strides the first 1x1 conv.")


@register_model(
    family="resnet", paper=RESNET_PAPER, weight_layers=18, torchvision_name="resnet18",
    reference_top1=72.12, reference_top5=None,
    reference_note="ResNet paper Table 2: ImageNet val top-1 error 27.88%, 10-crop testing; "
                   "the paper reports no top-5 for ResNet-18.",
)
def resnet18(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2] (ResNet paper, Table 1)."""
    return _resnet(18, num_classes, in_chans, **kwargs)


@register_model(
    family="resnet", paper=RESNET_PAPER, weight_layers=34, torchvision_name="resnet34",
    reference_top1=75.48, reference_top5=92.54,
    reference_note="ResNet paper Table 3, ResNet-34 B (projection shortcuts where dimensions grow, as here): "
                   "ImageNet val error 24.52% top-1 / 7.46% top-5, single model, 10-crop testing.",
)
def resnet34(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3], the residual twin of the paper's plain-34."""
    return _resnet(34, num_classes, in_chans, **kwargs)


@register_model(
    family="resnet", paper=RESNET_PAPER, weight_layers=50, torchvision_name="resnet50",
    reference_top1=77.15, reference_top5=93.29,
    reference_note="ResNet paper Table 3: ImageNet val error 22.85% top-1 / 6.71% top-5, single model, "
                   "10-crop testing." + _V15_NOTE,
)
def resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-50: bottleneck blocks [3, 4, 6, 3], each 2-layer block of ResNet-34 made a 3-layer bottleneck."""
    return _resnet(50, num_classes, in_chans, **kwargs)


@register_model(
    family="resnet", paper=RESNET_PAPER, weight_layers=101, torchvision_name="resnet101",
    reference_top1=78.25, reference_top5=93.95,
    reference_note="ResNet paper Table 3: ImageNet val error 21.75% top-1 / 6.05% top-5, single model, "
                   "10-crop testing." + _V15_NOTE,
)
def resnet101(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """ResNet-101: bottleneck blocks [3, 4, 23, 3] (ResNet paper, Table 1)."""
    return _resnet(101, num_classes, in_chans, **kwargs)


@register_model(
    family="resnet", paper=RESNET_PAPER, weight_layers=152, torchvision_name="resnet152",
    reference_top1=78.57, reference_top5=94.29,
    reference_note="ResNet paper Table 3: ImageNet val error 21.43% top-1 / 5.71% top-5, single model, "
                   "10-crop testing." + _V15_NOTE,
)
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
