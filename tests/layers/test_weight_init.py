"""The shared He (fan_out) initialisation of the zoo's CNN families."""
import math

import torch
from torch import nn

from cnnlab.layers import init_he_fan_out


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(64, 256, 3, bias=True), nn.BatchNorm2d(256), nn.ReLU(), nn.Flatten(),
                         nn.Linear(256, 10))


def test_convs_are_he_normal_with_fan_out_and_norms_the_identity():
    torch.manual_seed(0)
    net = _net()
    with torch.no_grad():
        net[1].weight.fill_(3.0)
        net[1].bias.fill_(1.0)
    init_he_fan_out(net)
    expected = math.sqrt(2.0 / (256 * 3 * 3))  # fan_out = out_channels x kernel area
    assert abs(net[0].weight.std().item() / expected - 1) < 0.02
    assert torch.equal(net[0].bias, torch.zeros(256))
    assert torch.equal(net[1].weight, torch.ones(256)) and torch.equal(net[1].bias, torch.zeros(256))


def test_linear_layers_keep_their_init_unless_asked():
    torch.manual_seed(0)
    net = _net()
    before = net[4].weight.clone(), net[4].bias.clone()
    init_he_fan_out(net)
    assert torch.equal(net[4].weight, before[0]) and torch.equal(net[4].bias, before[1])
    init_he_fan_out(net, zero_linear_bias=True)
    assert torch.equal(net[4].weight, before[0]) and torch.equal(net[4].bias, torch.zeros(10))
    init_he_fan_out(net, linear_weight=nn.init.zeros_)
    assert torch.equal(net[4].weight, torch.zeros(10, 256))
