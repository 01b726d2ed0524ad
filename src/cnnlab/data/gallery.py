"""The lectures' augmentation gallery: real images, and each augmentation applied to them."""
from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw

from ..errors import CnnlabError
from .augment import parse_augment

# One row per augmentation of the lectures, as a spec for parse_augment. The size-
# dependent ones are filled in from the image size.
DEFAULT_ROWS = (
    "flip(p=1)",
    "crop(pad={pad})",
    "rrc({size})",
    "jitter(0.4, 0.4, 0.4)",
    "cutout({cutout})",
    "mixup(1.0)",
    "cutmix(1.0)",
)


def gallery_rows(image_size: int, rows: Sequence[str] = DEFAULT_ROWS) -> list[str]:
    """The row specs for images of ``image_size`` pixels (CIFAR: pad 4, cutout 16)."""
    values = {"pad": max(image_size // 8, 1), "size": image_size, "cutout": max(image_size // 2, 1)}
    return [row.format(**values) for row in rows]


def augmentation_gallery(images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                         rows: Sequence[str] | None = None, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """``[(spec, batch)]``: the original uint8 batch, then the batch after each augmentation.

    Mixup and cutmix rows show the mixed images; their soft labels are what the trainer
    would see. Every row is drawn with the same seed, so the gallery is reproducible.
    """
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise CnnlabError("the gallery needs a uint8 batch N x C x H x W")
    rows = gallery_rows(images.shape[-1]) if rows is None else list(rows)
    result = [("original", images)]
    for spec in rows:
        pipeline = parse_augment(spec, num_classes=num_classes)
        generator = torch.Generator().manual_seed(seed)
        if pipeline.changes_targets:
            mixed, _ = pipeline(images.float() / 255, labels, generator=generator, num_classes=num_classes)
            out = (mixed * 255).round().clamp(0, 255).to(torch.uint8)
        else:
            out = pipeline(images, generator=generator)
        result.append((spec, out))
    return result


def draw_gallery(rows: list[tuple[str, torch.Tensor]], path: str | os.PathLike, scale: int | None = None,
                 title: str | None = None) -> str:
    """Draw ``rows`` of images as one PNG grid with each row's spec written to its left."""
    count = rows[0][1].shape[0]
    height, width = rows[0][1].shape[-2:]
    scale = scale or max(1, 96 // max(height, width))  # small images are enlarged, pixel for pixel
    cell_h, cell_w, gap, label_w = height * scale, width * scale, 4, 140
    top = 28 if title else 4
    canvas = Image.new("RGB", (label_w + count * (cell_w + gap), top + len(rows) * (cell_h + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    if title:
        draw.text((6, 8), title, fill="black")
    for r, (name, batch) in enumerate(rows):
        y = top + r * (cell_h + gap)
        draw.text((6, y + cell_h // 2 - 6), name, fill="black")
        for i, image in enumerate(batch):
            array = image.expand(3, -1, -1) if image.shape[0] == 1 else image
            tile = Image.fromarray(array.permute(1, 2, 0).contiguous().numpy(), "RGB")
            tile = tile.resize((cell_w, cell_h), Image.NEAREST)
            canvas.paste(tile, (label_w + i * (cell_w + gap), y))
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise CnnlabError(f"cannot write {path!r}: folder {directory!r} does not exist")
    canvas.save(path)
    return path


def gallery_from_dataset(dataset, path: str | os.PathLike, count: int = 8, seed: int = 0,
                         rows: Sequence[str] | None = None) -> str:
    """Pick ``count`` images of different classes (where possible) and draw their gallery."""
    if count < 1:
        raise CnnlabError(f"the gallery needs at least 1 image, got {count}")
    labels = dataset.labels
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    chosen, seen = [], set()
    for index in order.tolist():  # one image per class first, then any
        if int(labels[index]) not in seen:
            chosen.append(index)
            seen.add(int(labels[index]))
        if len(chosen) == count:
            break
    for index in order.tolist():
        if len(chosen) == count:
            break
        if index not in chosen:
            chosen.append(index)
    picked = torch.tensor(chosen)
    rows_out = augmentation_gallery(dataset.images[picked], labels[picked], len(dataset.classes), rows, seed)
    names = ", ".join(dataset.classes[int(labels[i])] for i in chosen)
    return draw_gallery(rows_out, path, title=f"{dataset.name}: {names}")
