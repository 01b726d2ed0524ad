"""Initialisation: the lecture's collapse with small random numbers, and Xavier/Kaiming keeping the scale."""
import math

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.layers import BasicBlock, Bottleneck
from cnnlab.train import init_weights


def _deep_mlp(activation, depth=10, width=512):
    layers = []
    for _ in range(depth):
        layers += [nn.Linear(width, width), activation()]
    return nn.Sequential(*layers)


def _activation_stds(model, x):
    stds = []
    with torch.no_grad():
        for layer in model:
            x = layer(x)
            if not isinstance(layer, nn.Linear):
                stds.append(x.std().item())
    return stds


def test_lecture_small_random_numbers_collapse_in_a_deep_tanh_net():
    # CS231n's experiment: 10 layers of 512 tanh units, input N(0, 1), W ~ 0.01 * N(0, 1).
    x = torch.randn(256, 512)
    small = _activation_stds(init_weights(_deep_mlp(nn.Tanh), "normal", std=0.01), x)
    assert small[-1] < 1e-3
    assert all(b < a for a, b in zip(small, small[1:]))  # shrinks every layer
    xavier = _activation_stds(init_weights(_deep_mlp(nn.Tanh), "xavier"), x)
    assert all(0.1 <= s <= 1.0 for s in xavier)


def test_kaiming_keeps_relu_activations_at_constant_scale_and_xavier_does_not():
    x = torch.randn(256, 512)
    kaiming = _activation_stds(init_weights(_deep_mlp(nn.ReLU), "kaiming", nonlinearity="relu"), x)
    assert 0.6 < kaiming[-1] / kaiming[0] < 1.6
    # Xavier assumes a linear (or tanh) unit; ReLU halves the variance at each layer.
    xavier = _activation_stds(init_weights(_deep_mlp(nn.ReLU), "xavier"), x)
    assert xavier[-1] / xavier[0] < 0.1


def test_conv_stack_collapse_and_kaiming():
    def stack():
        return nn.Sequential(*[m for _ in range(8) for m in (nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())])

    def output_std(model, x):
        with torch.no_grad():
            return model(x).std().item()

    x = torch.randn(4, 32, 12, 12)
    assert output_std(init_weights(stack(), "normal", std=0.01), x) < 1e-3
    assert 0.2 < output_std(init_weights(stack(), "kaiming"), x) < 2.0


def test_weight_scales_match_the_formulas():
    conv = nn.Conv2d(64, 128, 3)  # fan_in 576, fan_out 1152
    init_weights(conv, "kaiming", mode="fan_in")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 576), rel=0.05)
    assert torch.count_nonzero(conv.bias) == 0
    init_weights(conv, "kaiming", mode="fan_out")
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / 1152), rel=0.05)
    init_weights(conv, "kaiming", nonlinearity="tanh")
    assert conv.weight.std().item() == pytest.approx(5 / 3 / math.sqrt(576), rel=0.05)
    init_weights(conv, "xavier")
    bound = math.sqrt(6 / (576 + 1152))
    assert conv.weight.abs().max().item() <= bound and conv.weight.std().item() == pytest.approx(
        math.sqrt(2 / (576 + 1152)), rel=0.05)
    linear = nn.Linear(1000, 1000)
    init_weights(linear, "normal", std=0.01)
    assert linear.weight.std().item() == pytest.approx(0.01, rel=0.02)
    assert abs(linear.weight.mean().item()) < 1e-3


def test_norm_layers_start_as_identity(small_net):
    with torch.no_grad():
        for module in (small_net.bn1, small_net.ln2, small_net.gn3):
            module.weight.uniform_(2, 3)
            module.bias.uniform_(2, 3)
        small_net.bn1.running_mean.fill_(5.0)
    init_weights(small_net, "kaiming")
    for module in (small_net.bn1, small_net.ln2, small_net.gn3):
        assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
    assert torch.all(small_net.bn1.running_mean == 0) and torch.all(small_net.bn1.running_var == 1)
    assert torch.count_nonzero(small_net.fc.bias) == 0


def test_default_leaves_pytorch_init(small_net):
    before = {k: v.clone() for k, v in small_net.state_dict().items()}
    assert init_weights(small_net, "default") is small_net
    assert all(torch.equal(before[k], v) for k, v in small_net.state_dict().items())


def test_zero_init_residual_blocks_start_as_identity():
    model = nn.Sequential(BasicBlock(16, 16), Bottleneck(64, 16))
    init_weights(model, "kaiming", mode="fan_out", zero_init_residual=True)
    assert torch.count_nonzero(model[0].bn2.weight) == 0 and torch.count_nonzero(model[1].bn3.weight) == 0
    assert torch.all(model[0].bn1.weight == 1)
    x = torch.relu(torch.randn(2, 16, 8, 8))
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model[0](x), x)  # relu(0 + x) for x >= 0


def test_works_on_a_zoo_model():
    import cnnlab

    model = cnnlab.create_model("resnet20")
    assert init_weights(model, "he", mode="fan_out") is model
    with torch.no_grad():
        assert torch.isfinite(model(torch.randn(2, 3, 32, 32))).all()


@pytest.mark.parametrize("kwargs,match", [
    ({"scheme": "orthogonal"}, "unknown init scheme 'orthogonal'"),
    ({"scheme": "normal", "std": 0.0}, "std must be a positive finite number"),
    ({"nonlinearity": "swish"}, "nonlinearity must be one of"),
    ({"mode": "fan_avg"}, "mode must be 'fan_in' or 'fan_out'"),
])
def test_invalid_init_settings(small_net, kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        init_weights(small_net, **kwargs)
