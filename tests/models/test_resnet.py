"""ResNet family: torchvision parity, the CIFAR nets of the paper, plain nets, pre-activation nets."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.layers import (
    BasicBlock,
    Bottleneck,
    PreActBasicBlock,
    PreActBottleneck,
    ZeroPadShortcut,
)
from cnnlab.models.resnet import ResNet
from cnnlab.models.resnet_cifar import CifarResNet

from .parity import n_params, randomise_bn_stats as _randomise_bn_stats, torchvision_parity

IMAGENET_DEPTHS = [18, 34, 50, 101, 152]
TORCHVISION_PARAMS = {18: 11_689_512, 34: 21_797_672, 50: 25_557_032, 101: 44_549_160, 152: 60_192_808}


class _TorchvisionResNets(dict):
    """torchvision's ResNets with randomised BN statistics, each built on first use (per xdist worker)."""

    def __missing__(self, depth: int) -> nn.Module:
        model = getattr(torchvision.models, f"resnet{depth}")(weights=None).eval()
        with torch.no_grad():
            _randomise_bn_stats(model, torch.Generator().manual_seed(depth))
        self[depth] = model
        return model


@pytest.fixture(scope="module")
def torchvision_resnets() -> dict[int, nn.Module]:
    return _TorchvisionResNets()


# --------------------------------------------------------------------------- ImageNet ResNet


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_resnet_matches_torchvision(depth, torchvision_resnets):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(depth))
    torchvision_parity(f"resnet{depth}", [x], reference=torchvision_resnets[depth], params=TORCHVISION_PARAMS[depth])


def test_resnet18_matches_torchvision_at_224(torchvision_resnets):
    # One check at the paper's resolution (the cheapest net: 1.8 GMACs); 64x64 elsewhere.
    reference = torchvision_resnets[18]
    model = cnnlab.create_model("resnet18").eval()
    model.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(224))
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model.forward_head(features)
        assert features.shape == (1, 512, 7, 7)
        torch.testing.assert_close(logits, reference(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_create_model_loads_torchvision_checkpoint(tmp_path, suffix, torchvision_resnets):
    reference = torchvision_resnets[50]
    path = tmp_path / f"resnet50{suffix}"
    state = {k: v.contiguous() for k, v in reference.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)

    model = cnnlab.create_model("resnet50", weights=str(path)).eval()
    for key, value in reference.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_wrong_checkpoint_is_a_user_error(tmp_path, torchvision_resnets):
    path = tmp_path / "resnet18.pt"
    torch.save(torchvision_resnets[18].state_dict(), path)
    with pytest.raises(CnnlabError, match="do not fit"):
        cnnlab.create_model("resnet20", weights=str(path))


def test_resnet_metadata():
    info = cnnlab.model_info("resnet50")
    assert info.family == "resnet"
    assert info.paper.title == "Deep Residual Learning for Image Recognition"
    assert info.paper.venue == "CVPR" and info.paper.year == 2016
    assert info.input_size == (3, 224, 224) and info.num_classes == 1000
    assert info.weight_layers == 50 and info.torchvision_name == "resnet50"
    assert info.reference_top1 == pytest.approx(100 - 22.85)
    assert info.reference_top5 == pytest.approx(100 - 6.71)
    assert "Table 3" in info.reference_note and "10-crop" in info.reference_note
    for depth in IMAGENET_DEPTHS:
        assert cnnlab.model_info(f"resnet{depth}").weight_layers == depth
        assert cnnlab.model_info(f"preact_resnet{depth}").paper.title == "Identity Mappings in Deep Residual Networks"


def test_in_chans_num_classes_and_zero_init():
    model = cnnlab.create_model("resnet18", num_classes=7, in_chans=1, zero_init_residual=True)
    assert model.conv1.in_channels == 1 and model.fc.out_features == 7 and model.num_classes == 7
    assert all(torch.count_nonzero(m.bn2.weight) == 0 for m in model.modules() if isinstance(m, BasicBlock))
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 7)
    bottleneck = ResNet(Bottleneck, [1, 1, 1, 1], zero_init_residual=True)  # resnet50's code path, smaller
    assert all(torch.count_nonzero(m.bn3.weight) == 0 for m in bottleneck.modules() if isinstance(m, Bottleneck))


def test_drop_path_rates_increase_linearly():
    model = cnnlab.create_model("resnet18", drop_path_rate=0.2)
    rates = [m.drop_path.drop_prob for m in model.modules() if isinstance(m, BasicBlock)]
    assert rates == pytest.approx([0.2 * (i + 1) / 8 for i in range(8)])
    # Stochastic depth is training-only: eval mode is deterministic and equals the no-drop net.
    reference = cnnlab.create_model("resnet18").eval()
    reference.load_state_dict(model.state_dict())
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))
    with pytest.raises(CnnlabError, match="drop_path_rate"):
        cnnlab.create_model("resnet18", drop_path_rate=1.0)


