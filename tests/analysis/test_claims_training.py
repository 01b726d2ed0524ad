"""The training claims: each computed number against arithmetic done here by hand.

The batch-norm example is redone in numpy, label smoothing from the lesson's formula,
the initial loss from the softmax's second-order expansion around uniform scores, and
the initialisation study from the per-layer gain std * sqrt(Din / 2) of a ReLU layer.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cnnlab.analysis import claims as claims_module
from cnnlab.analysis.claims import (
    INITIALIZATION_RUNS,
    TRAINING_TOPICS,
    all_claims,
    batchnorm_example,
    check_claims,
    dropout_example,
    initial_loss,
    initialization_study,
    initialization_table,
    label_smoothing_example,
    mixup_blends,
    smoothed_targets,
    tta_forward_passes,
)
from cnnlab.cli import main
from cnnlab.errors import CnnlabError

# The lesson's BN worked example, by hand: biased variance, eps 1e-5, gamma 2, beta 1.
_X = np.array([2.0, 4.0, 6.0, 8.0])
_MEAN = _X.sum() / 4
_VARIANCE = ((_X - _MEAN) ** 2).sum() / 4
_X_HAT = (_X - _MEAN) / np.sqrt(_VARIANCE + 1e-5)
_Y = 2 * _X_HAT + 1

# Verdict of every training claim; "differs" ones are the lesson's rounding slips.
VERDICTS = {
    "bn-example-mean": "agrees",
    "bn-example-variance": "agrees",
    "bn-example-xhat": "agrees",
    "bn-example-y": "differs",
    "dropout-drop-probability": "agrees",
    "dropout-inverted-scale": "agrees",
    "dropout-expected-output": "agrees",
    "dropout-test-scale": "agrees",
    "dropout-mask-count": "agrees",
    "bn-identity": "agrees",
    "bn-epsilon": "agrees",
    "bn-batch-of-one": "agrees",
    "bn2d-batch-of-one": "differs",
    "gelu-definition": "agrees",
    "residual-gradient-paths": "agrees",
    "initial-loss-ln-c": "agrees",
    "init-small-vanish": "agrees",
    "init-large-blowup": "agrees",
    "init-kaiming-std": "agrees",
    "init-kaiming-scaled": "agrees",
    "label-smoothing-true-class": "agrees",
    "label-smoothing-other-class": "agrees",
    "label-smoothing-soft-labels": "differs",
    "label-smoothing-loss": "agrees",
    "mixup-label": "agrees",
    "tta-ten-crops": "agrees",
    "tta-multiscale-passes": "agrees",
    "channel-stats-count": "agrees",
}


@pytest.fixture(scope="module")
def results():
    return {r.id: r for r in check_claims(list(VERDICTS))}


def test_the_module_registers_exactly_these_claims():
    modules = {topic.__name__ for topic in TRAINING_TOPICS}
    ids = [c.id for c in all_claims() if c.compute.__module__ in modules]
    assert ids == list(VERDICTS)


def test_verdicts(results):
    assert {i: r.verdict for i, r in results.items()} == VERDICTS
    assert "0.11 and 1.89" in results["bn-example-y"].reason
    assert "sums to 0.99" in results["label-smoothing-soft-labels"].reason
    assert "its own 64 positions" in results["bn2d-batch-of-one"].reason


# --- batch normalisation ------------------------------------------------------------------

def test_batchnorm_example_matches_numpy(results):
    assert results["bn-example-mean"].computed == pytest.approx(_MEAN, rel=1e-12)
    assert results["bn-example-variance"].computed == pytest.approx(_VARIANCE, rel=1e-9)
    assert results["bn-example-xhat"].computed == pytest.approx(tuple(_X_HAT), rel=1e-12)
    assert results["bn-example-y"].computed == pytest.approx(tuple(_Y), rel=1e-12)
    # The lesson's rounded numbers: the exact y rounds to 0.11 and 1.89, not 0.10 and 1.90.
    assert np.round(_Y, 2).tolist() == [-1.68, 0.11, 1.89, 3.68]


def test_batchnorm_stores_the_unbiased_variance_for_inference():
    example = batchnorm_example()
    assert example.running_variance == pytest.approx(np.var(_X, ddof=1), rel=1e-12)  # 20/3, not 5
    assert example.variance == pytest.approx(np.var(_X, ddof=0), rel=1e-9)


# --- dropout ------------------------------------------------------------------------------

def test_inverted_dropout(results):
    assert abs(results["dropout-drop-probability"].computed - 0.5) < 0.005
    assert results["dropout-inverted-scale"].computed == pytest.approx(1 / (1 - 0.5))
    assert abs(results["dropout-expected-output"].computed - 1.0) < 0.005
    assert dropout_example().eval_mean == 1.0  # test time: no dropout, no rescaling


def test_dropout_example_other_rate_and_caller_random_state_untouched():
    state = torch.get_rng_state()
    example = dropout_example(p=0.2, size=200_000, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert abs(example.dropped - 0.2) < 0.01
    assert example.survivor_value == pytest.approx(1 / 0.8)
    assert abs(example.train_mean - 1.0) < 0.01


# --- dropout: plain dropout's test-time scale, the number of masks ------------------------

def test_plain_dropout_keeps_one_minus_p(results):
    example = dropout_example(p=0.2)
    kept = 1 - example.dropped  # share of non-zero outputs
    assert results["dropout-test-scale"].computed == pytest.approx(kept, rel=1e-9)
    assert abs(kept - (1 - 0.2)) < 0.005


def test_dropout_mask_count_has_1233_digits(results):
    # 2^4096 written out has 1234 digits: 10^1233 <= 2^4096 < 10^1234.
    assert len(str(2 ** 4096)) - 1 == 1233
    assert int(results["dropout-mask-count"].computed) == len(str(2 ** 4096)) - 1
    assert claims_module.dropout_units("alexnet_paper") == 4096


# --- batch norm: the identity, epsilon, a batch of one ------------------------------------

def test_bn_with_gamma_sigma_beta_mu_gives_back_the_input(results):
    by_hand = (_X - _MEAN) * np.sqrt(_VARIANCE) / np.sqrt(_VARIANCE + 1e-5) + _MEAN
    assert results["bn-identity"].computed == pytest.approx(tuple(by_hand), rel=1e-12)
    assert np.abs(by_hand - _X).max() < 1e-5 * _X.max()
    assert results["bn-epsilon"].computed == 1e-5


def test_a_batch_of_one(results):
    over_n = claims_module.batch_of_one("BatchNorm1d")
    assert over_n.refused and over_n.values_per_channel == 1
    assert results["bn-batch-of-one"].computed == 0.0
    # BatchNorm2d averages each map over its 8 x 8 positions: the numpy variance of the same draws.
    x = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64).numpy()
    assert results["bn2d-batch-of-one"].computed == pytest.approx(x.var(axis=(0, 2, 3)).mean(), rel=1e-9)
    assert not claims_module.batch_of_one("BatchNorm2d").refused
    with pytest.raises(CnnlabError):
        claims_module.batch_of_one("LayerNorm")


# --- GELU and residual paths ----------------------------------------------------------------

def _normal_cdf(x: float, steps: int = 20_000) -> float:
    # Simpson's rule on the standard normal density from -12 (where the tail is ~1e-33) to x.
    a = -12.0
    h = (x - a) / steps
    f = [math.exp(-(a + i * h) ** 2 / 2) / math.sqrt(2 * math.pi) for i in range(steps + 1)]
    return h / 3 * (f[0] + f[-1] + 4 * sum(f[1:-1:2]) + 2 * sum(f[2:-1:2]))


def test_gelu_is_x_times_the_normal_cdf(results):
    expected = tuple(_normal_cdf(x) for x in (-2.0, -1.0, 1.0, 2.0))
    assert results["gelu-definition"].computed == pytest.approx(expected, rel=1e-9)


def test_residual_paths_double_with_each_block(results):
    blocks, paths = claims_module.residual_gradient_paths()
    assert blocks == (20 - 2) // 2  # ResNet-20: 6n + 2 layers, n = 3 blocks in each of 3 stages
    assert paths == results["residual-gradient-paths"].computed == 2 ** blocks
    # A plain net has one path: nothing to expand.
    assert claims_module.residual_gradient_paths("plain20") == (9, 1)


# --- initial loss -------------------------------------------------------------------------

def test_initial_loss_is_ln_c_plus_half_the_logit_variance(results):
    loss = initial_loss()
    assert results["initial-loss-ln-c"].computed == loss.loss
    assert loss.num_classes == 10
    # A uniform softmax gives ln(C); averaged over the labels the loss can only be larger
    # (arithmetic-geometric mean), by about half the variance of the logits around their mean.
    assert loss.loss >= math.log(10)
    assert loss.loss == pytest.approx(math.log(10) + loss.logit_std ** 2 / 2, abs=0.05)


# --- initialisation study -----------------------------------------------------------------

def _gains(result) -> list[float]:
    return [b / a for a, b in zip(result.stds, result.stds[1:])]


def test_relu_small_init_collapses_by_the_predicted_factor(results):
    result = initialization_study("relu", "normal", std=0.01)
    assert (result.layers, result.width) == (6, 4096)
    expected = 0.01 * math.sqrt(4096 / 2)  # 0.45 per layer
    assert all(g == pytest.approx(expected, rel=0.05) for g in _gains(result))
    assert result.stds[-1] < 0.01 < result.stds[0]
    assert results["init-small-vanish"].computed == pytest.approx(result.stds[-1] / result.stds[0])


def test_relu_large_init_blows_up_by_the_predicted_factor(results):
    result = initialization_study("relu", "normal", std=0.05)
    expected = 0.05 * math.sqrt(4096 / 2)  # 2.26 per layer
    assert all(g == pytest.approx(expected, rel=0.05) for g in _gains(result))
    assert result.stds[-1] > 50
    assert results["init-large-blowup"].computed == pytest.approx(result.stds[-1] / result.stds[0])


def test_relu_kaiming_init_keeps_the_scale(results):
    result = initialization_study("relu", "kaiming")
    assert result.weight_std == pytest.approx(math.sqrt(2 / 4096), rel=0.005)
    assert results["init-kaiming-std"].computed == result.weight_std
    assert 0.5 < result.stds[-1] / result.stds[0] < 2
    assert max(result.stds) / min(result.stds) < 1.1
    assert results["init-kaiming-scaled"].computed == pytest.approx(max(result.stds) / min(result.stds))


def test_tanh_runs_collapse_saturate_or_stay_scaled():
    small = initialization_study("tanh", "normal", std=0.01)
    large = initialization_study("tanh", "normal", std=0.05)
    xavier = initialization_study("tanh", "xavier")
    assert all(b < a for a, b in zip(small.stds, small.stds[1:])) and small.stds[-1] < 0.1
    assert all(s > 0.25 for s in large.saturated) and min(large.stds) > 0.8  # pinned at +-1
    assert max(xavier.saturated) < 0.02 and xavier.stds[-1] > 0.25


def test_study_rejects_bad_settings_and_keeps_the_random_state():
    for kwargs in ({"activation": "sigmoid"}, {"init": "default"}, {"width": 0}, {"batch": 1}):
        with pytest.raises(CnnlabError):
            initialization_study(**kwargs)
    state = torch.get_rng_state()
    small = initialization_study("relu", "kaiming", layers=3, width=64, batch=32, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    assert len(small.stds) == 3


def test_table_lists_every_run_with_its_layers():
    columns, rows = initialization_table(layers=2, width=64, batch=16)
    assert columns[2:4] == ("layer 1 std / mean", "layer 2 std / mean")
    assert len(rows) == len(INITIALIZATION_RUNS)
    assert all(len(row) == len(columns) for row in rows)


# --- label smoothing ----------------------------------------------------------------------

def test_label_smoothing_follows_the_formula(results):
    eps, k = 0.1, 10
    assert results["label-smoothing-true-class"].computed == pytest.approx((1 - eps) * 1 + eps / k, rel=1e-6)
    assert results["label-smoothing-other-class"].computed == pytest.approx((1 - eps) * 0 + eps / k, rel=1e-6)
    assert results["label-smoothing-soft-labels"].computed == pytest.approx((0.91, 0.01), rel=1e-6)
    assert results["label-smoothing-loss"].computed == pytest.approx(1.0, abs=1e-6)
    example = label_smoothing_example()
    assert example.builtin_loss == pytest.approx(example.soft_target_loss, rel=1e-6)


def test_smoothed_targets_follow_the_formula_for_any_eps_and_class_count():
    # Read off the gradient of F.cross_entropy(label_smoothing=...): (1 - eps) * one-hot + eps / K.
    targets = smoothed_targets(2, 5, 0.2)
    expected = torch.full((1, 5), 0.2 / 5, dtype=torch.float64)
    expected[0, 2] += 1 - 0.2
    assert torch.allclose(targets, expected, rtol=0, atol=1e-15)


# --- the command line ---------------------------------------------------------------------

def test_cli_figures_flag_writes_the_png_and_prints_the_study(tmp_path, capsys, monkeypatch):
    # Only this module's claims, to keep the test short (test_cli runs the whole registry).
    monkeypatch.setattr(claims_module, "check_claims", lambda ids=None: check_claims(list(VERDICTS)))
    directory = tmp_path / "figures"
    assert main(["claims", "--figures", str(directory)]) == 0
    out = capsys.readouterr().out
    png = directory / "initialization_study.png"
    assert png.is_file() and png.stat().st_size > 10_000
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "initialisation study" in out.lower() and "Kaiming" in out and str(png) in out

    (tmp_path / "file").write_text("not a directory")
    assert main(["claims", "--figures", str(tmp_path / "file")]) == 2
    assert "must be a directory" in capsys.readouterr().err


# --- data: mixup's labels, test-time views, per-channel statistics ------------------------

def test_mixup_labels_are_the_image_blend(results):
    blends = mixup_blends()
    # Cat pixels are 1 and dog pixels 0, so a mixed image's mean pixel is its share of cat.
    assert blends.largest_gap < 1e-6
    cat, dog = results["mixup-label"].computed
    assert cat + dog == pytest.approx(1.0, abs=1e-6)
    assert cat == pytest.approx(blends.nearest_image, abs=1e-6)
    assert abs(cat - 0.7) < 0.01


def test_test_time_views(results):
    assert results["tta-ten-crops"].computed == 2 * (4 + 1)  # 4 corners + centre, and their mirrors
    assert results["tta-multiscale-passes"].computed == 2 * (4 + 1) * len((224, 256, 384, 480, 640))
    assert tta_forward_passes("flip") == 2


def test_per_channel_statistics_of_rgb(results):
    assert results["channel-stats-count"].computed == (3, 3)
