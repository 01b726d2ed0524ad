"""Evaluate a trained run and predict with it: what ``cnnlab eval`` and ``cnnlab predict`` run.

A run directory written by :class:`cnnlab.train.Trainer` holds everything needed to rebuild
its model exactly: the config (model name, model arguments, image size, augmentation spec)
and the data statistics (classes, per-channel mean/std) in ``<tag>.state.pt``, and the
weights in ``<tag>.safetensors``. Lecture idea (data preprocessing, lecture 7): test images
are normalised with the *training* split's statistics stored with the run, never their own.

Test-time augmentation (``tta``) goes through :func:`cnnlab.eval.tta_predict`:

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
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_write_text
from ..errors import CnnlabError
from .tta import RESNET_TEST_SCALES, TTA_MODES, tta_predict

__all__ = ["DEFAULT_TOP_LOSSES", "EVAL_SPLITS", "LoadedRun", "MULTISCALE_MIN_SIZE", "evaluate_run", "load_run",
           "plot_confusion", "plot_top_losses", "predict_images", "write_eval"]

#: The splits a run can be evaluated on. ``train`` is the run's own training part (without
#: the images it held out for validation), unaugmented: the lectures' train-vs-test gap.
EVAL_SPLITS = ("test", "val", "train")

#: How many of the highest-loss images an evaluation lists (and ``cnnlab eval`` draws).
DEFAULT_TOP_LOSSES = 18

#: The smallest model input for which ``multiscale`` TTA makes sense (the smallest ResNet test scale).
MULTISCALE_MIN_SIZE = min(RESNET_TEST_SCALES)
#: Named data sets whose images have one fixed size (for runs trained without ``image_size``).
_NATIVE_SIZES = {"cifar10": 32, "cifar100": 32, "mnist": 28, "fashion-mnist": 28, "digits": 8}


@dataclass
class LoadedRun:
    """A trained model rebuilt from its run directory, in eval mode, with what evaluating it needs."""

    directory: Path
    tag: str
    model: nn.Module
    config: object  # cnnlab.train.TrainConfig
    classes: list[str]
    mean: list[float]
    std: list[float]
    in_chans: int
    state: dict
    device: torch.device

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def weights_path(self) -> Path:
        from ..train.checkpoint import WEIGHTS_SUFFIX

        return self.directory / f"{self.tag}{WEIGHTS_SUFFIX}"


def _resolve_checkpoint(path: str | Path, tag: str | None) -> tuple[Path, str]:
    from ..train.checkpoint import BEST, LAST, STATE_SUFFIX, WEIGHTS_SUFFIX, checkpoint_tags

    path = Path(path).expanduser()
    if not path.exists():
        raise CnnlabError(f"checkpoint {str(path)!r} does not exist; give a run directory (written by "
                          f"`cnnlab train`) or a {WEIGHTS_SUFFIX} file inside one")
    if path.is_file():
        if not path.name.endswith(WEIGHTS_SUFFIX):
            raise CnnlabError(f"{str(path)!r} is not a run directory or a {WEIGHTS_SUFFIX} weights file")
        file_tag = path.name[: -len(WEIGHTS_SUFFIX)]
        if tag is not None and tag != file_tag:
            raise CnnlabError(f"--tag {tag} contradicts the weights file {path.name}; drop one of them")
        if not (path.parent / f"{file_tag}{STATE_SUFFIX}").is_file():
            raise CnnlabError(f"{str(path)!r} has no {file_tag}{STATE_SUFFIX} beside it, so it is not part of a "
                              "cnnlab run (the state file holds the model config and data statistics)")
        return path.parent, file_tag
    tags = checkpoint_tags(path)
    if not tags:
        raise CnnlabError(f"{str(path)!r} is not a run directory: it holds no checkpoint "
                          f"(<tag>{WEIGHTS_SUFFIX} with <tag>{STATE_SUFFIX}); `cnnlab train --out DIR` writes one")
    if tag is None:
        tag = BEST if BEST in tags else LAST if LAST in tags else tags[0]
    elif tag not in tags:
        raise CnnlabError(f"run {str(path)!r} has no checkpoint {tag!r}; it has {', '.join(tags)}")
    return path, tag


def load_run(path: str | Path, tag: str | None = None, *, device: str = "auto") -> LoadedRun:
    """Rebuild the model of the run at ``path`` (a run directory, or a ``.safetensors`` file in one)
    from its saved config and load checkpoint ``tag`` (default ``best`` if present, else ``last``)
    strictly. The model is returned in eval mode on ``device``."""
    from ..train.checkpoint import load_checkpoint
    from ..train.config import TrainConfig
    from ..train.trainer import build_model, resolve_device

    directory, tag = _resolve_checkpoint(path, tag)
    weights, state = load_checkpoint(directory, tag)
    if "config" not in state or not isinstance(state.get("data"), dict) or "classes" not in state["data"]:
        raise CnnlabError(f"checkpoint {tag!r} in {str(directory)!r} was not written by cnnlab's Trainer "
                          "(no config or data statistics in its state file)")
    config = TrainConfig.from_dict(state["config"], where=f"the config saved in {directory}/{tag}")
    data = state["data"]
    classes = [str(c) for c in data["classes"]]
    mean = list(data.get("mean") or config.mean or [])
    std = list(data.get("std") or config.std or [])
    if not mean or not std:
        raise CnnlabError(f"the run in {str(directory)!r} stores no normalisation statistics")
    in_chans = int(data["in_chans"]) if "in_chans" in data else _infer_in_chans(weights, len(mean))
    model = build_model(config, len(classes), in_chans)
    from ..train.checkpoint import load_into

    load_into(model, weights, source=str(directory / f"{tag}.safetensors"))
    run_device = resolve_device(device)
    model.to(run_device).eval()
    return LoadedRun(directory, tag, model, config, classes, mean, std, in_chans, state, run_device)


def _infer_in_chans(weights: dict, stats_channels: int) -> int:
    """Input channels of a run saved before its state recorded them: one per statistic when
    there are several, else the first 4-d weight's second dimension (the first convolution,
    in the zoo's classic models), else the statistics'."""
    if stats_channels > 1:
        return stats_channels
    for tensor in weights.values():
        if tensor.dim() == 4:
            return int(tensor.shape[1])
    return stats_channels


# ---------------------------------------------------------------------- data


def _load_split(run: LoadedRun, data: str | None, split: str):
    from ..data import load_dataset

    config = run.config
    spec = data if data is not None else config.data
    try:
        dataset = load_dataset(spec, split, root=config.data_root, val_fraction=config.val_fraction,
                               seed=config.split_seed, image_size=config.image_size, in_memory=config.in_memory)
    except CnnlabError as error:
        if f"has no {split} split" in str(error) or "val_fraction is 0" in str(error):
            other = "val" if split == "test" else "test"
            raise CnnlabError(f"{error}; try --split {other}") from None
        raise
    if list(dataset.classes) != run.classes:
        raise CnnlabError(f"the classes of {spec!r} ({_short(dataset.classes)}) differ from the run's "
                          f"({_short(run.classes)}); evaluate on the data set the run was trained on")
    return dataset


def _short(names: Sequence[str], limit: int = 8) -> str:
    names = list(names)
    shown = ", ".join(map(str, names[:limit]))
    return f"{len(names)}: {shown}" + (", ..." if len(names) > limit else "")


def _batches(run: LoadedRun, dataset, batch_size: int, pipeline):
    """Normalised eval batches as the trainer makes them: (images, labels) on the run's device."""
    eval_transform = pipeline.eval_transform if pipeline.image_augmentations else None
    if hasattr(dataset, "images"):
        from ..data import InMemoryLoader

        loader = InMemoryLoader.from_dataset(dataset, batch_size, shuffle=False, device=run.device,
                                             mean=run.mean, std=run.std)
        for images, labels in loader:
            yield (eval_transform(images) if eval_transform is not None else images), labels
        return
    dataset.transform = pipeline.to_v2(train=False, mean=run.mean, std=run.std)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False,
                                         num_workers=run.config.num_workers)
    for images, labels in loader:
        yield images.to(run.device), labels.to(run.device)


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


