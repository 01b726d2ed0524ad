"""Squeeze-and-excitation and the Sequential conv-norm-act: torchvision parity and the SE weight count."""
import pytest
import torch
from torchvision.ops import Conv2dNormActivation, SqueezeExcitation

from cnnlab.errors import CnnlabError
from cnnlab.layers import ConvNormActSequential, SqueezeExcite


def test_se_weights_for_512_channels_r16():
    se = SqueezeExcite(512, reduction=16)
    weights = se.fc1.weight.numel() + se.fc2.weight.numel()
    assert weights == 2 * 512 * 32 == 32_768


def test_se_loads_torchvision_and_matches():
    reference = SqueezeExcitation(64, 16, activation=torch.nn.SiLU).eval()
    ours = SqueezeExcite(64, squeeze_channels=16, act="silu").eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 64, 7, 7)
    torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-6)


def test_se_rescales_each_channel_by_a_gate_in_0_1():
    se = SqueezeExcite(32, reduction=4).eval()
    x = torch.rand(1, 32, 5, 5) + 0.1
    ratio = se(x) / x
    per_channel = ratio.flatten(2)
    assert torch.allclose(per_channel, per_channel[..., :1].expand_as(per_channel), atol=1e-6)
    assert (ratio > 0).all() and (ratio < 1).all()


@pytest.mark.parametrize("kwargs", [dict(reduction=0), dict(squeeze_channels=0)])
def test_se_rejects_bad_reduction(kwargs):
    with pytest.raises(CnnlabError, match="SE"):
        SqueezeExcite(64, **kwargs)


@pytest.mark.parametrize("norm,act", [("batchnorm", "relu"), ("batchnorm", None), (None, "relu6")])
def test_sequential_conv_norm_act_keys_match_torchvision(norm, act):
    reference = Conv2dNormActivation(
        8, 16, 3, 2,
        norm_layer=torch.nn.BatchNorm2d if norm else None,
        activation_layer={"relu": torch.nn.ReLU, "relu6": torch.nn.ReLU6, None: None}[act],
    )
    ours = ConvNormActSequential(8, 16, 3, 2, norm=norm, act=act)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()
    }
