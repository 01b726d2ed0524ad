"""The zoo as data: one row per registered model, for tables and accuracy-vs-compute plots."""
from __future__ import annotations

from ..registry import list_models, model_info
from .summary import summarize


def zoo_table(pattern: str | None = None) -> list[dict]:
    """Params, MACs (at each model's default input), depth, year and reference accuracy per model.

    The lecture's comparison of architectures (accuracy against operations and size),
    computed from the zoo itself rather than copied.
    """
    rows = []
    for name in list_models(pattern):
        info = model_info(name)
        summary = summarize(name)
        rows.append({
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
        })
    return rows
