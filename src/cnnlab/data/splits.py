"""Deterministic, seeded, class-stratified splits (a held-out validation set, digits' test set)."""
from __future__ import annotations

import math

import torch


def stratified_split(labels: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split indices into ``(kept, held_out)`` with about ``fraction`` of every class held out.

    The held-out total is ``ceil(fraction * N)`` (scikit-learn's convention for
    ``test_size``); each class gives ``floor(fraction * n_class)`` images and the remaining
    few go to the classes with the largest remainders, so class proportions match the
    whole set as closely as integers allow. Which images are held out depends only on
    ``seed`` and the labels; both index lists come back sorted.
    """
    labels = labels.to(torch.int64)
    total = len(labels)
    if fraction <= 0 or total == 0:
        return torch.arange(total), torch.empty(0, dtype=torch.int64)
    target = min(total - 1, max(1, math.ceil(fraction * total - 1e-9))) if total > 1 else 0
    classes = torch.unique(labels).tolist()
    members = {c: (labels == c).nonzero().flatten() for c in classes}
    quota = {c: math.floor(fraction * len(members[c]) + 1e-9) for c in classes}
    remainder = sorted(classes, key=lambda c: (-(fraction * len(members[c]) - quota[c]), c))
    for c in remainder[:max(0, target - sum(quota.values()))]:
        quota[c] += 1
    generator = torch.Generator().manual_seed(seed)
    held = []
    for c in classes:
        order = torch.randperm(len(members[c]), generator=generator)
        held.append(members[c][order[:min(quota[c], len(members[c]))]])
    held_out = torch.cat(held).sort().values if held else torch.empty(0, dtype=torch.int64)
    mask = torch.ones(total, dtype=torch.bool)
    mask[held_out] = False
    return mask.nonzero().flatten(), held_out
