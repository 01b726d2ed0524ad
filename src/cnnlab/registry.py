"""Model registry: ``@register_model`` plus the metadata that describes each paper configuration.

Follows timm's idea of a registry decorator with a metadata record per model, so
that ``create_model("resnet50")`` and the zoo tables need no per-model code.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import inspect
import typing
from dataclasses import dataclass, field
from typing import Callable

from torch import nn

from .errors import CnnlabError, ModelArgumentError, unknown_name
from .layers import init_weights


@dataclass(frozen=True)
class Paper:
    """Bibliographic record of the paper that introduced an architecture."""

    title: str
    authors: str
    venue: str
    year: int


@dataclass(frozen=True)
class ModelInfo:
    """What the zoo knows about one registered configuration.

    ``reference_top1``/``reference_top5`` are the paper's reported accuracies (in percent)
    on ``dataset``; ``None`` where the paper gives none. ``reference_note`` says which
    table or protocol the numbers come from. ``weight_layers`` counts layers as the paper
    does (conv + fully connected), e.g. 16 for VGG-16. ``mean``/``std`` are the input
    statistics that pretrained weights of the model expect (ImageNet's for the models
    torchvision has checkpoints of); ``None`` where no such weights exist.
    """

    name: str
    family: str
    paper: Paper
    input_size: tuple[int, int, int]
    num_classes: int
    dataset: str
    weight_layers: int
    reference_top1: float | None = None
    reference_top5: float | None = None
    reference_note: str = ""
    torchvision_name: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    builder: Callable[..., nn.Module] | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict:
        """Plain JSON-serialisable view (without the builder)."""
        data = dataclasses.asdict(self)
        data.pop("builder")
        data["input_size"] = list(self.input_size)
        for key in ("mean", "std"):
            data[key] = None if data[key] is None else list(data[key])
        return data


_REGISTRY: dict[str, ModelInfo] = {}

# The per-channel statistics torchvision's ImageNet checkpoints were trained with: images
# fed to those weights must be normalised with these, not with their own data set's.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def register_model(
    *,
    family: str,
    paper: Paper,
    input_size: tuple[int, int, int] = (3, 224, 224),
    num_classes: int = 1000,
    dataset: str = "imagenet",
    weight_layers: int,
    reference_top1: float | None = None,
    reference_top5: float | None = None,
    reference_note: str = "",
    torchvision_name: str | None = None,
):
    """Decorator that registers a model constructor under its function name."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        name = builder.__name__
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelInfo(
            name=name,
            family=family,
            paper=paper,
            input_size=tuple(input_size),
            num_classes=num_classes,
            dataset=dataset,
            weight_layers=weight_layers,
            reference_top1=reference_top1,
            reference_top5=reference_top5,
            reference_note=reference_note,
            torchvision_name=torchvision_name,
            mean=IMAGENET_MEAN if torchvision_name else None,
            std=IMAGENET_STD if torchvision_name else None,
            builder=builder,
        )
        return builder

    return decorate


def _ensure_models_imported() -> None:
    # Importing the package registers every family exactly once.
    from . import models  # noqa: F401


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted, optionally filtered by a glob pattern (``resnet*``)."""
    _ensure_models_imported()
    names = sorted(_REGISTRY)
    if pattern:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return names


def model_info(name: str) -> ModelInfo:
    """The metadata record of a registered model; unknown names get the closest matches."""
    _ensure_models_imported()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise unknown_name("model", name, _REGISTRY, f"Run `cnnlab models` to list all {len(_REGISTRY)} models.") from None


def _accepts(builder: Callable[..., nn.Module], key: str) -> bool:
    """Whether ``builder`` takes the keyword ``key``: as its own parameter or, when it passes
    ``**kwargs`` on (the ``_resnet(..., **kwargs)`` idiom), as an optional parameter of the model
    class it is annotated to return. The class's required parameters (depth, stage layout) are
    the configuration the builder names, so they are not the caller's to override."""
    parameters = inspect.signature(builder).parameters
    if key in parameters:
        return True
    if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return False
    returned = typing.get_type_hints(builder).get("return")
    if not isinstance(returned, type):
        return False
    parameter = inspect.signature(returned).parameters.get(key)
    return parameter is not None and parameter.default is not parameter.empty


