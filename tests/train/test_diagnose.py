"""cnnlab diagnose: each of the lecture's curve patterns, on synthetic curves and on real runs."""
import json
import math
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.train import read_metrics_csv
from cnnlab.train.diagnose import diagnose_history

REPO = Path(__file__).resolve().parents[2]


def curve(train_loss, train_top1=None, val_top1=None, val_loss=None, lr=None):
    n = len(train_loss)
    train_top1 = train_top1 or [min(99.0, 40 + 60 * (1 - l / train_loss[0])) for l in train_loss]
    return [{"epoch": i + 1, "lr": (lr or [0.1] * n)[i], "train_loss": train_loss[i], "train_top1": train_top1[i],
             "val_loss": None if val_loss is None else val_loss[i],
             "val_top1": None if val_top1 is None else val_top1[i]} for i in range(n)]


def names(rows, num_classes=None):
    return [f.name for f in diagnose_history(rows, num_classes)]


def healthy_run(n=20):
    loss = [2.0 * math.exp(-0.25 * i) + 0.1 for i in range(n)]
    train = [50 + 45 * (1 - math.exp(-0.3 * i)) for i in range(n)]
    val = [t - 3 for t in train[: n - 5]] + [train[n - 6] - 3] * 5  # levelled off at the end
    return curve(loss, train, val, [l + 0.1 for l in loss])


def test_a_healthy_run_has_no_findings():
    assert names(healthy_run(), 10) == []


@pytest.mark.parametrize("rows,expected", [
    (curve([2.3, 1.8, float("nan"), float("nan")]), "exploding"),
    (curve([2.3, 2.0, 2.9, 3.8, 4.5]), "exploding"),
    (curve([2.0, 1.5, 1.8, 1.2, 1.5, 1.0, 1.3, 0.9, 1.2]), "oscillating"),
    (curve([2.30, 2.25, 2.20, 2.15, 2.10, 2.05, 2.00, 1.95]), "too slow"),
    (curve([2.303, 2.301, 2.300, 1.5, 1.0, 0.7, 0.5]), "flat start"),
])
def test_loss_patterns(rows, expected):
    assert expected in names(rows, 10)


def test_flat_start_needs_the_chance_level_when_the_classes_are_known():
    rows = curve([1.2, 1.19, 1.19, 0.7, 0.5, 0.4])  # stuck, but far below ln 10 = 2.30
    assert "flat start" in names(rows) and "flat start" not in names(rows, 10)


def test_overfitting_by_the_gap_and_by_the_rising_validation_loss():
    n = 12
    loss = [2.0 * math.exp(-0.4 * i) for i in range(n)]
    train = [50 + 49 * (1 - math.exp(-0.4 * i)) for i in range(n)]
    gap = curve(loss, train, [t - 2 * i for i, t in enumerate(train)], [1.5] * n)
    assert "overfitting" in names(gap, 10)
    val_loss = [1.6, 1.2, 1.0, 0.9, 0.95, 1.05, 1.15, 1.25, 1.35, 1.45, 1.55, 1.65]
    rising = curve(loss, train, [t - 4 for t in train], val_loss)
    finding = next(f for f in diagnose_history(rising, 10) if f.name == "overfitting")
    assert "validation loss rose" in finding.evidence and finding.problem


def test_underfitting_and_still_improving():
    n = 10
    low = curve([2.0 - 0.1 * i ** 0.5 for i in range(n)], [40 + i for i in range(n)], [39 + i for i in range(n)])
    found = {f.name: f for f in diagnose_history(low, 10)}
    assert "underfitting" in found and "still improving" in found
    assert not found["still improving"].problem  # a note, not a fault


def test_the_notes_say_when_the_schedule_annealed_the_rate():
    rows = healthy_run()[:10]
    for i, row in enumerate(rows):
        row["lr"], row["val_top1"] = 0.1 * (1 - i / 9), 60 + 3 * i
    finding = next(f for f in diagnose_history(rows, 10) if f.name == "still improving")
    assert "learning rate down" in finding.evidence


def test_real_runs():
    # ResNet-20, 182 epochs on the JPEG copy: 98.9% train against 87.5% validation.
    rows = read_metrics_csv(REPO / "benchmarks" / "cpu-runs" / "resnet20-cifar10" / "metrics.csv")
    assert names(rows, 10) == ["overfitting"]
    # ResNet-56 stopped at epoch 83, before its first decay: still climbing.
    rows = read_metrics_csv(REPO / "benchmarks" / "results" / "resnet56-cifar10-h100-partial.csv")
    assert names(rows, 10) == ["still improving"]


def test_cli_text_json_and_bad_input(tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(REPO / "benchmarks" / "cpu-runs" / "resnet20-cifar10", run)
    assert main(["diagnose", str(run)]) == 0
    assert "overfitting" in capsys.readouterr().out
    assert main(["diagnose", str(run), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["epochs"] == 182 and not report["healthy"] and report["findings"][0]["name"] == "overfitting"
    (tmp_path / "empty").mkdir()
    (tmp_path / "header").mkdir()
    (tmp_path / "header" / "metrics.csv").write_text("epoch,lr,train_loss\n")
    for bad, fragment in (("missing", "not a run folder"), ("empty", "no metrics.csv"), ("header", "no epochs")):
        assert main(["diagnose", str(tmp_path / bad)]) == 2
        err = capsys.readouterr().err
        assert fragment in err and "Traceback" not in err


def test_no_rows_is_an_error():
    with pytest.raises(CnnlabError, match="no epochs"):
        diagnose_history([])
