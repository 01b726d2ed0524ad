"""DenseNet family: torchvision parity, dense connectivity, the CIFAR DenseNet-BC nets of Table 2."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.layers.dense import DenseBlock, DenseLayer, Transition
from cnnlab.models.densenet import DenseNet, cifar_densenet_bc

from .parity import n_params, torchvision_parity

IMAGENET_DEPTHS = [121, 161, 169, 201]
TORCHVISION_PARAMS = {121: 7_978_856, 161: 28_681_000, 169: 14_149_480, 201: 20_013_928}
# torchvision's documented GFLOPS (multiply-adds) at 224x224.
TORCHVISION_GMACS = {121: 2.834, 161: 7.728, 169: 3.36, 201: 4.291}


# --------------------------------------------------------------------------- ImageNet DenseNets


@pytest.mark.parametrize("depth", IMAGENET_DEPTHS)
def test_densenet_matches_torchvision(depth):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(depth))
    torchvision_parity(f"densenet{depth}", [x], bn_seed=depth, params=TORCHVISION_PARAMS[depth])


@pytest.mark.parametrize("depth", [121, 161])
def test_densenet_macs_match_torchvision(depth):
    from cnnlab.analysis import count_macs

    assert count_macs(f"densenet{depth}") / 1e9 == pytest.approx(TORCHVISION_GMACS[depth], abs=1e-3)


def test_densenet121_layout():
    with torch.device("meta"):
        model = cnnlab.create_model("densenet121")
    features = model.features
    assert [name for name, _ in features.named_children()] == [
        "conv0", "norm0", "relu0", "pool0",
        "denseblock1", "transition1", "denseblock2", "transition2",
        "denseblock3", "transition3", "denseblock4", "norm5",
    ]
    assert features.conv0.kernel_size == (7, 7) and features.conv0.out_channels == 64  # 2k, k=32
    assert [len(getattr(features, f"denseblock{i}")) for i in range(1, 5)] == [6, 12, 24, 16]
    # Channels: 64 + 6*32 = 256 -> 128; 128 + 12*32 = 512 -> 256; 256 + 24*32 = 1024 -> 512; 512 + 16*32.
    assert [getattr(features, f"transition{i}").conv.out_channels for i in range(1, 4)] == [128, 256, 512]
    assert model.num_features == 1024 and model.classifier.in_features == 1024
    layer = features.denseblock1.denselayer3
    assert layer.conv1.in_channels == 64 + 2 * 32 and layer.conv1.out_channels == 4 * 32  # bottleneck 4k
    assert layer.conv2.kernel_size == (3, 3) and layer.conv2.out_channels == 32
    # 120 convs (stem + 58 x 2 + 3 transitions) + the classifier = 121 weight layers.
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) + 1 == 121
    assert cnnlab.create_model("densenet161").features.conv0.out_channels == 96  # k=48


def test_densenet_forward_backward_and_interface():
    model = cnnlab.create_model("densenet121", num_classes=7, in_chans=1, drop_rate=0.2)
    assert model.features.conv0.in_channels == 1
    logits = model(torch.randn(2, 1, 32, 32))  # 32x32 -> a 1x1 map after the five halvings
    assert logits.shape == (2, 7)
    logits.logsumexp(dim=1).sum().backward()
    assert all(p.grad is not None for p in model.parameters())

    model.eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 1024, 2, 2) and features.min() >= 0  # after the final ReLU
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (2, model.num_features)
        assert model.get_classifier() is model.classifier
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pooled)


def test_densenet_metadata():
    info = cnnlab.model_info("densenet121")
    assert info.family == "densenet" and info.paper.title == "Densely Connected Convolutional Networks"
    assert info.paper.venue == "CVPR" and info.paper.year == 2017
    assert info.torchvision_name == "densenet121" and info.weight_layers == 121
    assert info.reference_top1 == pytest.approx(74.434) and "torchvision" in info.reference_note
    for depth in IMAGENET_DEPTHS:
        assert cnnlab.model_info(f"densenet{depth}").weight_layers == depth


# --------------------------------------------------------------------------- dense connectivity


def test_each_layer_sees_every_earlier_feature_map():
    block = DenseBlock(num_layers=4, in_channels=6, growth_rate=3, bn_size=2).eval()
    seen: list[list[torch.Tensor]] = []
    made: list[torch.Tensor] = []

    def record(module, args, out):
        seen.append(list(args[0]))
        made.append(out)

    for layer in block.values():
        layer.register_forward_hook(record)
    x = torch.randn(2, 6, 5, 5)
    with torch.no_grad():
        y = block(x)
    assert [layer.conv1.in_channels for layer in block.values()] == [6, 9, 12, 15]
    for index, inputs in enumerate(seen):
        # Layer l gets exactly [x_0, x_1, ..., x_{l-1}]: the block input and every earlier output.
        assert len(inputs) == index + 1 and inputs[0] is x
        assert all(a is b for a, b in zip(inputs[1:], made[:index]))
    assert all(out.shape == (2, 3, 5, 5) for out in made)
    assert y.shape == (2, 6 + 4 * 3, 5, 5) and block.out_channels == 18
    torch.testing.assert_close(y, torch.cat([x] + made, 1))
    # The first channels of the output are the untouched input: concatenation, not addition.
    assert torch.equal(y[:, :6], x)


def test_dense_layer_is_bn_relu_conv_bottleneck():
    layer = DenseLayer(8, growth_rate=4, bn_size=4).eval()
    assert [name for name, _ in layer.named_children()] == ["norm1", "relu1", "conv1", "norm2", "relu2", "conv2"]
    a, b = torch.randn(1, 5, 6, 6), torch.randn(1, 3, 6, 6)
    with torch.no_grad():
        x = torch.cat([a, b], 1)
        expected = layer.conv2(torch.relu(layer.norm2(layer.conv1(torch.relu(layer.norm1(x))))))
        torch.testing.assert_close(layer([a, b]), expected)
        torch.testing.assert_close(layer(x), expected)
        assert torch.equal(x, torch.cat([a, b], 1))  # the in-place ReLUs left the stored maps alone
    with pytest.raises(CnnlabError, match="8 input channels"):
        layer([a])


def test_transition_compresses_and_halves_resolution():
    transition = Transition(10, 5)
    assert [name for name, _ in transition.named_children()] == ["norm", "relu", "conv", "pool"]
    assert transition(torch.randn(2, 10, 8, 8)).shape == (2, 5, 4, 4)


def test_dropout_only_in_training():
    layer = DenseLayer(4, growth_rate=8, drop_rate=0.5)
    x = torch.randn(2, 4, 6, 6)
    layer.train()
    assert (layer(x) == 0).float().mean() > 0.3
    layer.eval()
    with torch.no_grad():
        torch.testing.assert_close(layer(x), layer(x))
        assert (layer(x) == 0).float().mean() < 0.3


# --------------------------------------------------------------------------- CIFAR DenseNet-BC

BC_CONFIGS = {"densenet_bc100_k12": (100, 12, 0.8), "densenet_bc250_k24": (250, 24, 15.3),
              "densenet_bc190_k40": (190, 40, 25.6)}


def bc_params_by_hand(depth: int, k: int, num_classes: int = 10) -> int:
    """Count DenseNet-BC's parameters from the paper's description alone."""
    n = (depth - 4) // 6
    channels = 2 * k
    total = 3 * channels * 9  # 3x3 stem, no bias
    for block in range(3):
        for _ in range(n):
            total += 2 * channels + channels * 4 * k  # BN + 1x1 conv to 4k
            total += 2 * 4 * k + 4 * k * k * 9  # BN + 3x3 conv to k
            channels += k
        if block < 2:
            out = channels // 2
            total += 2 * channels + channels * out  # BN + 1x1 compression
            channels = out
    return total + 2 * channels + channels * num_classes + num_classes  # final BN + classifier


@pytest.mark.parametrize("name", sorted(BC_CONFIGS))
def test_densenet_bc_parameter_counts(name):
    depth, k, paper_millions = BC_CONFIGS[name]
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    count = n_params(model)
    assert count == bc_params_by_hand(depth, k)
    # The paper rounds to 0.1M: 769,162 is its "0.8M"; the larger nets are within 0.2%.
    assert round(count / 1e6, 1) == paper_millions
    if paper_millions > 1:
        assert count / 1e6 == pytest.approx(paper_millions, rel=0.01)
    # Stem + 3 blocks of (L-4)/6 two-conv layers + 2 transitions + classifier = L.
    assert sum(isinstance(m, nn.Conv2d) for m in model.modules()) + 1 == depth
    info = cnnlab.model_info(name)
    assert info.weight_layers == depth and info.dataset == "cifar10" and info.input_size == (3, 32, 32)


def test_densenet_bc100_structure_forward_backward():
    model = cnnlab.create_model("densenet_bc100_k12")
    features = model.features
    assert [name for name, _ in features.named_children()] == [
        "conv0", "denseblock1", "transition1", "denseblock2", "transition2", "denseblock3", "norm4"]
    assert features.conv0.kernel_size == (3, 3) and features.conv0.out_channels == 24  # 2k
    assert [len(getattr(features, f"denseblock{i}")) for i in (1, 2, 3)] == [16, 16, 16]
    # 24 + 16*12 = 216 -> 108; 108 + 192 = 300 -> 150; 150 + 192 = 342.
    assert features.transition1.conv.out_channels == 108 and features.transition2.conv.out_channels == 150
    assert model.num_features == 342
    x = torch.randn(2, 3, 32, 32)
    assert model.forward_features(x).shape == (2, 342, 8, 8)
    logits = model(x)
    assert logits.shape == (2, 10)
    nn.functional.cross_entropy(logits, torch.tensor([1, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())
    info = cnnlab.model_info("densenet_bc100_k12")
    assert info.reference_top1 == pytest.approx(95.49) and "Table 2" in info.reference_note


def test_compression_and_bottleneck_are_parameters():
    full = DenseNet(growth_rate=4, block_config=(2, 2), stem="cifar", compression=1.0, num_classes=3)
    assert full.features.transition1.conv.out_channels == 8 + 2 * 4  # theta = 1 keeps every channel
    narrow = DenseNet(growth_rate=4, block_config=(2, 2), stem="cifar", bn_size=1, num_classes=3)
    assert narrow.features.denseblock1.denselayer1.conv1.out_channels == 4
    assert cifar_densenet_bc(40, 6).features.denseblock1.denselayer1.conv2.out_channels == 6
    assert len(cifar_densenet_bc(40, 6).features.denseblock3) == 6


@pytest.mark.parametrize("kwargs, match", [
    (dict(growth_rate=0), r"growth_rate must be an integer >= 1"),
    (dict(growth_rate=-3), r"growth_rate"),
    (dict(bn_size=0), r"bn_size must be an integer >= 1"),
    (dict(compression=0), r"compression must be in \(0, 1\]"),
    (dict(compression=1.5), r"compression must be in \(0, 1\]"),
    (dict(drop_rate=1.0), r"drop_rate must be in \[0, 1\)"),
    (dict(block_config=()), r"block_config"),
    (dict(stem="tiny"), r"stem"),
])
def test_invalid_configurations_are_user_errors(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        cnnlab.create_model("densenet121", **kwargs)


def test_invalid_bc_depth_is_a_user_error():
    for depth in (101, 6, 99):
        with pytest.raises(CnnlabError, match=r"6n\+4"):
            cifar_densenet_bc(depth)
    with pytest.raises(CnnlabError, match="growth_rate"):
        cnnlab.create_model("densenet_bc100_k12", growth_rate=0)
