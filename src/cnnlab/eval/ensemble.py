"""``cnnlab eval RUN_A RUN_B ...``: a model ensemble, the runs' class probabilities averaged.

Lecture 7 (model ensembles): train several independent models and average their
predictions at test time; the ensemble is typically about 2% better than its members.
Each member is evaluated exactly as ``cnnlab eval`` evaluates one run (its own weights,
normalisation and test-time augmentation); the ensemble's probability for each image is
the mean of the members', its loss the negative log of the mean probability of the true
class. The members must give the same classes in the same order and see the same images
(the same data set and split).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from ..atomic import atomic_write_text
from ..errors import CnnlabError
from .loop import top_k_correct
from .report import evaluate_run
from .run import LoadedRun

__all__ = ["evaluate_ensemble", "write_ensemble"]


def evaluate_ensemble(runs: list[LoadedRun], *, data: str | None = None, split: str = "test", tta: str = "none",
                      batch_size: int | None = None) -> dict:
    """Each member's and the ensemble's loss, top-1 and top-5 on ``split``."""
    if len(runs) < 2:
        raise CnnlabError("an ensemble needs at least two runs")
    first = runs[0]
    members, probabilities, labels = [], [], None
    for run in runs:
        if run.classes != first.classes:
            raise CnnlabError(f"{run.directory} has the classes {run.classes[:5]}..., {first.directory} "
                              f"{first.classes[:5]}...: an ensemble's members must share their classes")
        result = evaluate_run(run, data=data, split=split, tta=tta, batch_size=batch_size, top_losses=0,
                              probabilities=True)
        if labels is None:
            labels = result["labels"]
        elif not torch.equal(result["labels"], labels):
            raise CnnlabError(f"{run.directory} was evaluated on other images than {first.directory} (another "
                              "data set, or another validation split): pass --data, or runs of the same data")
        probabilities.append(result["probabilities"])
        members.append({key: result[key] for key in ("run", "tag", "checkpoint", "model", "top1", "top5", "loss")})
    mean = torch.stack(probabilities).double().mean(dim=0)
    log_mean = mean.clamp_min(torch.finfo(mean.dtype).tiny).log()
    count = labels.numel()
    k = mean.shape[1]
    ensemble = {
        "top1": 100.0 * float(top_k_correct(log_mean, labels, 1)) / count,
        "top5": 100.0 * float(top_k_correct(log_mean, labels, 5)) / count if k >= 10 else None,
        "loss": float(-log_mean.gather(1, labels[:, None]).sum()) / count,
    }
    member_top1 = [m["top1"] for m in members]
    return {
        "split": split, "tta": tta, "images": count, "dataset": data or first.config.data,
        "members": members, "ensemble": ensemble,
        "mean_member_top1": sum(member_top1) / len(member_top1), "best_member_top1": max(member_top1),
        "gain_over_mean_member": ensemble["top1"] - sum(member_top1) / len(member_top1),
        "gain_over_best_member": ensemble["top1"] - max(member_top1),
    }


def write_ensemble(result: dict, out_dir: str | Path) -> Path:
    """Write ``ensemble_<split>[_<tta>].json`` into ``out_dir``; return its path."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnlabError(f"cannot create --out {str(out_dir)!r}: {error}") from None
    suffix = result["split"] + (f"_{result['tta']}" if result["tta"] != "none" else "")
    path = out_dir / f"ensemble_{suffix}.json"
    atomic_write_text(path, json.dumps(result, indent=2) + "\n")
    return path
