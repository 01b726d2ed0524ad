"""Claims about data: mixup's labels, ResNet's multi-scale test-time augmentation, per-channel statistics.

Mixup runs through :class:`cnnlab.data.augment.Mixup` on images whose pixels say which
class they come from (:func:`mixup_blends`); the test-time protocol through
:func:`cnnlab.eval.tta_predict` with a model that counts the images it is shown
(:func:`tta_forward_passes`); the statistics through :func:`cnnlab.data.channel_stats`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .core import LESSON, SLIDES_2025, claim
from .measure import cached_run

# ======================================================================================
# Mixup (lesson chapter 02): "A 70/30 blend of 'cat' and 'dog' gets the label [0.7 cat, 0.3 dog]."
# ======================================================================================


@dataclass(frozen=True)
class MixupBlends:
    """Mixup on a batch of "cat" images (every pixel 1, label 0) and "dog" images (every pixel 0, label 1).

    A mixed image's mean pixel is its share of cat. ``largest_gap`` is the largest
    difference, over the batch, between that share and the cat probability of the mixed
    label; ``nearest_image`` / ``nearest_label`` are the cat share of the image closest to
    ``target`` and the (cat, dog) label it got.
    """

    alpha: float
    size: int
    target: float
    largest_gap: float
    nearest_image: float
    nearest_label: tuple[float, float]


@cached_run
def mixup_blends(alpha: float = 0.2, size: int = 4096, target: float = 0.7, seed: int = 0) -> MixupBlends:
    """Run the library's Mixup (Zhang et al. 2018) on cats and dogs and read the blend off images and labels.

    Lecture idea: mixup trains on convex combinations: the image is lam * x_i + (1 - lam) * x_j
    and its label the same mix of the two labels, lam ~ Beta(alpha, alpha).
    """
    from ...data.augment import Mixup

    half = size // 2
    images = torch.cat([torch.ones(half, 3, 2, 2), torch.zeros(size - half, 3, 2, 2)])
    labels = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(size - half, dtype=torch.long)])
    generator = torch.Generator().manual_seed(seed)
    mixed, soft = Mixup(alpha)(images, labels, generator=generator, num_classes=2)
    cat_share = mixed.double().mean(dim=(1, 2, 3))
    nearest = int((cat_share - target).abs().argmin())
    return MixupBlends(alpha=alpha, size=size, target=target,
                       largest_gap=float((cat_share - soft[:, 0].double()).abs().max()),
                       nearest_image=float(cat_share[nearest]),
                       nearest_label=(float(soft[nearest, 0]), float(soft[nearest, 1])))


@claim(id="mixup-label", text="Mixup gives a 70/30 blend of a cat and a dog the label [0.7 cat, 0.3 dog]",
       source=LESSON, quote="A 70/30 blend of \"cat\" and \"dog\" gets the label [0.7 cat, 0.3 dog].",
       lecture_value=(0.7, 0.3), lecture_text="[0.7 cat, 0.3 dog]", unit="label: cat, dog", tolerance=0.005,
       note="mixup's definition, checked on the library: of 4,096 mixed images (lam ~ Beta(0.2, 0.2), seed 0) "
            "the one nearest 70% cat is within 0.001 of it, and every label equals its image's blend",
       method="cnnlab.data.augment.Mixup(0.2) on 2,048 all-ones 'cat' and 2,048 all-zeros 'dog' images: the "
              "(cat, dog) label of the mixed image whose mean pixel is nearest 0.7")
def _mixup_label():
    return mixup_blends().nearest_label


# ======================================================================================
# Test-time augmentation (lesson chapter 02 worked example; 2025 slides)
# ======================================================================================

class _ViewCounter(nn.Module):
    """A stand-in classifier that counts the images it is shown (uniform logits over 2 classes)."""

    def __init__(self):
        super().__init__()
        self.seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += x.shape[0]
        return torch.zeros(x.shape[0], 2)


def tta_forward_passes(mode: str = "multiscale", height: int = 256, width: int = 320) -> int:
    """Images the model sees per test image under a :func:`cnnlab.eval.tta_predict` protocol."""
    from ...eval.tta import tta_predict

    counter = _ViewCounter()
    tta_predict(counter, torch.zeros(1, 3, height, width), mode=mode)
    return counter.seen


@claim(id="tta-ten-crops", text="Test-time augmentation takes 10 crops per size: 4 corners + center, + flips",
       source=SLIDES_2025, quote="For each size, use 10 224 x 224 crops: 4 corners + center, + flips",
       lecture_value=10, unit="forward passes per image", tolerance=0,
       method="cnnlab.eval.tta_predict(mode='10crop') on a 256x320 image: images a counting model is shown")
def _tta_ten_crops():
    return tta_forward_passes("10crop")


@claim(id="tta-multiscale-passes", text="ResNet's test protocol, 10 crops at each of 5 scales, is 50 forward passes",
       source=LESSON, quote="10 crops per scale × 5 scales = 50 forward passes", lecture_value=50,
       unit="forward passes per image", tolerance=0,
       method="cnnlab.eval.tta_predict(mode='multiscale', scales 224, 256, 384, 480, 640) on a 256x320 image: "
              "images a counting model is shown")
def _tta_multiscale_passes():
    return tta_forward_passes("multiscale")


# ======================================================================================
# Per-channel statistics (2025 slides, data preprocessing)
# ======================================================================================

@claim(id="channel-stats-count", text="Normalising per channel takes 3 statistics for RGB images (a mean and a std "
       "for each)", source=SLIDES_2025, quote="(stats along each channel = 3 numbers)", lecture_value=(3, 3),
       lecture_text="3 numbers (each)", unit="means, stds", tolerance=0,
       note="a definition for 3-channel images, checked on the library's statistics",
       method="cnnlab.data.channel_stats on 4 random 3 x 8 x 8 uint8 images: how many means and stds it returns")
def _channel_stats_count():
    from ...data.stats import channel_stats

    generator = torch.Generator().manual_seed(0)
    mean, std = channel_stats(torch.randint(0, 256, (4, 3, 8, 8), generator=generator, dtype=torch.uint8))
    return (len(mean), len(std))
