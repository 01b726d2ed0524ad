"""The figures of an evaluation: the confusion matrix, and the images with the highest loss."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import torch

from ..errors import CnnlabError
from ..figures import save_figure
from .run import LoadedRun, load_split

__all__ = ["plot_confusion", "plot_top_losses"]


def plot_top_losses(run: LoadedRun, result: dict, path: str | Path) -> Path:
    """A PNG of ``result["top_losses"]``: each image with its true class, the prediction and
    the predicted probability (fastai's ``plot_top_losses``), read again from the split evaluated."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = result["top_losses"]
    if not rows:
        raise CnnlabError("the result lists no top losses to draw (top_losses was 0)")
    dataset = load_split(run, result["data"], result["split"])
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
