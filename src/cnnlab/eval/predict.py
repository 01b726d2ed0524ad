"""``cnnlab predict``: the top classes of image files, by a saved run."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data import InMemoryLoader, parse_augment
from ..data.decode import BadImage, decode_with_pil, resize_images, target_size
from ..errors import CnnlabError
from .run import LoadedRun

__all__ = ["predict_images"]


def _read_image(path: Path, in_chans: int) -> torch.Tensor:
    """``path`` as a C x H x W uint8 tensor with the run's channels (RGB or L), or a CnnlabError naming it."""
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
    if int(top_k) != top_k or top_k < 1:
        raise CnnlabError(f"--top-k must be a positive integer, got {top_k}")
    if not paths:
        raise CnnlabError("give at least one image file")
    batch_size = batch_size or run.config.evaluation_batch_size
    if batch_size < 1:
        raise CnnlabError(f"--batch-size must be a positive integer, got {batch_size}")
    size = target_size(image_size) if image_size is not None else run.image_size
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
