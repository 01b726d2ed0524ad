"""``cnnlab diagnose RUN``: read a run's curves the way lecture 7's babysitting advice does.

From ``metrics.csv`` (one row per epoch: training loss and accuracy, validation loss and
accuracy, learning rate) each check looks for one pattern the lecture names and says what
to do about it:

- **exploding**: the training loss becomes NaN or infinite, or climbs well above where it
  started: the learning rate is too high;
- **oscillating**: the epoch's training loss goes up again and again under a fixed
  learning rate: too high a learning rate (or too small a batch);
- **too slow**: the training loss falls along a straight line and has not even halved: the
  learning rate is too low;
- **flat start**: the loss stays at chance level (ln C for C classes) for the first epochs,
  then falls: a bad initialisation;
- **overfitting**: the gap between training and validation accuracy grows large, or the
  validation loss rises from its minimum while the training loss still falls: regularise
  more, augment more, get more data;
- **underfitting**: training accuracy itself stays low, with validation right beside it:
  a bigger model, a higher learning rate, less regularisation, longer training;
- **still improving**: validation accuracy was still climbing in the last epochs: train
  longer.

Each finding carries its evidence in numbers. The thresholds are rules of thumb for
epoch-level curves, written next to each check; a run with none of these patterns is
reported healthy.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import CnnlabError

__all__ = ["Finding", "diagnose_history", "diagnose_run"]


@dataclass(frozen=True)
class Finding:
    """One pattern found in the curves: ``name``, its ``evidence`` in numbers, the lecture's ``advice``."""

    name: str
    problem: bool  # False for a note that is no fault (still improving)
    evidence: str
    advice: str

    def as_dict(self) -> dict:
        return asdict(self)


def _values(rows: list[dict], key: str) -> list[float] | None:
    values = [row.get(key) for row in rows]
    if any(v is None for v in values):
        return None
    return [float(v) for v in values]


def _linear_fit_r2(ys: list[float]) -> float:
    """R^2 of the least-squares line through ``ys`` against 0, 1, 2, ..."""
    n = len(ys)
    mean_x, mean_y = (n - 1) / 2, sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in range(n))
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in enumerate(ys))
    syy = sum((y - mean_y) ** 2 for y in ys)
    if syy == 0:
        return 1.0
    return sxy * sxy / (sxx * syy)


def _exploding(loss: list[float]) -> Finding | None:
    bad = [i for i, v in enumerate(loss) if not math.isfinite(v)]
    if bad:
        return Finding("exploding", True, f"the training loss is {loss[bad[0]]} at epoch {bad[0] + 1}",
                       "the learning rate is too high: lower it (by 3-10x), add a warm-up or gradient clipping")
    # Rule of thumb: an epoch's mean loss 50% above the first epoch's is a climb, not noise.
    peak = max(range(1, len(loss)), key=lambda i: loss[i], default=None)
    if peak is not None and loss[peak] > 1.5 * loss[0]:
        return Finding("exploding", True, f"the training loss rose from {loss[0]:.3g} (epoch 1) to {loss[peak]:.3g} "
                       f"(epoch {peak + 1})", "the learning rate is too high: lower it (by 3-10x), add a warm-up")
    return None


def _oscillating(loss: list[float], lr: list[float] | None) -> Finding | None:
    if len(loss) < 5:
        return None
    # Rises of more than 5% of the loss, in at least a third of the epoch-to-epoch changes
    # (under a schedule the epoch-mean training loss barely ever rises: only too high a
    # rate, or too small a batch, keeps throwing it back up).
    rises = [i for i in range(1, len(loss)) if loss[i] > 1.05 * loss[i - 1]]
    if len(rises) >= max(2, (len(loss) - 1) / 3):
        where = ", ".join(str(i + 1) for i in rises[:6]) + (", ..." if len(rises) > 6 else "")
        rate = f" at learning rate {lr[rises[0]]:.3g}" if lr else ""
        return Finding("oscillating", True, f"the training loss rose in {len(rises)} of {len(loss) - 1} epochs "
                       f"(epochs {where}){rate}",
                       "the learning rate is too high (or the batch too small): lower it, or decay it sooner")
    return None


def _too_slow(loss: list[float]) -> Finding | None:
    if len(loss) < 4 or loss[-1] >= loss[0]:
        return None
    # A straight fall (R^2 > 0.97) that has not even halved the loss: the optimiser crawls.
    r2 = _linear_fit_r2(loss)
    if r2 > 0.97 and loss[-1] > 0.5 * loss[0]:
        return Finding("too slow", True, f"the training loss fell along a straight line (R^2 {r2:.3f}) only from "
                       f"{loss[0]:.3g} to {loss[-1]:.3g} in {len(loss)} epochs",
                       "the learning rate is too low: raise it (by 3-10x) until the loss falls fast, then levels off")
    return None


def _flat_start(loss: list[float], num_classes: int | None) -> Finding | None:
    if len(loss) < 4:
        return None
    # The first two epochs within 2% of each other (and of ln C when C is known), then a fall
    # of more than 20%: the network needed epochs to get going, the mark of a poor initialisation.
    chance = math.log(num_classes) if num_classes else None
    stuck = abs(loss[1] - loss[0]) <= 0.02 * loss[0]
    if chance is not None:
        stuck = stuck and abs(loss[0] - chance) <= 0.05 * chance
    if stuck and min(loss[2:]) < 0.8 * loss[0]:
        first_fall = next(i for i in range(2, len(loss)) if loss[i] < 0.95 * loss[0])
        level = f" (chance: ln {num_classes} = {chance:.3g})" if chance is not None else ""
        return Finding("flat start", True, f"the training loss stayed at {loss[0]:.3g}{level} for "
                       f"{first_fall} epochs before it fell",
                       "a bad initialisation: use He (Kaiming) init for ReLU nets, BatchNorm, or check the "
                       "scale of the inputs")
    return None


