import pytest
import torch
from torch import nn

from cnnlab import CnnlabError
from cnnlab.layers import ConvNormAct, DropPath, InvertedDropout, LayerNorm2d, get_activation, get_norm


@pytest.mark.parametrize("name,expected", [
    ("sigmoid", torch.sigmoid), ("tanh", torch.tanh), ("relu", torch.relu),
    ("leaky_relu", lambda x: torch.where(x > 0, x, 0.01 * x)), ("elu", lambda x: torch.where(x > 0, x, torch.exp(x) - 1)),
    ("gelu", lambda x: 0.5 * x * (1 + torch.erf(x / 2 ** 0.5))), ("silu", lambda x: x * torch.sigmoid(x)),
])
def test_activation_zoo_by_name(name, expected):
    x = torch.linspace(-4, 4, 101)
    assert torch.allclose(get_activation(name)(x), expected(x), atol=1e-6)


def test_activation_errors_and_identity():
    assert isinstance(get_activation(None), nn.Identity)
    assert get_activation("relu", inplace=True).inplace
    with pytest.raises(CnnlabError, match="unknown activation 'relux'"):
        get_activation("relux")


def test_layernorm2d_normalises_each_pixel_over_channels():
    x = torch.randn(2, 8, 5, 5) * 3 + 1
    y = LayerNorm2d(8)(x)
    assert torch.allclose(y.mean(dim=1), torch.zeros(2, 5, 5), atol=1e-5)
    assert torch.allclose(y.var(dim=1, unbiased=False), torch.ones(2, 5, 5), atol=1e-3)
    reference = nn.LayerNorm(8, eps=1e-6)(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    assert torch.allclose(y, reference, atol=1e-6)


def test_norms_by_name():
    x = torch.randn(4, 64, 6, 6)
    assert isinstance(get_norm("batchnorm", 64), nn.BatchNorm2d)
    group = get_norm("groupnorm", 64)
    assert isinstance(group, nn.GroupNorm) and group.num_groups == 32
    assert get_norm("gn", 48).num_groups == 16  # 48 is not divisible by 32
    instance = get_norm("instancenorm", 64)
    assert torch.allclose(instance(x).mean(dim=(2, 3)), torch.zeros(4, 64), atol=1e-5)
    lrn = get_norm("lrn", 64)
    assert isinstance(lrn, nn.LocalResponseNorm) and (lrn.size, lrn.alpha, lrn.beta, lrn.k) == (5, 1e-4, 0.75, 2.0)
    assert isinstance(get_norm(None, 64), nn.Identity)
    for name in ("batchnorm", "layernorm", "groupnorm", "instancenorm", "lrn"):
        assert get_norm(name, 64)(x).shape == x.shape
    with pytest.raises(CnnlabError, match="unknown normalisation"):
        get_norm("weightnorm", 64)


def test_conv_norm_act():
    block = ConvNormAct(3, 16, kernel_size=3, stride=2)
    assert block.conv.bias is None and isinstance(block.bn, nn.BatchNorm2d) and isinstance(block.act, nn.ReLU)
    assert block(torch.randn(1, 3, 32, 32)).shape == (1, 16, 16, 16)
    plain = ConvNormAct(3, 16, kernel_size=5, norm=None, act="gelu")
    assert plain.conv.bias is not None and plain.conv.padding == (2, 2)
    assert sorted(k for k in block.state_dict() if not k.startswith("bn.num")) == [
        "bn.bias", "bn.running_mean", "bn.running_var", "bn.weight", "conv.weight"]


def test_inverted_dropout_keeps_the_expectation():
    dropout = InvertedDropout(0.5).train()
    x = torch.ones(100_000)
    y = dropout(x)
    assert set(y.unique().tolist()) == {0.0, 2.0}  # survivors scaled by 1/(1-p) during training
    assert abs(y.mean().item() - 1.0) < 0.02
    assert torch.equal(dropout.eval()(x), x)  # nothing to rescale at test time


def test_drop_path_drops_whole_samples():
    layer = DropPath(0.25).train()
    x = torch.ones(20_000, 3, 4, 4)
    y = layer(x)
    per_sample = y.flatten(1)
    assert torch.all((per_sample == 0).all(1) | (per_sample == 1 / 0.75).all(1))
    assert abs((per_sample[:, 0] == 0).float().mean().item() - 0.25) < 0.02
    assert torch.equal(layer.eval()(x), x)
    with pytest.raises(CnnlabError):
        DropPath(1.0)
