"""Optimisers: weight decay only where it regularises, the recipes' defaults, the linear scaling rule."""
import io

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train import build_optimizer, param_groups, scaled_lr


def _names(group):
    return set(group["params"][i][0] for i in range(len(group["params"])))


def test_norm_parameters_and_biases_are_not_decayed(small_net):
    groups = param_groups(small_net, 5e-4)
    assert [g["weight_decay"] for g in groups] == [5e-4, 0.0]
    decay, no_decay = _names(groups[0]), _names(groups[1])
    assert decay == {"conv1.weight", "conv2.weight", "conv3.weight", "fc.weight"}
    assert no_decay == {"bn1.weight", "bn1.bias", "conv2.bias", "ln2.weight", "ln2.bias",
                        "conv3.bias", "gn3.weight", "gn3.bias", "fc.bias"}


def test_multidimensional_norm_weight_is_still_not_decayed():
    model = nn.Sequential(nn.Linear(20, 20), nn.LayerNorm((4, 5)))  # a 2-D LayerNorm scale
    groups = param_groups(model, 0.1)
    assert _names(groups[1]) == {"0.bias", "1.weight", "1.bias"}


def test_everything_decayed_when_switched_off(small_net):
    groups = param_groups(small_net, 1e-4, no_decay_norm_and_bias=False)
    assert len(groups) == 1 and groups[0]["weight_decay"] == 1e-4
    assert len(groups[0]["params"]) == len(list(small_net.parameters()))


def test_frozen_parameters_left_out_and_shared_ones_counted_once():
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.Linear(4, 4))
    model[2].weight = model[1].weight  # tied
    model[0].requires_grad_(False)
    groups = param_groups(model, 0.1)
    assert _names(groups[0]) == {"1.weight"}
    assert _names(groups[1]) == {"1.bias", "2.bias"}
    with pytest.raises(CnnlabError, match="no trainable parameters"):
        param_groups(nn.Linear(2, 2).requires_grad_(False), 0.1)


def test_sgd_step_decays_weights_but_not_batchnorm(small_net):
    # A zero loss leaves only the decay term: w <- w - lr * wd * w.
    optimizer = build_optimizer(small_net, "sgd", lr=1.0, momentum=0.9, weight_decay=0.1)
    conv, bn = small_net.conv1.weight.detach().clone(), small_net.bn1.weight.detach().clone()
    (0.0 * small_net(torch.randn(2, 3, 8, 8)).sum()).backward()
    optimizer.step()
    assert torch.allclose(small_net.conv1.weight, 0.9 * conv)
    assert torch.equal(small_net.bn1.weight, bn)


def test_build_optimizer_settings_and_defaults(small_net):
    sgd = build_optimizer(small_net)
    assert isinstance(sgd, torch.optim.SGD)
    assert sgd.defaults["lr"] == 0.1 and sgd.defaults["momentum"] == 0.9 and not sgd.defaults["nesterov"]
    assert sgd.param_groups[0]["weight_decay"] == 5e-4
    nesterov = build_optimizer(small_net, "sgd", 0.05, nesterov=True, weight_decay=1e-4)
    assert nesterov.defaults["nesterov"] and nesterov.param_groups[0]["lr"] == 0.05
    adamw = build_optimizer(small_net, "AdamW", betas=(0.8, 0.99))
    assert isinstance(adamw, torch.optim.AdamW)
    assert adamw.defaults["lr"] == 1e-3 and adamw.defaults["betas"] == (0.8, 0.99)
    assert [g["weight_decay"] for g in adamw.param_groups] == [0.05, 0.0]


def test_optimizer_state_round_trips_weights_only(small_net):
    optimizer = build_optimizer(small_net, "adamw", 1e-3)
    small_net(torch.randn(2, 3, 8, 8)).sum().backward()
    optimizer.step()
    buffer = io.BytesIO()
    torch.save(optimizer.state_dict(), buffer)
    buffer.seek(0)
    fresh = build_optimizer(small_net, "adamw", 1e-3)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert torch.equal(fresh.state_dict()["state"][0]["exp_avg"], optimizer.state_dict()["state"][0]["exp_avg"])


@pytest.mark.parametrize("kwargs,match", [
    (dict(name="adam"), "unknown optimizer 'adam'"),
    (dict(lr=0.0), r"lr must be a number in \(0"),
    (dict(lr=float("nan")), "lr must be"),
    (dict(momentum=1.0), r"momentum must be a number in \[0.0, 1.0\)"),
    (dict(momentum=0.0, nesterov=True), "nesterov=True needs momentum"),
    (dict(weight_decay=-1e-4), r"weight_decay must be a number in \[0.0"),
    (dict(name="adamw", betas=(0.9, 1.0)), r"betas\[1\] \(beta2\)"),
    (dict(name="adamw", betas=(0.9,)), "betas must be two numbers"),
])
def test_invalid_optimizer_settings(small_net, kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        build_optimizer(small_net, **kwargs)


def test_linear_scaling_rule():
    assert scaled_lr(0.1, 256) == pytest.approx(0.1)
    assert scaled_lr(0.1, 8192) == pytest.approx(3.2)  # Goyal et al.: 8k minibatch, lr 3.2
    assert scaled_lr(0.1, 128, reference_batch=128) == pytest.approx(0.1)
    with pytest.raises(CnnlabError, match="batch_size must be an integer >= 1"):
        scaled_lr(0.1, 0)
    with pytest.raises(CnnlabError, match="base_lr"):
        scaled_lr(-0.1, 256)


def test_norm_bias_lr_scale_gives_normalisation_shifts_their_own_learning_rate():
    """airbench94's trick: BN shifts learn 64 times faster; the other groups are untouched."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    plain = build_optimizer(model, "sgd", 0.5, weight_decay=1e-4)
    scaled = build_optimizer(model, "sgd", 0.5, weight_decay=1e-4, norm_bias_lr_scale=64)
    assert len(plain.param_groups) == 2 and len(scaled.param_groups) == 3
    fast = scaled.param_groups[-1]
    assert fast["param_names"] == ["1.bias"] and fast["lr"] == 32.0 and fast["weight_decay"] == 0.0
    assert [g["lr"] for g in scaled.param_groups[:2]] == [0.5, 0.5]
    assert "1.bias" not in scaled.param_groups[1]["param_names"] and "1.weight" in scaled.param_groups[1]["param_names"]
    with pytest.raises(CnnlabError, match="norm_bias_lr_scale"):
        build_optimizer(model, "sgd", 0.5, norm_bias_lr_scale=0)


@pytest.mark.parametrize("name", ["sgd", "adamw"])
def test_decayed_fast_shifts_shrink_per_step_like_every_other_weight(name):
    """airbench94 decays BN shifts too, with the decay divided by their 64x learning rate:
    with no gradient, one step shrinks a shift by the same factor as a convolution's weight."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    nn.init.uniform_(model[1].bias, 1.0, 2.0)
    optimizer = build_optimizer(model, name, 0.5, weight_decay=0.01, momentum=0.0, no_decay_norm_and_bias=False,
                                norm_bias_lr_scale=64)
    assert optimizer.param_groups[-1]["weight_decay"] == pytest.approx(0.01 / 64)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for parameter in model.parameters():
        parameter.grad = torch.zeros_like(parameter)
    optimizer.step()
    shrink = {n: (p.detach() / before[n]) for n, p in model.named_parameters()}
    assert torch.allclose(shrink["1.bias"], torch.full((4,), 1 - 0.5 * 0.01))
    assert torch.allclose(shrink["0.weight"], torch.full_like(shrink["0.weight"], 1 - 0.5 * 0.01))
