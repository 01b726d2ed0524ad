"""Wide Residual Networks WRN-d-k for CIFAR (Zagoruyko & Komodakis, BMVC 2016).

The lecture's "width, not depth" answer: the CIFAR ResNets of the ResNet paper are thin
(16/32/64 channels) and need ~1000 layers to improve; multiplying every width by a
widening factor ``k`` lets 28 layers beat 1001. ``WRN-d-k`` has ``(d - 4) / 6``
pre-activation :class:`~cnnlab.layers.residual.WideBasicBlock` units per stage at widths
16k/32k/64k, with dropout between each unit's two convs.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import get_activation
from ..layers.residual import WideBasicBlock
from ..registry import register_model
from .resnet import ResNetBase, _init_weights
from .resnext import WIDE_RESNET_PAPER

# The paper's dropout rate between the convs of each unit on CIFAR (0.4 on SVHN): it helped every
# wide net there, while dropout on the identity path, tried before, had hurt.
CIFAR_DROPOUT = 0.3


def _check_wrn_config(depth: int, widen_factor: int, dropout: float) -> int:
    """Validate WRN-d-k; returns the number of units per stage, ``(depth - 4) / 6``."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 10 or (depth - 4) % 6:
        raise CnnlabError(
            f"WRN depth must satisfy (depth - 4) % 6 == 0 with depth >= 10 (10, 16, 22, 28, 34, 40, ...), "
            f"got depth={depth!r}"
        )
    if isinstance(widen_factor, bool) or not isinstance(widen_factor, int) or widen_factor < 1:
        raise CnnlabError(f"WRN widen_factor k must be an integer >= 1 (k=1 is the thin ResNet), got {widen_factor!r}")
    if not 0.0 <= dropout < 1.0:
        raise CnnlabError(f"WRN dropout must be in [0, 1), got {dropout}")
    return (depth - 4) // 6


class WideResNet(ResNetBase):
    """WRN-d-k for 32x32 images (WRN paper, Table 1).

    ``conv1`` (3x3, 16 channels, no BN-ReLU after it: the first unit pre-activates), three
    stages ``layer1..layer3`` of ``n = (d - 4) / 6`` :class:`~cnnlab.layers.residual.WideBasicBlock`
    units at 16k/32k/64k channels on 32x32/16x16/8x8 maps, then the final ``norm`` + ReLU
    that a pre-activation net needs, global average pooling and ``fc``. Where a stage
    changes the shape (always at its first unit when k > 1) the shortcut is a bare 1x1
    conv. ``d`` counts the stem, the 6n convs of the units, the two projections of stages
    2 and 3 and ``fc`` (6n + 4), as the paper does. Convs have no bias (BN follows).
    """

    preactivation = True

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        dropout: float = CIFAR_DROPOUT,
        num_classes: int = 10,
        in_chans: int = 3,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        blocks_per_stage = _check_wrn_config(depth, widen_factor, dropout)
        self.depth = depth
        self.widen_factor = widen_factor
        self.num_classes = num_classes
        widths = (16 * widen_factor, 32 * widen_factor, 64 * widen_factor)

        self.conv1 = nn.Conv2d(in_chans, 16, kernel_size=3, stride=1, padding=1, bias=False)
        channels = self._make_stages(WideBasicBlock, 16, widths, (blocks_per_stage,) * 3, drop_path_rate,
                                     dict(dropout=dropout, norm=norm, act=act))
        # The final BN-ReLU's activation; the stem has none.
        self.relu = get_activation(act, inplace=True)
        self._make_head(channels, num_classes, norm)

        _init_weights(self)

    def forward_stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(x)


def wide_resnet_cifar(depth: int, widen_factor: int, dropout: float = CIFAR_DROPOUT, num_classes: int = 10,
                      in_chans: int = 3, **kwargs) -> WideResNet:
    """Build any WRN-d-k (Wide Residual Networks): depth d = 6n + 4, widths 16k/32k/64k, dropout in each unit.

    ``dropout`` defaults to the paper's CIFAR rate 0.3; ``dropout=0`` gives the paper's
    no-dropout rows. ``depth`` must satisfy ``(depth - 4) % 6 == 0`` and ``widen_factor``
    be an integer >= 1, otherwise :class:`~cnnlab.errors.CnnlabError`.
    """
    return WideResNet(depth, widen_factor, dropout, num_classes=num_classes, in_chans=in_chans, **kwargs)


def _register_wrn(depth: int, top1: float | None, note: str):
    return register_model(
        family="wide_resnet", paper=WIDE_RESNET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
        weight_layers=depth, reference_top1=top1, reference_note=note,
    )


_NO_REFERENCE = "No reference recorded for this configuration; WRN-28-10 carries the paper's headline CIFAR-10 figure."


@_register_wrn(28, 96.11, "WRN paper, mean/std-normalised CIFAR results (also the authors' README): WRN-28-10 with "
               "dropout 0.3, CIFAR-10 test error 3.89% (median of 5 runs; 4.00% without dropout), flip and "
               "translation augmentation.")
def wrn28_10(num_classes: int = 10, in_chans: int = 3, dropout: float = CIFAR_DROPOUT, **kwargs) -> WideResNet:
    """WRN-28-10 (36.5M parameters): 4 wide units per stage, 160/320/640 channels; the paper's best CIFAR net."""
    return wide_resnet_cifar(28, 10, dropout, num_classes, in_chans, **kwargs)


@_register_wrn(16, None, _NO_REFERENCE)
def wrn16_8(num_classes: int = 10, in_chans: int = 3, dropout: float = CIFAR_DROPOUT, **kwargs) -> WideResNet:
    """WRN-16-8 (11.0M parameters): only 2 units per stage, 128/256/512 channels."""
    return wide_resnet_cifar(16, 8, dropout, num_classes, in_chans, **kwargs)


@_register_wrn(40, None, _NO_REFERENCE)
def wrn40_4(num_classes: int = 10, in_chans: int = 3, dropout: float = CIFAR_DROPOUT, **kwargs) -> WideResNet:
    """WRN-40-4 (8.9M parameters): 6 units per stage, 64/128/256 channels; about pre-ResNet-1001's accuracy."""
    return wide_resnet_cifar(40, 4, dropout, num_classes, in_chans, **kwargs)