def create_model(
    name: str,
    num_classes: int | None = None,
    in_chans: int | None = None,
    weights: str | None = None,
    **overrides,
) -> nn.Module:
    """Build a registered model at its paper configuration.

    ``num_classes`` defaults to the paper's (1000 for ImageNet models, 10 for the CIFAR
    family); ``in_chans`` changes the first layer (default: the paper's, 3 for RGB
    models and 1 for LeNet-5); ``overrides`` go to the constructor
    (e.g. ``dropout=0.2``). ``weights`` is a path to a safetensors or torch state_dict
    file, loaded with strict key matching (a torchvision checkpoint of the same
    architecture loads unchanged).
    """
    info = model_info(name)
    kwargs = dict(overrides)
    kwargs["num_classes"] = info.num_classes if num_classes is None else num_classes
    kwargs["in_chans"] = info.input_size[0] if in_chans is None else in_chans
    if kwargs["num_classes"] < 1:
        raise CnnlabError(f"num_classes must be at least 1, got {kwargs['num_classes']}")
    if kwargs["in_chans"] < 1:
        raise CnnlabError(f"in_chans must be at least 1, got {kwargs['in_chans']}")
    for key in overrides:
        if not _accepts(info.builder, key):
            raise ModelArgumentError(f"cannot build {name!r} with {overrides}: it takes no argument {key!r}", key)
    model = info.builder(**kwargs)
    # The record travels with the instance so tools find its default input size; a model
    # whose input depends on its arguments (MobileNet's resolution multiplier, EfficientNet's
    # scaled resolution, another in_chans) says so with ``default_input_size``.
    input_size = tuple(getattr(model, "default_input_size", (kwargs["in_chans"], *info.input_size[1:])))
    model.pretrained_cfg = info if input_size == info.input_size else dataclasses.replace(info, input_size=input_size)
    if weights is not None:
        from .weights import load_weights

        load_weights(model, weights)
    return model


def build_model(config, *, num_classes: int, in_chans: int) -> nn.Module:
    """The model a run's config describes, for a data set of ``num_classes`` classes and ``in_chans``
    channels: ``config.model`` with ``config.model_args``, the regularisation overrides
    (``dropout``, ``drop_path_rate``) when set, then the named initialisation (``init``,
    ``init_std``, ``zero_init_residual``). ``config`` is a :class:`cnnlab.train.TrainConfig` or
    anything with those fields; the trainer and the evaluation of a saved run both build here."""
    model_info(config.model)  # an unknown name fails here, with suggestions
    overrides = dict(config.model_args)
    for key in ("dropout", "drop_path_rate"):
        if getattr(config, key) is not None:
            overrides[key] = getattr(config, key)
    try:
        model = create_model(config.model, num_classes=num_classes, in_chans=in_chans, **overrides)
    except ModelArgumentError as error:
        key = error.argument
        origin = "model_args" if key in config.model_args and key not in ("dropout", "drop_path_rate") else key
        has = {"dropout": "alexnet, zfnet, vgg*, googlenet, nin", "drop_path_rate": "the ResNet families"}
        hint = f" (models that take it: {has[key]})" if key in has else ""
        raise CnnlabError(f"model {config.model!r} has no {key!r} setting, so `{origin}` cannot be applied; "
                          f"set it to null (the model's default) or choose another model{hint}") from None
    if config.init != "default" or config.zero_init_residual:
        init_weights(model, config.init, std=config.init_std, zero_init_residual=config.zero_init_residual)
    return model
