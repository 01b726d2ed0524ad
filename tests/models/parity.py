"""Helpers of the torchvision-parity tests: parameter counts and BN layers that are not the identity."""
from __future__ import annotations

import torch
from torch import nn


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise_bn_stats(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm distinct statistics and affine parameters.

    Fresh BN layers are the identity in eval mode, which would hide a swapped or
    misplaced BN; with distinct values, equal logits test the whole key mapping.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)