def _overfitting(rows: list[dict]) -> Finding | None:
    train_top1, val_top1 = _values(rows, "train_top1"), _values(rows, "val_top1")
    train_loss, val_loss = _values(rows, "train_loss"), _values(rows, "val_loss")
    if train_top1 is None or val_top1 is None or len(rows) < 3:
        return None
    gaps = [t - v for t, v in zip(train_top1, val_top1)]
    early = min(gaps[: max(1, len(gaps) // 3)])
    # A final gap of more than 10 points that grew by more than 5 since the first third.
    if gaps[-1] > 10 and gaps[-1] - early > 5:
        return Finding("overfitting", True, f"training accuracy {train_top1[-1]:.1f}% against validation "
                       f"{val_top1[-1]:.1f}%: a gap of {gaps[-1]:.1f} points, up from {early:.1f}",
                       "regularise more (weight decay, dropout, augmentation), get more data, or stop earlier")
    if val_loss is not None and train_loss is not None:
        best = min(range(len(val_loss)), key=lambda i: val_loss[i])
        # The validation loss 10% above its minimum, some epochs on, while training loss kept falling.
        if best < len(val_loss) - 2 and val_loss[-1] > 1.10 * val_loss[best] and train_loss[-1] < train_loss[best]:
            return Finding("overfitting", True, f"the validation loss rose from {val_loss[best]:.3g} (epoch "
                           f"{best + 1}) to {val_loss[-1]:.3g} while the training loss fell from "
                           f"{train_loss[best]:.3g} to {train_loss[-1]:.3g}",
                           "regularise more (weight decay, dropout, augmentation), get more data, or stop earlier")
    return None


def _underfitting(rows: list[dict]) -> Finding | None:
    train_top1, val_top1 = _values(rows, "train_top1"), _values(rows, "val_top1")
    if train_top1 is None:
        return None
    near = val_top1 is None or abs(train_top1[-1] - val_top1[-1]) < 5
    # Training accuracy below 80% (on the augmented training batches) with validation close
    # by: the model does not fit even the data it trains on.
    if train_top1[-1] < 80 and near:
        beside = f", validation {val_top1[-1]:.1f}%" if val_top1 is not None else ""
        return Finding("underfitting", True, f"training accuracy only {train_top1[-1]:.1f}%{beside} after "
                       f"{len(rows)} epochs", "a bigger model, a higher learning rate, less regularisation, or "
                       "longer training")
    return None


def _still_improving(rows: list[dict], lr: list[float] | None) -> Finding | None:
    key = "val_top1" if _values(rows, "val_top1") is not None else "train_top1"
    accuracy = _values(rows, key)
    if accuracy is None or len(accuracy) < 4:
        return None
    tail = max(2, len(accuracy) // 4)
    gain = accuracy[-1] - accuracy[-1 - tail]
    # More than half a point gained over the last quarter of training, and the best at the end.
    if gain > 0.5 and accuracy[-1] >= max(accuracy) - 0.1:
        split = "validation" if key == "val_top1" else "training (the run holds out no validation split)"
        annealed = ""
        if lr and max(lr) > 0 and lr[-1] < 0.05 * max(lr):
            annealed = (f"; the schedule brought the learning rate down to {lr[-1]:.2g} by then, which gives part "
                        "of such a late gain")
        return Finding("still improving", False, f"{split} accuracy rose {gain:.1f} points over the last {tail} "
                       f"epochs, to {accuracy[-1]:.1f}%{annealed}",
                       "train longer (with the schedule stretched to match)")
    return None


def diagnose_history(rows: list[dict], num_classes: int | None = None) -> list[Finding]:
    """The findings for a run's per-epoch rows (``metrics.csv`` as read by ``read_metrics_csv``)."""
    if not rows:
        raise CnnlabError("the run has no epochs in its metrics.csv yet: nothing to diagnose")
    loss = _values(rows, "train_loss")
    if loss is None:
        raise CnnlabError("metrics.csv has no train_loss column")
    lr = _values(rows, "lr")
    exploding = _exploding(loss)
    if exploding is not None:
        return [exploding]  # the rest of the curve says nothing more once the loss has blown up
    findings = [_flat_start(loss, num_classes), _oscillating(loss, lr), _too_slow(loss), _overfitting(rows),
                _underfitting(rows), _still_improving(rows, lr)]
    return [f for f in findings if f is not None]


def diagnose_run(run_dir: str | Path) -> tuple[list[dict], list[Finding]]:
    """Read ``RUN/metrics.csv`` (and the class count from its report or config) and diagnose it."""
    from .report import read_metrics_csv

    run = Path(run_dir)
    metrics = run / "metrics.csv"
    if not run.is_dir():
        raise CnnlabError(f"{run} is not a run folder")
    if not metrics.is_file():
        raise CnnlabError(f"{run} has no metrics.csv: not a cnnlab run, or one that has not finished an epoch")
    try:
        rows = read_metrics_csv(metrics)
    except (OSError, ValueError, KeyError) as error:
        raise CnnlabError(f"cannot read {metrics}: {error}") from None
    num_classes = None
    report = run / "report.json"
    if report.is_file():
        import json

        try:
            num_classes = json.loads(report.read_text(encoding="utf-8")).get("data", {}).get("num_classes")
        except (OSError, ValueError):
            num_classes = None
    return rows, diagnose_history(rows, num_classes)
