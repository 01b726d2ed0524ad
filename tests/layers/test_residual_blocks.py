"""Residual blocks: the squeeze-and-excitation option, the cardinality checks, the wide-dropout unit."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, SqueezeExcite
from cnnlab.layers.residual import WideBasicBlock

BOTTLENECK_KEYS = [
    f"{layer}.{kind}"
    for layer in ("conv1", "bn1", "conv2", "bn2", "conv3", "bn3")
    for kind in (("weight",) if layer.startswith("conv")
                 else ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"))
]
SE_KEYS = ["se.fc1.weight", "se.fc1.bias", "se.fc2.weight", "se.fc2.bias"]


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _randomise_bn(module: nn.Module) -> None:
    # Eval-mode BN with fresh statistics is the identity and would hide mistakes.
    with torch.no_grad():
        for bn in module.modules():
            if isinstance(bn, nn.BatchNorm2d):
                bn.running_mean.uniform_(-0.1, 0.1)
                bn.running_var.uniform_(0.5, 1.5)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.1, 0.1)


# --------------------------------------------------------------------------- squeeze-and-excitation


def test_se_off_changes_no_key():
    block = Bottleneck(256, 64)
    assert block.se is None
    assert list(block.state_dict()) == BOTTLENECK_KEYS
    assert "se" not in dict(block.named_children())
    assert BasicBlock(64, 64).se is None


@pytest.mark.parametrize("block_cls, inplanes", [(Bottleneck, 256), (BasicBlock, 64)])
def test_se_adds_only_its_own_keys(block_cls, inplanes):
    plain, squeezed = block_cls(inplanes, 64), block_cls(inplanes, 64, se_reduction=16)
    assert isinstance(squeezed.se, SqueezeExcite)
    extra = [k for k in squeezed.state_dict() if k not in plain.state_dict()]
    assert extra == SE_KEYS and set(plain.state_dict()) <= set(squeezed.state_dict())
    channels = 64 * block_cls.expansion
    # Two FC layers C -> C/16 -> C with biases: the SE paper's 2C^2/r weights per block.
    assert n_params(squeezed) - n_params(plain) == 2 * channels * channels // 16 + channels // 16 + channels


@pytest.mark.parametrize("block_cls, inplanes", [(Bottleneck, 256), (BasicBlock, 64)])
def test_se_rescales_the_branch_before_the_addition(block_cls, inplanes):
    block = block_cls(inplanes, 64, se_reduction=16).eval()
    _randomise_bn(block)
    x = torch.randn(2, inplanes, 8, 8)
    last_bn = block.bn3 if block_cls is Bottleneck else block.bn2
    branch = {}
    last_bn.register_forward_hook(lambda module, inputs, output: branch.setdefault("out", output.clone()))
    with torch.no_grad():
        out = block(x)
        # SE paper Fig. 3: x + scale(residual), then the block's ReLU.
        torch.testing.assert_close(out, torch.relu(block.se(branch["out"]) + x))
        # A closed gate (sigmoid ~ 0) removes the branch: only the identity is left.
        nn.init.zeros_(block.se.fc2.weight)
        nn.init.constant_(block.se.fc2.bias, -1e4)
        torch.testing.assert_close(block(x), torch.relu(x))
        # A fully open gate (sigmoid = 1) gives back the block without SE.
        nn.init.constant_(block.se.fc2.bias, 1e4)
        plain = block_cls(inplanes, 64).eval()
        plain.load_state_dict({k: v for k, v in block.state_dict().items() if not k.startswith("se.")})
        torch.testing.assert_close(block(x), plain(x))


def test_se_reduction_must_be_a_positive_integer():
    for bad in (0, -16, 2.5, "16"):
        with pytest.raises(CnnlabError, match="se_reduction"):
            Bottleneck(256, 64, se_reduction=bad)


# --------------------------------------------------------------------------- cardinality (groups)


@pytest.mark.parametrize("block_cls", [BasicBlock, PreActBasicBlock])
def test_cardinality_must_divide_the_grouped_conv(block_cls):
    # The first 3x3 conv of a basic block reads ``inplanes`` channels in ``groups`` slices.
    with pytest.raises(CnnlabError, match="groups=3 must divide") as error:
        block_cls(64, 64, groups=3)
    assert "64" in str(error.value)
    grouped = block_cls(64, 64, groups=4)
    assert grouped.conv1.groups == 4 and grouped.conv1.out_channels == 256  # 4 groups of 64


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck])
def test_cardinality_and_width_must_be_positive(block_cls):
    inplanes = 64 * block_cls.expansion
    with pytest.raises(CnnlabError, match="cardinality"):
        block_cls(inplanes, 64, groups=0)
    with pytest.raises(CnnlabError, match="base_width"):
        block_cls(inplanes, 64, base_width=0)
    # 32 planes at 1/64 of the base width would leave half a channel per group.
    with pytest.raises(CnnlabError, match="base_width"):
        block_cls(32 * block_cls.expansion, 32, base_width=1)


def test_resnext_bottleneck_is_a_grouped_conv():
    # ResNeXt paper Fig. 3: 32 paths of width 4 == one 3x3 conv with 32 groups on 128 channels.
    block = Bottleneck(256, 64, groups=32, base_width=4)
    assert (block.conv1.out_channels, block.conv2.groups, block.conv3.in_channels) == (128, 32, 128)
    assert block.conv2.weight.shape == (128, 4, 3, 3)
    wide = Bottleneck(256, 64, base_width=128)  # Wide ResNet-50-2: twice ResNet's inner width
    assert wide.conv2.weight.shape == (128, 128, 3, 3)


# --------------------------------------------------------------------------- wide-dropout unit


def test_wide_block_order_is_bn_relu_conv_then_dropout_between_the_convs():
    block = WideBasicBlock(32, 64, stride=2, downsample=nn.Conv2d(32, 64, 1, stride=2, bias=False), dropout=0.3)
    assert isinstance(block.dropout, nn.Dropout) and block.dropout.p == 0.3
    assert block.preact and isinstance(block.bn1, nn.BatchNorm2d)
    calls = []
    for name in ("bn1", "conv1", "bn2", "dropout", "conv2", "downsample"):
        block.get_submodule(name).register_forward_hook(lambda *args, name=name: calls.append(name))
    y = block(torch.randn(2, 32, 16, 16))
    assert y.shape == (2, 64, 8, 8)
    assert calls == ["bn1", "conv1", "bn2", "dropout", "conv2", "downsample"]


def test_wide_block_dropout_is_training_only_and_shortcut_reads_the_preactivation():
    projection = nn.Conv2d(16, 32, 1, bias=False)
    block = WideBasicBlock(16, 32, downsample=projection, dropout=0.5)
    _randomise_bn(block)
    x = torch.randn(2, 16, 8, 8)
    block.train()
    torch.manual_seed(1)
    first = block(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, block(x))  # a different dropout mask
    block.eval()
    with torch.no_grad():
        torch.testing.assert_close(block(x), block(x))
        nn.init.zeros_(block.conv2.weight)
        torch.testing.assert_close(block(x), projection(torch.relu(block.bn1(x))))


def test_wide_block_without_dropout_is_the_preact_block():
    wide, preact = WideBasicBlock(64, 64), PreActBasicBlock(64, 64)
    assert isinstance(wide.dropout, nn.Identity)
    assert list(wide.state_dict()) == list(preact.state_dict())
    preact.load_state_dict(wide.state_dict())
    wide.eval(), preact.eval()
    x = torch.randn(1, 64, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(wide(x), preact(x))


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5])
def test_wide_block_dropout_range(bad):
    with pytest.raises(CnnlabError, match="dropout"):
        WideBasicBlock(64, 64, dropout=bad)
