"""Network in Network: mlpconv layers, the global-average-pooling head, the paper configurations."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.models.nin import NIN_CIFAR10_BLOCKS, MlpConv, NetworkInNetwork, nin, nin_cifar10
from cnnlab.registry import create_model, model_info


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def conv(c_in: int, c_out: int, k: int) -> int:
    """Parameters of a KxK convolution with bias."""
    return c_in * c_out * k * k + c_out


def mlpconv(c_in: int, widths: tuple[int, int, int], k: int) -> int:
    spatial, hidden, out = widths
    return conv(c_in, spatial, k) + conv(spatial, hidden, 1) + conv(hidden, out, 1)


def test_nin_cifar10_parameter_count_by_hand():
    expected = (mlpconv(3, (192, 160, 96), 5)
                + mlpconv(96, (192, 192, 192), 5)
                + mlpconv(192, (192, 192, 10), 3))
    assert expected == 966_986
    assert n_params(nin_cifar10()) == expected
    # 100 classes only change the last 1x1 conv: 192 * 90 weights + 90 biases more.
    assert n_params(nin_cifar10(num_classes=100)) == expected + 192 * 90 + 90


def test_nin_imagenet_parameter_count_by_hand():
    expected = (mlpconv(3, (96, 96, 96), 11)
                + mlpconv(96, (256, 256, 256), 5)
                + mlpconv(256, (384, 384, 384), 3)
                + mlpconv(384, (1024, 1024, 1000), 3))
    assert expected == 7_595_176  # "about 7.6M"
    assert n_params(nin()) == expected


def test_nin_cifar10_forward_backward():
    model = nin_cifar10().train()
    x = torch.randn(2, 3, 32, 32)
    out = model(x)
    assert out.shape == (2, 10)
    out.logsumexp(dim=1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())
    # 32 -> 16 -> 8 (pools round up, as in Caffe), then the global average pool.
    assert model.eval().forward_features(x).shape == (2, 192, 8, 8)
    assert isinstance(model.pool1, nn.MaxPool2d) and isinstance(model.pool2, nn.AvgPool2d)
    assert model.drop1.p == model.drop2.p == 0.5


def test_nin_imagenet_forward_backward_and_sizes():
    model = nin().train()
    sizes = {}
    hooks = [getattr(model, name).register_forward_hook(
        lambda _m, _i, out, name=name: sizes.__setitem__(name, tuple(out.shape[-2:])))
        for name in ("block1", "pool1", "pool2", "pool3")]
    out = model(torch.randn(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    assert out.shape == (1, 1000)
    out.sum().backward()
    assert model.block1.conv.weight.grad is not None
    # The Caffe model's sizes: 224 -> 54 -> 27 -> 13 -> 6, then a 6x6 average pool.
    assert sizes == {"block1": (54, 54), "pool1": (27, 27), "pool2": (13, 13), "pool3": (6, 6)}
    assert isinstance(model.drop1, nn.Identity) and isinstance(model.drop2, nn.Identity)
    assert model.drop3.p == 0.5


def test_classifier_is_last_1x1_conv_and_head_is_global_average():
    model = nin_cifar10().eval()
    classifier = model.get_classifier()
    assert classifier is model.block3.cccp2
    assert isinstance(classifier, nn.Conv2d) and classifier.kernel_size == (1, 1) and classifier.out_channels == 10
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        class_maps = model.block3.act3(model.block3.cccp2(features))
        logits = model(x)
    # Each logit is the spatial mean of its class map: no fully connected layer.
    torch.testing.assert_close(logits, class_maps.mean(dim=(2, 3)))
    assert not any(isinstance(m, nn.Linear) for m in model.modules())


def test_reset_classifier():
    model = nin_cifar10().eval()
    model.reset_classifier(7)
    assert model.num_classes == 7 and model.block3.cccp2.out_channels == 7
    x = torch.randn(1, 3, 32, 32)
    assert model(x).shape == (1, 7)
    model.reset_classifier(0)
    with torch.no_grad():
        pooled = model(x)
        expected = model.forward_head(model.forward_features(x), pre_logits=True)
    assert pooled.shape == (1, 192)
    torch.testing.assert_close(pooled, expected)


def test_final_activation_option():
    model = nin_cifar10(final_act=False).eval()
    assert isinstance(model.block3.act3, nn.Identity) and isinstance(model.block2.act3, nn.ReLU)
    with torch.no_grad():
        assert (nin_cifar10().eval()(torch.randn(4, 3, 32, 32)) >= 0).all()  # paper: ReLU on the class maps


def test_registry_metadata_and_overrides():
    info = model_info("nin_cifar10")
    assert info.family == "nin" and info.dataset == "cifar10"
    assert info.input_size == (3, 32, 32) and info.num_classes == 10 and info.weight_layers == 9
    assert info.reference_top1 == pytest.approx(89.59) and "8.81" in info.reference_note
    imagenet = model_info("nin")
    assert imagenet.weight_layers == 12 and imagenet.reference_top1 == pytest.approx(59.36)
    assert "Caffe" in imagenet.reference_note
    model = create_model("nin_cifar10", dropout=0.2)
    assert model.drop1.p == model.drop2.p == 0.2
    assert create_model("nin", num_classes=5, in_chans=1).block1.conv.in_channels == 1


def test_mlpconv_block_structure():
    block = MlpConv(3, (8, 6, 4), kernel_size=3, padding=1)
    assert [name for name, _ in block.named_children()] == ["conv", "act1", "cccp1", "act2", "cccp2", "act3"]
    assert block(torch.randn(1, 3, 5, 5)).shape == (1, 4, 5, 5)


@pytest.mark.parametrize(
    "build",
    [
        lambda: create_model("nin_cifar10", dropout=1.0),
        lambda: NetworkInNetwork(NIN_CIFAR10_BLOCKS, pools=("max",), dropouts=(0.5,)),
        lambda: NetworkInNetwork(NIN_CIFAR10_BLOCKS, pools=("max", "median"), dropouts=(0.5, 0.5)),
        lambda: NetworkInNetwork(NIN_CIFAR10_BLOCKS[:2], pools=("max",), dropouts=(0.5,)),
        lambda: NetworkInNetwork(NIN_CIFAR10_BLOCKS, pools=("max", "avg"), dropouts=(0.5, 0.5), num_classes=0),
    ],
)
def test_invalid_values_raise_cnnlab_error(build):
    with pytest.raises(CnnlabError):
        build()
