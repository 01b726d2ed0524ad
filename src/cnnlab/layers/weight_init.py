"""The He (MSRA) initialisation most CNN families of the zoo start from."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn


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
