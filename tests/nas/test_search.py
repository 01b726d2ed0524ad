"""A test-sized search: both searchers, real children trained by the Trainer, killed and resumed."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.nas import CellSpace, child_config, read_results, retrain, run_search
from cnnlab.nas import search as search_module
from cnnlab.runs import load_recipe
from cnnlab.train import Callback, Trainer

# 8x8 digits, 160 to train and 32 to validate, one epoch: each child takes about a second.
SETTINGS = {"budget": 2, "epochs": 1, "searcher": "both", "seed": 0, "subset": 160,
            "overrides": {"device": "cpu", "batch_size": 64, "cpu_threads": 1}}


def _space() -> CellSpace:
    return CellSpace(nodes=2, filters=4)


TRAIN_CHILD = search_module.train_child


class Counting:
    """train_child, counted; raises KeyboardInterrupt (a kill) on call ``stop_at``."""

    def __init__(self, stop_at=None):
        self.calls, self.stop_at, self.real = 0, stop_at, TRAIN_CHILD

    def __call__(self, config, folder, keep_weights=False):
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.real(config, folder, keep_weights)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("nas") / "search"
    summary = run_search(_space(), "digits", out, log=lambda line: None, **SETTINGS)
    return out, summary


def test_a_search_writes_its_results(finished):
    out, summary = finished
    records = read_results(out / "results.jsonl")
    assert sorted(records) == [("controller", 0), ("controller", 1), ("random", 0), ("random", 1)]
    for record in records.values():
        assert 0 <= record["val_top1"] <= 100 and record["params"] > 0 and len(record["tokens"]) == 16
    assert set(summary["searchers"]) == {"random", "controller"}
    assert summary["best"]["val_top1"] == max(r["val_top1"] for r in records.values())
    with open(out / "results.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    for figure in ("progress.png", "best_cell.png"):
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    best = load_recipe(str(out / "best.yaml"))
    assert best.model == "nasnet_cifar" and best.model_args == summary["best"]["model_args"]
    # The children: the Trainer's runs, curves and reports kept, weights not.
    child = out / "children" / "random-0000"
    assert (child / "report.json").is_file() and (child / "metrics.csv").is_file()
    assert not list(out.glob("children/*/*.safetensors"))
    # The subset: 160 + 32 images of the digits' training split, as a lossless tree.
    assert len(list((out / "data").glob("*/train/*/*.png"))) == 160
    assert len(list((out / "data").glob("*/val/*/*.png"))) == 32
    # The controller learned from both of its children (the first only set the baseline).
    updates = summary["controller_updates"]
    assert [u["child"] for u in updates] == [0, 1] and updates[1]["baseline"] is not None


def test_a_killed_search_resumes_without_retraining(finished, tmp_path, monkeypatch):
    reference, _ = finished
    out = tmp_path / "search"
    killer = Counting(stop_at=3)  # killed as the third child starts
    monkeypatch.setattr(search_module, "train_child", killer)
    with pytest.raises(KeyboardInterrupt):
        run_search(_space(), "digits", out, log=lambda line: None, **SETTINGS)
    assert len(read_results(out / "results.jsonl")) == 2
    with open(out / "results.jsonl", "a") as handle:  # a line the kill cut short
        handle.write('{"searcher": "random", "chi')
    counter = Counting()
    monkeypatch.setattr(search_module, "train_child", counter)
    run_search(_space(), "digits", out, log=lambda line: None, **SETTINGS)
    assert counter.calls == 2  # only the two unfinished children
    # The same children, rewards and controller as the search that was never interrupted.
    resumed, expected = read_results(out / "results.jsonl"), read_results(reference / "results.jsonl")
    assert {k: (r["tokens"], r["val_top1"]) for k, r in resumed.items()} == \
        {k: (r["tokens"], r["val_top1"]) for k, r in expected.items()}
    # Run again with a larger budget: only the new children train.
    counter = Counting()
    monkeypatch.setattr(search_module, "train_child", counter)
    run_search(_space(), "digits", out, log=lambda line: None, **{**SETTINGS, "budget": 3, "searcher": "random"})
    assert counter.calls <= 1 and len(read_results(out / "results.jsonl")) == 5


def test_a_child_killed_mid_training_resumes_from_its_checkpoint(tmp_path):
    class StopAfterFirstEpoch(Callback):
        def on_epoch_end(self, trainer, row):
            raise KeyboardInterrupt

    space = _space()
    config = child_config(space.model, "digits", "digits", 2, 0, {"device": "cpu", "batch_size": 256,
                                                                 "cpu_threads": 1})
    config = config.updated({"model_args": space.model_args([0] * len(space.sizes))})
    folder = tmp_path / "child"
    with pytest.raises(KeyboardInterrupt):
        Trainer(config, folder, quiet=True, callbacks=[StopAfterFirstEpoch()]).fit()
    report = search_module.train_child(config, folder)
    # 1,293 training images (the digits less 10% for validation) in batches of 256: 6 steps an epoch.
    assert report["epochs"] == 2 and report["steps"] == 12
    assert len((folder / "metrics.csv").read_text().splitlines()) == 3  # header, epoch 1 (before), epoch 2
    assert not list(folder.glob("*.safetensors"))


def test_the_best_cell_retrains_beside_a_baseline_of_its_size(finished):
    out, summary = finished
    result = retrain(out, epochs=1, subset=160, baseline="resnet20", log=lambda line: None,
                     overrides={"device": "cpu", "cpu_threads": 1})
    cells, baseline = result["runs"]["nasnet_cifar"], result["runs"]["resnet20"]
    # The width is chosen so that the cells have about ResNet-20's 0.27M parameters (10 classes here too).
    assert cells["model_args"]["filters"] > summary["best"]["model_args"]["filters"]
    assert abs(cells["params"] / baseline["params"] - 1) < 0.15
    assert cells["test_split"].startswith("val")  # a subset has no test split: said, not hidden
    assert (Path(cells["folder"]) / "last.safetensors").is_file()


def test_a_resumed_search_keeps_its_settings(finished):
    out, _ = finished
    with pytest.raises(CnnlabError, match="other settings.*epochs"):
        run_search(_space(), "digits", out, log=lambda line: None, **{**SETTINGS, "epochs": 2})
    with pytest.raises(CnnlabError, match="sets model_args itself"):
        run_search(_space(), "digits", out, log=lambda line: None,
                   **{**SETTINGS, "overrides": {"model_args": {}}})


def test_the_command_line_searches_and_retrains(tmp_path, capsys):
    out = tmp_path / "macro"
    common = ["--data", "digits", "--subset", "100", "--out", str(out), "--device", "cpu", "--set", "cpu_threads=1"]
    assert main(["nas", "--space", "macro", "--budget", "1", "--searcher", "random", "--layers", "3", *common]) == 0
    printed = capsys.readouterr().out
    assert "random 1/1: val" in printed and "random: best val" in printed and "best_cell.png" in printed
    assert main(["nas", "--retrain", "--epochs", "1", *common]) == 0
    result = json.loads((out / "retrain-e1-sub100.json").read_text())
    assert result["runs"]["nas_macro"]["params"] > 0
    assert (out / "retrain-e1-sub100" / "last.safetensors").is_file()  # a retrained child keeps its weights
    assert main(["nas", "--budget", "0", "--out", str(tmp_path / "x")]) == 2
    assert main(["nas", "--retrain", "--out", str(tmp_path / "empty")]) == 2
    assert "no finished search" in capsys.readouterr().err
