"""What a finished run leaves behind for a reader: ``metrics.csv``, ``curves.png`` and ``report.json``."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..figures import save_figure

# The per-epoch columns of metrics.csv, in order. Accuracies in percent, losses in nats (the val
# loss is plain cross-entropy, without label smoothing); lr is the learning rate at the end of
# the epoch; images_per_second is training throughput; seconds includes the evaluation.
METRIC_COLUMNS = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5",
                  "images_per_second", "seconds")


def library_versions(device_type: str = "cpu") -> dict:
    """Versions of what computed the run: torch, torchvision, cnnlab, numpy, python (and CUDA/cuDNN on a GPU)."""
    import numpy
    import torchvision

    from .. import __version__

    versions = {"torch": torch.__version__, "torchvision": torchvision.__version__, "cnnlab": __version__,
                "numpy": numpy.__version__, "python": platform.python_version()}
    if device_type == "cuda":
        versions["cuda"] = torch.version.cuda
        if torch.backends.cudnn.is_available():
            versions["cudnn"] = str(torch.backends.cudnn.version())
    return versions


def describe_device(device: torch.device) -> dict:
    """The device in words: type, name (GPU model or CPU), and threads or memory."""
    info = {"type": device.type, "name": str(device)}
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        info.update(name=props.name, memory_gb=round(props.total_memory / 2**30, 1),
                    capability=f"{props.major}.{props.minor}")
    elif device.type == "cpu":
        info.update(name=platform.processor() or platform.machine(), threads=torch.get_num_threads(),
                    cores=os.cpu_count())
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.startswith("model name"):
                        info["name"] = line.split(":", 1)[1].strip()
                        break
        except OSError:
            pass
    return info


def _clean(value):
    """JSON has no NaN/inf: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write_json(path: str | os.PathLike, data: dict) -> Path:
    """Write ``data`` as indented JSON, atomically."""
    path = Path(path)
    atomic_write_text(path, json.dumps(_clean(data), indent=2) + "\n")
    return path


def write_metrics_csv(path: str | os.PathLike, history: list[dict]) -> Path:
    """Write the per-epoch rows of ``history`` (columns :data:`METRIC_COLUMNS`), atomically."""
    path = Path(path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=METRIC_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: _format_cell(row.get(k)) for k in METRIC_COLUMNS})
    atomic_write_text(path, buffer.getvalue())
    return path


def _format_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def read_metrics_csv(path: str | os.PathLike) -> list[dict]:
    """The rows of a ``metrics.csv`` with numbers as numbers (empty cells as ``None``)."""
    rows = []
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows.append({k: (None if v == "" else int(v) if k == "epoch" else float(v)) for k, v in row.items()})
    return rows


def plot_curves(path: str | os.PathLike, history: list[dict], title: str = "") -> Path:
    """Learning curves as a PNG: train/val loss and train/val top-1 accuracy per epoch.

    Lecture idea (babysitting the learning process): the gap between the training and
    validation curves shows over- or under-fitting at a glance. Drawn with matplotlib's Agg
    canvas directly, so no GUI backend or pyplot global state is involved.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path = Path(path)
    epochs = [row["epoch"] for row in history]
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    panels = ((loss_axes, "loss", "loss (cross-entropy)"), (accuracy_axes, "top1", "top-1 accuracy (%)"))
    for axes, key, label in panels:
        for split, style in (("train", "-o"), ("val", "-s")):
            values = [row.get(f"{split}_{key}") for row in history]
            points = [(e, v) for e, v in zip(epochs, values) if v is not None]
            if points:
                axes.plot([p[0] for p in points], [p[1] for p in points], style, markersize=3, label=split)
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        axes.grid(True, alpha=0.3)
        axes.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    return save_figure(figure, path)
