"""cnnlab doctor: lecture 7's first checks pass on a healthy recipe and catch the broken ones."""
import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import load_recipe
from cnnlab.train.doctor import Doctor


@pytest.fixture
def doctor():
    with Doctor(load_recipe("lenet5-digits", device="cpu", seed=0)) as d:
        yield d


def _wrap_new_model(doctor, change):
    build = doctor.new_model

    def broken():
        model = build()
        change(model)
        return model

    doctor.new_model = broken


def test_a_healthy_recipe_passes_every_check(doctor, tmp_path):
    checks = doctor.run(range_steps=80, plot=tmp_path / "lr.png")
    assert [c.passed for c in checks] == [True, True, True], [c.summary for c in checks]
    initial, overfit, lr_test = checks
    assert abs(initial.values["loss"] - initial.values["ln_classes"]) < 0.3
    assert overfit.values["train_top1"] == 100.0 and overfit.values["steps"] < 300
    assert 1e-3 < lr_test.values["suggested_lr"] < 2 and (tmp_path / "lr.png").read_bytes()[:4] == b"\x89PNG"


def test_shuffled_labels_fail_the_range_test(doctor):
    loader = doctor.trainer.train_loader
    permutation = torch.randperm(len(loader.labels), generator=torch.Generator().manual_seed(0))
    loader.labels = loader.labels[permutation]
    check = doctor.lr_range_test(steps=80)
    assert not check.passed and "labels may not match" in check.advice


def test_outputs_at_the_wrong_scale_fail_the_initial_loss(doctor):
    def blow_up(model):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(4.0)

    _wrap_new_model(doctor, blow_up)
    check = doctor.initial_loss()
    assert not check.passed and check.values["loss"] > 1.25 * check.values["ln_classes"]
    assert "initialisation" in check.advice


def test_a_frozen_network_fails_to_learn(doctor):
    _wrap_new_model(doctor, lambda model: [p.requires_grad_(False) for p in model.parameters()])
    for check in (doctor.overfit_small_sample(), doctor.lr_range_test(steps=20)):
        assert not check.passed and "frozen" in check.advice


def test_a_learning_rate_far_too_low_cannot_overfit(doctor):
    doctor.config = doctor.config.updated({"lr": 1e-7})
    check = doctor.overfit_small_sample(max_steps=30)
    assert not check.passed and check.values["steps"] == 30


def test_cli_exit_status_and_report(tmp_path, capsys):
    assert main(["doctor", "--out", str(tmp_path / "ok"), "--range-steps", "80"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("pass") == 3 and "learning-rate curve" in printed
    report = json.loads((tmp_path / "ok" / "doctor.json").read_text())
    assert report["passed"] and [c["name"] for c in report["checks"]] == [
        "initial loss", "overfit a small sample", "learning-rate range test"]
    # A learning rate far too low: the small sample is not memorised; exit status 1.
    assert main(["doctor", "--out", str(tmp_path / "low"), "--lr", "1e-8", "--overfit-steps", "20",
                 "--range-steps", "30"]) == 1
    assert "FAIL overfit a small sample" in capsys.readouterr().out


def test_bad_range_is_a_clear_error(doctor):
    with pytest.raises(CnnlabError, match="start_lr < end_lr"):
        doctor.lr_range_test(start_lr=1.0, end_lr=0.1)
