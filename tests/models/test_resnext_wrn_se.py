"""ResNeXt, Wide ResNet (ImageNet and CIFAR WRN-d-k) and SE-ResNet/ResNeXt."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis import count_macs
from cnnlab.errors import CnnlabError
from cnnlab.layers import Bottleneck, SqueezeExcite
from cnnlab.layers.residual import WideBasicBlock
from cnnlab.models.wide_resnet_cifar import WideResNet, wide_resnet_cifar

from .parity import n_params, torchvision_parity

# torchvision's documented parameter counts.
TORCHVISION_PARAMS = {
    "resnext50_32x4d": 25_028_904,
    "resnext101_32x8d": 88_791_336,
    "resnext101_64x4d": 83_455_272,
    "wide_resnet50_2": 68_883_240,
    "wide_resnet101_2": 126_886_696,
}
# Parameter counts (millions) the papers report: SE paper (SE-ResNet/ResNeXt), WRN paper (CIFAR WRN-d-k).
SE_PAPER_PARAMS_M = {"se_resnet50": 28.1, "se_resnet101": 49.3, "se_resnet152": 66.8, "se_resnext50_32x4d": 27.6}
WRN_PAPER_PARAMS_M = {(28, 10): 36.5, (16, 8): 11.0, (40, 4): 8.9}
SE_BASE = {"se_resnet50": "resnet50", "se_resnet101": "resnet101", "se_resnet152": "resnet152",
           "se_resnext50_32x4d": "resnext50_32x4d"}
ALL_NAMES = list(TORCHVISION_PARAMS) + list(SE_PAPER_PARAMS_M) + ["wrn28_10", "wrn16_8", "wrn40_4"]


# --------------------------------------------------------------------------- torchvision parity


@pytest.mark.parametrize("name", list(TORCHVISION_PARAMS))
def test_matches_torchvision_and_trains(name):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(7))
    # Built on the meta device and given torchvision's values: skips our own random init
    # of up to 127M parameters, which the strict load overwrites anyway.
    model, _ = torchvision_parity(name, [x], bn_seed=len(name), params=TORCHVISION_PARAMS[name], on_meta=True)
    assert model.pretrained_cfg.torchvision_name == name

    # One training step's forward and backward (32x32: layer4 ends 1x1, BN needs a batch of 2).
    model.train()
    model(torch.randn(2, 3, 32, 32)).logsumexp(dim=1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_cardinality_and_width_are_the_papers_templates():
    with torch.device("meta"):
        resnext = cnnlab.create_model("resnext50_32x4d")
        wide = cnnlab.create_model("wide_resnet50_2")
        resnext64 = cnnlab.create_model("resnext101_64x4d")
    # ResNeXt paper Table 1: conv2 [1x1, 128; 3x3, 128, C=32; 1x1, 256] ... conv5 3x3 on 1024 channels.
    assert [stage[0].conv2.out_channels for stage in (resnext.layer1, resnext.layer4)] == [128, 1024]
    assert all(m.conv2.groups == 32 for m in resnext.modules() if isinstance(m, Bottleneck))
    assert resnext64.layer1[0].conv2.groups == 64 and resnext64.layer1[0].conv2.out_channels == 256
    # WRN-50-2: every bottleneck twice as wide inside, same 256..2048 outputs as ResNet-50.
    assert [stage[0].conv2.out_channels for stage in (wide.layer1, wide.layer4)] == [128, 1024]
    assert wide.layer1[0].conv2.groups == 1 and wide.fc.in_features == 2048


def test_resnext_cardinality_is_a_parameter():
    # The ResNeXt paper's Table 3 trades cardinality against width at fixed cost (8x14d vs 32x4d).
    with torch.device("meta"):
        model = cnnlab.create_model("resnext50_32x4d", cardinality=8, width_per_group=14)
        baseline = cnnlab.create_model("resnet50")
    assert model.layer1[0].conv2.groups == 8 and model.layer1[0].conv2.out_channels == 112
    assert n_params(model) == pytest.approx(n_params(baseline), rel=0.05)  # "preserved complexity"


@pytest.mark.parametrize("overrides, match", [
    ({"cardinality": 0}, "cardinality"),
    ({"cardinality": -32}, "cardinality"),
    ({"cardinality": 2.5}, "cardinality"),
    ({"width_per_group": 0}, "width_per_group"),
])
def test_invalid_cardinality_is_a_user_error(overrides, match):
    for name in ("resnext50_32x4d", "se_resnext50_32x4d"):
        with pytest.raises(CnnlabError, match=match) as error:
            cnnlab.create_model(name, **overrides)
        assert ">= 1" in str(error.value)


def test_cardinality_not_dividing_the_width_is_a_user_error():
    # A basic block's grouped conv reads the 64-channel stem output: 3 paths cannot split it.
    with pytest.raises(CnnlabError, match="groups=3 must divide"):
        cnnlab.create_model("resnet18", groups=3)
    with pytest.raises(CnnlabError, match="se_reduction"):
        cnnlab.create_model("se_resnet50", se_reduction=0)


# --------------------------------------------------------------------------- SE-ResNet / SE-ResNeXt


@pytest.mark.parametrize("name", list(SE_PAPER_PARAMS_M))
def test_se_nets_are_their_base_nets_plus_se_units(name):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
        base = cnnlab.create_model(SE_BASE[name])
    assert n_params(model) / 1e6 == pytest.approx(SE_PAPER_PARAMS_M[name], rel=0.01)
    blocks = [m for m in model.modules() if isinstance(m, Bottleneck)]
    assert all(isinstance(b.se, SqueezeExcite) and b.se.fc1.out_channels == b.bn3.num_features // 16
               for b in blocks)
    # Exactly the base net's parameters plus 2C^2/16 + C/16 + C per block (C = block output channels).
    se_params = sum(2 * c * c // 16 + c // 16 + c for c in (b.bn3.num_features for b in blocks))
    assert n_params(model) == n_params(base) + se_params
    # The base net's keys are untouched: only ``.se.`` keys are added.
    ours, theirs = model.state_dict(), base.state_dict()
    assert [k for k in ours if ".se." not in k] == list(theirs)
    info = cnnlab.model_info(name)
    assert info.family == "senet" and info.paper.title == "Squeeze-and-Excitation Networks"
    assert info.torchvision_name is None and info.weight_layers == cnnlab.model_info(SE_BASE[name]).weight_layers


def test_se_resnet50_loads_resnet50_weights_except_the_se_units():
    base = cnnlab.create_model("resnet50").eval()
    model = cnnlab.create_model("se_resnet50").eval()
    result = model.load_state_dict(base.state_dict(), strict=False)
    assert not result.unexpected_keys
    assert result.missing_keys and all(".se." in key for key in result.missing_keys)
    # Open every gate (sigmoid = 1): SE-ResNet-50 then computes exactly ResNet-50.
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, Bottleneck):
                nn.init.zeros_(block.se.fc2.weight)
                nn.init.constant_(block.se.fc2.bias, 1e4)
        x = torch.randn(1, 3, 64, 64)
        torch.testing.assert_close(model(x), base(x))


# --------------------------------------------------------------------------- CIFAR WRN-d-k


def wrn_params_by_hand(depth: int, k: int, num_classes: int = 10) -> int:
    """Parameters of WRN-d-k from the paper's Table 1 and the authors' code (bias-free convs)."""
    n = (depth - 4) // 6
    total = 3 * 16 * 9  # stem conv
    in_ch = 16
    for stage, width in enumerate((16 * k, 32 * k, 64 * k)):
        for unit in range(n):
            total += 2 * in_ch + in_ch * width * 9 + 2 * width + width * width * 9  # bn1, conv1, bn2, conv2
            if unit == 0 and (stage > 0 or in_ch != width):
                total += in_ch * width  # 1x1 projection shortcut
            in_ch = width
    return total + 2 * in_ch + in_ch * num_classes + num_classes  # final BN + fc


@pytest.mark.parametrize("depth, k", list(WRN_PAPER_PARAMS_M))
def test_wrn_param_counts_match_the_paper(depth, k):
    with torch.device("meta"):
        model = cnnlab.create_model(f"wrn{depth}_{k}")
    assert n_params(model) == wrn_params_by_hand(depth, k)
    assert n_params(model) / 1e6 == pytest.approx(WRN_PAPER_PARAMS_M[depth, k], rel=0.01)
    units = [m for m in model.modules() if isinstance(m, WideBasicBlock)]
    assert len(units) == 3 * (depth - 4) // 6
    assert all(isinstance(u.dropout, nn.Dropout) and u.dropout.p == 0.3 for u in units)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    # The paper's depth: stem + 6n unit convs + the projections of stages 2 and 3 + fc.
    assert 1 + 2 * len(units) + 2 + 1 == depth == model.pretrained_cfg.weight_layers
    info = cnnlab.model_info(f"wrn{depth}_{k}")
    assert info.dataset == "cifar10" and info.input_size == (3, 32, 32) and info.family == "wide_resnet"


def test_wrn_layout():
    model = wide_resnet_cifar(16, 4, dropout=0.0).eval()
    assert isinstance(model, WideResNet) and not isinstance(model.layer1[0].dropout, nn.Dropout)
    assert [stage[0].conv2.out_channels for stage in (model.layer1, model.layer2, model.layer3)] == [64, 128, 256]
    # Every stage opens with a bare 1x1 projection (16 -> 16k also changes the width in stage 1).
    assert all(isinstance(stage[0].downsample, nn.Conv2d) for stage in (model.layer1, model.layer2, model.layer3))
    assert model.layer1[1].downsample is None
    # k = 1 keeps stage 1 at 16 channels: identity shortcut there.
    assert wide_resnet_cifar(10, 1).layer1[0].downsample is None
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.forward_features(x).shape == (2, 256, 8, 8)
        assert model(x).shape == (2, 10)
    assert cnnlab.model_info("wrn28_10").reference_top1 == pytest.approx(100 - 3.89)


def test_wrn_dropout_is_on_in_training_and_off_in_eval():
    model = wide_resnet_cifar(10, 2)  # default dropout: the paper's 0.3
    x = torch.randn(2, 3, 16, 16)
    torch.manual_seed(1)
    first = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(x))
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x))
    assert cnnlab.create_model("wrn16_8", dropout=0.0).layer1[0].dropout.__class__ is nn.Identity


@pytest.mark.parametrize("args, match", [
    ((27, 10), r"depth=27"),
    ((22.0, 10), r"\(depth - 4\) % 6 == 0"),
    ((4, 10), r"\(depth - 4\) % 6 == 0"),
    ((28, 0), "widen_factor"),
    ((28, 2.5), "widen_factor"),
])
def test_wrn_invalid_configurations(args, match):
    with pytest.raises(CnnlabError, match=match):
        wide_resnet_cifar(*args)


def test_wrn_invalid_dropout():
    for bad in (-0.1, 1.0):
        with pytest.raises(CnnlabError, match="dropout"):
            cnnlab.create_model("wrn28_10", dropout=bad)


# --------------------------------------------------------------------------- every model


@pytest.mark.parametrize("name", [n for n in ALL_NAMES if n not in TORCHVISION_PARAMS])  # those: above
def test_forward_backward(name):
    model = cnnlab.create_model(name, num_classes=5)
    # 32x32 is the smallest input the ImageNet nets take in training mode (layer4 ends 1x1,
    # where BN needs a batch of 2); the CIFAR nets get a 16x16 crop to stay fast.
    size = 32 if model.pretrained_cfg.dataset == "imagenet" else 16
    logits = model(torch.randn(2, 3, size, size))
    assert logits.shape == (2, 5)
    logits.logsumexp(dim=1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_metadata_and_listing():
    for name in ALL_NAMES:
        info = cnnlab.model_info(name)
        assert info.paper.title and info.paper.authors and info.paper.venue and info.weight_layers > 0
        assert info.reference_note
        for value in (info.reference_top1, info.reference_top5):
            assert value is None or 0 < value < 100
    assert cnnlab.list_models("resnext*") == ["resnext101_32x8d", "resnext101_64x4d", "resnext50_32x4d"]
    assert set(cnnlab.list_models("wrn*")) == {"wrn16_8", "wrn28_10", "wrn40_4"}
    assert cnnlab.model_info("resnext50_32x4d").paper.year == 2017
    assert cnnlab.model_info("resnext50_32x4d").reference_top1 == pytest.approx(100 - 22.2)
    assert cnnlab.model_info("wide_resnet50_2").reference_top1 == pytest.approx(100 - 21.9)
    assert "torchvision" in cnnlab.model_info("resnext101_32x8d").reference_note


def test_macs_match_published_figures():
    # torchvision documents 4.23 / 11.40 GFLOPS (multiply-adds) for these two at 224x224.
    assert count_macs("resnext50_32x4d") == pytest.approx(4.23e9, rel=0.01)
    assert count_macs("wide_resnet50_2") == pytest.approx(11.40e9, rel=0.01)
    # SE adds almost nothing to the cost: two tiny FC layers per block (SE paper: +0.26%).
    assert count_macs("se_resnet50") / count_macs("resnet50") == pytest.approx(1.0, abs=0.005)
