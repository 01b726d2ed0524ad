"""Test-time augmentation: average a model's predictions over flips, crops and scales.

The protocols of the lectures: flip averaging; AlexNet's 10-crop testing (four corners and
the centre, and their mirror images); and ResNet's multi-scale testing (He et al. 2016,
after VGG): the shorter side resized to each of {224, 256, 384, 480, 640}, 10 crops at each,
softmax probabilities averaged. And airbench94's (Jordan 2024) ``translate``: the flip pair
weighted 1/2, and the flip pairs of the image shifted one pixel up-left and one pixel
down-right (reflect-padded, as its training crops are) weighted 1/4 each. Works on any ``nn.Module`` that returns logits; the views
of one scale go through the model as one batch, not a Python loop over crops.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.augment.ops import resize_shorter_side  # one resize for training's eval_transform and TTA
from ..errors import CnnlabError

__all__ = ["RESNET_TEST_SCALES", "TTA_MODES", "ten_crop", "resize_shorter_side", "translate_views", "tta_predict"]

#: The test scales of ResNet's multi-scale evaluation (shorter side, pixels).
RESNET_TEST_SCALES: tuple[int, ...] = (224, 256, 384, 480, 640)

TTA_MODES: tuple[str, ...] = ("none", "flip", "translate", "10crop", "multiscale")


def translate_views(images: Tensor, shift: int = 1) -> tuple[list[Tensor], list[float]]:
    """airbench94's test-time views and their weights: the image and its mirror (1/4 each), then
    the image shifted by ``shift`` pixels up-left and down-right (reflect padding) and their
    mirrors (1/8 each). Shifted views keep the batch's size and memory layout."""
    h, w = images.shape[-2:]
    padded = F.pad(images, (shift, shift, shift, shift), mode="reflect")
    up_left, down_right = padded[..., :h, :w], padded[..., 2 * shift:, 2 * shift:]
    views = [images, images.flip(-1), up_left, up_left.flip(-1), down_right, down_right.flip(-1)]
    return views, [0.25, 0.25, 0.125, 0.125, 0.125, 0.125]


def ten_crop(images: Tensor, size: int) -> Tensor:
    """AlexNet's 10 crops of a batch: 10 x N x C x size x size.

    Order as torchvision's ``ten_crop``: top-left, top-right, bottom-left, bottom-right,
    centre of the image, then the same five of its mirror image.
    """
    h, w = images.shape[-2:]
    if size > h or size > w:
        raise CnnlabError(f"cannot take {size}x{size} crops from {h}x{w} images; resize them or lower crop_size")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    offsets = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size), (top, left)]
    crops = []
    for source in (images, images.flip(-1)):
        crops += [source[..., y : y + size, x : x + size] for y, x in offsets]
    return torch.stack(crops)


def _probabilities(model: nn.Module, views: Tensor, batch_size: int | None, average: bool = True) -> Tensor:
    """Softmax of the model on V x N x ... views, averaged over V (forward in chunks);
    ``average=False`` returns them per view, V x N x K."""
    v, n = views.shape[:2]
    flat = views.reshape(v * n, *views.shape[2:])
    step = batch_size or flat.shape[0]
    outputs = []
    for start in range(0, flat.shape[0], step):
        logits = model(flat[start : start + step])
        if isinstance(logits, (tuple, list)):  # models with auxiliary heads
            logits = logits[0]
        outputs.append(F.softmax(logits.float(), dim=-1))
    probabilities = torch.cat(outputs).view(v, n, -1)
    return probabilities.mean(dim=0) if average else probabilities


def tta_predict(
    model: nn.Module,
    images: Tensor,
    mode: str = "flip",
    *,
    scales: Sequence[int] = RESNET_TEST_SCALES,
    crop_size: int = 224,
    batch_size: int | None = None,
) -> Tensor:
    """Class probabilities (N x K) of ``model`` averaged over test-time views of ``images``.

    ``mode``: ``"none"`` (one view), ``"flip"`` (the image and its mirror), ``"translate"``
    (:func:`translate_views`, weighted), ``"10crop"``
    (10 crops of ``crop_size`` from the images as given), ``"multiscale"`` (for each of
    ``scales``: shorter side resized to it, then the 10 crops; any subset of the ResNet
    scales). ``images`` is a normalised float batch N x C x H x W. The model runs in eval
    mode without gradients (its mode is restored afterwards); ``batch_size`` caps the
    number of views per forward pass.
    """
    if mode not in TTA_MODES:
        raise CnnlabError(f"unknown TTA mode {mode!r}; choose one of {', '.join(TTA_MODES)}")
    if images.dim() != 4:
        raise CnnlabError(f"tta_predict expects a batch N x C x H x W, got shape {tuple(images.shape)}")
    if batch_size is not None and batch_size <= 0:
        raise CnnlabError(f"batch_size must be positive, got {batch_size}")
    if mode == "multiscale":
        scales = tuple(int(s) for s in scales)
        if not scales:
            raise CnnlabError("multiscale TTA needs at least one scale")
        too_small = [s for s in scales if s < crop_size]
        if too_small:
            raise CnnlabError(
                f"scales {too_small} are smaller than crop_size {crop_size}; drop them or lower crop_size"
            )

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            if mode == "none":
                return _probabilities(model, images[None], batch_size)
            if mode == "flip":
                return _probabilities(model, torch.stack([images, images.flip(-1)]), batch_size)
            if mode == "translate":
                views, weights = translate_views(images)
                probabilities = _probabilities(model, torch.stack(views), batch_size, average=False)
                return (probabilities * torch.tensor(weights, device=probabilities.device)[:, None, None]).sum(0)
            if mode == "10crop":
                return _probabilities(model, ten_crop(images, crop_size), batch_size)
            total = None
            for scale in scales:
                views = ten_crop(resize_shorter_side(images.float(), scale).to(images.dtype), crop_size)
                probs = _probabilities(model, views, batch_size)
                total = probs if total is None else total + probs
            return total / len(scales)
    finally:
        model.train(was_training)
