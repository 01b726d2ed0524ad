"""The augmentation spec language: ``"flip, crop(pad=4), cutout(16)"`` to a pipeline.

:func:`parse_augment` reads a recipe's comma-separated steps, each ``name`` or
``name(args)`` with positional or ``key=value`` arguments, checks them against the table
of augmentations and their parameters (``_SPECS``), and builds an :class:`AugmentPipeline`;
:func:`v2_transform` builds the per-sample v2 twin of the same spec. Every mistake is a
:class:`~cnnlab.errors.CnnlabError` that names the step and shows its usage.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from ...errors import CnnlabError, unknown_name
from .base import _fmt
from .geometric import HorizontalFlip, RandomCrop, RandomResizedCrop, RandomScaleCrop
from .mixing import CutMix, LabelSmoothing, Mixup
from .photometric import ColorJitter, Cutout
from .pipeline import AugmentPipeline

__all__ = ["AUGMENTATION_NAMES", "parse_augment", "v2_transform"]


def _parse_value(text: str) -> Any:
    text = text.strip()
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {value!r}")
    return float(value)


def _integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _word(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a word, got {value!r}")
    return value


def _size(value: Any) -> int | tuple[int, int]:
    if isinstance(value, str) and re.fullmatch(r"\d+x\d+", value):
        h, w = value.split("x")
        return int(h), int(w)
    return _integer(value)


def _fill(value: Any) -> str | float:
    return value if isinstance(value, str) else _number(value)


# name -> (builder, [(parameter, converter, default)]); a default of ... means required.
_SPECS: dict[str, tuple[Callable, list[tuple[str, Callable, Any]]]] = {
    "flip": (HorizontalFlip, [("p", _number, 0.5), ("mode", _word, "random")]),
    "crop": (RandomCrop, [("size", _size, None), ("pad", _integer, 0), ("mode", _word, "zero")]),
    "scale": (None, [("min_size", _integer, 256), ("max_size", _integer, 480)]),
    "random_resized_crop": (
        lambda size, min_scale, max_scale, min_ratio, max_ratio, crop_fraction: RandomResizedCrop(
            size, (min_scale, max_scale), (min_ratio, max_ratio), crop_fraction
        ),
        [
            ("size", _size, ...),
            ("min_scale", _number, 0.08),
            ("max_scale", _number, 1.0),
            ("min_ratio", _number, 3 / 4),
            ("max_ratio", _number, 4 / 3),
            ("crop_fraction", _number, 0.875),
        ],
    ),
    "jitter": (ColorJitter, [("brightness", _number, 0.0), ("contrast", _number, 0.0), ("saturation", _number, 0.0)]),
    "cutout": (Cutout, [("size", _integer, ...), ("p", _number, 1.0), ("fill", _fill, "zero")]),
    "mixup": (Mixup, [("alpha", _number, 1.0), ("p", _number, 1.0)]),
    "cutmix": (CutMix, [("alpha", _number, 1.0), ("p", _number, 1.0)]),
    "label_smoothing": (LabelSmoothing, [("eps", _number, 0.1)]),
}
_ALIASES = {
    "hflip": "flip",
    "horizontal_flip": "flip",
    "random_crop": "crop",
    "rrc": "random_resized_crop",
    "color_jitter": "jitter",
    "colour_jitter": "jitter",
    "smoothing": "label_smoothing",
}

#: The names :func:`parse_augment` accepts (aliases not included).
AUGMENTATION_NAMES: tuple[str, ...] = tuple(_SPECS)

_TOKEN = re.compile(r"^\s*([A-Za-z_][\w]*)\s*(?:\((.*)\))?\s*$", re.DOTALL)


def _split_top_level(spec: str) -> list[str]:
    tokens, depth, current = [], 0, []
    for ch in spec:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise CnnlabError(f"unbalanced ')' in augmentation spec {spec!r}")
        if ch in ",;" and depth == 0:
            tokens.append("".join(current))
            current = []
        else:
            current.append(ch)
    if depth != 0:
        raise CnnlabError(f"unbalanced '(' in augmentation spec {spec!r}")
    tokens.append("".join(current))
    return [t.strip() for t in tokens]


def _bind(token: str, name: str, args_text: str | None) -> dict[str, Any]:
    params = _SPECS[name][1]
    names = [p[0] for p in params]
    usage = f"{name}({', '.join(p if d is ... else f'{p}={_fmt(d)}' for p, _, d in params)})"
    values: dict[str, Any] = {}
    if args_text is not None and args_text.strip():
        positional_done = False
        for i, raw in enumerate(args_text.split(",")):
            raw = raw.strip()
            if not raw:
                raise CnnlabError(f"empty argument in augmentation {token!r}; usage: {usage}")
            if "=" in raw:
                key, _, value = raw.partition("=")
                key = key.strip()
                if key not in names:
                    raise CnnlabError(f"{name} has no argument {key!r} (in {token!r}); usage: {usage}")
                positional_done = True
            else:
                if positional_done:
                    raise CnnlabError(f"positional argument after keyword in {token!r}; usage: {usage}")
                if i >= len(names):
                    raise CnnlabError(f"too many arguments in {token!r}; usage: {usage}")
                key, value = names[i], raw
            if key in values:
                raise CnnlabError(f"argument {key!r} given twice in {token!r}; usage: {usage}")
            values[key] = _parse_value(value)
    bound = {}
    for pname, convert, default in params:
        if pname not in values:
            if default is ...:
                raise CnnlabError(f"{name} needs its {pname} in {token!r}; usage: {usage}")
            bound[pname] = default
            continue
        try:
            bound[pname] = convert(values[pname])
        except ValueError as exc:
            raise CnnlabError(f"bad {pname} in augmentation {token!r}: {exc}; usage: {usage}") from None
    return bound


def parse_augment(spec: str | AugmentPipeline | None, *, num_classes: int | None = None) -> AugmentPipeline:
    """Build an :class:`AugmentPipeline` from a recipe's declarative spec.

    Comma-separated steps, each ``name`` or ``name(args)`` with positional or ``key=value``
    arguments, e.g. ``"flip, crop(pad=4), cutout(16)"``,
    ``"scale(256, 480), crop(224), flip, jitter(0.4, 0.4, 0.4)"``, ``"mixup(0.2)"``,
    ``"cutmix(1.0)"``, ``"label_smoothing(0.1)"``. ``scale(a, b)`` must be followed by
    ``crop(size)`` (on a batch every image must leave with the same size). An empty spec or
    ``"none"`` gives the empty pipeline. Unknown names or bad arguments raise CnnlabError.
    """
    if isinstance(spec, AugmentPipeline):
        return spec
    if spec is None or not spec.strip() or spec.strip().lower() == "none":
        return AugmentPipeline([], num_classes=num_classes)
    if not isinstance(spec, str):
        raise CnnlabError(f"an augmentation spec is a string like 'flip, crop(pad=4)', got {type(spec).__name__}")
    valid = ", ".join(AUGMENTATION_NAMES)
    parsed: list[tuple[str, str, dict[str, Any]]] = []
    for token in _split_top_level(spec):
        if not token:
            raise CnnlabError(f"empty step in augmentation spec {spec!r}")
        match = _TOKEN.match(token)
        if not match:
            raise CnnlabError(f"cannot read augmentation {token!r}; write name or name(args). Valid names: {valid}")
        raw_name, args_text = match.group(1), match.group(2)
        name = _ALIASES.get(raw_name.lower(), raw_name.lower())
        if name not in _SPECS:
            raise unknown_name("augmentation", raw_name, AUGMENTATION_NAMES,
                               f"Valid names: {valid} (in {spec!r}).") from None
        parsed.append((token, name, _bind(token, name, args_text)))

    augmentations: list = []
    i = 0
    while i < len(parsed):
        token, name, kwargs = parsed[i]
        try:
            if name == "scale":
                follower = parsed[i + 1] if i + 1 < len(parsed) else None
                if follower is None or follower[1] != "crop" or follower[2]["size"] is None or follower[2]["pad"]:
                    raise CnnlabError(
                        f"{token!r} must be followed by crop(size) without padding, e.g. 'scale(256, 480), crop(224)': "
                        "on a batch every image must leave with the same size"
                    )
                augmentations.append(RandomScaleCrop(kwargs["min_size"], kwargs["max_size"], follower[2]["size"]))
                i += 2
                continue
            augmentations.append(_SPECS[name][0](**kwargs))
        except CnnlabError as exc:
            message = str(exc)
            if token not in message:
                message = f"in augmentation {token!r}: {message}"
            raise CnnlabError(message) from None
        i += 1
    return AugmentPipeline(augmentations, num_classes=num_classes)


def v2_transform(
    spec: str | AugmentPipeline,
    *,
    train: bool = True,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
):
    """Per-sample ``torchvision.transforms.v2.Compose`` built from the same spec, for
    streaming data sets (DataLoader workers).

    Starts with ``v2.ToImage()``; with ``mean``/``std`` it ends with ``ToDtype(float32,
    scale=True)`` and ``Normalize``. Mixup, cutmix and label smoothing work on batches, so
    they are left out: run ``pipeline.mix(images, labels, generator, num_classes)`` on each
    collated batch.
    """
    return parse_augment(spec).to_v2(train=train, mean=mean, std=std)
