"""Fractal blocks and drop-path (Larsson, Maire, Shakhnarovich, "FractalNet: Ultra-Deep
Neural Networks without Residuals", ICLR 2017).

The expansion rule ``f_1(z) = conv(z)``, ``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``
generates a block with ``C`` interleaved columns: column ``j`` is a chain of
``2^(j-1)`` convolutions, so the block is ``2^(C-1)`` layers deep along its longest path
and has ``2^C - 1`` convolutions in all. Joins take the element-wise *mean* of their
inputs (not a sum, not a concatenation), so any subset of the inputs gives an output
of the same scale: that is what makes drop-path possible. There are no identity
shortcuts anywhere; every signal passes through a conv and a nonlinearity.

Drop-path (the paper's section 3.1) regularises the co-adaptation of columns:

- *local*: each join drops each of its inputs with probability ``p`` (0.15 in the
  paper), keeping at least one;
- *global*: a single column is chosen for the whole network and only it is used, which
  trains every column to be a strong predictor on its own.

At test time every column runs and every join averages all its inputs.
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from .conv_norm_act import ConvNormAct


def _check_probability(kind: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise CnnlabError(f"{kind}: {name} must be in [0, 1), got {value!r}")
    return float(value)


class FractalJoin(nn.Module):
    """Element-wise mean of its inputs, with local drop-path during training.

    In training mode (and ``drop_prob > 0``) each input is dropped with probability
    ``drop_prob``, independently, once per mini-batch; if every input was dropped one
    is kept at random, so the output is always the mean of a non-empty subset. In eval
    mode it is the plain mean of all inputs. A single input passes through unchanged.
    """

    def __init__(self, drop_prob: float = 0.15):
        super().__init__()
        self.drop_prob = _check_probability("FractalJoin", "drop_prob", drop_prob)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        if len(inputs) == 1:
            return inputs[0]
        if self.training and self.drop_prob > 0:
            # Sampled on the host (tiny, and no device synchronisation): one mask per batch.
            keep = (torch.rand(len(inputs)) >= self.drop_prob).tolist()
            if not any(keep):
                keep[int(torch.randint(len(inputs), ()))] = True
            inputs = [x for x, kept in zip(inputs, keep) if kept]
            if len(inputs) == 1:
                return inputs[0]
        return torch.stack(inputs, 0).mean(0)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class FractalConv(ConvNormAct):
    """FractalNet's conv unit: 3x3 conv -> dropout -> BN -> ReLU.

    The dropout sits between the convolution and its BatchNorm, where the authors'
    released Caffe generator puts it; the paper fixes one rate per block. Children:
    ``conv``, ``bn``, ``act`` (as :class:`~cnnlab.layers.ConvNormAct`) and ``drop``.
    """

    def __init__(self, in_channels: int, out_channels: int, drop_rate: float = 0.0):
        super().__init__(in_channels, out_channels, kernel_size=3)
        self.drop = nn.Dropout(_check_probability("FractalConv", "drop_rate", drop_rate))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.drop(self.conv(x))))


class FractalBlock(nn.Module):
    """The fractal ``f_C``: built by the expansion rule, one child per term of it.

    ``shallow`` is the ``conv(z)`` term (column 1); ``deep_first`` and ``deep_second``
    are the two copies of ``f_{C-1}`` composed as ``f_{C-1}(f_{C-1}(z))`` (their columns
    become columns 2..C of this block). As in the paper's Figure 1, joins that meet at
    the same point are one join: the inner ``f_{C-1}``'s last join is merged with this
    block's, so the block ends with a single mean over all ``C`` columns (and, inside,
    the join after ``deep_first`` averages its ``C-1`` columns). Each column's first conv
    maps ``in_channels`` to ``out_channels``; every other conv keeps ``out_channels``.

    ``forward(x, column=None)``: with ``column=j`` (1 = shallowest, ``C`` = deepest) only
    that column is computed and returned; this is global drop-path, or the paper's
    "deepest column alone" network at test time.
    """

    def __init__(self, in_channels: int, out_channels: int, columns: int, drop_rate: float = 0.0,
                 local_drop_prob: float = 0.15):
        super().__init__()
        if not isinstance(columns, int) or isinstance(columns, bool) or columns < 1:
            raise CnnlabError(f"FractalBlock: columns must be an integer >= 1, got {columns!r}")
        self.columns = columns
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.shallow = FractalConv(in_channels, out_channels, drop_rate)
        if columns > 1:
            self.deep_first = FractalBlock(in_channels, out_channels, columns - 1, drop_rate, local_drop_prob)
            self.deep_second = FractalBlock(out_channels, out_channels, columns - 1, drop_rate, local_drop_prob)
        self.join = FractalJoin(local_drop_prob)

    @property
    def depth(self) -> int:
        """Convolutions on the longest path: ``2^(C-1)``."""
        return 2 ** (self.columns - 1)

    def _check_column(self, column: int) -> None:
        if not isinstance(column, int) or isinstance(column, bool) or not 1 <= column <= self.columns:
            raise CnnlabError(f"column must be an integer in [1, {self.columns}] (1 = shallowest), got {column!r}")

    def column_outputs(self, x: torch.Tensor, column: int | None = None) -> list[torch.Tensor]:
        """The inputs of this block's final join, shallowest column first (one if ``column`` is set)."""
        if column is not None:
            self._check_column(column)
            if column == 1:
                return [self.shallow(x)]
            return self.deep_second.column_outputs(self.deep_first(x, column - 1), column - 1)
        outputs = [self.shallow(x)]
        if self.columns > 1:
            outputs += self.deep_second.column_outputs(self.deep_first(x))
        return outputs

    def column_path(self, column: int) -> list[FractalConv]:
        """The convolution units of column ``column``, in the order they run (``2^(column-1)`` of them)."""
        self._check_column(column)
        if column == 1:
            return [self.shallow]
        return self.deep_first.column_path(column - 1) + self.deep_second.column_path(column - 1)

    def forward(self, x: torch.Tensor, column: int | None = None) -> torch.Tensor:
        return self.join(self.column_outputs(x, column))

