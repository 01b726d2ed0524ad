"""What the claims' computations share: zoo models on the meta device, counts, shapes, a run cache.

Architecture claims read their numbers off models built on PyTorch's ``meta`` device
(real shapes and parameter counts, no weights, no memory): :func:`zoo_model` and
:func:`zoo_summary` build each zoo model once per process, the other helpers count
weights and layers the way the lectures do. Training claims run small seeded
experiments, cached for the life of the process by :func:`cached_run`.
"""
from __future__ import annotations

import functools
import inspect
from functools import lru_cache
from typing import Callable, Sequence, TypeVar

import torch
from torch import nn

from ..summary import ModelSummary, summarize

@lru_cache(maxsize=None)
def zoo_model(name: str, **overrides) -> nn.Module:
    """A zoo model built on the meta device: real shapes and parameter counts, no weights."""
    from ...registry import create_model

    with torch.device("meta"):
        return create_model(name, **overrides)


@lru_cache(maxsize=None)
def zoo_summary(name: str, **overrides) -> ModelSummary:
    """summarize() of a zoo model at its paper input size (shape-only, on meta)."""
    return summarize(zoo_model(name, **overrides))


def on_meta(builder: Callable[[], nn.Module]) -> nn.Module:
    """``builder()`` run on the meta device: a module with real shapes and no weights."""
    with torch.device("meta"):
        return builder()


def param_count(model: nn.Module) -> int:
    """Every parameter of a module, biases and normalisation included."""
    return sum(p.numel() for p in model.parameters())


def conv_weights(module: nn.Module) -> int:
    """Weights of every convolution in a module: biases and normalisation not counted, as in the lectures."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def hwc(shape: Sequence[int]) -> tuple[int, ...]:
    """A traced (1, C, H, W) output shape as the lectures write it, HxWxC; (1, N) as N."""
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1])
    return tuple(shape[1:])


def out_shape(module: nn.Module, input_size: tuple[int, int, int]) -> tuple[int, ...]:
    """Output shape of a module on a batch of one, HxWxC (meta device: shapes only)."""
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros((1, *input_size), device="meta"))
    return hwc(tuple(out.shape))


def weight_layer_counts(model: nn.Module) -> tuple[int, int]:
    """(conv layers, fully connected layers) on the main path, the way papers count depth.

    Side branches are not counted: projection shortcuts (``downsample``), as the ResNet
    paper does not, and squeeze-and-excitation units (``se``), as the SENet paper does not.
    """
    convs = fcs = 0
    for name, module in model.named_modules():
        if {"downsample", "se"} & set(name.split(".")):
            continue
        if isinstance(module, nn.Conv2d):
            convs += 1
        elif isinstance(module, nn.Linear):
            fcs += 1
    return convs, fcs


def distinct_kernel_sizes(module: nn.Module, types: tuple[type, ...] = (nn.Conv2d,)) -> tuple[int, ...]:
    """The kernel sizes (side) of a module's layers of the given types, each once, in network order."""
    sizes: list[int] = []
    for layer in module.modules():
        if isinstance(layer, types):
            size = first(layer.kernel_size)
            if size not in sizes:
                sizes.append(size)
    return tuple(sizes)


def first(value) -> int:
    """A kernel size, stride or padding as one int: layers store an int or an (h, w) pair."""
    return int(value if isinstance(value, int) else value[0])


def longest_weight_path(module: nn.Module) -> int:
    """Weight layers on the longest input-to-output path: parallel branches count once.

    The lecture's GoogLeNet rule: "parallel layers count as 1 layer => 2 layers per
    Inception module". Modules run their children in sequence except Inception modules,
    whose four branches run side by side.
    """
    from ...layers.inception import InceptionModule, NaiveInceptionModule

    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return 1
    children = list(module.children())
    if isinstance(module, (InceptionModule, NaiveInceptionModule)):
        return max(longest_weight_path(c) for c in children)
    return sum(longest_weight_path(c) for c in children)


def layers_of(summary: ModelSummary, types: tuple[str, ...]) -> list:
    """The summary's per-layer records of the given module types (``"Conv2d"``, ...), in order."""
    return [r for r in summary.layers if r.type in types]


_Result = TypeVar("_Result")


def cached_run(function: Callable[..., _Result]) -> Callable[..., _Result]:
    """Cache results for the life of the process, keyed on the arguments with defaults filled in.

    Unlike a bare ``lru_cache``, ``f()``, ``f(default)`` and ``f(name=default)`` share one
    entry, so a claim and a figure asking for the same run compute it once.
    """
    signature = inspect.signature(function)
    cache: dict = {}

    @functools.wraps(function)
    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple(bound.arguments.items())
        if key not in cache:
            cache[key] = function(*bound.args, **bound.kwargs)
        return cache[key]

    cached.cache_clear = cache.clear  # type: ignore[attr-defined]
    return cached
