"""The zoo as data: one row per registered model, for tables and accuracy-vs-compute plots.

Counting the multiply-adds means tracing a forward pass of every model (on the ``meta``
device, shapes only), which for the whole zoo takes most of 20 seconds on a small CPU. The
rows of the models that ship with cnnlab are therefore kept in a JSON file under
``$CNNLAB_CACHE`` (default ``~/.cache/cnnlab``), keyed by a hash of cnnlab's own source
and the torch version: any change to the code computes them afresh. Models registered
by user code are always computed.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..paths import default_cache_dir
from ..registry import list_models, model_info
from .summary import summarize

_PACKAGE_ROOT = Path(__file__).resolve().parents[1]


def zoo_table(pattern: str | None = None, *, cache: bool = True) -> list[dict]:
    """Params, MACs (at each model's default input), depth, year and reference accuracy per model.

    The lecture's comparison of architectures (accuracy against operations and size),
    computed from the zoo itself rather than copied. ``cache=False`` recomputes every row.
    """
    path = _cache_path() if cache else None
    cached = _read_cache(path)
    rows, new = [], {}
    for name in list_models(pattern):
        shipped = _is_shipped(name)
        row = cached.get(name) if shipped else None
        if row is None:
            row = _row(name)
            if shipped:
                new[name] = row
        rows.append(row)
    if path is not None and new:
        _write_cache(path, {**cached, **new})
    return rows


def _row(name: str) -> dict:
    info = model_info(name)
    summary = summarize(name)
    return {
        "name": name,
        "family": info.family,
        "year": info.paper.year,
        "paper": info.paper.title,
        "params": summary.total_params,
        "macs": summary.total_macs,
        "input_size": list(info.input_size),
        "weight_layers": info.weight_layers,
        "dataset": info.dataset,
        "reference_top1": info.reference_top1,
        "reference_top5": info.reference_top5,
        "reference_source": info.reference_note,
        "torchvision_name": info.torchvision_name,
    }


def _is_shipped(name: str) -> bool:
    """Whether the model comes with cnnlab (its builder lives in the package), not user code."""
    module = getattr(model_info(name).builder, "__module__", "") or ""
    return module == "cnnlab" or module.startswith("cnnlab.")


def _cache_path() -> Path | None:
    digest = hashlib.sha256(torch.__version__.encode())
    for source in sorted(_PACKAGE_ROOT.rglob("*.py")):
        digest.update(source.relative_to(_PACKAGE_ROOT).as_posix().encode())
        digest.update(source.read_bytes())
    return default_cache_dir() / "zoo" / f"zoo-{digest.hexdigest()[:16]}.json"


def _read_cache(path: Path | None) -> dict[str, dict]:
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # none yet, unreadable or half-written: compute afresh
    return data if isinstance(data, dict) and all(isinstance(row, dict) for row in data.values()) else {}


def _write_cache(path: Path, rows: dict[str, dict]) -> None:
    # Atomic (temporary file + rename); a cache that cannot be written (a read-only home)
    # only costs the time of computing the rows next time.
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(rows))
    except OSError:
        pass
