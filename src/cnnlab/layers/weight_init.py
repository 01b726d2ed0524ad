"""Weight initialisation: by name (the lecture's small random numbers, Xavier, Kaiming/MSRA)
and the He fan-out initialisation most CNN families of the zoo start from.

:func:`init_weights` re-initialises a whole model with a scheme named in a recipe
(``init: kaiming``) or by the claims' initialisation study; :func:`init_he_fan_out` is
what the zoo's model constructors call on themselves.
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..errors import CnnlabError, canonical_name

INIT_SCHEMES = ("kaiming", "xavier", "normal", "default")
_ALIASES = {"he": "kaiming", "msra": "kaiming", "glorot": "xavier", "gaussian": "normal", "torch": "default"}
_NONLINEARITIES = ("relu", "leaky_relu", "tanh", "sigmoid", "selu", "linear")

# Layers whose weight is a learned linear map: they get the scheme's weights and zero biases.
_WEIGHT_LAYERS = (nn.Linear, nn.Bilinear, nn.modules.conv._ConvNd)
# Normalisation layers start as the identity: scale 1, shift 0.
_NORM_LAYERS: tuple[type[nn.Module], ...] = (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)
if hasattr(nn, "RMSNorm"):
    _NORM_LAYERS = (*_NORM_LAYERS, nn.RMSNorm)


def init_scheme_name(scheme: str) -> str:
    """``scheme`` as one of :data:`INIT_SCHEMES` (aliases he, msra, glorot, ... accepted); raises otherwise."""
    return canonical_name("init scheme", scheme, INIT_SCHEMES, _ALIASES)


def init_weights(
    model: nn.Module,
    scheme: str = "kaiming",
    *,
    std: float = 0.01,
    nonlinearity: str = "relu",
    mode: str = "fan_in",
    zero_init_residual: bool = False,
) -> nn.Module:
    """Re-initialise every convolution, linear and normalisation layer of ``model``; return it.

    Lecture idea: the scale of the initial weights decides whether activations and
    gradients survive a deep network.

    - ``"normal"``: N(0, ``std``^2), the lecture's "small random numbers" (std 0.01). Fine
      for shallow nets; in a deep net the activations shrink by ``std * sqrt(fan_in)``
      every layer and collapse to zero, so nothing learns.
    - ``"xavier"``: Glorot & Bengio 2010's normalised initialisation, uniform with
      Var = 2 / (fan_in + fan_out): keeps the variance of tanh (or linear) nets constant.
    - ``"kaiming"``: He et al. 2015 ("Delving deep into rectifiers", MSRA), Gaussian with
      Var = gain^2 / fan, where gain^2 = 2 for ``nonlinearity="relu"`` (ReLU halves the
      variance) and ``fan`` is ``fan_in`` (forward signal) or ``fan_out`` (backward
      signal, as in torchvision's ResNets).
    - ``"default"``: leave every parameter as PyTorch (or the model's constructor) set it
      (only ``zero_init_residual`` still applies).

    Weights of ``nn.Linear``/``nn.Conv*`` layers get the scheme and their biases zeros;
    normalisation layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) get scale 1,
    shift 0 and fresh running statistics. Other parameters are left alone. Note that this
    replaces any initialisation the model's constructor chose (e.g. VGG's or GoogLeNet's).
    ``zero_init_residual=True`` then zeroes the last scale of every residual block that
    offers ``zero_init_last()`` (Goyal et al. 2017), so each block starts as the identity.
    """
    if not isinstance(model, nn.Module):
        raise CnnlabError(f"init_weights needs an nn.Module, got {type(model).__name__}")
    key = init_scheme_name(scheme)
    if isinstance(std, bool) or not isinstance(std, (int, float)) or not math.isfinite(std) or std <= 0:
        raise CnnlabError(f"std must be a positive finite number, got {std!r}")
    if nonlinearity not in _NONLINEARITIES:
        raise CnnlabError(f"nonlinearity must be one of {', '.join(_NONLINEARITIES)}, got {nonlinearity!r}")
    if mode not in ("fan_in", "fan_out"):
        raise CnnlabError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    for module in model.modules() if key != "default" else ():
        if isinstance(module, _WEIGHT_LAYERS):
            weight = module.weight
            if key == "kaiming":
                nn.init.kaiming_normal_(weight, mode=mode, nonlinearity=nonlinearity)
            elif key == "xavier":
                nn.init.xavier_uniform_(weight)
            else:
                nn.init.normal_(weight, mean=0.0, std=float(std))
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, _NORM_LAYERS):
            if getattr(module, "weight", None) is not None:
                nn.init.ones_(module.weight)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.modules.batchnorm._NormBase) and module.track_running_stats:
                module.reset_running_stats()
    if zero_init_residual:
        for module in model.modules():
            if hasattr(module, "zero_init_last") and module is not model:
                module.zero_init_last()
    return model


def init_he_fan_out(
    model: nn.Module,
    linear_weight: Callable[[torch.Tensor], object] | None = None,
    zero_linear_bias: bool = False,
) -> None:
    """He-normal convolutions with fan_out, normalisation layers as the identity.

    He et al. 2015 ("Delving deep into rectifiers"): with ``fan_out`` the variance of the
    backward signal stays constant through ReLU layers; this is the initialisation of the
    ResNet paper and of torchvision's ResNet, DenseNet, MobileNet and EfficientNet.
    Convolution biases start at zero; BN/GN/LayerNorm at scale 1, shift 0. Linear layers
    keep PyTorch's default unless ``linear_weight`` (e.g. ``N(0, 0.01)``) is given or
    ``zero_linear_bias`` asks for a zero bias (a given ``linear_weight`` implies it).
    """
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm, nn.LayerNorm)):
            if module.weight is not None:
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            if linear_weight is not None:
                linear_weight(module.weight)
            if (linear_weight is not None or zero_linear_bias) and module.bias is not None:
                nn.init.zeros_(module.bias)
