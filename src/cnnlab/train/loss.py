"""The training loss: cross-entropy, with label smoothing, soft targets and auxiliary heads."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def classification_loss(outputs, targets: torch.Tensor, *, label_smoothing: float = 0.0,
                        aux_weight: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the main logits, plus ``aux_weight`` times that of each auxiliary head
    (GoogLeNet's, 0.3 in the paper); returns ``(loss, main logits)``.

    ``targets`` are class indices, or class probabilities (N x K) when mixup, cutmix or
    ``label_smoothing(...)`` mixed the labels: ``F.cross_entropy`` takes both, and applies
    ``label_smoothing`` (Szegedy et al. 2016) to either. Computed in float32 under autocast.
    """
    logits, *auxiliary = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    loss = F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)
    for extra in auxiliary:
        if extra is not None:
            loss = loss + aux_weight * F.cross_entropy(extra.float(), targets, label_smoothing=label_smoothing)
    return loss, logits
