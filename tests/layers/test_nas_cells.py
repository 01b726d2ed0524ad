"""The NAS cell operations: stacked separable convs, factorized reduction, pooling, ReLU-conv-BN."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers.nas_cells import FactorizedReduction, NasPool, ReLUConvBN, SeparableConv2d, StackedSeparableConv


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_separable_conv_has_no_norm_between_its_convs():
    conv = SeparableConv2d(8, 16, 5, stride=2)
    assert [type(m) for m in conv.children()] == [nn.Conv2d, nn.Conv2d]
    assert conv.depthwise.groups == 8 and conv.depthwise.stride == (2, 2) and conv.depthwise.bias is None
    assert n_params(conv) == 25 * 8 + 8 * 16
    assert conv(torch.randn(1, 8, 11, 11)).shape == (1, 16, 6, 6)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_stacked_separable_conv(kernel):
    op = StackedSeparableConv(12, 8, kernel, stride=2)
    k2 = kernel * kernel
    # sep(12->8) + BN, sep(8->8) + BN; the stride only on the first.
    assert n_params(op) == (k2 * 12 + 12 * 8 + 2 * 8) + (k2 * 8 + 8 * 8 + 2 * 8)
    assert op.separable1.depthwise.stride == (2, 2) and op.separable2.depthwise.stride == (1, 1)
    assert op.bn1.eps == 1e-3 and not op.act1.inplace
    x = torch.randn(2, 12, 56, 56)
    before = x.clone()
    assert op(x).shape == (2, 8, 28, 28)
    assert torch.equal(x, before)  # the cell's hidden state is read by other ops: left untouched


def test_factorized_reduction_reads_both_pixel_grids():
    op = FactorizedReduction(2, 4, stride=2, relu=False).eval()
    op.bn.eps = 0.0  # fresh statistics (mean 0, var 1): BN becomes the identity
    with torch.no_grad():
        for conv in (op.path1[1], op.path2[1]):  # each path copies its 2 input channels
            conv.weight.copy_(torch.eye(2).view(2, 2, 1, 1))
    x = torch.randn(1, 2, 6, 6)
    with torch.no_grad():
        out = op(x)
    assert out.shape == (1, 4, 3, 3)
    torch.testing.assert_close(out[:, :2], x[:, :, 0::2, 0::2])
    torch.testing.assert_close(out[:, 2:], x[:, :, 1::2, 1::2])
    # Odd sizes: the shifted grid runs off the edge into the zero padding.
    odd = torch.randn(1, 2, 7, 7)
    with torch.no_grad():
        out = op(odd)
    assert out.shape == (1, 4, 4, 4)
    torch.testing.assert_close(out[:, 2:, :3, :3], odd[:, :, 1::2, 1::2])
    assert torch.count_nonzero(out[:, 2:, 3, :]) == 0


def test_factorized_reduction_odd_width_and_stride_one():
    op = FactorizedReduction(8, 11)
    assert op.path1[1].out_channels == 5 and op.path2[1].out_channels == 6
    assert n_params(op) == 8 * 5 + 8 * 6 + 2 * 11
    x = -torch.ones(1, 8, 4, 4)
    assert op.eval()(x).shape == (1, 11, 2, 2)
    plain = FactorizedReduction(8, 4, stride=1)
    assert plain.path2 is None and plain(torch.randn(1, 8, 5, 5)).shape == (1, 4, 5, 5)
    with pytest.raises(CnnlabError, match="stride"):
        FactorizedReduction(8, 4, stride=3)
    with pytest.raises(CnnlabError, match="out_channels"):
        FactorizedReduction(8, 1)


def test_pooling_pads_like_tensorflow_same():
    avg = NasPool("avg", 4, 4)
    ones = torch.ones(1, 4, 5, 5)
    torch.testing.assert_close(avg(ones), ones)  # border averages exclude the padding
    maxpool = NasPool("max", 4, 4, stride=2)
    negative = -torch.ones(1, 4, 5, 5)
    torch.testing.assert_close(maxpool(negative), -torch.ones(1, 4, 3, 3))  # padding never wins
    assert avg.proj is None and n_params(NasPool("avg", 4, 8)) == 4 * 8 + 2 * 8
    with pytest.raises(CnnlabError, match="kind"):
        NasPool("min", 4, 4)


def test_relu_conv_bn():
    op = ReLUConvBN(6, 3, stride=2)
    assert [name for name, _ in op.named_children()] == ["act", "conv", "bn"]
    assert op.conv.bias is None and n_params(op) == 6 * 3 + 2 * 3
    assert op(torch.randn(2, 6, 8, 8)).shape == (2, 3, 4, 4)
    with pytest.raises(CnnlabError):
        ReLUConvBN(0, 3)
