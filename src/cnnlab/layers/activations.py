"""The lectures' activation zoo by name: sigmoid, tanh, ReLU, Leaky ReLU, ELU, GELU, SiLU."""
from __future__ import annotations

from torch import nn

from ..errors import CnnlabError

# Modules take ``inplace`` where torch supports it; GELU/sigmoid/tanh have no in-place form.
_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "relu6": nn.ReLU6,
    "leaky_relu": nn.LeakyReLU,
    "elu": nn.ELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
    "swish": nn.SiLU,
    "hardswish": nn.Hardswish,
    "identity": nn.Identity,
}
_HAS_INPLACE = {"relu", "relu6", "leaky_relu", "elu", "silu", "swish", "hardswish"}


def activation_names() -> list[str]:
    """Names accepted by :func:`get_activation`."""
    return sorted(_ACTIVATIONS)


def get_activation(name: str | None, inplace: bool = False, **kwargs) -> nn.Module:
    """Build an activation module from its lecture name (``"relu"``, ``"leaky_relu"``, ``"gelu"``...).

    ``None`` or ``"identity"`` gives ``nn.Identity`` (a linear layer, e.g. MobileNetV2's
    linear bottleneck). ``kwargs`` go to the module (``negative_slope=0.1``).
    """
    key = "identity" if name is None else name.lower().replace("-", "_")
    if key not in _ACTIVATIONS:
        raise CnnlabError(f"unknown activation {name!r}; choose one of {', '.join(activation_names())}")
    if key in _HAS_INPLACE:
        kwargs["inplace"] = inplace
    return _ACTIVATIONS[key](**kwargs)
