"""GoogLeNet and the Inception modules: torchvision compatibility and the lecture's numbers."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torchvision.models import googlenet as tv_googlenet
from torchvision.models.googlenet import Inception as TvInception

from cnnlab.errors import CnnlabError
from cnnlab.layers import InceptionAux, InceptionModule, NaiveInceptionModule
from cnnlab.models.googlenet import GoogLeNet, GoogLeNetOutputs, googlenet, googlenet_paper
from cnnlab.registry import create_model, model_info

from .parity import n_params, torchvision_parity

# Table 1 of the paper: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
TABLE1 = [
    (192, 64, 96, 128, 16, 32, 32),
    (256, 128, 128, 192, 32, 96, 64),
    (480, 192, 96, 208, 16, 48, 64),
    (512, 160, 112, 224, 24, 64, 64),
    (512, 128, 128, 256, 24, 64, 64),
    (512, 112, 144, 288, 32, 64, 64),
    (528, 256, 160, 320, 32, 128, 128),
    (832, 256, 160, 320, 32, 128, 128),
    (832, 384, 192, 384, 48, 128, 128),
]


def shapes(module: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def conv_macs_by_hooks(module: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every Conv2d, measured from the actual output sizes."""
    total = 0

    def hook(conv, _inputs, output):
        nonlocal total
        kh, kw = conv.kernel_size
        total += output[0].numel() * (conv.in_channels // conv.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        module(x)
    for handle in handles:
        handle.remove()
    return total


@pytest.fixture(scope="module")
def loaded_pair():
    """torchvision's GoogLeNet with non-trivial weights and BN statistics, and ours loaded from it."""
    torch.manual_seed(0)
    reference = tv_googlenet(weights=None, aux_logits=True, init_weights=True)
    # The default init (std 0.01, BN identity) gives near-zero logits, which would make
    # the comparison vacuous: use He-scaled weights and random BN statistics instead.
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                module.running_mean.normal_(0.0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.1)
    return torchvision_parity("googlenet", reference=reference, overrides={"init_weights": False})


def test_parameter_counts():
    assert n_params(googlenet(init_weights=False)) == 13_004_888
    assert n_params(googlenet(aux_logits=False, init_weights=False)) == 6_624_904
    # The paper's 5x5 kernels add (25 - 9) * ch5x5red * ch5x5 weights per module.
    extra = sum(16 * red * out for _, _, _, _, red, out, _ in TABLE1)
    assert n_params(googlenet_paper(init_weights=False)) == 13_004_888 + extra == 13_385_816
    assert n_params(googlenet_paper(aux_logits=False, init_weights=False)) == 6_624_904 + extra == 7_005_832


@pytest.mark.parametrize("aux_logits", [True, False])
def test_state_dict_keys_and_shapes_match_torchvision(aux_logits):
    reference = tv_googlenet(weights=None, aux_logits=aux_logits, init_weights=False)
    torchvision_parity("googlenet", reference=reference, overrides={"aux_logits": aux_logits, "init_weights": False})


def test_strict_load_and_eval_logits_match_torchvision(loaded_pair):
    ours, reference = loaded_pair
    ours.eval()
    reference.eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        expected = reference(x)
        logits = ours(x)
        features = ours.forward_features(x)
        pre_logits = ours.forward_head(features, pre_logits=True)
    assert isinstance(logits, torch.Tensor) and logits.shape == (1, 1000)
    assert expected.abs().max() > 1.0  # the comparison is not between two near-zero tensors
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    assert features.shape == (1, 1024, 7, 7)
    assert pre_logits.shape == (1, 1024)


def test_transform_input_matches_torchvision(loaded_pair):
    _, reference = loaded_pair
    ours = googlenet(transform_input=True, init_weights=False).eval()
    ours.load_state_dict(reference.state_dict(), strict=True)
    reference.eval()
    reference.transform_input = True
    try:
        x = torch.randn(1, 3, 64, 64)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-5, atol=1e-5)
    finally:
        reference.transform_input = False


def test_training_mode_returns_aux_logits_like_torchvision(loaded_pair):
    # Copies: training mode updates the BN running statistics of the shared fixture.
    ours, reference = (copy.deepcopy(m).train() for m in loaded_pair)
    x = torch.randn(2, 3, 64, 64)
    # Same seed, same order of dropout calls (aux1, aux2, head): identical outputs.
    torch.manual_seed(1)
    out = ours(x)
    torch.manual_seed(1)
    expected = reference(x)
    assert isinstance(out, GoogLeNetOutputs)
    assert out._fields == ("logits", "aux_logits2", "aux_logits1")
    for got, want in zip(out, expected):
        assert got.shape == (2, 1000)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-4)