# ---------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate_run(run: LoadedRun, *, data: str | None = None, split: str = "test", tta: str = "none",
                 batch_size: int | None = None, top_losses: int | None = None) -> dict:
    """Evaluate ``run`` on ``split`` of its own data set (or ``data``): loss, top-1, top-5 (for 10
    or more classes, as the trainer's report), per-class accuracy and the confusion matrix
    (rows: true class, columns: predicted class). ``split`` is one of :data:`EVAL_SPLITS`.
    See the module docstring for ``tta``.

    Also the error analysis fastai users know as ``most_confused`` and ``plot_top_losses``:
    ``most_confused`` lists the (true, predicted) class pairs most often mixed up, and
    ``top_losses`` the ``top_losses`` images (default :data:`DEFAULT_TOP_LOSSES`) with the
    highest loss (the confident mistakes, where mislabelled images show up first), drawn by
    :func:`plot_top_losses`."""
    from ..data import parse_augment
    from ..train.precision import autocast_context, resolve_precision
    from ..train.trainer import top_k_correct

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
    dataset = _load_split(run, data, split)
    if len(dataset) == 0:
        raise CnnlabError(f"the {split} split of {dataset.name} is empty")
    pipeline = parse_augment(config.augment, num_classes=run.num_classes)
    precision = resolve_precision(run.device, config.precision, False)
    pad, pad_mode = _train_crop(pipeline)

    model = run.model.eval()
    k = run.num_classes
    outputs, targets, losses, confidences, true_probabilities = [], [], [], [], []
    correct1 = correct5 = 0
    crop_size = None
    for images, labels in _batches(run, dataset, batch_size, pipeline):
        if tta == "none":
            with autocast_context(run.device, precision):
                logits = model(images)
            if isinstance(logits, (tuple, list)):
                logits = logits[0]
            scores = logits.float()
            loss = F.cross_entropy(scores, labels, reduction="none")
            probabilities = scores.softmax(dim=1)
        else:
            crop_size = min(images.shape[-2:])
            if tta == "10crop":
                views = _pad_normalised(images, pad, pad_mode, run)
                scores = tta_predict(model, views, "10crop", crop_size=crop_size, batch_size=batch_size)
            elif tta == "multiscale":
                if crop_size < MULTISCALE_MIN_SIZE:
                    raise CnnlabError(
                        f"multiscale TTA resizes to the ResNet test scales {list(RESNET_TEST_SCALES)} and needs a "
                        f"model input of at least {MULTISCALE_MIN_SIZE}x{MULTISCALE_MIN_SIZE}; this run evaluates "
                        f"at {images.shape[-2]}x{images.shape[-1]}: use --tta flip or 10crop")
                scales = [s for s in RESNET_TEST_SCALES if s >= crop_size]
                scores = tta_predict(model, images, "multiscale", scales=scales, crop_size=crop_size,
                                     batch_size=batch_size)
            else:
                scores = tta_predict(model, images, tta, batch_size=batch_size)
            probabilities = scores  # TTA averages probabilities
            loss = -probabilities.gather(1, labels[:, None])[:, 0].clamp_min(1e-12).log()
        correct1 += int(top_k_correct(scores, labels, 1))
        correct5 += int(top_k_correct(scores, labels, 5))
        prediction = scores.argmax(dim=1)  # as top_k_correct ranks, so matrix and top-1 agree on ties
        confidence = probabilities.gather(1, prediction[:, None])[:, 0]
        outputs.append(prediction.cpu())
        targets.append(labels.cpu())
        losses.append(loss.cpu().double())
        confidences.append(confidence.cpu())
        true_probabilities.append(probabilities.gather(1, labels[:, None])[:, 0].cpu())
    predicted = torch.cat(outputs)
    truth = torch.cat(targets)
    per_image_loss = torch.cat(losses)
    count = truth.numel()
    matrix = torch.bincount(truth * k + predicted, minlength=k * k).view(k, k)
    counts = matrix.sum(dim=1)
    per_class = {name: (100.0 * int(matrix[i, i]) / int(counts[i]) if int(counts[i]) else None)
                 for i, name in enumerate(run.classes)}
    return {
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
        "loss": float(per_image_loss.sum()) / count,
        "top1": 100.0 * correct1 / count,
        "top5": 100.0 * correct5 / count if k >= 10 else None,
        "num_classes": k,
        "classes": run.classes,
        "class_counts": counts.tolist(),
        "per_class_top1": per_class,
        "confusion_matrix": matrix.tolist(),
        "most_confused": _most_confused(matrix, run.classes),
        "top_losses": _top_losses(dataset, per_image_loss, truth, predicted, torch.cat(confidences),
                                  torch.cat(true_probabilities), run.classes, top_losses),
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


def plot_top_losses(run: LoadedRun, result: dict, path: str | Path) -> Path:
    """A PNG of ``result["top_losses"]``: each image with its true class, the prediction and
    the predicted probability (fastai's ``plot_top_losses``), read again from the split evaluated."""
    import math

    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..train.report import save_figure

    rows = result["top_losses"]
    if not rows:
        raise CnnlabError("the result lists no top losses to draw (top_losses was 0)")
    dataset = _load_split(run, result["data"], result["split"])
    columns = min(len(rows), 6)
    lines = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(lines, columns, figsize=(2.1 * columns, 2.5 * lines), squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, row in zip(axes.flat, rows):
            index = row["index"]
            try:
                image = dataset.images[index] if hasattr(dataset, "images") else dataset.load_image(index)
            except CnnlabError:  # a streamed file that has become unreadable since the evaluation
                ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
            else:
                pixels = image.permute(1, 2, 0).numpy()
                grey = pixels.shape[-1] == 1
                ax.imshow(pixels[..., 0] if grey else pixels, cmap="gray" if grey else None, interpolation="nearest")
            ax.set_title(f"{row['true']} → {row['predicted']}\np={row['probability']:.2f}, loss {row['loss']:.2f}",
                         fontsize=8)
        fig.suptitle(f"{result['model']} on {result['dataset']} {result['split']}: the {len(rows)} highest losses "
                     f"(true → predicted)", fontsize=10)
        fig.tight_layout()
        return save_figure(fig, path)
    finally:
        plt.close(fig)


def plot_confusion(matrix: Sequence[Sequence[int]], classes: Sequence[str], path: str | Path,
                   title: str = "") -> Path:
    """A confusion-matrix PNG: rows true class, columns predicted, colours row-normalised (the
    fraction of each true class), counts written in the cells when there are at most 20 classes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from ..train.report import save_figure

    counts = torch.as_tensor(matrix, dtype=torch.float64)
    k = counts.shape[0]
    rows = counts.sum(dim=1, keepdim=True).clamp_min(1)
    fractions = (counts / rows).numpy()
    side = min(max(4.0, 0.45 * k + 2.5), 30.0)
    fig, ax = plt.subplots(figsize=(side + 1.5, side))
    try:
        image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
        if k <= 60:
            ax.set_xticks(range(k), labels=list(classes), rotation=90 if k > 10 else 0)
            ax.set_yticks(range(k), labels=list(classes))
        if k <= 20:
            for i in range(k):
                for j in range(k):
                    value = int(counts[i, j])
                    if value:
                        ax.text(j, i, str(value), ha="center", va="center", fontsize=8,
                                color="white" if fractions[i, j] > 0.5 else "black")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        if title:
            ax.set_title(title)
        fig.tight_layout()
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        return save_figure(fig, path)
    finally:
        plt.close(fig)


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


# ---------------------------------------------------------------------- prediction


def _input_size(run: LoadedRun) -> tuple[int, int] | None:
    from ..data.decode import target_size

    size = target_size(run.config.image_size)
    if size is None and isinstance(run.config.data, str) and run.config.data in _NATIVE_SIZES:
        side = _NATIVE_SIZES[run.config.data]
        size = (side, side)
    return size


def _read_image(path: Path, in_chans: int) -> torch.Tensor:
    """``path`` as a C x H x W uint8 tensor with the run's channels (RGB or L), or a CnnlabError naming it."""
    import numpy as np
    from PIL import Image

    from ..data.decode import BadImage, decode_with_pil

    if not path.is_file():
        raise CnnlabError(f"image {str(path)!r} does not exist" if not path.exists() else
                          f"image {str(path)!r} is not a file")
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CnnlabError(f"cannot read image {str(path)!r}: {error}") from None
    if not data:
        raise CnnlabError(f"cannot read image {str(path)!r}: the file is empty")
    try:
        rgb = decode_with_pil(data)  # any PIL format; palette, CMYK, 16-bit and alpha images become RGB
    except BadImage as error:
        raise CnnlabError(f"cannot read image {str(path)!r}: {error}") from None
    if in_chans == 3:
        return rgb
    if in_chans == 1:
        grey = Image.fromarray(rgb.permute(1, 2, 0).numpy()).convert("L")  # ITU-R 601 luma, as PIL's L
        return torch.from_numpy(np.array(grey))[None]
    raise CnnlabError(f"the run's model takes {in_chans}-channel images; predict reads RGB or greyscale only")


@torch.no_grad()
def predict_images(run: LoadedRun, paths: Sequence[str | Path], top_k: int = 5,
                   image_size: int | str | None = None, batch_size: int | None = None) -> list[dict]:
    """Top-``top_k`` classes with softmax probabilities for each image file.

    Each file is decoded with PIL, converted to the run's channels, resized to the run's
    ``image_size`` (shorter side, then centre crop; ``image_size`` overrides, and is needed for
    a run on a path data set trained without one), passed through the test-time form of the
    run's augmentation, normalised with the run's statistics. Every file is read before any
    prediction, so a bad one fails fast with its name. They go through the model
    ``batch_size`` at a time (default: the run's evaluation batch size).
    """
    from ..data import InMemoryLoader, parse_augment
    from ..data.decode import resize_images, target_size

    if int(top_k) != top_k or top_k < 1:
        raise CnnlabError(f"--top-k must be a positive integer, got {top_k}")
    if not paths:
        raise CnnlabError("give at least one image file")
    batch_size = batch_size or run.config.evaluation_batch_size
    if batch_size < 1:
        raise CnnlabError(f"--batch-size must be a positive integer, got {batch_size}")
    size = target_size(image_size) if image_size is not None else _input_size(run)
    pipeline = parse_augment(run.config.augment, num_classes=run.num_classes)
    images = []
    for path in paths:
        image = _read_image(Path(path), run.in_chans)
        if size is None and not pipeline.image_augmentations:
            raise CnnlabError(f"the run was trained on {run.config.data!r} without image_size, so its input size is "
                              "unknown; give --image-size")
        if size is not None:
            image = resize_images(image, size, "crop")
        images.append(image)
    shapes = {tuple(i.shape) for i in images}
    if len(shapes) > 1:  # no image_size: the eval transform crops; batch one by one
        batches = [[i] for i in images]
    else:  # in batches, so that many files never need all their activations at once
        batches = [images[start:start + batch_size] for start in range(0, len(images), batch_size)]
    k = min(int(top_k), run.num_classes)
    results, index = [], 0
    for batch in batches:
        stacked = torch.stack(batch)
        loader = InMemoryLoader(stacked, torch.zeros(len(batch), dtype=torch.long), len(batch), shuffle=False,
                                device=run.device, mean=run.mean, std=run.std)
        (normalised, _), = list(loader)
        if pipeline.image_augmentations:
            normalised = pipeline.eval_transform(normalised)
        logits = run.model(normalised)
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
        probs = F.softmax(logits.float(), dim=1)
        top = probs.topk(k, dim=1)
        for row in range(len(batch)):
            predictions = [{"class": run.classes[int(c)], "index": int(c), "probability": float(p)}
                           for p, c in zip(top.values[row], top.indices[row])]
            results.append({"file": str(paths[index]), "predictions": predictions})
            index += 1
    return results
