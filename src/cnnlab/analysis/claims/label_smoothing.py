"""Claims about label smoothing (lesson chapter 03): the smoothed targets and the trainer's loss.

The numbers are read off ``torch.nn.functional.cross_entropy(label_smoothing=eps)``, the
loss the trainer uses: the targets it smooths toward (:func:`smoothed_targets`, from its
gradient) and its value with hard labels and with class-probability labels
(:func:`label_smoothing_example`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .core import LESSON, claim
from .measure import cached_run

_SMOOTHING_EPS, _SMOOTHING_CLASSES = 0.1, 10


@dataclass(frozen=True)
class LabelSmoothingExample:
    """Smoothed targets for class 0 of K and the trainer's loss with them.

    ``true_class`` and ``other_class`` are the targets ``F.cross_entropy(label_smoothing=eps)``
    pulls the softmax toward for the label 0; ``builtin_loss`` is that loss with hard
    labels, ``soft_target_loss`` the same loss given the labels as class probabilities
    (one-hot, as mixup and cutmix give them), on the same random logits.
    """

    eps: float
    num_classes: int
    true_class: float
    other_class: float
    builtin_loss: float
    soft_target_loss: float


def smoothed_targets(label: int, num_classes: int, eps: float) -> torch.Tensor:
    """The target distribution of ``F.cross_entropy(label_smoothing=eps)`` for ``label``, read off its gradient.

    The gradient of the cross-entropy against targets y with respect to the logits is
    softmax(logits) - y, so y is the softmax minus the gradient. Computed in float64, so
    reading it off adds no rounding of its own.
    """
    logits = torch.zeros(1, num_classes, dtype=torch.float64, requires_grad=True)
    with torch.enable_grad():
        loss = F.cross_entropy(logits, torch.tensor([label]), label_smoothing=eps)
        (gradient,) = torch.autograd.grad(loss, logits)
    return torch.softmax(logits.detach(), dim=1) - gradient


@cached_run
def label_smoothing_example(eps: float = _SMOOTHING_EPS, num_classes: int = _SMOOTHING_CLASSES,
                            batch: int = 32, seed: int = 0) -> LabelSmoothingExample:
    """Label smoothing (Szegedy et al. 2016) as the trainer's loss, ``F.cross_entropy(label_smoothing=eps)``, does it.

    Lecture idea: the true class keeps 1 - eps of the probability and every class gets an
    equal eps / K, so the net is never pushed toward infinite logits.
    """
    targets = smoothed_targets(0, num_classes, eps)
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, num_classes, (batch,), generator=generator)
    builtin = F.cross_entropy(logits, labels, label_smoothing=eps)
    # Class-probability targets are smoothed the same way: (1 - eps) * t + eps / K.
    soft = F.cross_entropy(logits, F.one_hot(labels, num_classes).double(), label_smoothing=eps)
    return LabelSmoothingExample(eps=eps, num_classes=num_classes, true_class=float(targets[0, 0]),
                                 other_class=float(targets[0, 1]), builtin_loss=float(builtin),
                                 soft_target_loss=float(soft))


_SMOOTHING_FORMULA = "Label Smoothing ysmooth = (1 − ε) · yhard + ε / K"
_SMOOTHING_METHOD = "F.cross_entropy(zeros(1, 10), tensor([0]), label_smoothing=0.1): softmax - gradient"


def _register_smoothed_targets() -> None:
    # The lesson's formula at y_hard = 1 (the true class) and at y_hard = 0 (every other class).
    rows = [("true-class", "the true class's target is (1 - ε) + ε/K = 0.91", 1, "0.91", 0, "true_class"),
            ("other-class", "every other class's target is ε/K = 0.01", 0, "0.01", 1, "other_class")]
    for name, says, hard, written, column, attribute in rows:
        claim(id=f"label-smoothing-{name}", text=f"With ε = 0.1 and K = 10 {says}", source=LESSON,
              quote=_SMOOTHING_FORMULA,
              lecture_value=(1 - _SMOOTHING_EPS) * hard + _SMOOTHING_EPS / _SMOOTHING_CLASSES,
              lecture_text=f"(1 − 0.1) · {hard} + 0.1 / 10 = {written}", unit="target probability",
              tolerance=1e-6, note="float64 arithmetic", method=f"{_SMOOTHING_METHOD}[0, {column}]")(
            lambda attribute=attribute: getattr(label_smoothing_example(), attribute))


_register_smoothed_targets()


@claim(id="label-smoothing-soft-labels", text="The lesson's soft labels for ε = 0.1, K = 10: [0.9, 0.01, ..., 0.01]",
       source=LESSON, quote="use soft labels [0.9, 0.01, 0.01, ..., 0.01]", lecture_value=(0.9, 0.01),
       lecture_text="0.9, 0.01", unit="true class, other classes", tolerance=0.005,
       note="written to two decimals (the 0.01 entries)", method=_SMOOTHING_METHOD + "[0, 0] and [0, 1]",
       explanation="the true class keeps 1 − ε = 0.9 and also gets its own ε/K = 0.01, as the lesson's formula "
                   "says: 0.91; [0.9, 0.01 × 9] sums to 0.99, not 1")
def _label_smoothing_soft_labels():
    example = label_smoothing_example()
    return (example.true_class, example.other_class)


@claim(id="label-smoothing-loss", text="The trainer's label-smoothed loss is the cross-entropy against the lesson's "
       "y_smooth", source=LESSON, quote="K = number of classes, ε = smoothing parameter (e.g. 0.1)",
       lecture_value=1.0, lecture_text="1 (the same loss)", unit="built-in / soft-target cross-entropy",
       tolerance=1e-6, note="float64 logits and targets",
       method="32 random float64 logits over 10 classes, seed 0: F.cross_entropy(logits, labels, label_smoothing=0.1) "
              "(the trainer's loss for hard labels) / F.cross_entropy(logits, one_hot(labels), label_smoothing=0.1) "
              "(for soft targets)")
def _label_smoothing_loss():
    example = label_smoothing_example()
    return example.builtin_loss / example.soft_target_loss
