"""Data augmentation from the lectures, run on whole batches of tensors on the training device.

Each augmentation exists three ways, with the same options:

* batched training behaviour: ``aug(images, generator)`` on an ``N x C x H x W`` uint8 or
  float batch, vectorised (per-sample random parameters, no Python loop over images) and
  reproducible through the ``torch.Generator`` passed in (airbench's data path);
* test-time behaviour: ``aug.eval_transform(images)``, identity for most, a centre crop
  (after a resize) for the ones that change the image size;
* a per-sample ``torchvision.transforms.v2`` equivalent (``aug.v2_transforms(train)``) for
  streaming data sets read by ``DataLoader`` workers.

A recipe names its augmentations declaratively; :func:`parse_augment` turns
``"flip, crop(pad=4), cutout(16)"`` into an :class:`AugmentPipeline`.

Conventions. Image augmentations keep the dtype they are given. Pixel values are read the
way torchvision reads them: uint8 in [0, 255], floating point in [0, 1] (only colour jitter
clamps, so other floats, e.g. normalised ones, pass through the rest unchanged). Zero
padding and zero-filled cutout therefore mean black pixels before normalisation, which is
torchvision's CIFAR practice; ``fill="mean"`` fills with the image's channel means instead,
which is what the cutout paper's zero after normalisation amounts to. Mixup, cutmix and
label smoothing return soft targets (rows summing to 1) for
``torch.nn.functional.cross_entropy``, which accepts class probabilities as targets.

The modules: ``_random`` (the seeded draws), ``ops`` (batch crops, resizes and the dtype
round trip), ``base`` (the two augmentation interfaces), ``geometric`` (flip and the crops),
``photometric`` (colour jitter and cutout), ``mixing`` (mixup, cutmix and label smoothing), ``pipeline`` (:class:`AugmentPipeline`) and ``spec`` (the spec language).
"""
# PadRandomCrop and PerSampleCutout (the per-sample v2 modules) were importable from here
# before this module became a package, outside __all__; they still are.
from .base import Augmentation, TargetAugmentation
from .geometric import HorizontalFlip, PadRandomCrop, RandomCrop, RandomResizedCrop, RandomScaleCrop
from .mixing import CutMix, LabelSmoothing, Mixup, one_hot, smooth_labels
from .ops import center_crop, resize_shorter_side
from .photometric import ColorJitter, Cutout, PerSampleCutout
from .pipeline import AugmentPipeline
from .spec import AUGMENTATION_NAMES, parse_augment, v2_transform

__all__ = [
    "Augmentation",
    "TargetAugmentation",
    "HorizontalFlip",
    "RandomCrop",
    "RandomResizedCrop",
    "RandomScaleCrop",
    "ColorJitter",
    "Cutout",
    "Mixup",
    "CutMix",
    "LabelSmoothing",
    "AugmentPipeline",
    "AUGMENTATION_NAMES",
    "parse_augment",
    "v2_transform",
    "one_hot",
    "smooth_labels",
    "resize_shorter_side",
    "center_crop",
]
