"""Claims about the layers every CNN is made of: the 2025 slides' convolution and pooling recaps.

The convolution recap (a 3x32x32 image through six 5x5 filters) is traced through an
``nn.Conv2d`` on the meta device; the pooling recap runs the slide's own 4x4 depth slice
through ``nn.MaxPool2d`` and ``nn.AvgPool2d`` (2x2, stride 2) and reads the outputs.
"""
from __future__ import annotations

import torch
from torch import nn

from .core import SLIDES_2025, claim
from .measure import on_meta

# The slide's "Single depth slice" that both pooling examples start from (its Table 3).
_POOLING_INPUT = ((1, 1, 2, 4),
                  (5, 6, 7, 8),
                  (3, 2, 1, 0),
                  (1, 2, 3, 4))


def _recap_conv() -> nn.Conv2d:
    # "3x32x32 image", "6x3x5x5 filters": six 5x5 filters over 3 channels, stride 1, no padding.
    return on_meta(lambda: nn.Conv2d(3, 6, kernel_size=5))


@claim(id="conv-recap-output", text="Six 5x5 filters on a 3x32x32 image give a 6x28x28 output",
       source=SLIDES_2025, quote="6x28x28 output image!", lecture_value=(6, 28, 28), unit="CxHxW", tolerance=0,
       method="nn.Conv2d(3, 6, 5): traced output shape on 1x3x32x32 (meta device)")
def _conv_recap_output():
    conv = _recap_conv()
    with torch.no_grad():
        out = conv(torch.zeros(1, 3, 32, 32, device="meta"))
    return tuple(out.shape[1:])


@claim(id="conv-recap-filters", text="The six filters form a 6x3x5x5 weight tensor", source=SLIDES_2025,
       quote="6x3x5x5", lecture_value=(6, 3, 5, 5), unit="filters x C x H x W", tolerance=0,
       method="nn.Conv2d(3, 6, 5).weight.shape")
def _conv_recap_filters():
    return tuple(_recap_conv().weight.shape)


def _pool(layer: nn.Module) -> tuple[float, ...]:
    """The slide's depth slice through a pooling layer, the output read row by row."""
    x = torch.tensor(_POOLING_INPUT, dtype=torch.float64).view(1, 1, 4, 4)
    with torch.no_grad():
        return tuple(layer(x).flatten().tolist())


@claim(id="max-pool-recap", text="2x2 max pooling, stride 2, of the slide's 4x4 slice gives [[6, 8], [3, 4]]",
       source=SLIDES_2025, quote="| 6 | 8 | | 3 | 4 |", lecture_value=(6, 8, 3, 4), lecture_text="[[6, 8], [3, 4]]",
       unit="outputs, row by row", tolerance=0,
       method="nn.MaxPool2d(2, 2) on the slide's 4x4 input [[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]")
def _max_pool_recap():
    return _pool(nn.MaxPool2d(kernel_size=2, stride=2))


@claim(id="avg-pool-recap", text="2x2 average pooling, stride 2, of the same slice gives [[3.25, 5.25], [2, 2]]",
       source=SLIDES_2025, quote="| 3.25 | 5.25 | | 2 | 2 |", lecture_value=(3.25, 5.25, 2, 2),
       lecture_text="[[3.25, 5.25], [2, 2]]", unit="outputs, row by row", tolerance=0,
       method="nn.AvgPool2d(2, 2) on the slide's 4x4 input (float64: quarters are exact)")
def _avg_pool_recap():
    return _pool(nn.AvgPool2d(kernel_size=2, stride=2))
