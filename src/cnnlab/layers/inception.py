"""Inception modules (Szegedy et al., "Going Deeper with Convolutions", CVPR 2015).

The lecture's story in two classes: the *naive* module runs 1x1, 3x3 and 5x5 convs and
a 3x3 max-pool side by side and concatenates them (expensive, and the pool branch makes
the depth grow at every module); the module *with dimension reduction* puts 1x1
"bottleneck" convs before the 3x3 and 5x5 convs and after the pool. Plus the auxiliary
classifier GoogLeNet attaches to two intermediate modules during training.

Child names follow torchvision's ``googlenet`` (``branch1`` .. ``branch4``, ``conv``,
``fc1``, ``fc2``, conv blocks with ``conv``/``bn``) so its checkpoints load unchanged.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import CnnlabError
from .activations import get_activation
from .conv_norm_act import ConvNormAct

ConvBlock = Callable[..., nn.Module]


def basic_conv2d(
    in_channels: int,
    out_channels: int,
    kernel_size: int = 1,
    stride: int = 1,
    padding: int | None = None,
) -> ConvNormAct:
    """GoogLeNet's conv unit: conv (no bias) -> BatchNorm (eps=1e-3) -> ReLU, 'same' padding.

    The 2014 paper had no BatchNorm (it appeared a year later); the BN-Inception variant
    that torchvision's checkpoint reproduces puts BN after every conv, with the eps=0.001
    that TensorFlow's Inception code used. Using the same eps keeps eval-mode outputs of
    loaded torchvision weights identical.
    """
    return ConvNormAct(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                       norm="batchnorm", act="relu", eps=1e-3)


def _check_channels(kind: str, **channels: int) -> None:
    for name, value in channels.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise CnnlabError(f"{kind}: {name} must be a positive integer, got {value!r}")


def _check_odd_kernel(kind: str, name: str, value: int) -> None:
    # An odd kernel with padding (k-1)/2 keeps the spatial size, which the channel
    # concatenation of the branches requires.
    if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value % 2 == 0:
        raise CnnlabError(f"{kind}: {name} must be a positive odd integer (so the branches keep the "
                          f"same spatial size), got {value!r}")


class NaiveInceptionModule(nn.Module):
    """The lecture's naive Inception module: parallel 1x1, 3x3, 5x5 convs and a 3x3 max-pool.

    Every branch keeps the spatial size (stride 1, 'same' padding) and the outputs are
    concatenated along channels, so the output has ``ch1x1 + ch3x3 + ch5x5 + in_channels``
    channels: the pool branch passes the input depth through, which is why stacking
    these modules makes the depth grow every time. The lecture's example, a 28x28x256
    input with 128/192/96 filters, gives 28x28x672 and costs 854M multiply-adds
    (:meth:`conv_multiply_adds`). Children: ``branch1`` .. ``branch4``.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3: int, ch5x5: int,
                 conv_block: ConvBlock | None = None):
        super().__init__()
        _check_channels("NaiveInceptionModule", in_channels=in_channels, ch1x1=ch1x1, ch3x3=ch3x3, ch5x5=ch5x5)
        conv_block = basic_conv2d if conv_block is None else conv_block
        self.in_channels = in_channels
        self.ch1x1, self.ch3x3, self.ch5x5 = ch1x1, ch3x3, ch5x5
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + in_channels
        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = conv_block(in_channels, ch3x3, kernel_size=3)
        self.branch3 = conv_block(in_channels, ch5x5, kernel_size=5)
        self.branch4 = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def conv_multiply_adds(self, height: int, width: int) -> int:
        """Multiply-adds of the module's convolutions on a ``height`` x ``width`` input.

        The lecture's "conv ops": each output value of a KxK conv over C_in channels costs
        K*K*C_in multiplies, and every branch outputs ``height`` x ``width`` values per
        filter. Pooling, normalisation and biases are not counted.
        """
        c = self.in_channels
        per_pixel = self.ch1x1 * 1 * 1 * c + self.ch3x3 * 3 * 3 * c + self.ch5x5 * 5 * 5 * c
        return height * width * per_pixel


