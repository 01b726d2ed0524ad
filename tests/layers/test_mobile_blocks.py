"""Depthwise separable conv, MobileNetV2's inverted residual and EfficientNet's MBConv."""
import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.efficientnet import MBConv as TorchvisionMBConv
from torchvision.models.efficientnet import MBConvConfig
from torchvision.models.mobilenetv2 import InvertedResidual as TorchvisionInvertedResidual

from cnnlab.errors import CnnlabError
from cnnlab.layers.inverted_residual import InvertedResidual, MBConv, make_divisible
from cnnlab.layers.separable import DepthwiseSeparableConv


def _randomise_bn(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                m.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                m.bias.copy_(torch.randn(c, generator=generator) * 0.1)


# --------------------------------------------------------------------------- depthwise separable


def test_separable_conv_reproduces_the_lectures_worked_example():
    # 3x3 conv, 256 -> 256 channels on 14x14: 589,824 weights standard, 67,840 separable (8.7x fewer).
    block = DepthwiseSeparableConv(256, 256)
    weights = block.depthwise.conv.weight.numel() + block.pointwise.conv.weight.numel()
    assert block.depthwise.conv.weight.numel() == 9 * 256 == 2_304
    assert block.pointwise.conv.weight.numel() == 256 * 256 == 65_536
    assert weights == 67_840
    assert 3 * 3 * 256 * 256 / weights == pytest.approx(8.69, abs=0.01)
    assert block.depthwise.conv.groups == 256 and block.pointwise.conv.kernel_size == (1, 1)


def test_separable_conv_is_depthwise_then_pointwise_each_with_bn_relu():
    block = DepthwiseSeparableConv(8, 16, stride=2).eval()
    _randomise_bn(block, 0)
    x = torch.randn(2, 8, 10, 10)
    y = block(x)
    assert y.shape == (2, 16, 5, 5) and (y >= 0).all()
    # Channel 3 of the depthwise output depends on input channel 3 only.
    x2 = x.clone()
    x2[:, 5] += 1.0
    with torch.no_grad():
        assert torch.equal(block.depthwise(x)[:, 3], block.depthwise(x2)[:, 3])
        assert not torch.equal(block.depthwise(x)[:, 5], block.depthwise(x2)[:, 5])
        expected = block.pointwise.act(block.pointwise.bn(block.pointwise.conv(
            block.depthwise.act(block.depthwise.bn(block.depthwise.conv(x))))))
    torch.testing.assert_close(y, expected)


def test_separable_conv_rejects_bad_arguments():
    with pytest.raises(CnnlabError, match="channel"):
        DepthwiseSeparableConv(0, 8)
    with pytest.raises(CnnlabError, match="stride"):
        DepthwiseSeparableConv(8, 8, stride=0)


# --------------------------------------------------------------------------- make_divisible


def test_make_divisible_rounds_to_the_nearest_multiple_never_below_90_percent():
    assert make_divisible(32 * 0.75) == 24
    assert make_divisible(12) == 16  # halfway rounds up
    assert make_divisible(11.9) == 8 + 8  # 8 would be 67% of 11.9: one multiple up
    assert make_divisible(3) == 8  # floor of one multiple
    assert make_divisible(1280 * 1.4) == 1792  # MobileNetV2-1.4's last conv
    for tenths in range(10, 4000):
        value = tenths / 10
        rounded = make_divisible(value)
        assert rounded % 8 == 0 and rounded >= 8
        assert 0.9 * value <= rounded < value + 8  # at most one multiple off


# --------------------------------------------------------------------------- inverted residual


@pytest.mark.parametrize("inp,oup,stride,t", [(16, 16, 1, 6), (16, 24, 2, 6), (32, 16, 1, 1), (24, 24, 1, 6)])
def test_inverted_residual_loads_torchvision_and_matches(inp, oup, stride, t):
    reference = TorchvisionInvertedResidual(inp, oup, stride, expand_ratio=t).eval()
    _randomise_bn(reference, inp + oup)
    ours = InvertedResidual(inp, oup, stride, expand_ratio=t).eval()
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    assert ours.use_residual == reference.use_res_connect == (stride == 1 and inp == oup)
    x = torch.randn(2, inp, 9, 9)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)


