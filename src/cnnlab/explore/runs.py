"""The runs panel: the run folders under one root, their curves, reports, confusion matrices
and ``cnnlab diagnose`` findings (lecture 7's babysitting of the learning process).

A run is named by its path relative to the root (``resnet-cifar/resnet20``); a name that
leads outside the root, through ``..``, an absolute path or a symbolic link, is refused
before anything is read.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from ..errors import CnnlabError
from ..runs.checkpoint import checkpoint_tags
from ..train.diagnose import diagnose_history
from ..train.report import read_metrics_csv

# How deep below the root run folders are looked for (runs/<group>/<run> is two levels).
MAX_DEPTH = 3
# Keys of an eval_<split>.json the page draws; the per-image lists stay on disk.
_EVAL_KEYS = ("split", "tag", "tta", "images", "loss", "top1", "top5", "classes", "class_counts", "per_class_top1",
              "confusion_matrix", "most_confused", "dataset")


class OutsideRoot(CnnlabError):
    """A run name that points outside the runs root."""


class NoSuchRun(CnnlabError):
    """A run name under the root with no run folder there."""


def finite(value):
    """``value`` with NaN and infinities as ``None`` (JSON has no such numbers), recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def _is_run(path: Path) -> bool:
    return (path / "metrics.csv").is_file() or (path / "report.json").is_file()


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # half-written or not ours: the run is shown without it
    return data if isinstance(data, dict) else None


class RunsFolder:
    """The run folders below ``root`` (``cnnlab explore --runs``)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    def resolve(self, name: str) -> Path:
        """The folder of run ``name``; :class:`OutsideRoot` or :class:`NoSuchRun` otherwise."""
        relative = Path(name)
        if not name or "\x00" in name or relative.is_absolute() or ".." in relative.parts:
            raise OutsideRoot(f"run {name!r} is not a path inside the runs folder")
        path = (self.root / relative).resolve()
        if path != self.root and self.root not in path.parents:  # a symbolic link out of the root
            raise OutsideRoot(f"run {name!r} leads outside the runs folder")
        if not path.is_dir() or not _is_run(path):
            raise NoSuchRun(f"no run {name!r} under {self.root.name}/ (a run folder has metrics.csv or report.json)")
        return path

    def names(self) -> list[str]:
        """The runs below the root, as paths relative to it, sorted."""
        if not self.root.is_dir():
            return []
        found = []
        for directory, subdirectories, _ in os.walk(self.root):
            path = Path(directory)
            depth = len(path.relative_to(self.root).parts)
            subdirectories[:] = sorted(d for d in subdirectories if not d.startswith("."))
            if depth >= MAX_DEPTH:
                subdirectories[:] = []
            if depth and _is_run(path):
                resolved = path.resolve()
                if resolved == self.root or self.root in resolved.parents:
                    found.append(path.relative_to(self.root).as_posix())
        return sorted(found)

    def listing(self) -> list[dict]:
        """One line per run: model, data, epochs, test and best validation accuracy."""
        return [self._overview(name, self.root / name) for name in self.names()]

    def _overview(self, name: str, path: Path) -> dict:
        report = _read_json(path / "report.json") or {}
        epochs = None
        if (path / "metrics.csv").is_file():
            try:
                with open(path / "metrics.csv", encoding="utf-8") as handle:
                    epochs = max(sum(1 for _ in handle) - 1, 0)
            except OSError:
                epochs = None
        return finite({
            "name": name,
            "model": report.get("model") or report.get("config", {}).get("model"),
            "dataset": report.get("dataset"),
            "epochs": epochs,
            "finished": bool(report),
            "test_top1": report.get("test_top1"),
            "best_val_top1": report.get("best_val_top1"),
            "checkpoints": checkpoint_tags(path),
        })

    def detail(self, name: str) -> dict:
        """Everything the page draws of one run: curves, report, evaluations, findings."""
        path = self.resolve(name)
        rows, notes = [], []
        if (path / "metrics.csv").is_file():
            try:
                rows = read_metrics_csv(path / "metrics.csv")
            except (OSError, ValueError, KeyError) as error:
                notes.append(f"metrics.csv cannot be read: {error}")
        report = _read_json(path / "report.json")
        evaluations = []
        for file in sorted(path.glob("eval_*.json")):
            data = _read_json(file)
            if data and isinstance(data.get("confusion_matrix"), list):
                evaluations.append({key: data.get(key) for key in _EVAL_KEYS})
        num_classes = (report or {}).get("data", {}).get("num_classes")
        findings = None
        if rows:
            try:
                findings = [f.as_dict() for f in diagnose_history(rows, num_classes)]
            except CnnlabError as error:
                notes.append(f"diagnose: {error}")
        return finite({
            "name": name,
            "metrics": rows,
            "report": report,
            "evaluations": evaluations,
            "findings": findings,
            "healthy": None if findings is None else not any(f["problem"] for f in findings),
            "checkpoints": checkpoint_tags(path),
            "notes": notes,
        })
