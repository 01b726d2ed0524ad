"""The CIFAR-10 ResNets and their plain twins (ResNet paper, section 4.2).

The degradation experiment of the lectures: a plain stack of 3x3 convolutions gets a
*higher training error* as it gets deeper (plain-56 is worse than plain-20), while the
same nets with identity shortcuts keep improving up to 110 layers. Both families are
built by :class:`CifarResNet`; they differ only in ``shortcut``.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import BasicBlock, ZeroPadShortcut, get_activation, get_norm
from ..registry import register_model
from .resnet import RESNET_PAPER, ResNetBase, _init_weights

_SHORTCUT_TYPES = ("A", "B")


class CifarResNet(ResNetBase):
    """ResNet-(6n+2) for 32x32 images: the paper's section 4.2 architecture.

    ``conv1`` (3x3, 16) -> ``bn1`` -> ``relu``, then three stages ``layer1..layer3`` of
    ``n`` :class:`~cnnlab.layers.BasicBlock` each, with 16/32/64 filters on 32x32/16x16/8x8
    maps (the first conv of stages 2 and 3 has stride 2), then global average pooling and a
    10-way ``fc``: ``6n + 2`` weight layers in all.

    ``shortcut_type="A"`` (the paper's choice for CIFAR) makes the shape-changing
    shortcuts parameter-free :class:`~cnnlab.layers.ZeroPadShortcut`; ``"B"`` uses 1x1
    projections + BN as the ImageNet nets do (ResNet-20 then has 272,474 parameters
    instead of 269,722). ``shortcut=False`` removes every shortcut: the "plain" net.
    """

    def __init__(
        self,
        depth: int,
        num_classes: int = 10,
        in_chans: int = 3,
        shortcut: bool = True,
        shortcut_type: str = "A",
        widths: tuple[int, int, int] = (16, 32, 64),
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path_rate: float = 0.0,
        zero_init_residual: bool = False,
    ):
        super().__init__()
        if not isinstance(depth, int) or depth < 8 or (depth - 2) % 6:
            raise CnnlabError(f"CIFAR ResNet depth must be 6n+2 with n >= 1 (20, 32, 44, 56, 110, ...), got {depth}")
        if shortcut_type not in _SHORTCUT_TYPES:
            raise CnnlabError(f"shortcut_type must be 'A' (zero-padding) or 'B' (projection), got {shortcut_type!r}")
        widths = tuple(widths)
        if len(widths) != 3 or any(w < 1 for w in widths):
            raise CnnlabError(f"widths must be 3 positive channel counts, got {widths}")
        blocks_per_stage = (depth - 2) // 6
        self.depth = depth
        self.num_classes = num_classes
        self._shortcut = shortcut
        self._shortcut_type = shortcut_type

        self.conv1 = nn.Conv2d(in_chans, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = get_norm(norm, widths[0])
        self.relu = get_activation(act, inplace=True)
        channels = self._make_stages(BasicBlock, widths[0], widths, (blocks_per_stage,) * 3, drop_path_rate,
                                     dict(norm=norm, act=act, shortcut=shortcut))
        self._make_head(channels, num_classes, norm)

        _init_weights(self)
        if zero_init_residual and shortcut:
            self._zero_init_residual()

    def _projection(self, inplanes: int, out_planes: int, stride: int, norm: str | None) -> nn.Module | None:
        if not self._shortcut:
            return None
        if self._shortcut_type == "A":
            return ZeroPadShortcut(inplanes, out_planes, stride)
        return super()._projection(inplanes, out_planes, stride, norm)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))


def _plain(depth: int, num_classes: int, in_chans: int, **kwargs) -> CifarResNet:
    # The residual net's twin without shortcuts; ``shortcut=True`` gives the residual net back.
    kwargs.setdefault("shortcut", False)
    return CifarResNet(depth, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _register_cifar(depth: int, top1: float | None, note: str):
    return register_model(
        family="resnet", paper=RESNET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
        weight_layers=depth, reference_top1=top1, reference_note=note,
    )


# Reference top-1 = 100 - the test error of the paper's Table 6 (CIFAR-10, with the
# standard 4-pixel-pad + random-crop + flip augmentation, single 32x32 view).
_TABLE6 = "ResNet paper Table 6: CIFAR-10 test error {err}% (option-A shortcuts, 4-pixel pad/crop/flip augmentation)"
_PLAIN_NOTE = ("The paper shows the plain nets only as training/test curves (Fig. 6, left), deeper ones "
               "doing worse; no table value.")


@_register_cifar(20, 91.25, _TABLE6.format(err="8.75"))
def resnet20(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-20 (n=3, 0.27M parameters), the smallest net of the ResNet paper's Table 6."""
    return CifarResNet(20, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(32, 92.49, _TABLE6.format(err="7.51"))
def resnet32(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-32 (n=5, 0.46M parameters), ResNet paper Table 6."""
    return CifarResNet(32, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(44, 92.83, _TABLE6.format(err="7.17"))
def resnet44(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-44 (n=7, 0.66M parameters), ResNet paper Table 6."""
    return CifarResNet(44, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(56, 93.03, _TABLE6.format(err="6.97"))
def resnet56(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-56 (n=9, 0.85M parameters): the residual twin of the degraded plain-56."""
    return CifarResNet(56, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(110, 93.57, _TABLE6.format(err="6.43") + "; best of 5 runs, the mean is 6.61±0.16% (93.39% top-1)")
def resnet110(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-110 (n=18, 1.7M parameters); the paper warms it up at lr 0.01 until training error is below 80%."""
    return CifarResNet(110, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(1202, 92.07, _TABLE6.format(err="7.93") + "; worse than ResNet-110, which the paper attributes "
                 "to overfitting (19.4M parameters on 50k images)")
def resnet1202(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """CIFAR ResNet-1202 (n=200, 19.4M parameters): the paper's "exploring over 1000 layers" net."""
    return CifarResNet(1202, num_classes=num_classes, in_chans=in_chans, **kwargs)


@_register_cifar(20, None, _PLAIN_NOTE)
def plain20(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """Plain-20: ResNet-20 without shortcuts, the degradation experiment's baseline (ResNet paper, Fig. 6)."""
    return _plain(20, num_classes, in_chans, **kwargs)


@_register_cifar(32, None, _PLAIN_NOTE)
def plain32(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """Plain-32: ResNet-32 without shortcuts (ResNet paper, Fig. 6)."""
    return _plain(32, num_classes, in_chans, **kwargs)


@_register_cifar(44, None, _PLAIN_NOTE)
def plain44(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """Plain-44: ResNet-44 without shortcuts (ResNet paper, Fig. 6)."""
    return _plain(44, num_classes, in_chans, **kwargs)


@_register_cifar(56, None, _PLAIN_NOTE)
def plain56(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """Plain-56: ResNet-56 without shortcuts; higher *training* error than plain-20 (ResNet paper, Fig. 6)."""
    return _plain(56, num_classes, in_chans, **kwargs)


@_register_cifar(110, None, _PLAIN_NOTE)
def plain110(num_classes: int = 10, in_chans: int = 3, **kwargs) -> CifarResNet:
    """Plain-110: ResNet-110 without shortcuts (ResNet paper, section 4.2)."""
    return _plain(110, num_classes, in_chans, **kwargs)