@pytest.mark.parametrize("name", ["resnet18", "resnet20", "preact_resnet50"])
def test_classifier_interface(name):
    model = cnnlab.create_model(name).eval()
    size = 32  # enough for every net here: the ImageNet ones end on a 1x1 map
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        features = model.forward_features(x)
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (2, model.num_features)
        assert model.get_classifier() is model.fc

        model.reset_classifier(5)
        assert model.num_classes == 5 and model.fc.out_features == 5
        assert model(x).shape == (2, 5)

        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), nn.Identity)
        torch.testing.assert_close(model(x), pooled)


def test_bad_arguments_are_user_errors():
    with pytest.raises(CnnlabError):
        cnnlab.create_model("resnet50", num_classes=0)
    with pytest.raises(CnnlabError, match="not_an_option"):
        cnnlab.create_model("resnet50", not_an_option=1)
    with pytest.raises(CnnlabError, match="downsample"):
        BasicBlock(64, 128, stride=2)  # shape changes but no shortcut projection given
    with pytest.raises(CnnlabError, match="shortcut=False"):
        Bottleneck(64, 64, downsample=nn.Identity(), shortcut=False)
    with pytest.raises(CnnlabError, match="6n\\+2"):
        CifarResNet(depth=21)
    with pytest.raises(CnnlabError, match="shortcut_type"):
        cnnlab.create_model("resnet20", shortcut_type="C")
    with pytest.raises(CnnlabError, match="ZeroPadShortcut"):
        ZeroPadShortcut(32, 16)


# --------------------------------------------------------------------------- shared blocks


def test_blocks_expose_torchvision_children():
    downsample = nn.Sequential(nn.Conv2d(64, 256, 1, bias=False), nn.BatchNorm2d(256))
    block = Bottleneck(64, 64, downsample=downsample)
    assert Bottleneck.expansion == 4 and BasicBlock.expansion == 1
    assert block.conv2.stride == (1, 1) and block.conv1.kernel_size == (1, 1)
    strided = Bottleneck(256, 128, stride=2, downsample=nn.Sequential(nn.Conv2d(256, 512, 1, 2, bias=False),
                                                                      nn.BatchNorm2d(512)))
    assert strided.conv2.stride == (2, 2) and strided.conv1.stride == (1, 1)  # ResNet v1.5
    assert {name for name, _ in block.named_children()} >= {"conv1", "bn1", "conv2", "bn2", "conv3", "bn3",
                                                            "relu", "downsample"}
    # ResNeXt-50 32x4d: 32 groups of width 4 in the first stage -> 128 channels.
    resnext = Bottleneck(256, 64, groups=32, base_width=4)
    assert resnext.conv2.groups == 32 and resnext.conv2.out_channels == 128


def test_zero_pad_shortcut():
    shortcut = ZeroPadShortcut(16, 32, stride=2)
    assert n_params(shortcut) == 0
    x = torch.randn(2, 16, 32, 32)
    y = shortcut(x)
    assert y.shape == (2, 32, 16, 16)
    torch.testing.assert_close(y[:, :16], x[:, :, ::2, ::2])
    assert torch.count_nonzero(y[:, 16:]) == 0
    # Same output size as the stride-2 3x3 conv of the residual branch, odd sizes included.
    conv = nn.Conv2d(16, 32, 3, stride=2, padding=1)
    odd = torch.randn(1, 16, 7, 7)
    assert shortcut(odd).shape == conv(odd).shape
    assert torch.equal(ZeroPadShortcut(8, 8)(odd[:, :8]), odd[:, :8])


