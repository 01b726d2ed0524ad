"""The augmentation panel: the lecture's gallery, "each click generates a new random transformation".

Every augmentation of ``cnnlab.data.augment`` is offered with its parameters as controls;
the page writes the chosen values as a spec of the library's own language
(``"crop(pad=4, mode=reflect)"``), and :func:`augment_images` runs that spec's pipeline on
real images with a fresh random draw (the seed is returned, so a draw can be repeated),
beside the pipeline's test-time behaviour (identity, or the centre crop of a resizing
step), which is what the network sees at evaluation.
"""
from __future__ import annotations

import secrets

import torch

from ..data.augment import parse_augment
from ..errors import CnnlabError
from .images import ImageSource, png_data_uri


def _number(name: str, low: float, high: float, step: float, default: float) -> dict:
    return {"name": name, "kind": "number", "min": low, "max": high, "step": step, "default": default}


def _choice(name: str, choices: list[str], default: str) -> dict:
    return {"name": name, "kind": "choice", "choices": choices, "default": default}


def augmentation_controls(size: int) -> list[dict]:
    """One entry per augmentation of the library: its parameters as sliders or choices, with
    ranges and defaults for images of ``size`` pixels, and the spec they fill in. (A test checks
    that every name of ``AUGMENTATION_NAMES`` has its entry.)"""
    s = max(int(size), 2)
    entries = [
        ("flip", "Horizontal flip (p: how often)", "flip(p={p})", [_number("p", 0, 1, 0.05, 0.5)]),
        ("crop", "Pad and random crop (ResNet's CIFAR augmentation)", "crop(pad={pad}, mode={mode})",
         [_number("pad", 0, max(s // 2, 1), 1, max(s // 8, 1)), _choice("mode", ["zero", "reflect"], "zero")]),
        ("scale", "Scale augmentation: shorter side random in [min, max], then a crop (VGG, ResNet)",
         f"scale(min_size={{min_size}}, max_size={{max_size}}), crop({s})",
         [_number("min_size", s, 2 * s, 1, s), _number("max_size", s, 4 * s, 1, 2 * s)]),
        ("random_resized_crop", "Random resized crop (Inception)",
         f"random_resized_crop({s}, min_scale={{min_scale}}, max_scale={{max_scale}})",
         [_number("min_scale", 0.05, 1, 0.01, 0.08), _number("max_scale", 0.05, 1, 0.01, 1.0)]),
        ("jitter", "Colour jitter: brightness, contrast, saturation",
         "jitter({brightness}, {contrast}, {saturation})",
         [_number("brightness", 0, 1, 0.05, 0.4), _number("contrast", 0, 1, 0.05, 0.4),
          _number("saturation", 0, 1, 0.05, 0.4)]),
        ("cutout", "Cutout: a square hole (DeVries and Taylor 2017)", "cutout({size}, p={p}, fill={fill})",
         [_number("size", 1, s, 1, max(s // 2, 1)), _number("p", 0, 1, 0.05, 1.0),
          _choice("fill", ["zero", "mean"], "zero")]),
        ("mixup", "Mixup: blend two images and their labels", "mixup({alpha}, p={p})",
         [_number("alpha", 0.05, 2, 0.05, 1.0), _number("p", 0, 1, 0.05, 1.0)]),
        ("cutmix", "CutMix: paste a patch of another image, labels by area", "cutmix({alpha}, p={p})",
         [_number("alpha", 0.05, 2, 0.05, 1.0), _number("p", 0, 1, 0.05, 1.0)]),
        ("label_smoothing", "Label smoothing: the images stay, the targets soften", "label_smoothing({eps})",
         [_number("eps", 0, 0.5, 0.01, 0.1)]),
    ]
    return [{"name": name, "title": title, "spec": spec, "params": params} for name, title, spec, params in entries]


def _targets_text(targets: torch.Tensor, classes: list[str]) -> list[str]:
    """Soft targets as "0.62 cat + 0.38 dog" (the two largest shares of each row, and the rest)."""
    texts = []
    for row in targets:
        values, indices = row.topk(min(2, row.numel()))
        parts = [f"{v:.2f} {classes[i]}" for v, i in zip(values.tolist(), indices.tolist()) if v >= 0.005]
        rest = 1.0 - float(values.sum())
        if rest >= 0.005:  # label smoothing spreads it over every other class
            parts.append(f"{rest:.2f} over the other {row.numel() - len(values)}")
        texts.append(" + ".join(parts))
    return texts


# Crops, pads and scales up to this many times the images' side: enough to see what each does,
# and a request cannot ask for gigapixel images.
MAX_SIZE_FACTOR = 4


def _check_sizes(pipeline, side: int) -> None:
    limit = MAX_SIZE_FACTOR * side
    for aug in pipeline.image_augmentations:
        for name in ("size", "pad", "min_size", "max_size"):
            value = getattr(aug, name, None)
            values = value if isinstance(value, (tuple, list)) else (value,)
            if any(isinstance(v, int) and v > limit for v in values):
                raise CnnlabError(f"{aug.spec()}: the explorer shows sizes up to {MAX_SIZE_FACTOR}x the images' "
                                  f"{side} pixels ({limit}); got {name} {value}")


def augment_images(source: ImageSource, spec: str, count: int, image_seed: int, seed: int | None) -> dict:
    """``count`` images of ``source`` (chosen by ``image_seed``), the ``spec`` pipeline's random
    training view of them (drawn with ``seed``, a fresh one when ``None``) and its test-time view."""
    pipeline = parse_augment(spec, num_classes=len(source.classes))
    if len(pipeline) == 0:
        raise CnnlabError("the spec names no augmentation; e.g. 'flip' or 'crop(pad=4)'")
    seed = secrets.randbelow(2**31) if seed is None else seed
    images, labels, indices = source.pick(count, image_seed)
    _check_sizes(pipeline, max(images.shape[-2:]))
    generator = torch.Generator().manual_seed(seed)
    # The alternating flip is keyed by image and epoch: each draw counts as a new epoch.
    train = pipeline.augment_images(images, generator, indices=torch.tensor(indices), epoch=seed)
    soft = None
    if pipeline.changes_targets:
        mixed, soft = pipeline.mix(train.float() / 255, labels, generator, len(source.classes))
        train = (mixed * 255).round().clamp(0, 255).to(torch.uint8)
    test = pipeline.eval_transform(images)
    classes = source.classes
    return {
        "source": source.name,
        "description": source.description,
        "spec": pipeline.spec,
        "seed": seed,
        "image_seed": image_seed,
        "images": [
            {
                "index": index,
                "label": classes[int(label)],
                "original": png_data_uri(original),
                "train": png_data_uri(augmented),
                "test": png_data_uri(evaluated),
                "train_shape": list(augmented.shape),
                "test_shape": list(evaluated.shape),
                "target": None if soft is None else text,
            }
            for index, label, original, augmented, evaluated, text in zip(
                indices, labels.tolist(), images, train, test,
                _targets_text(soft, classes) if soft is not None else [None] * len(indices))
        ],
        # The share of pixel values the training view changed (None when it changed the size).
        "changed_pixels": float((train != images).float().mean()) if train.shape == images.shape else None,
    }
