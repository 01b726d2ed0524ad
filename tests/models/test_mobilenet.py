"""MobileNet v1 against the paper's tables; MobileNetV2 against torchvision."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.analysis import count_macs, summarize
from cnnlab.errors import CnnlabError
from cnnlab.layers.separable import DepthwiseSeparableConv
from cnnlab.models.mobilenet import MobileNetV1, MobileNetV2

from .parity import n_params, randomise_bn_stats as _randomise_bn_stats, torchvision_parity


# --------------------------------------------------------------------------- MobileNet v1

# MobileNet paper Table 6: (name, alpha, million multiply-adds, million parameters, top-1).
V1_TABLE_6 = [
    ("mobilenet_v1", 1.0, 569, 4.2, 70.6),
    ("mobilenet_v1_075", 0.75, 325, 2.6, 68.4),
    ("mobilenet_v1_050", 0.5, 149, 1.3, 63.7),
    ("mobilenet_v1_025", 0.25, 41, 0.5, 50.6),
]


def test_mobilenet_v1_matches_the_paper_within_one_percent():
    model = cnnlab.create_model("mobilenet_v1")
    assert n_params(model) == 4_231_976
    assert n_params(model) == pytest.approx(4.2e6, rel=0.01)
    assert count_macs(model) == pytest.approx(569e6, rel=0.01)


@pytest.mark.parametrize("name,alpha,macs,params,top1", V1_TABLE_6)
def test_mobilenet_v1_width_multipliers_reproduce_table_6(name, alpha, macs, params, top1):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert model.width_mult == alpha
    # The paper's multiply-adds to its 1M precision; parameters to its 0.1M precision.
    assert abs(summarize(name).total_macs / 1e6 - macs) < 1
    assert abs(n_params(model) / 1e6 - params) <= 0.05
    info = cnnlab.model_info(name)
    assert info.reference_top1 == top1 and "Table 6" in info.reference_note
    assert info.family == "mobilenet" and info.paper.year == 2017 and info.torchvision_name is None


def test_mobilenet_v1_has_the_papers_28_layers():
    model = cnnlab.create_model("mobilenet_v1")
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert len(layers) == 28 == cnnlab.model_info("mobilenet_v1").weight_layers
    blocks = [m for m in model.modules() if isinstance(m, DepthwiseSeparableConv)]
    assert len(blocks) == 13
    assert all(b.depthwise.conv.groups == b.in_channels for b in blocks)
    # Table 1: five stride-2 layers (stem + 4 depthwise) take 224 to 7.
    features = model.forward_features(torch.randn(1, 3, 224, 224))
    assert features.shape == (1, 1024, 7, 7)


@pytest.mark.parametrize("size,macs", [(192, 418), (160, 290), (128, 186)])
def test_mobilenet_v1_resolution_multiplier_sets_the_input_size(size, macs):
    # Table 7: rho changes the multiply-adds (~rho^2), not the parameters.
    model = cnnlab.create_model("mobilenet_v1", resolution_mult=size / 224)
    assert model.pretrained_cfg.input_size == (3, size, size)
    assert model.pretrained_cfg.name == "mobilenet_v1"
    summary = summarize(model)
    assert summary.input_shape == (3, size, size)
    assert abs(summary.total_macs / 1e6 - macs) < 1
    assert summary.total_params == 4_231_976


def test_mobilenet_v1_default_input_follows_in_chans():
    model = cnnlab.create_model("mobilenet_v1_025", in_chans=1, num_classes=10)
    assert model.pretrained_cfg.input_size == (1, 224, 224)
    assert summarize(model).total_params == n_params(model)
    assert cnnlab.model_info("mobilenet_v1_025").input_size == (3, 224, 224)  # the registry is unchanged


@pytest.mark.parametrize("kwargs,match", [
    (dict(width_mult=0), r"width_mult .*alpha.*\(0, inf\)"),
    (dict(width_mult=-0.5), r"width_mult .*alpha"),
    (dict(width_mult=float("nan")), r"width_mult"),
    (dict(resolution_mult=0), r"resolution_mult .*rho.*\(0, inf\)"),
    (dict(resolution_mult=-1.0), r"resolution_mult .*rho"),
    (dict(resolution_mult=1e-4), r"resolution_mult"),
])
def test_mobilenet_v1_rejects_bad_multipliers(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        cnnlab.create_model("mobilenet_v1", **kwargs)


def test_mobilenet_v1_forward_backward_and_interface():
    model = cnnlab.create_model("mobilenet_v1_050", num_classes=5, dropout=0.1)
    x = torch.randn(2, 3, 64, 64)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 512, 2, 2)
        assert model.forward_head(features, pre_logits=True).shape == (2, 512)
        torch.testing.assert_close(model.forward_head(features), model(x))
    model.reset_classifier(3)
    assert model.fc.out_features == 3 and model(x).shape == (2, 3)
    assert isinstance(MobileNetV1(width_mult=1.3).fc, nn.Linear)  # wider than the paper also builds


# --------------------------------------------------------------------------- MobileNetV2


@pytest.fixture(scope="module")
def torchvision_mobilenet_v2() -> nn.Module:
    model = torchvision.models.mobilenet_v2(weights=None).eval()
    _randomise_bn_stats(model, torch.Generator().manual_seed(2))
    return model


def test_mobilenet_v2_matches_torchvision(torchvision_mobilenet_v2):
    inputs = [torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(size)) for size in (64, 96)]
    torchvision_parity("mobilenet_v2", inputs, reference=torchvision_mobilenet_v2, params=3_504_872)


@pytest.mark.parametrize("width_mult", [0.35, 0.5, 0.75, 1.3, 1.4])
def test_mobilenet_v2_width_multipliers_match_torchvision(width_mult):
    with torch.device("meta"):
        reference = torchvision.models.mobilenet_v2(width_mult=width_mult)
        model = cnnlab.create_model("mobilenet_v2", width_mult=width_mult)
    assert {k: v.shape for k, v in model.state_dict().items()} == {
        k: v.shape for k, v in reference.state_dict().items()}
    assert all(m.out_channels % 8 == 0 for m in model.modules() if isinstance(m, nn.Conv2d))


def test_mobilenet_v2_paper_figures_and_metadata():
    # Paper Table 4: 300M multiply-adds, 3.4M parameters, 72.0% top-1.
    assert summarize("mobilenet_v2").total_macs == pytest.approx(300e6, rel=0.01)
    info = cnnlab.model_info("mobilenet_v2")
    assert info.torchvision_name == "mobilenet_v2" and info.paper.venue == "CVPR" and info.paper.year == 2018
    assert info.reference_top1 == 72.0 and "Table 4" in info.reference_note
    model = cnnlab.create_model("mobilenet_v2")
    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert info.weight_layers == len(layers) == 53
    assert model.classifier[0].p == 0.2 and model.get_classifier() is model.classifier[1]


@pytest.mark.parametrize("width_mult", [0, -1.0, float("inf")])
def test_mobilenet_v2_rejects_bad_width(width_mult):
    with pytest.raises(CnnlabError, match=r"width_mult .*\(0, inf\)"):
        MobileNetV2(width_mult=width_mult)


def test_mobilenet_v2_forward_backward_and_new_classifier():
    model = cnnlab.create_model("mobilenet_v2", num_classes=4, in_chans=1)
    x = torch.randn(2, 1, 32, 32)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.reset_classifier(0)
    assert model(x).shape == (2, 1280)
