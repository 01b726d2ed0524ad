"""Receptive fields: the input region each unit of each layer can see.

Lecture: "stack of three 3x3 conv (stride 1) layers has same effective receptive field
as one 7x7 conv layer"; in general L stacked 3x3 stride-1 convs see 2L+1 pixels.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torch import nn

from .summary import field_jump, field_size, summarize


@dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer's output: ``size`` input pixels, units ``jump`` pixels apart."""

    name: str
    type: str
    size: int | list[int]
    jump: int | list[int]


def receptive_field(model: nn.Module | str, input_size: tuple[int, int, int] | None = None) -> list[ReceptiveField]:
    """Receptive field after every layer of any model (a registered name or an instance).

    Computed from the ops the model really runs (see ``analysis.tracing``): works for
    branching models (Inception, residual) as well as plain stacks. Sizes are the
    theoretical field, which may exceed the image when padding is involved.
    """
    summary = summarize(model, input_size)
    return [
        ReceptiveField(r.name, r.type, field_size(r.receptive_field), field_jump(r.receptive_field))
        for r in summary.layers
        if r.receptive_field is not None
    ]


def stacked_receptive_field(kernel_sizes: Sequence[int], strides: Sequence[int] | None = None,
                            dilations: Sequence[int] | None = None) -> int:
    """Closed form for a plain stack: r = 1 + sum_l d_l (k_l - 1) prod_{i<l} s_i.

    ``stacked_receptive_field([3, 3, 3]) == 7``: three 3x3 convs see what one 7x7 sees.
    """
    strides = strides or [1] * len(kernel_sizes)
    dilations = dilations or [1] * len(kernel_sizes)
    size, jump = 1, 1
    for kernel, stride, dilation in zip(kernel_sizes, strides, dilations):
        size += dilation * (kernel - 1) * jump
        jump *= stride
    return size