def test_inverted_residual_structure_expand_depthwise_linear_project():
    block = InvertedResidual(16, 24, stride=2, expand_ratio=6).eval()
    expand, depthwise, project, project_bn = block.conv
    assert expand[0].out_channels == 96 and isinstance(expand[2], nn.ReLU6)
    assert depthwise[0].groups == 96 and depthwise[0].stride == (2, 2) and isinstance(depthwise[2], nn.ReLU6)
    assert isinstance(project, nn.Conv2d) and isinstance(project_bn, nn.BatchNorm2d)
    _randomise_bn(block, 1)
    # Linear bottleneck: no activation after the projection, so outputs take both signs.
    y = block(torch.randn(4, 16, 8, 8))
    assert (y < 0).any() and (y > 0).any()
    # Without expansion the first unit is the depthwise conv (MobileNetV2's first block).
    assert InvertedResidual(32, 16, expand_ratio=1).conv[0][0].groups == 32


def test_inverted_residual_adds_the_input_only_when_shapes_agree():
    block = InvertedResidual(8, 8).eval()
    with torch.no_grad():
        for p in block.conv[-1].parameters():
            p.zero_()  # the branch now outputs zero (BN scale 0, shift 0)
    x = torch.randn(1, 8, 5, 5)
    torch.testing.assert_close(block(x), x)
    assert not InvertedResidual(8, 16).use_residual and not InvertedResidual(8, 8, stride=2).use_residual


@pytest.mark.parametrize("kwargs,match", [
    (dict(expand_ratio=0), "expand_ratio"), (dict(kernel_size=4), "kernel_size"),
    (dict(se_ratio=0.0), "se_ratio"), (dict(stride=0), "stride"),
])
def test_inverted_residual_rejects_bad_arguments(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        InvertedResidual(8, 8, **kwargs)


# --------------------------------------------------------------------------- MBConv


@pytest.mark.parametrize("t,k,stride,inp,oup", [(1, 3, 1, 32, 16), (6, 5, 2, 24, 40), (6, 3, 1, 40, 40)])
def test_mbconv_loads_torchvision_and_matches(t, k, stride, inp, oup):
    config = MBConvConfig(t, k, stride, inp, oup, 1)
    reference = TorchvisionMBConv(config, 0.0, nn.BatchNorm2d).eval()
    _randomise_bn(reference, inp + oup)
    ours = MBConv(inp, oup, stride, t, k).eval()
    assert {k_: v.shape for k_, v in ours.state_dict().items()} == {
        k_: v.shape for k_, v in reference.state_dict().items()}
    assert list(ours.state_dict()) == list(reference.state_dict())
    ours.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, inp, 11, 11)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-6, atol=1e-6)


def test_mbconv_uses_se_from_the_input_width_and_silu():
    block = MBConv(40, 80, expand_ratio=6, kernel_size=5)
    expand, depthwise, se, project = block.block
    assert expand[0].out_channels == 240 and isinstance(expand[2], nn.SiLU)
    assert depthwise[0].kernel_size == (5, 5) and depthwise[0].groups == 240
    assert se.fc1.in_channels == 240 and se.fc1.out_channels == 40 // 4 == 10
    assert isinstance(se.activation, nn.SiLU)
    assert len(project) == 2  # conv + BN, no activation


def test_mbconv_drop_path_drops_whole_samples_in_training_only():
    block = MBConv(16, 16, drop_path=0.5)
    x = torch.randn(64, 16, 4, 4)
    block.eval()
    with torch.no_grad():
        branch = block.block(x)
        torch.testing.assert_close(block(x), x + branch)
        block.train()
        block.block.eval()  # keep BN fixed so the branch is the same as above
        y = block(x)
    dropped = [(y[i] - x[i]).abs().max() < 1e-6 for i in range(64)]
    kept = [torch.allclose(y[i], x[i] + 2 * branch[i], atol=1e-5) for i in range(64)]
    assert all(d or k for d, k in zip(dropped, kept))
    assert 10 < sum(dropped) < 54  # about half the samples lose their branch


def test_blocks_backpropagate():
    for block in (DepthwiseSeparableConv(8, 8), InvertedResidual(8, 8), MBConv(8, 16, stride=2)):
        x = torch.randn(2, 8, 8, 8, requires_grad=True)
        block(x).sum().backward()
        assert x.grad is not None and all(p.grad is not None for p in block.parameters())


def test_torchvision_blocks_are_the_ones_its_models_use():
    # Guards the two references above: torchvision's models are built from exactly these classes.
    with torch.device("meta"):
        assert isinstance(torchvision.models.mobilenet_v2().features[2], TorchvisionInvertedResidual)
        assert isinstance(torchvision.models.efficientnet_b0().features[2][0], TorchvisionMBConv)
