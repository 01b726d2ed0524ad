"""FractalNet (Larsson, Maire, Shakhnarovich, ICLR 2017): ultra-deep nets without residuals.

The lecture's counterpoint to ResNet: depth can be trained without identity shortcuts
if the net contains paths of many lengths. One expansion rule,
``f_{C+1}(z) = join(f_C(f_C(z)), conv(z))``, generates blocks with ``C`` columns of
``1, 2, 4, ..., 2^(C-1)`` convolutions; shallow columns give short paths for the
gradient early in training and the deep column carries the depth. Drop-path, the
paper's regulariser, randomly silences join inputs (local) or keeps a single column
for a whole mini-batch (global), so each column also works alone; the full net runs
at test time.

The CIFAR setup of the paper's section 4: ``B = 5`` blocks with 64, 128, 256, 512, 512
channels, each followed by a 2x2 max-pool (32x32 -> 1x1), dropout rates 0, 0.1, 0.2,
0.3, 0.4 per block, local drop-path rate 0.15, local and global drop-path mixed 50/50
per mini-batch, then a linear classifier. Depth along the longest path is
``B * 2^(C-1)`` convolutions: 20 for ``C = 3`` and 40 for ``C = 4`` (the paper's
Figure 1 example).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers.fractal import FractalBlock
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

FRACTALNET_PAPER = Paper(
    title="FractalNet: Ultra-Deep Neural Networks without Residuals",
    authors="G. Larsson, M. Maire, G. Shakhnarovich",
    venue="ICLR",
    year=2017,
)

CIFAR_CHANNELS = (64, 128, 256, 512, 512)
CIFAR_DROP_RATES = (0.0, 0.1, 0.2, 0.3, 0.4)


def _init_weights(model: nn.Module) -> None:
    # The authors used Caffe's Xavier; the house default (He init, fan_out) suits the
    # ReLUs after every conv and BN keeps both well scaled.
    init_he_fan_out(model, zero_linear_bias=True)


class FractalNet(ClassifierModel):
    """``B`` fractal blocks of ``C`` columns, each followed by 2x2 max-pooling, then ``fc``.

    ``blocks[i]`` is a :class:`~cnnlab.layers.fractal.FractalBlock` with
    ``channels[i]`` filters and dropout ``drop_rates[i]``; ``pools[i]`` halves the
    resolution after it (the paper's Figure 1 pools after each block's last join; the
    authors' Caffe code pools each column just before it, a swap it calls a
    convenience). A global average pool (a no-op on CIFAR, where five pools leave 1x1)
    and ``fc`` classify.

    Training mode: each forward pass (mini-batch) uses global drop-path with probability
    ``global_drop_ratio`` (a column drawn uniformly, the same in every block; it is
    recorded in ``sampled_column``), otherwise local drop-path with rate
    ``local_drop_prob`` at every join. Eval mode runs the full net deterministically;
    :meth:`forward_column` runs a single column (the paper's "deepest column alone").
    """

    classifier_name = "fc"

    def __init__(
        self,
        columns: int = 3,
        channels: Sequence[int] = CIFAR_CHANNELS,
        drop_rates: Sequence[float] | float = CIFAR_DROP_RATES,
        local_drop_prob: float = 0.15,
        global_drop_ratio: float = 0.5,
        num_classes: int = 10,
        in_chans: int = 3,
    ):
        super().__init__()
        if not isinstance(columns, int) or isinstance(columns, bool) or columns < 1:
            raise CnnlabError(f"columns must be an integer >= 1 (the paper uses 3 or 4), got {columns!r}")
        channels = tuple(channels)
        if not channels or any(not isinstance(c, int) or isinstance(c, bool) or c < 1 for c in channels):
            raise CnnlabError(f"channels must be one or more positive widths, one per block, got {channels}")
        if isinstance(drop_rates, (int, float)) and not isinstance(drop_rates, bool):
            drop_rates = (float(drop_rates),) * len(channels)
        drop_rates = tuple(drop_rates)
        if len(drop_rates) != len(channels):
            raise CnnlabError(f"drop_rates must give one dropout rate per block ({len(channels)}), got {drop_rates}")
        if isinstance(global_drop_ratio, bool) or not isinstance(global_drop_ratio, (int, float)) \
                or not 0.0 <= global_drop_ratio <= 1.0:
            raise CnnlabError(f"global_drop_ratio must be in [0, 1] (the fraction of mini-batches trained with "
                              f"global drop-path; 0.5 in the paper), got {global_drop_ratio!r}")
        self.columns = columns
        self.num_classes = num_classes
        self.global_drop_ratio = float(global_drop_ratio)
        self.sampled_column: int | None = None

        blocks, pools = [], []
        width = in_chans
        for out_channels, drop_rate in zip(channels, drop_rates):
            blocks.append(FractalBlock(width, out_channels, columns, drop_rate=drop_rate,
                                       local_drop_prob=local_drop_prob))
            pools.append(nn.MaxPool2d(kernel_size=2, stride=2))
            width = out_channels
        self.blocks = nn.ModuleList(blocks)
        self.pools = nn.ModuleList(pools)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.num_features = width
        self.fc = nn.Linear(width, num_classes)
        _init_weights(self)

    @property
    def depth(self) -> int:
        """Convolutions along the longest path: ``B * 2^(C-1)``."""
        return len(self.blocks) * 2 ** (self.columns - 1)

    def _sample_column(self) -> int | None:
        # Global drop-path is drawn once per mini-batch; "local" is the per-join default.
        if self.training and self.global_drop_ratio > 0 and float(torch.rand(())) < self.global_drop_ratio:
            return int(torch.randint(1, self.columns + 1, ()))
        return None

    def _run(self, x: torch.Tensor, column: int | None) -> torch.Tensor:
        for block, pool in zip(self.blocks, self.pools):
            x = pool(block(x, column))
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        self.sampled_column = self._sample_column()
        return self._run(x, self.sampled_column)

    def forward_column(self, x: torch.Tensor, column: int) -> torch.Tensor:
        """Logits of the sub-network made of column ``column`` alone (1 = shallowest, ``C`` = deepest).

        The anytime property of the paper's section 4.3: column ``j`` is a plain chain of
        ``B * 2^(j-1)`` convs sharing the full net's weights.
        """
        if not isinstance(column, int) or isinstance(column, bool) or not 1 <= column <= self.columns:
            raise CnnlabError(f"column must be an integer in [1, {self.columns}] (1 = shallowest), got {column!r}")
        return self.forward_head(self._run(x, column))


def _fractalnet(default_columns: int, num_classes: int, in_chans: int, **kwargs) -> FractalNet:
    kwargs.setdefault("columns", default_columns)
    return FractalNet(num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="fractalnet", paper=FRACTALNET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
    weight_layers=21, reference_top1=95.40,
    reference_note="FractalNet paper Table 1: CIFAR-10+ (pad/crop/flip augmentation) test error 4.60% with "
                   "drop-path + dropout, 5.22% without; 20 convs on the longest path + the classifier. The "
                   "table lists 38.6M parameters; this layout (B=5, C=3, widths 64-512) has 33.7M.",
)
def fractalnet20(num_classes: int = 10, in_chans: int = 3, **kwargs) -> FractalNet:
    """FractalNet-20 for CIFAR: 5 blocks of C=3 columns (depth 5 * 2^2 = 20), the paper's main CIFAR net."""
    return _fractalnet(3, num_classes, in_chans, **kwargs)


@register_model(
    family="fractalnet", paper=FRACTALNET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
    weight_layers=41,
    reference_note="The paper's 40-layer net (B=5, C=4, its Figure 1); no reference accuracy recorded here. "
                   "Its table lists 22.9M parameters for the 40-layer net, fewer than for the 20-layer one, so "
                   "that run must use narrower blocks than 64-512; this layout has 76.1M.",
)
def fractalnet40(num_classes: int = 10, in_chans: int = 3, **kwargs) -> FractalNet:
    """FractalNet-40 for CIFAR: 5 blocks of C=4 columns (depth 5 * 2^3 = 40), the paper's Figure 1."""
    return _fractalnet(4, num_classes, in_chans, **kwargs)