def test_eval_mode_and_no_aux_return_plain_logits():
    model = googlenet(init_weights=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert isinstance(model.eval()(x), torch.Tensor)
        no_aux = googlenet(aux_logits=False, init_weights=False).train()
        assert no_aux.aux1 is None and no_aux.aux2 is None
        out = no_aux(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)


def test_backward_reaches_stem_through_aux_heads():
    model = googlenet(num_classes=5, aux_logits=True, init_weights=True).train()
    out = model(torch.randn(2, 3, 64, 64))
    loss = sum(o.square().mean() * w for o, w in zip(out, (1.0, 0.3, 0.3)))  # the paper's 0.3 weights
    loss.backward()
    assert model.conv1.conv.weight.grad is not None
    assert model.aux1.fc2.weight.grad is not None and model.aux2.fc2.weight.grad is not None


def test_naive_module_lecture_example():
    module = NaiveInceptionModule(256, 128, 192, 96)
    x = torch.randn(1, 256, 28, 28)
    with torch.no_grad():
        y = module(x)
    assert y.shape == (1, 128 + 192 + 96 + 256, 28, 28) == (1, 672, 28, 28)
    # The lecture's conv ops, computed by hand: [1x1, 128], [3x3, 192], [5x5, 96] on 28x28x256.
    expected = 28 * 28 * 128 * 1 * 1 * 256 + 28 * 28 * 192 * 3 * 3 * 256 + 28 * 28 * 96 * 5 * 5 * 256
    assert expected == 854_196_224  # "Total: 854M ops"
    assert module.conv_multiply_adds(28, 28) == expected
    assert conv_macs_by_hooks(module, x) == expected


def test_reduced_module_keys_and_bottleneck_savings():
    module = InceptionModule(*TABLE1[0])
    reference = TvInception(*TABLE1[0])
    assert list(module.state_dict()) == list(reference.state_dict())
    for key in ("branch1.conv.weight", "branch1.bn.running_var", "branch2.0.conv.weight", "branch2.1.bn.bias",
                "branch3.1.conv.weight", "branch4.1.conv.weight"):
        assert key in module.state_dict()
    # Default is the paper's 5x5; torchvision's "5x5" branch is really 3x3.
    assert module.branch3[1].conv.weight.shape == (32, 16, 5, 5)
    assert reference.branch3[1].conv.weight.shape == (32, 16, 3, 3)
    compatible = InceptionModule(*TABLE1[0], branch3_kernel_size=3)
    assert shapes(compatible) == shapes(reference)
    x = torch.randn(1, 192, 28, 28)
    assert module(x).shape == (1, 256, 28, 28)

    # The lecture's bottleneck example: same filters as the naive module plus 1x1 convs with
    # 64 filters before the 3x3 and 5x5 and after the pool. Its listed terms sum to 271M
    # (the slide prints "358M", which does not match its own terms), versus 854M naive.
    lecture = InceptionModule(256, 128, 64, 192, 64, 96, 64)
    terms = [28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 64 * 1 * 1 * 256, 28 * 28 * 128 * 1 * 1 * 256,
             28 * 28 * 192 * 3 * 3 * 64, 28 * 28 * 96 * 5 * 5 * 64, 28 * 28 * 64 * 1 * 1 * 256]
    assert lecture.conv_multiply_adds(28, 28) == sum(terms) == 271_351_808
    assert conv_macs_by_hooks(lecture, torch.randn(1, 256, 28, 28)) == sum(terms)
    assert lecture.out_channels == 128 + 192 + 96 + 64 == 480


def test_reset_classifier_resizes_fc_and_both_aux_heads():
    model = googlenet(init_weights=False)
    model.reset_classifier(7)
    assert model.num_classes == 7
    assert model.get_classifier() is model.fc and model.fc.out_features == 7
    assert model.aux1.fc2.out_features == 7 and model.aux2.fc2.out_features == 7
    out = model.train()(torch.randn(2, 3, 64, 64))
    assert [tuple(o.shape) for o in out] == [(2, 7)] * 3
    no_aux = googlenet(aux_logits=False, init_weights=False)
    no_aux.reset_classifier(0)
    assert isinstance(no_aux.fc, nn.Identity)
    assert no_aux.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 1024)


def test_registry_metadata():
    info = model_info("googlenet")
    assert info.family == "googlenet" and info.torchvision_name == "googlenet"
    assert info.weight_layers == 22 and info.input_size == (3, 224, 224)
    assert info.reference_top5 == pytest.approx(89.93) and info.reference_top1 is None
    assert "10.07" in info.reference_note and "6.67" in info.reference_note
    assert model_info("googlenet_paper").torchvision_name is None
    model = create_model("googlenet_paper", num_classes=10, aux_logits=False, init_weights=False)
    assert isinstance(model, GoogLeNet) and model.inception3a.branch3[1].conv.kernel_size == (5, 5)
    assert model.dropout.p == pytest.approx(0.4)


@pytest.mark.parametrize(
    "build",
    [
        lambda: InceptionModule(192, 64, 96, 128, 16, 32, 0),
        lambda: InceptionModule(192, 64, 96, 128, 16, 32, 32, branch3_kernel_size=4),
        lambda: NaiveInceptionModule(256, 128, -1, 96),
        lambda: InceptionAux(512, 10, dropout=1.0),
        lambda: GoogLeNet(in_chans=1, transform_input=True, init_weights=False),
        lambda: GoogLeNet(dropout=1.5, init_weights=False),
        lambda: create_model("googlenet", dropout_aux=-0.1),
    ],
)
def test_invalid_values_raise_cnnlab_error(build):
    with pytest.raises(CnnlabError):
        build()