class InceptionModule(nn.Module):
    """Inception module with dimension reduction (the building block of GoogLeNet).

    Four parallel branches, concatenated along channels:

    * ``branch1``: 1x1 conv, ``ch1x1`` filters;
    * ``branch2``: 1x1 conv to ``ch3x3red`` channels (the bottleneck), then 3x3 conv;
    * ``branch3``: 1x1 conv to ``ch5x5red`` channels, then a ``branch3_kernel_size`` conv;
    * ``branch4``: 3x3 stride-1 max-pool, then a 1x1 "pool projection" to ``pool_proj``,
      which stops the depth from growing as it did in the naive module.

    The 1x1 bottlenecks cut the lecture's 28x28x256 example from 854M to 271M
    multiply-adds (:meth:`conv_multiply_adds`).

    ``branch3_kernel_size`` defaults to the paper's 5. torchvision's ``googlenet`` has a
    known bug (pytorch/vision issue 906): its "5x5" branch actually uses a 3x3 kernel,
    and its ImageNet checkpoint was trained that way, so cnnlab's ``googlenet`` passes 3
    here to load those weights; ``googlenet_paper`` keeps 5.

    ``conv_block(in_channels, out_channels, kernel_size=k)`` builds each conv with 'same'
    padding (default :func:`basic_conv2d`, conv-BN-ReLU), so the parameter keys are
    ``branch1.conv.weight``, ``branch2.0.bn.weight``, ``branch4.1.conv.weight`` ... as in
    torchvision.
    """

    def __init__(
        self,
        in_channels: int,
        ch1x1: int,
        ch3x3red: int,
        ch3x3: int,
        ch5x5red: int,
        ch5x5: int,
        pool_proj: int,
        conv_block: ConvBlock | None = None,
        branch3_kernel_size: int = 5,
    ):
        super().__init__()
        _check_channels("InceptionModule", in_channels=in_channels, ch1x1=ch1x1, ch3x3red=ch3x3red,
                        ch3x3=ch3x3, ch5x5red=ch5x5red, ch5x5=ch5x5, pool_proj=pool_proj)
        _check_odd_kernel("InceptionModule", "branch3_kernel_size", branch3_kernel_size)
        conv_block = basic_conv2d if conv_block is None else conv_block
        self.in_channels = in_channels
        self.config = (ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj)
        self.branch3_kernel_size = branch3_kernel_size
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj

        self.branch1 = conv_block(in_channels, ch1x1, kernel_size=1)
        self.branch2 = nn.Sequential(
            conv_block(in_channels, ch3x3red, kernel_size=1),
            conv_block(ch3x3red, ch3x3, kernel_size=3),
        )
        self.branch3 = nn.Sequential(
            conv_block(in_channels, ch5x5red, kernel_size=1),
            conv_block(ch5x5red, ch5x5, kernel_size=branch3_kernel_size),
        )
        self.branch4 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            conv_block(in_channels, pool_proj, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)], dim=1)

    def conv_multiply_adds(self, height: int, width: int) -> int:
        """Multiply-adds of the module's convolutions on a ``height`` x ``width`` input.

        Counted as in the lecture (K*K*C_in per output value, all branches at the input
        resolution); pooling, normalisation and biases are not counted.
        """
        ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj = self.config
        c, k = self.in_channels, self.branch3_kernel_size
        per_pixel = (ch1x1 * c
                     + ch3x3red * c + ch3x3 * 3 * 3 * ch3x3red
                     + ch5x5red * c + ch5x5 * k * k * ch5x5red
                     + pool_proj * c)
        return height * width * per_pixel


class InceptionAux(nn.Module):
    """GoogLeNet's auxiliary classifier, attached to inception4a and inception4d in training.

    The paper adds these small heads (average pool -> 1x1 conv with 128 filters -> FC
    1024 -> dropout 0.7 -> FC classes) so that lower layers receive gradient directly;
    their losses are weighted by 0.3 and they are discarded at inference. The paper
    pools 5x5 with stride 3 (14x14 -> 4x4); like torchvision this uses an adaptive 4x4
    pool, identical at 224x224 and defined for any input size. Children ``conv``,
    ``fc1``, ``fc2`` match torchvision's keys.
    """

    def __init__(self, in_channels: int, num_classes: int, conv_block: ConvBlock | None = None,
                 dropout: float = 0.7):
        super().__init__()
        _check_channels("InceptionAux", in_channels=in_channels, num_classes=num_classes)
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"InceptionAux: dropout must be in [0, 1), got {dropout}")
        conv_block = basic_conv2d if conv_block is None else conv_block
        self.pool = nn.AdaptiveAvgPool2d((4, 4))
        self.conv = conv_block(in_channels, 128, kernel_size=1)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = get_activation("relu", inplace=True)
        self.dropout = nn.Dropout(p=dropout)
        self.fc2 = nn.Linear(1024, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.flatten(self.conv(self.pool(x)), 1)
        x = self.dropout(self.act(self.fc1(x)))
        return self.fc2(x)
