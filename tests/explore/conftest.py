"""Fixtures of the explorer's tests: tiny run folders of their own, and the digits as the only images.

The runs are written with the library's own writers (metrics.csv, report.json, an
evaluation with its confusion matrix, one real checkpoint of a ResNet-20 whose BN layers
have running statistics), so the explorer reads what ``cnnlab train`` and ``cnnlab eval``
write. CIFAR-10 is hidden (an empty data root), so the tests use local files only and
take the same time on every machine.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

# The models the test explorer shows: a few of each kind, so tracing them stays quick.
MODELS = "lenet5,alexnet,resnet20,resnet56,plain20,vgg11"
CLASSES = [str(i) for i in range(10)]


def _history(epochs: int, train_top1, val_top1, train_loss, val_loss) -> list[dict]:
    return [{"epoch": e + 1, "lr": 0.1 * (1 - e / epochs), "train_loss": train_loss(e), "train_top1": train_top1(e),
             "val_loss": val_loss(e), "val_top1": val_top1(e), "val_top5": 99.0, "images_per_second": 1000.0,
             "seconds": 1.0} for e in range(epochs)]


def _write_run(path: Path, history: list[dict], *, test_top1: float | None = None, confusion=None) -> None:
    from cnnlab.train.report import write_json, write_metrics_csv

    path.mkdir(parents=True, exist_ok=True)
    write_metrics_csv(path / "metrics.csv", history)
    write_json(path / "report.json", {"model": "resnet20", "dataset": "digits", "epochs": len(history),
                                      "test_top1": test_top1, "best_val_top1": max(r["val_top1"] for r in history),
                                      "wall_seconds": 60.0, "images_per_second": 1000.0,
                                      "data": {"num_classes": 10, "classes": CLASSES}})
    if confusion is not None:
        write_json(path / "eval_test.json", {"split": "test", "tag": "last", "tta": "none", "images": 100,
                                            "loss": 0.3, "top1": test_top1, "top5": 100.0, "classes": CLASSES,
                                            "confusion_matrix": confusion, "dataset": "digits",
                                            "top_losses": [{"index": 1}]})


def _save_trained_checkpoint(path: Path) -> None:
    """A ResNet-20 checkpoint as the Trainer saves it, its BN running statistics moved off 0 and 1."""
    from cnnlab.registry import build_model
    from cnnlab.runs import TrainConfig, save_checkpoint

    config = TrainConfig(model="resnet20", data="digits", mean=[0.5], std=[0.25])
    torch.manual_seed(1)
    model = build_model(config, num_classes=10, in_chans=1)
    model.train()
    with torch.no_grad():
        for _ in range(3):  # a few training-mode passes: running averages of real batch statistics
            model(torch.randn(8, 1, 8, 8) * 2 + 1)
    save_checkpoint(path, "last", model, {"config": config.to_dict(), "epoch": 1,
                                          "data": {"mean": [0.5], "std": [0.25], "num_classes": 10, "in_chans": 1,
                                                   "image_size": [8, 8], "classes": CLASSES}})


@pytest.fixture(scope="session")
def explore_home(tmp_path_factory) -> dict:
    """``{"runs": root, "outside": a run folder beside the root, "data": an empty data root, "cache": ...}``."""
    base = tmp_path_factory.mktemp("explore")
    runs = base / "runs"
    eye = [[10 if i == j else (1 if j == (i + 1) % 10 else 0) for j in range(10)] for i in range(10)]
    healthy = _history(8, lambda e: 60 + 4 * e, lambda e: 58 + 4 * e - 0.1 * e * e,
                       lambda e: 1.5 * math.exp(-0.3 * e), lambda e: 1.6 * math.exp(-0.28 * e))
    _write_run(runs / "healthy", healthy, test_top1=83.0, confusion=eye)
    overfit = _history(10, lambda e: min(60 + 5 * e, 99.5), lambda e: 60 + 0.5 * e,
                       lambda e: 1.5 * math.exp(-0.4 * e), lambda e: 1.0 + 0.08 * e)
    _write_run(runs / "group" / "overfit", overfit, test_top1=64.0)
    exploding = _history(5, lambda e: 20.0, lambda e: 10.0, lambda e: [2.3, 2.0, float("nan"), float("nan"),
                                                                        float("nan")][e], lambda e: 2.3)
    _write_run(runs / "exploding", exploding)
    _write_run(runs / "trained", healthy, test_top1=83.0)
    _save_trained_checkpoint(runs / "trained")
    (runs / "not-a-run").mkdir()
    outside = base / "outside"
    _write_run(outside, healthy, test_top1=50.0)
    (runs / "link").symlink_to(outside, target_is_directory=True)
    data = base / "data"
    data.mkdir()
    return {"runs": runs, "outside": outside, "data": data, "cache": base / "cache"}


@pytest.fixture
def hidden_cifar(explore_home, monkeypatch):
    """The digits as the only image source: empty data roots, the tests' own cache."""
    import cnnlab.explore.images as images

    monkeypatch.setenv("CNNLAB_DATA", str(explore_home["data"]))
    monkeypatch.setenv("CNNLAB_CACHE", str(explore_home["cache"]))
    monkeypatch.setattr(images, "SHARED_DATA", explore_home["data"] / "absent")


@pytest.fixture
def client(explore_home, hidden_cifar):
    from fastapi.testclient import TestClient

    from cnnlab.explore.app import create_app

    app = create_app(runs=explore_home["runs"], models=MODELS)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
