"""Operations that the cells of neural architecture search are assembled from (Zoph et al., CVPR 2018).

NASNet's search space (paper, section 3 and Appendix A) lets a controller pick, for
each block of a cell, two inputs and one operation per input from a fixed menu:
identity, 1x1/3x3 convolutions, 3x3/5x5/7x7 separable convolutions, 3x3 average or max
pooling, and a few more. These are the parts of that menu the discovered NASNet-A cells
use, plus the plumbing that makes hidden states of different shapes compatible
(``ReLUConvBN``, ``FactorizedReduction``). Every operation that convolves starts with
a ReLU and ends with BatchNorm ("ReLU-conv-BN", the paper's appendix), so any sum of
operation outputs is a sum of normalised tensors.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError

# TensorFlow's BatchNorm epsilon, which the NASNet authors trained with.
NAS_BN_EPS = 1e-3


def _check_channels(name: str, in_channels: int, out_channels: int) -> None:
    if in_channels < 1 or out_channels < 1:
        raise CnnlabError(f"{name} needs positive channel counts, got {in_channels} -> {out_channels}")


class SeparableConv2d(nn.Module):
    """Depthwise ``k x k`` conv then pointwise 1x1 conv, with nothing in between (Chollet 2017, "Xception").

    TensorFlow's ``separable_conv2d``: unlike MobileNet's depthwise separable unit there
    is no BN or ReLU between the two convolutions. Neither has a bias (a BN follows in
    every use). The stride, if any, is on the depthwise convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        _check_channels("SeparableConv2d", in_channels, out_channels)
        self.depthwise = nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding=kernel_size // 2,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class StackedSeparableConv(nn.Module):
    """NASNet's "sep k x k" operation: ReLU-separable conv-BN applied twice (paper, Appendix A).

    The first separable conv maps ``in_channels`` to ``out_channels`` and carries the
    stride; the second keeps width and resolution. Children ``act1``, ``separable1``,
    ``bn1``, ``act2``, ``separable2``, ``bn2``. The ReLUs are not in place: the input is a
    hidden state of the cell that other operations read too.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1):
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise CnnlabError(f"separable conv kernel_size must be a positive odd number, got {kernel_size}")
        self.act1 = nn.ReLU()
        self.separable1 = SeparableConv2d(in_channels, out_channels, kernel_size, stride)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=NAS_BN_EPS)
        self.act2 = nn.ReLU()
        self.separable2 = SeparableConv2d(out_channels, out_channels, kernel_size)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=NAS_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.separable1(self.act1(x)))
        return self.bn2(self.separable2(self.act2(x)))


class ReLUConvBN(nn.Module):
    """``ReLU -> 1x1 conv (no bias, optional stride) -> BN``: how a NAS cell adapts a hidden state's width.

    Used on a cell's inputs (to bring them to the cell's width) and as the "identity"
    operation when the identity cannot be used as is (a stride or a width change).
    Children ``act``, ``conv``, ``bn``.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        _check_channels("ReLUConvBN", in_channels, out_channels)
        self.act = nn.ReLU()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)
        self.bn = nn.BatchNorm2d(out_channels, eps=NAS_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(self.act(x)))


class FactorizedReduction(nn.Module):
    """Halve the resolution of a hidden state without discarding three pixels in four (NASNet).

    A strided 1x1 conv would only read the even rows and columns. Instead two strided
    1x1 convs, each producing half of ``out_channels``, read the pixel grid at offsets
    (0, 0) (``path1``) and (1, 1) (``path2``: the map shifted up-left by one pixel,
    zero-padded at the bottom and right); their outputs are concatenated and normalised
    (``bn``). An odd ``out_channels`` gives the extra channel to the second path. Each
    path is a 1x1 average pool with stride 2 (a subsampling the tracer sees) and a
    1x1 conv. With ``relu=True`` (NASNet's use) a ReLU (``act``) comes first.

    With ``stride=1`` there is nothing to reduce and it is a 1x1 conv + BN (children
    ``path1`` and ``bn``).
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2, relu: bool = True):
        super().__init__()
        _check_channels("FactorizedReduction", in_channels, out_channels)
        if stride not in (1, 2):
            raise CnnlabError(f"FactorizedReduction stride must be 1 or 2, got {stride}")
        if stride == 2 and out_channels < 2:
            raise CnnlabError(f"FactorizedReduction with stride 2 needs out_channels >= 2 (one per path), "
                              f"got {out_channels}")
        self.stride = stride
        self.act = nn.ReLU() if relu else nn.Identity()
        if stride == 1:
            self.path1 = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.path2 = None
        else:
            half = out_channels // 2
            self.path1 = nn.Sequential(nn.AvgPool2d(1, stride=2), nn.Conv2d(in_channels, half, 1, bias=False))
            self.path2 = nn.Sequential(nn.AvgPool2d(1, stride=2),
                                       nn.Conv2d(in_channels, out_channels - half, 1, bias=False))
        self.bn = nn.BatchNorm2d(out_channels, eps=NAS_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(x)
        if self.path2 is None:
            return self.bn(self.path1(x))
        # Shift by one pixel so the second path samples the odd rows and columns.
        shifted = F.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.path1(x), self.path2(shifted)], dim=1))


class NasPool(nn.Module):
    """NASNet's 3x3 average or max pooling operation, with a 1x1 conv + BN when the width must change.

    'SAME' padding as in TensorFlow: max pooling pads with -inf and average pooling
    averages over the real pixels only (``count_include_pad=False``), so border pixels
    are not pulled towards zero.
    """

    def __init__(self, kind: str, in_channels: int, out_channels: int, stride: int = 1, kernel_size: int = 3):
        super().__init__()
        _check_channels("NasPool", in_channels, out_channels)
        if kind == "avg":
            self.pool = nn.AvgPool2d(kernel_size, stride, padding=kernel_size // 2, count_include_pad=False)
        elif kind == "max":
            self.pool = nn.MaxPool2d(kernel_size, stride, padding=kernel_size // 2)
        else:
            raise CnnlabError(f"NasPool kind must be 'avg' or 'max', got {kind!r}")
        self.proj = None
        if in_channels != out_channels:
            self.proj = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                      nn.BatchNorm2d(out_channels, eps=NAS_BN_EPS))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x)
        return x if self.proj is None else self.proj(x)
