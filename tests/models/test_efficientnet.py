"""EfficientNet B0-B7: torchvision parity, compound scaling, metadata, stochastic depth."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis import summarize
from cnnlab.errors import CnnlabError
from cnnlab.layers.inverted_residual import MBConv
from cnnlab.models.efficientnet import (
    ALPHA,
    B0_STAGES,
    BETA,
    GAMMA,
    RELEASED_COEFFICIENTS,
    EfficientNet,
    compound_scaling,
    released_vs_rule,
    scale_stages,
    scaling_for,
)

from .parity import n_params, torchvision_parity

PHIS = list(range(8))
# torchvision's documented parameter counts.
TORCHVISION_PARAMS = {0: 5_288_548, 1: 7_794_184, 2: 9_109_994, 3: 12_233_232,
                      4: 19_341_616, 5: 30_389_784, 6: 43_040_704, 7: 66_347_960}
RESOLUTION = {0: 224, 1: 240, 2: 260, 3: 300, 4: 380, 5: 456, 6: 528, 7: 600}
DROPOUT = {0: 0.2, 1: 0.2, 2: 0.3, 3: 0.3, 4: 0.4, 5: 0.4, 6: 0.5, 7: 0.5}


class _MetaModels(dict):
    """Our B0-B7 built once on the meta device (shapes only), each on first use."""

    def __missing__(self, phi: int) -> nn.Module:
        with torch.device("meta"):
            model = cnnlab.create_model(f"efficientnet_b{phi}")
        self[phi] = model
        return model


@pytest.fixture(scope="module")
def meta_models() -> dict[int, nn.Module]:
    return _MetaModels()


# --------------------------------------------------------------------------- torchvision parity


@pytest.mark.parametrize("phi", PHIS)
def test_efficientnet_matches_torchvision(phi):
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(phi))
    # B1-B7 on the meta device, given torchvision's tensors: the same strict key and shape
    # check as a normal load, without initialising tens of millions of weights twice.
    torchvision_parity(f"efficientnet_b{phi}", [x], bn_seed=phi, params=TORCHVISION_PARAMS[phi], on_meta=phi != 0)


@pytest.mark.parametrize("phi", PHIS)
def test_tensorflow_batchnorm_constants_for_b5_to_b7(phi, meta_models):
    # torchvision's B5-B7 port the TF checkpoints with TF's BN eps/momentum; B0-B4 use PyTorch's.
    bns = [m for m in meta_models[phi].modules() if isinstance(m, nn.BatchNorm2d)]
    expected = (1e-3, 0.01) if phi >= 5 else (1e-5, 0.1)
    assert {(bn.eps, bn.momentum) for bn in bns} == {expected}


# --------------------------------------------------------------------------- compound scaling


def test_compound_scaling_is_the_papers_rule():
    assert (ALPHA, BETA, GAMMA) == (1.2, 1.1, 1.15)
    # The constraint alpha * beta^2 * gamma^2 ~ 2: each step of phi about doubles the FLOPs.
    assert ALPHA * BETA ** 2 * GAMMA ** 2 == pytest.approx(1.92, abs=0.01)
    for phi in PHIS:
        rule = compound_scaling(phi)
        assert (rule.depth, rule.width, rule.resolution) == (1.2 ** phi, 1.1 ** phi, 1.15 ** phi)
        assert rule.flops == pytest.approx(1.92 ** phi, rel=0.01)
        assert rule.input_size == round(224 * 1.15 ** phi)
    assert compound_scaling(7).input_size == 596


@pytest.mark.parametrize("phi", [-1, 8, 100, 2.5, "3", None, True])
def test_phi_outside_the_range_is_a_user_error(phi):
    with pytest.raises(CnnlabError, match=r"phi must be .*0\.\.7"):
        compound_scaling(phi)
    with pytest.raises(CnnlabError, match="phi"):
        scaling_for(phi)


def test_released_coefficients_relate_to_the_rule_as_documented():
    rows = released_vs_rule()
    assert [r["phi"] for r in rows] == PHIS
    assert rows[0]["width_ratio"] == rows[0]["depth_ratio"] == rows[0]["resolution_ratio"] == 1.0
    for previous, row in zip(rows, rows[1:]):
        # Monotone like the rule...
        assert row["released_depth"] > previous["released_depth"]
        assert row["released_width"] >= previous["released_width"]
        assert row["released_resolution"] > previous["released_resolution"]
        # ...but hand-set near it, not the rule rounded: depth 8-19% below alpha^phi, width
        # 4-10% below beta^phi up to B4 and within 3% from B5, resolution -12%..+2%.
        assert 0.80 <= row["depth_ratio"] <= 0.92
        assert 0.90 <= row["width_ratio"] <= 0.96 if row["phi"] <= 4 else abs(row["width_ratio"] - 1) <= 0.03
        assert 0.87 <= row["resolution_ratio"] <= 1.02
    assert [RELEASED_COEFFICIENTS[p].resolution for p in PHIS] == [RESOLUTION[p] for p in PHIS]
    assert [RELEASED_COEFFICIENTS[p].dropout for p in PHIS] == [DROPOUT[p] for p in PHIS]


@pytest.mark.parametrize("phi", PHIS)
def test_every_model_is_the_b0_table_scaled(phi, meta_models):
    released = RELEASED_COEFFICIENTS[phi]
    stages = scale_stages(released.width, released.depth)
    for base, scaled in zip(B0_STAGES, stages):
        assert scaled.repeats == math.ceil(base.repeats * released.depth)
        for before, after in ((base.in_channels, scaled.in_channels), (base.out_channels, scaled.out_channels)):
            assert after % 8 == 0 and 0.9 * before * released.width <= after < before * released.width + 8
        assert (scaled.expand_ratio, scaled.kernel_size, scaled.stride) == (
            base.expand_ratio, base.kernel_size, base.stride)
    model = meta_models[phi]
    assert model.stages_config == stages
    assert [len(model.features[i]) for i in range(1, 8)] == [s.repeats for s in stages]


def test_compound_scaling_builds_the_pure_rule_network():
    rule = compound_scaling(3)
    with torch.device("meta"):
        model = cnnlab.create_model("efficientnet_b3", scaling="compound")
        released = cnnlab.create_model("efficientnet_b3")
        b0_rule = cnnlab.create_model("efficientnet_b0", scaling="compound")
        b0 = cnnlab.create_model("efficientnet_b0")
    assert [s.repeats for s in model.stages_config] == [math.ceil(n * 1.2 ** 3) for n in (1, 2, 2, 3, 3, 4, 1)]
    assert [s.repeats for s in model.stages_config] == [2, 4, 4, 6, 6, 7, 2]
    assert model.stages_config[0].in_channels == 40  # make_divisible(32 * 1.331)
    assert model.pretrained_cfg.input_size == (3, rule.input_size, rule.input_size) == (3, 341, 341)
    assert cnnlab.model_info("efficientnet_b3").input_size == (3, 300, 300)
    assert n_params(model) > n_params(released)  # the rule is deeper and wider than the release
    assert n_params(b0_rule) == n_params(b0)  # phi = 0: both are the baseline
    with pytest.raises(CnnlabError, match="scaling"):
        cnnlab.create_model("efficientnet_b1", scaling="linear")


def test_bad_multipliers_are_user_errors():
    for width, depth in ((0, 1.0), (1.0, -2.0), (float("nan"), 1.0)):
        with pytest.raises(CnnlabError, match="multiplier must be a number in \\(0, inf\\)"):
            scale_stages(width, depth)
    with pytest.raises(CnnlabError, match="drop_path_rate"):
        EfficientNet(scale_stages(0.25, 0.25), drop_path_rate=1.0)


# --------------------------------------------------------------------------- metadata and summary


@pytest.mark.parametrize("phi", PHIS)
def test_metadata(phi, meta_models):
    info = cnnlab.model_info(f"efficientnet_b{phi}")
    assert info.family == "efficientnet" and info.torchvision_name == f"efficientnet_b{phi}"
    assert info.paper.venue == "ICML" and info.paper.year == 2019
    assert info.input_size == (3, RESOLUTION[phi], RESOLUTION[phi])
    assert 77 < info.reference_top1 < 85 and "torchvision" in info.reference_note
    model = meta_models[phi]
    assert model.classifier[0].p == DROPOUT[phi]
    assert model.pretrained_cfg.input_size == info.input_size
    main_path = [m for name, m in model.named_modules()
                 if isinstance(m, (nn.Conv2d, nn.Linear)) and ".fc" not in name]
    assert info.weight_layers == len(main_path)
    assert cnnlab.model_info("efficientnet_b0").weight_layers == 50


def test_summary_of_b7_is_at_600_and_matches_the_papers_37_billion():
    summary = summarize("efficientnet_b7")
    assert summary.input_shape == (3, 600, 600)
    assert summary.total_params == 66_347_960
    assert 37e9 < summary.total_macs < 38e9  # paper Table 2: 37B FLOPs (multiply-adds)
    assert 0.38e9 < summarize("efficientnet_b0").total_macs < 0.40e9  # 0.39B


# --------------------------------------------------------------------------- training behaviour


def test_stochastic_depth_rises_linearly_as_torchvision(meta_models):
    model = meta_models[0]
    with torch.device("meta"):
        custom = cnnlab.create_model("efficientnet_b0", drop_path_rate=0.5)
    blocks = [m for m in model.modules() if isinstance(m, MBConv)]
    assert len(blocks) == 16
    rates = [getattr(b.drop_path, "drop_prob", 0.0) for b in blocks]
    assert rates == pytest.approx([0.2 * i / 16 for i in range(16)])
    assert getattr([m for m in custom.modules() if isinstance(m, MBConv)][-1].drop_path, "drop_prob") == \
        pytest.approx(0.5 * 15 / 16)


def test_forward_backward_small_batch_and_eval_is_deterministic():
    model = cnnlab.create_model("efficientnet_b0", num_classes=3, in_chans=1)
    x = torch.randn(2, 1, 32, 32)
    model(x).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 1280, 1, 1)
        torch.testing.assert_close(model.forward_head(features), model(x))
        torch.testing.assert_close(model(x), model(x))
        assert model.forward_head(features, pre_logits=True).shape == (2, 1280)
    assert model.get_classifier() is model.classifier[1]
    model.reset_classifier(7)
    assert model(x).shape == (2, 7)
