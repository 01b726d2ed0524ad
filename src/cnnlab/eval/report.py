"""``cnnlab eval``: a saved run evaluated on a split, with its error analysis, written to disk.

The numbers come from the one evaluation loop (:func:`cnnlab.eval.loop.evaluate`) over the
loader the trainer uses for evaluation (:func:`cnnlab.data.build_loader`), so they agree
with the run's own report. Test-time augmentation (``tta``, see :mod:`cnnlab.eval.tta`):

- ``flip``: any image size.
- ``10crop``: the ten crops (corners, centre, mirrored) have the size the model was evaluated
  at. Since a run's test images already have that size, they are first padded by the
  run's training crop padding (``crop(pad=p)`` in its augment spec, in the same zero or
  reflect mode; 4 pixels, zero, when it had none), so the crops are the shifted views the
  model saw in training (the 32x32 CIFAR protocol: pad 4, crop 32).
- ``multiscale``: ResNet's protocol, the shorter side resized to each of the scales
  {224, 256, 384, 480, 640} at least as large as the model's input, 10 crops each. It needs
  ImageNet-sized inputs: runs evaluated below 224x224 are refused with a clear message.

With TTA the loss is the negative log of the averaged probability of the true class.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from ..atomic import atomic_write_text
from ..data import build_loader, parse_augment
from ..device import resolve_precision
from ..errors import CnnlabError
from .loop import evaluate
from .plots import plot_confusion, plot_top_losses
from .run import LoadedRun, load_split
from .tta import RESNET_TEST_SCALES, TTA_MODES

__all__ = ["DEFAULT_TOP_LOSSES", "EVAL_SPLITS", "MULTISCALE_MIN_SIZE", "evaluate_run", "write_eval"]

#: The splits a run can be evaluated on. ``train`` is the run's own training part (without
#: the images it held out for validation), unaugmented: the lectures' train-vs-test gap.
EVAL_SPLITS = ("test", "val", "train")

#: How many of the highest-loss images an evaluation lists (and ``cnnlab eval`` draws).
DEFAULT_TOP_LOSSES = 18

#: The smallest model input for which ``multiscale`` TTA makes sense (the smallest ResNet test scale).
MULTISCALE_MIN_SIZE = min(RESNET_TEST_SCALES)


def _train_crop(pipeline) -> tuple[int, str]:
    """The padding (pixels, mode) of the run's training pad-crop, or (4, "zero") without one."""
    for aug in pipeline.image_augmentations:
        if getattr(aug, "name", "") == "crop" and getattr(aug, "pad", 0):
            return int(aug.pad), str(aug.mode)
    return 4, "zero"


def _pad_normalised(images: torch.Tensor, pad: int, mode: str, run: LoadedRun) -> torch.Tensor:
    """Pad a normalised batch; zero padding uses the value a 0 pixel has after normalisation,
    as the training crop pads the raw image with zeros."""
    if mode == "reflect":
        return F.pad(images, (pad, pad, pad, pad), mode="reflect")
    n, c, h, w = images.shape
    mean = torch.tensor(run.mean, dtype=images.dtype, device=images.device)
    std = torch.tensor(run.std, dtype=images.dtype, device=images.device)
    fill = (-mean / std).view(1, -1, 1, 1).expand(n, c, 1, 1) if mean.numel() > 1 else (-mean / std).view(1, 1, 1, 1)
    out = fill.expand(n, c, h + 2 * pad, w + 2 * pad).clone()
    out[:, :, pad: pad + h, pad: pad + w] = images
    return out


