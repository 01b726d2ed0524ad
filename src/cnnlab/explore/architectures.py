"""The architecture panel: the zoo table, the Pareto frontiers of accuracy against compute,
and a block diagram read from each model's real structure.

The lecture's comparison dashboard ("click an architecture to see its stats, block
diagram, and how it compares to others"), computed from the registry and
``cnnlab summary``'s trace rather than drawn by hand.
"""
from __future__ import annotations

import fnmatch
import threading
from functools import lru_cache

import torch
from torch import nn

from ..analysis.summary import summarize
from ..analysis.tracing import MetaInitShortcut
from ..analysis.zoo import zoo_table
from ..errors import CnnlabError
from ..registry import create_model, list_models, model_info

# Containers whose children are the units of a stage (ResNet's layer1, VGG's features).
_CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
# Layers that change the map size between units: a flat stack is split into stages at them.
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


class Zoo:
    """The models one explorer shows (all, or those matching ``patterns``), with cached figures."""

    def __init__(self, patterns: str | None = None):
        self.patterns = [p.strip() for p in (patterns or "").split(",") if p.strip()]
        self.names = [n for n in list_models() if not self.patterns
                      or any(fnmatch.fnmatch(n, p) for p in self.patterns)]
        if not self.names:
            raise CnnlabError(f"no model matches --models {patterns!r}; run `cnnlab models` to list them")
        self._rows: list[dict] | None = None
        self.skipped: dict[str, str] = {}  # models that could not be traced, and why
        self._lock = threading.Lock()

    def rows(self) -> list[dict]:
        """The zoo table of :func:`cnnlab.analysis.zoo.zoo_table` with each model's Pareto membership."""
        with self._lock:
            if self._rows is None:
                try:  # one pass over the (disk-cached) zoo table per pattern, not one per model
                    tables = [zoo_table(p) for p in self.patterns] if self.patterns else [zoo_table()]
                    by_name = {row["name"]: row for table in tables for row in table}
                except CnnlabError:
                    by_name = self._rows_one_by_one()
                self._rows = mark_pareto([by_name[name] for name in self.names if name in by_name])
            return self._rows

    def _rows_one_by_one(self) -> dict[str, dict]:
        # A model that cannot be traced (a user's model under construction) is left out with its
        # reason, rather than taking the whole panel down.
        rows = {}
        for name in self.names:
            try:
                rows[name] = zoo_table(name)[0]
            except CnnlabError as error:
                self.skipped[name] = str(error)
        return rows

    def check(self, name: str) -> str:
        model_info(name)  # an unknown name: CnnlabError with the closest matches
        if name not in self.names:
            raise CnnlabError(f"model {name!r} is not shown by this explorer (started with --models)")
        return name

    def detail(self, name: str) -> dict:
        """Metadata, totals and the block diagram of one model."""
        self.check(name)
        row = next((r for r in self.rows() if r["name"] == name), None)
        if row is None:
            raise CnnlabError(f"model {name!r} cannot be traced: {self.skipped.get(name, 'unknown reason')}")
        return {**row, "info": model_info(name).as_dict(), "diagram": block_diagram(name)}


def mark_pareto(rows: list[dict]) -> list[dict]:
    """Each row with ``pareto_macs`` / ``pareto_params``: whether no other model of its data set
    is at least as accurate (reference top-1) for less compute (or fewer parameters)."""
    out = [dict(row, pareto_macs=False, pareto_params=False) for row in rows]
    for cost in ("macs", "params"):
        by_dataset: dict[str, list[dict]] = {}
        for row in out:
            if row["reference_top1"] is not None:
                by_dataset.setdefault(row["dataset"], []).append(row)
        for group in by_dataset.values():
            best = float("-inf")
            for row in sorted(group, key=lambda r: (r[cost], -r["reference_top1"])):
                if row["reference_top1"] > best:
                    row[f"pareto_{cost}"] = True
                    best = row["reference_top1"]
    return out


@lru_cache(maxsize=128)
def cached_summary(name: str, input_size: tuple[int, int, int] | None = None) -> dict:
    """``cnnlab summary --json`` of a registered model, computed once per input size."""
    return summarize(name, input_size).to_dict()


def _meta_model(name: str) -> nn.Module:
    # Shapes only, as the summary builds it: no weights are drawn or stored.
    with torch.device("meta"), MetaInitShortcut():
        return create_model(name)


def _unit(name: str, module: nn.Module, layers: list[dict]) -> dict | None:
    rows = [r for r in layers if r["name"] == name or r["name"].startswith(name + ".")]
    if not rows:
        return None  # does not run at inference (an auxiliary head)
    shape = rows[-1]["output_shape"]
    return {
        "name": name,
        "type": type(module).__name__,
        "channels": shape[1] if len(shape) >= 2 else None,
        "size": shape[2:],
        "params": sum(r["params"] for r in rows),
        "macs": sum(r["macs"] for r in rows),
        "skip": not any(r["params"] for r in rows) and all(r["inplace"] for r in rows),
    }


def _compress(units: list[dict]) -> list[dict]:
    """Consecutive units of one type and width as one entry with a count (``BasicBlock x 3``)."""
    out: list[dict] = []
    for unit in units:
        if unit["skip"]:
            continue  # in-place activations and eval-mode dropout: no memory, no weights
        last = out[-1] if out else None
        if last and last["type"] == unit["type"] and last["channels"] == unit["channels"]:
            last["count"] += 1
            last["size"] = unit["size"]
            last["params"] += unit["params"]
            last["macs"] += unit["macs"]
            last["names"].append(unit["name"])
        else:
            out.append({**{k: v for k, v in unit.items() if k not in ("skip", "name")}, "count": 1,
                        "names": [unit["name"]]})
    return out


def block_diagram(name: str) -> list[dict]:
    """The model's stages in forward order, read from its modules and the summary's trace.

    A top-level container (ResNet's ``layer1``, a ``features`` stack) is a stage whose
    units are its children, split at pooling layers when they are plain layers (VGG's
    blocks); consecutive top-level layers (a stem, a head) form one stage. Each unit has
    its type, output channels and map size, parameters and MACs; repeats are counted.
    """
    layers = cached_summary(name)["layers"]
    model = _meta_model(name)
    stages: list[dict] = []
    loose: list[dict] = []

    def close_loose() -> None:
        if loose:
            stages.append(_stage(", ".join(u["name"] for u in loose if not u["skip"]) or loose[0]["name"], loose))
            loose.clear()

    for child_name, child in model.named_children():
        if isinstance(child, _CONTAINERS) and len(child):
            close_loose()
            units, current = [], []
            for sub_name, sub in child.named_children():
                unit = _unit(f"{child_name}.{sub_name}", sub, layers)
                if unit is None:
                    continue
                current.append(unit)
                if isinstance(sub, _POOLS) and not any(isinstance(m, _CONTAINERS) for m in child.children()):
                    units.append(current)
                    current = []
            if current:
                units.append(current)
            for index, part in enumerate(units):
                label = child_name if len(units) == 1 else f"{child_name} ({index + 1})"
                stages.append(_stage(label, part))
        else:
            unit = _unit(child_name, child, layers)
            if unit is not None:
                loose.append(unit)
    close_loose()
    return [s for s in stages if s["units"]]


def _stage(label: str, units: list[dict]) -> dict:
    kept = [u for u in units if not u["skip"]] or units
    return {
        "name": label,
        "units": _compress(units),
        "channels": kept[-1]["channels"],
        "size": kept[-1]["size"],
        "params": sum(u["params"] for u in units),
        "macs": sum(u["macs"] for u in units),
    }
