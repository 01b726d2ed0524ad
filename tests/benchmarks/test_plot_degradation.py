"""``benchmarks/plot_degradation.py`` draws the ResNet paper's Fig. 6 from whichever runs a folder holds."""
import importlib.util
from pathlib import Path

import pytest
from PIL import Image

from cnnlab.train.report import write_metrics_csv

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "plot_degradation.py"


@pytest.fixture(scope="module")
def plot_degradation():
    spec = importlib.util.spec_from_file_location("plot_degradation", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fake_run(folder: Path, recipe: str, final_train_top1: float, data: str | None = None) -> None:
    rows = [{"epoch": epoch, "lr": 0.1, "train_loss": 1.0, "train_top1": final_train_top1 - 3 + epoch,
             "val_loss": 1.0, "val_top1": 80.0 + epoch, "images_per_second": 100.0, "seconds": 1.0}
            for epoch in (1, 2, 3)]
    write_metrics_csv(folder / recipe / "metrics.csv", rows)
    if data is not None:
        (folder / recipe / "config.yaml").write_text(f"recipe: {recipe}\ndata: {data}\n")


def test_draws_only_the_panels_with_runs(plot_degradation, tmp_path, capsys):
    (tmp_path / "resnet20-cifar10").mkdir()
    (tmp_path / "resnet56-cifar10").mkdir()
    _fake_run(tmp_path, "resnet20-cifar10", 90.0)
    _fake_run(tmp_path, "resnet56-cifar10", 95.0)
    assert plot_degradation.main([str(tmp_path)]) == 0
    with Image.open(tmp_path / "degradation.png") as figure:
        width, height = figure.size
    assert width < 1.6 * height  # one panel (the ResNet one); two panels are over twice as wide as high
    captured = capsys.readouterr()
    assert "ResNet-20    3 epochs: final training error 10.00%, validation error 17.00%" in captured.out
    assert "ResNet-56    3 epochs: final training error  5.00%" in captured.out
    assert "not plotted (no metrics.csv): plain20-cifar10, plain56-cifar10" in captured.err


def test_a_folder_without_runs_is_an_error(plot_degradation, tmp_path, capsys):
    assert plot_degradation.main([str(tmp_path)]) == 1
    assert "no run folder with a metrics.csv" in capsys.readouterr().err
    assert not (tmp_path / "degradation.png").exists()


def test_the_figure_names_the_data_and_refuses_to_mix_data_sets(plot_degradation, tmp_path, capsys):
    for recipe in ("plain20-cifar10", "resnet20-cifar10"):
        (tmp_path / recipe).mkdir()
    _fake_run(tmp_path, "plain20-cifar10", 90.0, data="cifar10")
    _fake_run(tmp_path, "resnet20-cifar10", 92.0, data="../data/cifar-10-python.tar.gz")
    assert plot_degradation.main([str(tmp_path)]) == 0
    assert "data: CIFAR-10 (lossless)" in capsys.readouterr().out
    _fake_run(tmp_path, "resnet20-cifar10", 92.0, data="../data/cifar10-jpg.tar.gz")
    (tmp_path / "degradation.png").unlink()
    assert plot_degradation.main([str(tmp_path)]) == 1
    assert "different data (CIFAR-10 (JPEG q75), CIFAR-10 (lossless))" in capsys.readouterr().err
    assert not (tmp_path / "degradation.png").exists()
