"""GoogLeNet / Inception v1 (Szegedy et al., CVPR 2015): stacked Inception modules, no big FC layers.

22 weight layers (an Inception module counts as 2, auxiliary heads not counted), a
conv-pool-conv-conv-pool stem, nine Inception modules with 1x1 bottlenecks, global
average pooling and a single FC layer: about 7M parameters against AlexNet's 61M.
Two auxiliary classifiers inject gradient into the middle of the network during
training. The module layout and key names follow torchvision's ``googlenet`` so its
checkpoints load with ``strict=True``.
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers.inception import InceptionAux, InceptionModule, basic_conv2d
from ..registry import Paper, register_model
from ._base import ClassifierModel

GOOGLENET_PAPER = Paper(
    title="Going Deeper with Convolutions",
    authors="C. Szegedy, W. Liu, Y. Jia, P. Sermanet, S. Reed, D. Anguelov, D. Erhan, V. Vanhoucke, A. Rabinovich",
    venue="CVPR",
    year=2015,
)

# torchvision's transform_input converts an input normalised with the ImageNet mean/std
# into the [-1, 1] scaling the original (TensorFlow-trained) GoogLeNet weights expect:
# x' = (x * std + mean - 0.5) / 0.5 for each channel.
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class GoogLeNetOutputs(NamedTuple):
    """Training-mode output of :class:`GoogLeNet` with auxiliary heads, ordered as torchvision's.

    The paper trains with ``loss(logits) + 0.3 * (loss(aux_logits1) + loss(aux_logits2))``.
    """

    logits: torch.Tensor
    aux_logits2: torch.Tensor | None
    aux_logits1: torch.Tensor | None


class GoogLeNet(ClassifierModel):
    """GoogLeNet (Inception v1) with torchvision's structure and key names.

    Stem ``conv1`` (7x7/2) -> ``maxpool1`` -> ``conv2`` (1x1) -> ``conv3`` (3x3) ->
    ``maxpool2``; Inception modules ``inception3a``/``3b`` -> ``maxpool3`` -> ``4a``..``4e``
    -> ``maxpool4`` -> ``5a``/``5b`` (widths from Table 1 of the paper); then ``avgpool``
    (global), ``dropout`` and ``fc``. Conv units are conv-BN-ReLU (BatchNorm postdates the
    paper; torchvision's checkpoint has it).

    With ``aux_logits=True`` the auxiliary classifiers ``aux1`` (on inception4a) and
    ``aux2`` (on inception4d) run in training mode only, and :meth:`forward` then returns
    :class:`GoogLeNetOutputs` ``(logits, aux_logits2, aux_logits1)``; in eval mode it
    returns the logits alone, as torchvision does. ``branch3_kernel_size`` is the kernel of
    the "5x5" branch: 5 in the paper, 3 in torchvision (a known torchvision bug that its
    ImageNet weights depend on). ``transform_input=True`` re-scales inputs normalised with
    the ImageNet mean/std to [-1, 1], as torchvision does for its pretrained weights.
    """

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        aux_logits: bool = True,
        transform_input: bool = False,
        branch3_kernel_size: int = 5,
        dropout: float = 0.2,
        dropout_aux: float = 0.7,
        init_weights: bool = True,
    ):
        super().__init__()
        self._check_sizes(num_classes, in_chans)
        if transform_input and in_chans != 3:
            raise CnnlabError(f"GoogLeNet: transform_input re-normalises RGB inputs and needs in_chans=3, "
                              f"got {in_chans}")
        for name, p in (("dropout", dropout), ("dropout_aux", dropout_aux)):
            if not 0.0 <= p < 1.0:
                raise CnnlabError(f"GoogLeNet: {name} must be in [0, 1), got {p}")
        self.num_classes = num_classes
        self.aux_logits = aux_logits
        self.transform_input = transform_input

        def inception(*channels: int) -> InceptionModule:
            return InceptionModule(*channels, branch3_kernel_size=branch3_kernel_size)

        # Stem: the paper's "conv-pool-2x conv-pool" (its LRN layers are replaced by BN).
        # ceil_mode pooling reproduces the Caffe/TF output sizes 112 -> 56 -> 28 -> 14 -> 7.
        self.conv1 = basic_conv2d(in_chans, 64, kernel_size=7, stride=2)
        self.maxpool1 = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.conv2 = basic_conv2d(64, 64, kernel_size=1)
        self.conv3 = basic_conv2d(64, 192, kernel_size=3)
        self.maxpool2 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        # Table 1: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
        self.inception3a = inception(192, 64, 96, 128, 16, 32, 32)  # 28x28 -> 256 channels
        self.inception3b = inception(256, 128, 128, 192, 32, 96, 64)  # -> 480
        self.maxpool3 = nn.MaxPool2d(3, stride=2, ceil_mode=True)

        self.inception4a = inception(480, 192, 96, 208, 16, 48, 64)  # 14x14 -> 512
        self.inception4b = inception(512, 160, 112, 224, 24, 64, 64)  # -> 512
        self.inception4c = inception(512, 128, 128, 256, 24, 64, 64)  # -> 512
        self.inception4d = inception(512, 112, 144, 288, 32, 64, 64)  # -> 528
        self.inception4e = inception(528, 256, 160, 320, 32, 128, 128)  # -> 832
        self.maxpool4 = nn.MaxPool2d(2, stride=2, ceil_mode=True)

        self.inception5a = inception(832, 256, 160, 320, 32, 128, 128)  # 7x7 -> 832
        self.inception5b = inception(832, 384, 192, 384, 48, 128, 128)  # -> 1024

        if aux_logits:
            self.aux1 = InceptionAux(512, num_classes, dropout=dropout_aux)
            self.aux2 = InceptionAux(528, num_classes, dropout=dropout_aux)
        else:
            # Kept as attributes (None) like torchvision, so `model.aux1 is None` works.
            self.aux1 = None
            self.aux2 = None

        # Global average pooling instead of AlexNet/VGG's FC stack: the lecture's
        # "no more expensive FC layers" (1024 x classes weights only).
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(1024, num_classes)

        if init_weights:
            self._init_weights()

    def _init_weights(self) -> None:
        # Small Gaussian weights (std 0.01, truncated at 2 std) as torchvision does for this
        # model; BN starts as the identity. Biases (only the Linear layers have them) start at 0.
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.01, a=-0.02, b=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _transform_input(self, x: torch.Tensor) -> torch.Tensor:
        if not self.transform_input:
            return x
        # Folded into one scale and shift per channel, computed in double precision, which
        # rounds exactly as torchvision does.
        scale = x.new_tensor([s / 0.5 for s in _IMAGENET_STD]).view(1, 3, 1, 1)
        shift = x.new_tensor([(m - 0.5) / 0.5 for m in _IMAGENET_MEAN]).view(1, 3, 1, 1)
        return x * scale + shift

    def _forward_trunk(self, x: torch.Tensor, with_aux: bool):
        """Stem and Inception modules; also the auxiliary logits when ``with_aux``."""
        x = self._transform_input(x)
        x = self.maxpool1(self.conv1(x))
        x = self.maxpool2(self.conv3(self.conv2(x)))
        x = self.maxpool3(self.inception3b(self.inception3a(x)))
        x = self.inception4a(x)
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.maxpool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        return x, aux1, aux2

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> the 1024-channel map of inception5b (7x7 for a 224x224 input)."""
        return self._forward_trunk(x, with_aux=False)[0]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.avgpool(x), 1)
        x = self.dropout(x)
        return x if pre_logits else self.fc(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor | GoogLeNetOutputs:
        """Logits in eval mode; :class:`GoogLeNetOutputs` in training mode with aux heads."""
        with_aux = self.training and self.aux1 is not None
        features, aux1, aux2 = self._forward_trunk(x, with_aux)
        logits = self.forward_head(features)
        if with_aux:
            return GoogLeNetOutputs(logits, aux2, aux1)
        return logits

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` and, when present, both auxiliary heads' ``fc2`` (``0`` makes them Identity)."""
        super().reset_classifier(num_classes)
        for name in ("aux1", "aux2"):
            if getattr(self, name) is not None:
                self._replace_layer(f"{name}.fc2", num_classes)


# Table 3 of the paper reports top-5 error only. Its headline 6.67% is the 7-model,
# 144-crop ensemble; the single-model single-crop entry (10.07%) is the comparable one.
_REFERENCE_TOP5 = round(100 - 10.07, 2)


@register_model(
    family="googlenet",
    paper=GOOGLENET_PAPER,
    weight_layers=22,
    reference_top5=_REFERENCE_TOP5,
    reference_note=("ILSVRC-2014 top-5 error 10.07% for 1 model, 1 crop (paper Table 3); the famous 6.67% "
                    "is a 7-model, 144-crop ensemble. The paper gives no top-1. This torchvision-compatible "
                    "variant uses BatchNorm and a 3x3 kernel in the '5x5' branch, unlike the paper."),
    torchvision_name="googlenet",
)
def googlenet(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> GoogLeNet:
    """GoogLeNet as in torchvision (13.0M parameters with aux heads, 6.6M without).

    The "5x5" branches use 3x3 kernels (torchvision's known bug, which its ImageNet
    weights were trained with), so ``torchvision.models.googlenet`` checkpoints load
    unchanged with ``strict=True``.
    """
    kwargs.setdefault("branch3_kernel_size", 3)
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="googlenet",
    paper=GOOGLENET_PAPER,
    weight_layers=22,
    reference_top5=_REFERENCE_TOP5,
    reference_note=("ILSVRC-2014 top-5 error 10.07% for 1 model, 1 crop (paper Table 3); the 6.67% is a "
                    "7-model, 144-crop ensemble. The paper gives no top-1."),
)
def googlenet_paper(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> GoogLeNet:
    """GoogLeNet with the paper's true 5x5 convolutions in the third Inception branch.

    Differs from :func:`googlenet` only in that kernel (5x5 instead of 3x3), which adds
    16 * ch5x5red * ch5x5 weights per module: 13,385,816 parameters with the auxiliary
    heads and 7,005,832 without (vs 13,004,888 / 6,624,904), so torchvision checkpoints do
    not load into it. Like :func:`googlenet` it keeps BatchNorm in place of the paper's
    LRN, and its dropout defaults to the paper's 40% (torchvision uses 20%).
    """
    kwargs.setdefault("dropout", 0.4)
    kwargs.setdefault("branch3_kernel_size", 5)
    return GoogLeNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
