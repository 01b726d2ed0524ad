"""The one evaluation loop: loss, top-1 and top-5 of a model over batches, per image when asked.

The trainer's validation and test evaluations and ``cnnlab eval`` all run :func:`evaluate`,
so a run's reported test accuracy and a later ``cnnlab eval`` of the same weights agree.
Lecture idea (batch normalisation at test time): the model is put in eval mode, so BN uses
its running statistics and dropout is off, and every image's prediction depends on that
image alone, not on the batch it comes in.
"""
from __future__ import annotations

import contextlib
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..device import Precision, autocast_context
from ..errors import CnnlabError
from .tta import RESNET_TEST_SCALES, TTA_MODES, translate_views, tta_predict

__all__ = ["evaluate", "predict_logits", "top_k_correct"]


def top_k_correct(logits: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """How many rows of ``logits`` have their label among the ``k`` highest scores (a 0-d tensor).

    Equal scores are ranked by class index, lowest first, as ``argmax`` picks them, so that
    top-1 agrees with a confusion matrix built from ``argmax`` whatever the batch. Ties are
    common under bf16 autocast (8 bits of mantissa), and ``topk`` breaks them in an order
    that depends on the kernel, which depends on the batch size. A NaN score ranks first,
    as ``argmax`` takes NaN for the largest value, so a NaN true score always counts as
    wrong, and a NaN among the others pushes the true class down one place.
    """
    true_score = logits.gather(1, labels[:, None])
    lower_index = torch.arange(logits.shape[1], device=logits.device)[None, :] < labels[:, None]
    ranked_ahead = (logits > true_score) | ((logits == true_score) & lower_index) | logits.isnan()
    return ((ranked_ahead.sum(dim=1) < k) & ~true_score[:, 0].isnan()).sum()


def _main_logits(outputs) -> torch.Tensor:
    """The main logits of a model's output, as float32 (GoogLeNet's training mode returns a tuple)."""
    return (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).float()


def _log_probabilities(model: nn.Module, images: torch.Tensor, tta: str, precision: Precision | None,
                       views) -> torch.Tensor:
    """Log class probabilities of one batch under test-time augmentation ``tta`` (see :mod:`.tta`).

    ``flip`` and ``translate`` run one forward pass per view rather than one of a stacked
    batch, which keeps the batch's channels-last layout. ``10crop`` and ``multiscale`` take crops of the size the
    model was evaluated at (the batch's) from ``views(images)``. With several views the
    probabilities are averaged, and the loss is that of the averaged probabilities."""
    with autocast_context(images.device, precision) if precision is not None else contextlib.nullcontext():
        if tta == "none":
            return F.log_softmax(_main_logits(model(images)), dim=1)
        if tta == "flip":
            probabilities = torch.stack([F.softmax(_main_logits(model(view)), dim=1)
                                         for view in (images, images.flip(-1))]).mean(dim=0)
        elif tta == "translate":
            views, weights = translate_views(images)
            probabilities = sum(weight * F.softmax(_main_logits(model(view)), dim=1)
                                for view, weight in zip(views, weights))
        else:
            crop_size = min(images.shape[-2:])
            scales = [scale for scale in RESNET_TEST_SCALES if scale >= crop_size]
            source = views(images) if views is not None else images
            probabilities = tta_predict(model, source, tta, scales=scales, crop_size=crop_size,
                                        batch_size=images.shape[0])
    return probabilities.clamp_min(torch.finfo(probabilities.dtype).tiny).log()


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable, *, precision: Precision | None = None, tta: str = "none",
             num_classes: int | None = None, per_image: bool = False, views=None,
             probabilities: bool = False) -> dict:
    """Loss (mean cross-entropy), top-1 and top-5 accuracy (percent) of ``model`` over ``batches``.

    ``batches`` yields ``(images, labels)`` on the model's device. Top-5 is ``None`` for fewer
    than 10 classes. ``tta`` is one of :data:`~cnnlab.eval.TTA_MODES`; ``views``, when given,
    turns each batch into the images the ``10crop``/``multiscale`` crops are taken from
    (``cnnlab eval`` pads them by the training crop's padding). ``per_image=True`` also returns, under ``"per_image"``, CPU tensors of
    each image's ``label``, ``predicted`` class (``argmax``, ranked as :func:`top_k_correct`),
    ``loss``, ``confidence`` (the predicted class's probability) and ``true_probability``;
    ``probabilities=True`` adds ``probabilities``, the N x K class probabilities (what an
    ensemble averages). The model's mode is restored afterwards.
    """
    if tta not in TTA_MODES:
        raise CnnlabError(f"unknown TTA mode {tta!r}; choose one of {', '.join(TTA_MODES)}")
    was_training = model.training
    model.eval()
    loss_sum = correct1 = correct5 = None
    count = 0
    kept: dict[str, list] = {"label": [], "predicted": [], "loss": [], "confidence": [], "true_probability": []}
    if probabilities:
        per_image, kept["probabilities"] = True, []
    try:
        for images, labels in batches:
            log_probs = _log_probabilities(model, images, tta, precision, views)
            loss = F.nll_loss(log_probs, labels, reduction="sum")
            c1, c5 = top_k_correct(log_probs, labels, 1), top_k_correct(log_probs, labels, 5)
            loss_sum = loss if loss_sum is None else loss_sum + loss
            correct1 = c1 if correct1 is None else correct1 + c1
            correct5 = c5 if correct5 is None else correct5 + c5
            count += labels.shape[0]
            if num_classes is None:
                num_classes = log_probs.shape[1]
            if per_image:
                predicted = log_probs.argmax(dim=1)
                kept["label"].append(labels.cpu())
                kept["predicted"].append(predicted.cpu())
                kept["loss"].append(F.nll_loss(log_probs, labels, reduction="none").double().cpu())
                kept["confidence"].append(log_probs.gather(1, predicted[:, None])[:, 0].exp().cpu())
                kept["true_probability"].append(log_probs.gather(1, labels[:, None])[:, 0].exp().cpu())
                if probabilities:
                    kept["probabilities"].append(log_probs.exp().cpu())
    finally:
        model.train(was_training)
    if count == 0:
        result = {"loss": None, "top1": None, "top5": None, "images": 0}
    else:
        result = {"loss": float(loss_sum) / count, "top1": 100.0 * float(correct1) / count,
                  "top5": 100.0 * float(correct5) / count if num_classes >= 10 else None, "images": count}
    if per_image:
        result["per_image"] = {key: torch.cat(values) if values else torch.empty(0) for key, values in kept.items()}
    return result


@torch.no_grad()
def predict_logits(model: nn.Module, batches: Iterable) -> torch.Tensor:
    """The eval-mode logits of ``model`` for every image of ``batches``, concatenated (float32)."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([_main_logits(model(images)) for images, _ in batches])
    finally:
        model.train(was_training)
