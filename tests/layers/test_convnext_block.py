"""The ConvNeXt block: torchvision's CNBlock layout, layer scale, drop path, errors."""
from __future__ import annotations

import pytest
import torch
from torch import nn
from torchvision.models.convnext import CNBlock

from cnnlab.errors import CnnlabError
from cnnlab.layers.convnext_block import ConvNeXtBlock, Permute


def test_block_layout_and_parameter_count():
    dim = 32
    block = ConvNeXtBlock(dim)
    conv, to_nhwc, norm, fc1, act, fc2, to_nchw = block.block
    assert conv.groups == dim and conv.kernel_size == (7, 7) and conv.padding == (3, 3) and conv.bias is not None
    assert isinstance(norm, nn.LayerNorm) and norm.eps == 1e-6
    assert (fc1.in_features, fc1.out_features, fc2.out_features) == (dim, 4 * dim, dim)
    assert isinstance(act, nn.GELU) and to_nhwc.dims == (0, 2, 3, 1) and to_nchw.dims == (0, 3, 1, 2)
    # 7x7 depthwise (+bias), LN (scale+shift), two linears (+biases), layer scale.
    expected = (49 * dim + dim) + 2 * dim + (dim * 4 * dim + 4 * dim) + (4 * dim * dim + dim) + dim
    assert sum(p.numel() for p in block.parameters()) == expected
    assert block.layer_scale.shape == (dim, 1, 1) and torch.all(block.layer_scale == 1e-6)


def test_block_equals_torchvision_cnblock():
    ours, theirs = ConvNeXtBlock(16, layer_scale=0.5).eval(), CNBlock(16, 0.5, 0.0).eval()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(2, 16, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs(x))


def test_residual_identity_and_drop_path():
    x = torch.randn(16, 8, 6, 6)
    block = ConvNeXtBlock(8).eval()
    with torch.no_grad():
        block.layer_scale.zero_()
        torch.testing.assert_close(block(x), x)  # a zero branch leaves the input unchanged
    unscaled = ConvNeXtBlock(8, layer_scale=None)
    assert unscaled.layer_scale is None and "layer_scale" not in unscaled.state_dict()
    assert unscaled(x).shape == x.shape

    dropping = ConvNeXtBlock(8, layer_scale=1.0, drop_path=0.5).train()
    torch.manual_seed(1)
    out = dropping(x)
    dropped = [torch.equal(out[i], x[i]) for i in range(16)]
    assert any(dropped) and not all(dropped)  # whole samples skip the branch, others keep it
    dropping.eval()
    assert not torch.equal(dropping(x), x)


def test_block_backward_and_permute():
    block = ConvNeXtBlock(8, layer_scale=0.1)
    x = torch.randn(2, 8, 5, 5, requires_grad=True)
    block(x).sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())
    assert Permute((0, 2, 3, 1))(torch.zeros(1, 2, 3, 4)).shape == (1, 3, 4, 2)


@pytest.mark.parametrize("kwargs", [dict(dim=0), dict(dim=8, kernel_size=4), dict(dim=8, expansion=0),
                                    dict(dim=8, layer_scale=-1.0), dict(dim=8, drop_path=1.0)])
def test_bad_block_arguments_are_user_errors(kwargs):
    with pytest.raises(CnnlabError):
        ConvNeXtBlock(**kwargs)