def evaluate_run(run: LoadedRun, *, data: str | None = None, split: str = "test", tta: str = "none",
                 batch_size: int | None = None, top_losses: int | None = None, probabilities: bool = False) -> dict:
    """Evaluate ``run`` on ``split`` of its own data set (or ``data``): loss, top-1, top-5 (for 10
    or more classes, as the trainer's report), per-class accuracy and the confusion matrix
    (rows: true class, columns: predicted class). ``split`` is one of :data:`EVAL_SPLITS`.
    See the module docstring for ``tta``.

    Also the error analysis fastai users know as ``most_confused`` and ``plot_top_losses``:
    ``most_confused`` lists the (true, predicted) class pairs most often mixed up, and
    ``top_losses`` the ``top_losses`` images (default :data:`DEFAULT_TOP_LOSSES`) with the
    highest loss (the confident mistakes, where mislabelled images show up first), drawn by
    :func:`plot_top_losses`. ``probabilities=True`` adds the CPU tensors ``probabilities`` (N x K)
    and ``labels`` (N), in the split's order, for an ensemble to average (not JSON)."""
    if tta not in TTA_MODES:
        raise CnnlabError(f"unknown TTA mode {tta!r}; choose one of {', '.join(TTA_MODES)}")
    if split not in EVAL_SPLITS:
        raise CnnlabError(f"--split must be one of {', '.join(EVAL_SPLITS)}, got {split!r}")
    config = run.config
    batch_size = batch_size or config.evaluation_batch_size
    if batch_size <= 0:
        raise CnnlabError(f"batch size must be positive, got {batch_size}")
    top_losses = DEFAULT_TOP_LOSSES if top_losses is None else top_losses
    if top_losses < 0:
        raise CnnlabError(f"top_losses must be 0 or more, got {top_losses}")
    dataset = load_split(run, data, split)
    if len(dataset) == 0:
        raise CnnlabError(f"the {split} split of {dataset.name} is empty")
    pipeline = parse_augment(config.augment, num_classes=run.num_classes)
    precision = resolve_precision(run.device, config.precision, False)
    pad, pad_mode = _train_crop(pipeline)
    loader = build_loader(dataset, batch_size, train=False, augment=pipeline, mean=run.mean, std=run.std,
                          device=run.device, num_workers=config.num_workers)
    crop_size = None

    def views(images: torch.Tensor) -> torch.Tensor:
        nonlocal crop_size
        crop_size = min(images.shape[-2:])
        if tta == "10crop":
            return _pad_normalised(images, pad, pad_mode, run)
        if crop_size < MULTISCALE_MIN_SIZE:
            raise CnnlabError(
                f"multiscale TTA resizes to the ResNet test scales {list(RESNET_TEST_SCALES)} and needs a "
                f"model input of at least {MULTISCALE_MIN_SIZE}x{MULTISCALE_MIN_SIZE}; this run evaluates "
                f"at {images.shape[-2]}x{images.shape[-1]}: use --tta flip or 10crop")
        return images

    result = evaluate(run.model, loader.epoch_batches(0), precision=precision, tta=tta, num_classes=run.num_classes,
                      per_image=True, views=views, probabilities=probabilities)
    per_image = result["per_image"]
    truth, predicted, per_image_loss = per_image["label"], per_image["predicted"], per_image["loss"]
    k = run.num_classes
    count = truth.numel()
    matrix = torch.bincount(truth * k + predicted, minlength=k * k).view(k, k)
    counts = matrix.sum(dim=1)
    per_class = {name: (100.0 * int(matrix[i, i]) / int(counts[i]) if int(counts[i]) else None)
                 for i, name in enumerate(run.classes)}
    extra = {"probabilities": per_image["probabilities"], "labels": truth} if probabilities else {}
    return extra | {
        "checkpoint": str(run.weights_path),
        "run": str(run.directory),
        "tag": run.tag,
        "epoch": run.state.get("epoch"),
        "model": config.model,
        "dataset": dataset.name,
        "data_source": getattr(dataset, "source", None),
        "split": split,
        "tta": tta,
        "tta_crop": ({"crop_size": crop_size, "pad": pad, "pad_mode": pad_mode} if tta == "10crop" else
                     {"crop_size": crop_size} if tta == "multiscale" else None),
        "images": count,
        "loss": float(per_image_loss.sum()) / count,  # in float64, image by image
        "top1": result["top1"],
        "top5": result["top5"],
        "num_classes": k,
        "classes": run.classes,
        "class_counts": counts.tolist(),
        "per_class_top1": per_class,
        "confusion_matrix": matrix.tolist(),
        "most_confused": _most_confused(matrix, run.classes),
        "top_losses": _top_losses(dataset, per_image_loss, truth, predicted, per_image["confidence"],
                                  per_image["true_probability"], run.classes, top_losses),
        "data": data if data is not None else config.data,
        "mean": run.mean,
        "std": run.std,
    }


def _most_confused(matrix: torch.Tensor, classes: Sequence[str], limit: int = 10) -> list[dict]:
    """The off-diagonal cells of the confusion matrix with the most images, largest first."""
    off_diagonal = matrix.clone()
    off_diagonal.fill_diagonal_(0)
    counts, cells = off_diagonal.flatten().sort(descending=True, stable=True)
    k = matrix.shape[0]
    return [{"true": classes[int(cell) // k], "predicted": classes[int(cell) % k], "count": int(n)}
            for n, cell in zip(counts[:limit], cells[:limit]) if n > 0]


def _top_losses(dataset, loss, truth, predicted, confidence, true_probability, classes, limit: int) -> list[dict]:
    """The ``limit`` images with the highest loss, highest first, with where to find them."""
    order = loss.argsort(descending=True, stable=True)[:limit]
    rows = []
    for index in order.tolist():
        row = {"index": index, "true": classes[int(truth[index])], "predicted": classes[int(predicted[index])],
               "probability": float(confidence[index]), "true_probability": float(true_probability[index]),
               "loss": float(loss[index])}
        if hasattr(dataset, "files"):  # streamed image folders know their files
            row["file"] = dataset.reader.describe(dataset.files[index])
        rows.append(row)
    return rows


def write_eval(result: dict, out_dir: str | Path, run: LoadedRun | None = None) -> dict:
    """Write ``eval_<split>.json`` and ``confusion_<split>.png`` (``_<tta>`` appended with TTA) into
    ``out_dir``, and with ``run`` also ``top_losses_<split>.png`` when the result lists top losses;
    return the paths (also recorded under ``result["files"]``)."""
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnlabError(f"cannot create --out {str(out_dir)!r}: {error}") from None
    if not out_dir.is_dir():
        raise CnnlabError(f"--out {str(out_dir)!r} is not a directory")
    suffix = result["split"] + (f"_{result['tta']}" if result["tta"] != "none" else "")
    png = out_dir / f"confusion_{suffix}.png"
    report = out_dir / f"eval_{suffix}.json"
    title = f"{result['model']} on {result['dataset']} {result['split']} ({result['tag']}): top-1 {result['top1']:.2f}%"
    plot_confusion(result["confusion_matrix"], result["classes"], png, title)
    result["files"] = {"report": str(report), "confusion": str(png)}
    if run is not None and result.get("top_losses"):
        result["files"]["top_losses"] = str(plot_top_losses(run, result, out_dir / f"top_losses_{suffix}.png"))
    atomic_write_text(report, json.dumps(result, indent=2) + "\n")
    return result["files"]