@pytest.mark.parametrize("block_cls", [PreActBasicBlock, PreActBottleneck])
def test_preact_block_forward_backward(block_cls):
    out = 64 * block_cls.expansion
    projection = nn.Conv2d(32, out, 1, stride=2, bias=False)
    block = block_cls(32, 64, stride=2, downsample=projection, drop_path=0.1)
    x = torch.randn(2, 32, 16, 16, requires_grad=True)
    y = block(x)
    assert y.shape == (2, out, 8, 8)
    y.sum().backward()
    assert x.grad is not None and block.conv1.weight.grad is not None and projection.weight.grad is not None
    # The projection reads the pre-activated input relu(bn1(x)), not x.
    block.eval()
    nn.init.zeros_(getattr(block, "conv2" if block_cls is PreActBasicBlock else "conv3").weight)
    with torch.no_grad():
        torch.testing.assert_close(block(x), projection(torch.relu(block.bn1(x))))
    # Identity units pass the raw input through the shortcut: zero branch -> identity.
    identity_unit = block_cls(out, 64).eval()
    identity_unit.zero_init_last()
    z = torch.randn(1, out, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(identity_unit(z), z)


@pytest.mark.parametrize("name", ["preact_resnet18", "preact_resnet50"])
def test_preact_resnet_forward_backward(name):
    model = cnnlab.create_model(name, num_classes=10, drop_path_rate=0.1)
    assert model.layer1[0].preact is False and all(b.preact for b in model.layer2)
    assert isinstance(model.layer2[0].downsample, nn.Conv2d)  # bare 1x1, no BN after it
    logits = model(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 10)
    logits.logsumexp(dim=1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_preact_resnet152_metadata():
    info = cnnlab.model_info("preact_resnet152")
    assert info.paper.venue == "ECCV" and info.weight_layers == 152
    assert info.reference_top1 == pytest.approx(78.9) and "320" in info.reference_note
    assert cnnlab.model_info("preact_resnet50").reference_top1 is None


# --------------------------------------------------------------------------- CIFAR ResNets

CIFAR_DEPTHS = [20, 32, 44, 56, 110, 1202]
# Section 4.2 / Table 6 of the ResNet paper.
PAPER_PARAMS_M = {20: 0.27, 32: 0.46, 44: 0.66, 56: 0.85, 110: 1.7, 1202: 19.4}


def cifar_params_by_hand(depth: int, option: str = "A") -> int:
    """Count the parameters of the section 4.2 net from its description alone."""
    n = (depth - 2) // 6
    total = 3 * 16 * 9 + 2 * 16  # first 3x3 conv (no bias) + its BN (scale, shift)
    in_ch = 16
    for width in (16, 32, 64):
        for _ in range(n):
            total += in_ch * width * 9 + 2 * width  # conv1 + bn1
            total += width * width * 9 + 2 * width  # conv2 + bn2
            if option == "B" and in_ch != width:
                total += in_ch * width + 2 * width  # 1x1 projection + BN
            in_ch = width
    return total + 64 * 10 + 10  # fc


def test_resnet20_exact_parameter_count():
    # Written out: stem 432+32; stage 1: 3 x (2304+32)x2; stage 2: 4608+9216+128, then
    # 2 x (9216+64)x2; stage 3: 18432+36864+256, then 2 x (36864+128)x2; fc 650.
    by_hand = (432 + 32) + 3 * 2 * (2304 + 32) + (4608 + 9216 + 128) + 2 * 2 * (9216 + 64) \
        + (18432 + 36864 + 256) + 2 * 2 * (36864 + 128) + 650
    assert by_hand == cifar_params_by_hand(20) == 269_722
    assert n_params(cnnlab.create_model("resnet20")) == 269_722
    # Option B adds two 1x1 projections + BN (16->32, 32->64): 512+64 + 2048+128.
    assert cifar_params_by_hand(20, "B") == 269_722 + 576 + 2176 == 272_474
    assert n_params(cnnlab.create_model("resnet20", shortcut_type="B")) == 272_474


@pytest.mark.parametrize("depth", CIFAR_DEPTHS)
def test_cifar_param_counts_match_paper(depth):
    model = cnnlab.create_model(f"resnet{depth}")
    count = n_params(model)
    assert count == cifar_params_by_hand(depth)
    assert count / 1e6 == pytest.approx(PAPER_PARAMS_M[depth], rel=0.02)
    assert model.pretrained_cfg.weight_layers == depth
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) + 1 == depth  # 6n+1 convs + fc


@pytest.mark.parametrize("depth", [20, 32, 44, 56, 110])
def test_plain_nets_are_the_resnets_without_shortcuts(depth):
    plain = cnnlab.create_model(f"plain{depth}")
    residual = cnnlab.create_model(f"resnet{depth}")
    assert n_params(plain) == n_params(residual)
    blocks = [m for m in plain.modules() if isinstance(m, BasicBlock)]
    assert len(blocks) == 3 * (depth - 2) // 6
    assert all(not b.has_shortcut and b.downsample is None for b in blocks)
    assert not any(isinstance(m, ZeroPadShortcut) for m in plain.modules())
    assert sum(isinstance(m, ZeroPadShortcut) for m in residual.modules()) == 2
    info = cnnlab.model_info(f"plain{depth}")
    assert info.reference_top1 is None and info.reference_note


def test_plain_block_has_no_identity_path():
    block = BasicBlock(16, 16, shortcut=False).eval()
    block.zero_init_last()
    x = torch.randn(1, 16, 8, 8)
    with torch.no_grad():
        assert torch.count_nonzero(block(x)) == 0  # zeroed branch and nothing added back
        residual = BasicBlock(16, 16).eval()
        residual.zero_init_last()
        torch.testing.assert_close(residual(x), torch.relu(x))


def test_cifar_forward_shapes_and_metadata():
    model = cnnlab.create_model("resnet56").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert model.layer1(model.relu(model.bn1(model.conv1(x)))).shape == (2, 16, 32, 32)
        assert model.forward_features(x).shape == (2, 64, 8, 8)
        assert model(x).shape == (2, 10)
    info = cnnlab.model_info("resnet110")
    assert info.dataset == "cifar10" and info.input_size == (3, 32, 32) and info.num_classes == 10
    assert info.reference_top1 == pytest.approx(93.57) and "93.39" in info.reference_note
    expected = {20: 91.25, 32: 92.49, 44: 92.83, 56: 93.03, 1202: 92.07}
    for depth, top1 in expected.items():
        assert cnnlab.model_info(f"resnet{depth}").reference_top1 == pytest.approx(top1)


def test_plain_and_resnet_train_step():
    for name in ("plain20", "resnet20"):
        model = cnnlab.create_model(name, drop_path_rate=0.1)
        loss = nn.functional.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3]))
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())
