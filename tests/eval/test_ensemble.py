"""cnnlab eval RUN_A RUN_B ...: the ensemble averages the members' probabilities."""
import json

import pytest
import torch

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.eval import evaluate_run, load_run
from cnnlab.eval.ensemble import evaluate_ensemble


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three one-epoch LeNet-5 runs on the digits, seeds 0-2, and one on 5 of the classes."""
    from cnnlab.train import Trainer, load_recipe

    root = tmp_path_factory.mktemp("ensemble")
    dirs = []
    for seed in range(3):
        out = root / f"seed{seed}"
        Trainer(load_recipe("lenet5-digits", {"epochs": 1, "device": "cpu", "seed": seed}), out, quiet=True).fit()
        dirs.append(out)
    return dirs


def test_ensemble_is_the_mean_of_the_members_probabilities(runs):
    loaded = [load_run(d, "last", device="cpu") for d in runs]
    result = evaluate_ensemble(loaded)
    singles = [evaluate_run(run, top_losses=0, probabilities=True) for run in loaded]
    for member, single in zip(result["members"], singles):
        assert member["top1"] == single["top1"] and member["loss"] == pytest.approx(single["loss"])
    mean = torch.stack([s["probabilities"] for s in singles]).double().mean(0)
    labels = singles[0]["labels"]
    expected_top1 = 100.0 * float((mean.argmax(1) == labels).sum()) / labels.numel()
    assert result["ensemble"]["top1"] == pytest.approx(expected_top1)
    assert result["ensemble"]["loss"] == pytest.approx(float(-mean[torch.arange(labels.numel()), labels].log().mean()))
    assert result["gain_over_mean_member"] == pytest.approx(result["ensemble"]["top1"] - result["mean_member_top1"])
    assert result["images"] == 360 and len(result["members"]) == 3


def test_cli_writes_the_ensemble_report(runs, tmp_path, capsys):
    assert main(["eval", *map(str, runs[:2]), "--tag", "last", "--tta", "flip", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "ensemble (mean probability)" in printed and "over the mean member" in printed
    written = json.loads((tmp_path / "ensemble_test_flip.json").read_text())
    assert written["tta"] == "flip" and len(written["members"]) == 2


def test_members_must_share_classes_and_images(runs, tmp_path):
    loaded = [load_run(d, "last", device="cpu") for d in runs[:2]]
    with pytest.raises(CnnlabError, match="at least two"):
        evaluate_ensemble(loaded[:1])
    loaded[1].classes = list(reversed(loaded[1].classes))
    with pytest.raises(CnnlabError, match="share their classes"):
        evaluate_ensemble(loaded)
    loaded = [load_run(d, "last", device="cpu") for d in runs[:2]]
    with pytest.raises(CnnlabError, match="other images"):
        # the same weights on two different splits stand in for two runs of other data
        loaded[1].config = loaded[1].config.updated({"split_seed": 7})
        evaluate_ensemble(loaded, split="val")
