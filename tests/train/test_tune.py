"""cnnlab tune: search spaces, the narrowing of the fine stage, a real (tiny) study that resumes."""
import csv

import pytest

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import load_recipe
from cnnlab.train.tune import Dimension, _Report, default_space, narrow, parse_space, run_search

optuna = pytest.importorskip("optuna")


def test_parse_space_and_its_errors():
    space = parse_space(["lr=log:1e-3:1", "dropout=float:0:0.5", "batch_size=choice:64,128", "epochs=int:1:3"])
    assert [d.kind for d in space] == ["log", "float", "choice", "int"]
    assert space[2].choices == (64, 128) and space[0].spec() == "lr=log:0.001:1"
    for bad, fragment in (("lr=log:1:0.1", "empty or inverted"), ("lr=log:0:1", "positive"),
                          ("learning_rate=log:1e-3:1", "not a recipe key"), ("lr=uniform:0:1", "key=log"),
                          ("lr=float:a:b", "two numbers"), ("batch_size=choice:64", "at least two")):
        with pytest.raises(CnnlabError, match=fragment):
            parse_space([bad])


def test_default_space_is_the_lectures_log_ranges():
    lr, decay = default_space(load_recipe("resnet20-cifar10"))
    assert (lr.kind, lr.low, lr.high) == ("log", pytest.approx(0.01), pytest.approx(1.0))
    assert (decay.kind, decay.low, decay.high) == ("log", pytest.approx(1e-5), pytest.approx(1e-3))


def test_narrow_keeps_the_best_trials_range_inside_the_old_one():
    space = [Dimension("lr", "log", 1e-3, 1.0), Dimension("batch_size", "choice", choices=(32, 64, 128))]
    fine = narrow(space, [{"lr": 0.01, "batch_size": 64}, {"lr": 0.03, "batch_size": 128}])
    assert 1e-3 <= fine[0].low < 0.01 and 0.03 < fine[0].high <= 1.0 and fine[0].high < 0.2
    assert fine[1].choices == (64, 128)


def test_a_pruned_trial_stops_its_run():
    class GiveUp:
        def report(self, value, step):
            self.value = value

        def should_prune(self):
            return True

    report = _Report(GiveUp())
    with pytest.raises(KeyboardInterrupt):
        report.on_epoch_end(type("T", (), {"epoch": 1})(), {"val_top1": 12.0})
    assert report.pruned


def test_a_small_study_writes_its_results_and_resumes(tmp_path, capsys):
    config = load_recipe("lenet5-digits", device="cpu")
    out = tmp_path / "study"
    summary = run_search(config, out, trials=3, fine_trials=1, coarse_epochs=1, fine_epochs=1, log=lambda s: None)
    assert [r["stage"] for r in summary["trials"]] == ["coarse"] * 3 + ["fine"]
    assert (out / "study.db").is_file() and (out / "scatter.png").read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("trials/*/*.safetensors"))  # curves and configs kept, weights not
    with open(out / "results.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    best = load_recipe(str(out / "best.yaml"))
    assert best.lr == pytest.approx(summary["best"]["lr"]) and best.recipe == "lenet5-digits-tuned"
    # The same command again finds its trials in the storage and runs none.
    lines = []
    again = run_search(config, out, trials=3, fine_trials=1, coarse_epochs=1, fine_epochs=1, log=lines.append)
    assert len(again["trials"]) == 4 and all("are done" in line for line in lines)


def test_bad_searches_are_clear_errors(tmp_path):
    with pytest.raises(CnnlabError, match="validation split"):
        run_search(load_recipe("fast-cifar10"), tmp_path / "x")
    with pytest.raises(CnnlabError, match="cannot be used"):
        run_search(load_recipe("lenet5-digits", device="cpu"), tmp_path / "y", trials=1, fine_trials=0,
                   coarse_epochs=1, storage=f"sqlite:///{tmp_path}/missing/dir/study.db", log=lambda s: None)
    assert main(["tune", "--search", "lr=log:1:0.1", "--out", str(tmp_path / "z")]) == 2
