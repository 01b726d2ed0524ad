"""Inverted residual with linear bottleneck (Sandler et al. 2018, "MobileNetV2") and EfficientNet's MBConv.

A ResNet bottleneck squeezes the channels, filters, and widens them again, with the
shortcut between the wide ends. MobileNetV2 *inverts* it: a 1x1 convolution expands a
narrow input ``t`` times (``t = 6``), a depthwise 3x3 convolution filters the wide
tensor cheaply, and a 1x1 convolution projects back to a narrow output, with the
shortcut between the narrow ends. The projection has no activation (the "linear
bottleneck"): the paper argues (section 3.2) that a ReLU on a low-dimensional
representation destroys information that the wide one still carried.

:class:`InvertedResidual` has torchvision's MobileNetV2 key layout (``conv.N``);
:class:`MBConv` is the same block as EfficientNet uses it (Tan & Le 2019, after MnasNet):
with squeeze-and-excitation and SiLU, in torchvision's EfficientNet layout
(``block.N``), so both families load torchvision checkpoints unchanged.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import CnnlabError
from .conv_norm_act import ConvNormActSequential
from .dropout import DropPath
from .norm import get_norm
from .squeeze_excite import SqueezeExcite


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to the nearest multiple of ``divisor``, never below 90% of ``value``.

    The rule of the MobileNet/EfficientNet reference code (what "round to multiples of
    8" means in both papers): widths that are multiples of 8 suit vector hardware, and
    rounding down by more than 10% would change the width multiplier noticeably, so
    such cases go one multiple up instead. ``min_value`` (default ``divisor``) is a floor.
    """
    if divisor < 1:
        raise CnnlabError(f"channel divisor must be at least 1, got {divisor}")
    floor = divisor if min_value is None else min_value
    nearest = int(value + divisor / 2) // divisor * divisor
    rounded = max(floor, nearest)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


class InvertedResidual(nn.Module):
    """MobileNetV2's block: expand 1x1 conv-BN-act, depthwise kxk conv-BN-act, project 1x1 conv-BN.

    ``hidden = round(in_channels * expand_ratio)``; with ``expand_ratio = 1`` the
    expansion is left out (MobileNetV2's first block). The output adds the input when the
    shapes agree (``stride == 1`` and ``in_channels == out_channels``), the residual
    branch then passing through stochastic depth (``drop_path``) while training.
    ``act`` is ReLU6 as in the paper (cheap in low precision); ``se_ratio`` inserts
    squeeze-and-excitation after the depthwise convolution with
    ``int(in_channels * se_ratio)`` squeeze channels (the block's *input* width, as
    EfficientNet does), its inner activation ``se_act`` (default: ``act``).

    Children: a single ``nn.Sequential`` named ``conv`` holding ``[expand], depthwise,
    [se], project conv, project norm`` (torchvision's ``InvertedResidual`` keys).
    """

    # The residual branch's name in the state_dict; subclasses with another checkpoint
    # layout override it, ``_hidden_channels`` and ``_projection``.
    branch_name = "conv"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        expand_ratio: float = 6,
        kernel_size: int = 3,
        act: str = "relu6",
        se_ratio: float | None = None,
        se_act: str | None = None,
        drop_path: float = 0.0,
        norm: str | None = "batchnorm",
        **norm_kwargs,
    ):
        super().__init__()
        name = type(self).__name__
        if in_channels < 1 or out_channels < 1:
            raise CnnlabError(f"{name} needs positive channel counts, got {in_channels} -> {out_channels}")
        if stride < 1:
            raise CnnlabError(f"{name} stride must be at least 1, got {stride}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise CnnlabError(f"{name} kernel_size must be odd and positive (3, 5, ...), got {kernel_size}")
        if not (expand_ratio > 0 and math.isfinite(expand_ratio)):
            raise CnnlabError(f"{name} expand_ratio must be > 0 (MobileNetV2 uses 6), got {expand_ratio}")
        if se_ratio is not None and not 0 < se_ratio <= 1:
            raise CnnlabError(f"{name} se_ratio must be in (0, 1] (EfficientNet uses 0.25), got {se_ratio}")

        hidden = self._hidden_channels(in_channels, expand_ratio)
        layers: list[nn.Module] = []
        if hidden != in_channels:
            layers.append(ConvNormActSequential(in_channels, hidden, 1, norm=norm, act=act, **norm_kwargs))
        # groups == channels: one kxk filter per channel, the depthwise half of a separable conv.
        layers.append(ConvNormActSequential(hidden, hidden, kernel_size, stride, groups=hidden,
                                            norm=norm, act=act, **norm_kwargs))
        if se_ratio is not None:
            layers.append(SqueezeExcite(hidden, squeeze_channels=max(1, int(in_channels * se_ratio)),
                                        act=act if se_act is None else se_act))
        layers += self._projection(hidden, out_channels, norm, norm_kwargs)
        self.add_module(self.branch_name, nn.Sequential(*layers))

        self.in_channels = in_channels
        self.hidden_channels = hidden
        self.out_channels = out_channels
        self.use_residual = stride == 1 and in_channels == out_channels
        # Identity when off, so a model without stochastic depth traces as the paper's.
        self.drop_path = DropPath(drop_path) if drop_path > 0 else nn.Identity()

    @staticmethod
    def _hidden_channels(in_channels: int, expand_ratio: float) -> int:
        return int(round(in_channels * expand_ratio))

    @staticmethod
    def _projection(hidden: int, out_channels: int, norm: str | None, norm_kwargs: dict) -> list[nn.Module]:
        # Linear bottleneck: conv + norm and deliberately no activation.
        has_norm = norm not in (None, "none")
        layers: list[nn.Module] = [nn.Conv2d(hidden, out_channels, 1, bias=not has_norm)]
        if has_norm:
            layers.append(get_norm(norm, out_channels, **norm_kwargs))
        return layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self._modules[self.branch_name](x)
        if self.use_residual:
            out = self.drop_path(out) + x
        return out


class MBConv(InvertedResidual):
    """EfficientNet's mobile inverted bottleneck: expand, depthwise kxk, SE, linear project; SiLU.

    The :class:`InvertedResidual` of MobileNetV2 with the changes of MnasNet/EfficientNet:
    SiLU ("swish") instead of ReLU6, 3x3 or 5x5 depthwise kernels, squeeze-and-excitation
    on the expanded tensor with ``in_channels // 4`` squeeze channels (``se_ratio=0.25``)
    and SiLU inside, and the expanded width rounded to a multiple of 8. Children: one
    ``nn.Sequential`` named ``block`` holding ``[expand], depthwise, se, project``, each
    conv unit a :class:`~cnnlab.layers.ConvNormActSequential` (torchvision's ``MBConv``
    keys, e.g. ``block.3.1.running_var``).
    """

    branch_name = "block"

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, expand_ratio: float = 6,
                 kernel_size: int = 3, act: str = "silu", se_ratio: float | None = 0.25, **kwargs):
        # Only the defaults differ from MobileNetV2's block: SiLU, and SE with ratio 1/4.
        super().__init__(in_channels, out_channels, stride, expand_ratio, kernel_size, act, se_ratio, **kwargs)

    @staticmethod
    def _hidden_channels(in_channels: int, expand_ratio: float) -> int:
        return make_divisible(in_channels * expand_ratio, 8)

    @staticmethod
    def _projection(hidden: int, out_channels: int, norm: str | None, norm_kwargs: dict) -> list[nn.Module]:
        return [ConvNormActSequential(hidden, out_channels, 1, norm=norm, act=None, **norm_kwargs)]
