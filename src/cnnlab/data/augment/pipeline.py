"""The augmentation pipeline: a recipe's augmentations, in the order they run.

:class:`AugmentPipeline` runs the image augmentations on a batch, then the label ones; it
gives the test-time behaviour of the whole list, and its per-sample v2 twin for streaming
data sets. :func:`~cnnlab.data.augment.parse_augment` builds one from a spec string.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor

from ...errors import CnnlabError
from .base import Augmentation, TargetAugmentation

__all__ = ["AugmentPipeline"]


class AugmentPipeline:
    """An ordered list of augmentations: image ones first (in order), then label ones.

    ``pipeline(images, generator=g)`` augments a batch; ``pipeline(images, labels,
    generator=g, num_classes=K)`` returns ``(images, targets)``, soft targets when the
    pipeline has mixup, cutmix or label smoothing and the labels unchanged otherwise.
    ``train=False`` (or :meth:`eval_transform`) applies the test-time behaviour.
    """

    def __init__(
        self,
        augmentations: Sequence[Augmentation | TargetAugmentation] = (),
        *,
        num_classes: int | None = None,
    ):
        image_ops, target_ops = [], []
        for aug in augmentations:
            if isinstance(aug, TargetAugmentation):
                target_ops.append(aug)
            elif isinstance(aug, Augmentation):
                image_ops.append(aug)
            else:
                raise CnnlabError(f"not an augmentation: {aug!r}")
        self.image_augmentations: tuple[Augmentation, ...] = tuple(image_ops)
        self.target_augmentations: tuple[TargetAugmentation, ...] = tuple(target_ops)
        self.num_classes = num_classes

    @property
    def augmentations(self) -> tuple:
        """All steps in the order they run: image augmentations, then label ones."""
        return self.image_augmentations + self.target_augmentations

    @property
    def changes_targets(self) -> bool:
        """Whether the pipeline turns labels into soft targets."""
        return bool(self.target_augmentations)

    def __len__(self) -> int:
        return len(self.augmentations)

    def __iter__(self):
        return iter(self.augmentations)

    @property
    def spec(self) -> str:
        """The canonical spec string; ``parse_augment(p.spec)`` rebuilds ``p``."""
        return ", ".join(a.spec() for a in self.augmentations)

    def __repr__(self) -> str:
        return f"AugmentPipeline({self.spec!r})"

    def augment_images(self, images: Tensor, generator: torch.Generator | None = None, *,
                       indices: Tensor | None = None, epoch: int = 0, seed: int = 0) -> Tensor:
        """The image augmentations only, at training time (dtype preserved).

        ``indices`` (the images' positions in the data set), ``epoch`` and ``seed`` are for
        the augmentations keyed by sample (the alternating flip); without ``indices`` the
        batch's images count as samples ``0..N-1``."""
        for aug in self.image_augmentations:
            if aug.keyed_by_sample:
                keys = indices if indices is not None else torch.arange(images.shape[0])
                images = aug.by_sample(images, keys, epoch, seed)
            else:
                images = aug(images, generator)
        return images

    def mix(self, images: Tensor, targets: Tensor, generator: torch.Generator | None = None,
            num_classes: int | None = None) -> tuple[Tensor, Tensor]:
        """The label augmentations only (mixup, cutmix, label smoothing), on a collated batch:
        what a streaming loader runs after its per-sample v2 transforms."""
        k = num_classes if num_classes is not None else self.num_classes
        for aug in self.target_augmentations:
            images, targets = aug(images, targets, generator, k)
        return images, targets

    def eval_transform(self, images: Tensor) -> Tensor:
        """Test-time behaviour: identity, or the centre crop/resize of size-changing steps."""
        for aug in self.image_augmentations:
            images = aug.eval_transform(images)
        return images

    def __call__(
        self,
        images: Tensor,
        targets: Tensor | None = None,
        *,
        generator: torch.Generator | None = None,
        train: bool = True,
        num_classes: int | None = None,
    ):
        if not train:
            images = self.eval_transform(images)
            return images if targets is None else (images, targets)
        images = self.augment_images(images, generator)
        if targets is None:
            if self.changes_targets:
                names = ", ".join(a.name for a in self.target_augmentations)
                raise CnnlabError(f"the pipeline mixes labels ({names}); pass the labels too: pipeline(images, labels)")
            return images
        return self.mix(images, targets, generator, num_classes)

    def to_v2(self, *, train: bool = True, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        """Per-sample ``torchvision.transforms.v2.Compose`` with the same options, for
        streaming data sets; see :func:`v2_transform`."""
        from torchvision.transforms import v2

        steps: list[Callable] = [v2.ToImage()]
        for aug in self.image_augmentations:
            steps.extend(aug.v2_transforms(train))
        if mean is not None or std is not None:
            if mean is None or std is None:
                raise CnnlabError("give both mean and std to normalise, or neither")
            steps += [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
        return v2.Compose(steps)
