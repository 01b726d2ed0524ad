"""NASNet's CIFAR-10 network: searched cells stacked at 32x32 (Zoph et al., CVPR 2018, section 4.1, Figure 2).

On CIFAR-10 the paper stacks the two searched cells without ImageNet's strided stem: a
3x3 convolution, N normal cells, a reduction cell, N normal cells, a reduction cell, N
normal cells, then global average pooling and the classifier. The filters double at each
reduction; "N @ P" names N and the width P of the penultimate layer. NASNet-A (6 @ 768)
has 3.3M parameters and 3.41% error (Table 1).

The cells are arguments, so the same network is the child of a cell search (``cnnlab nas
--space cells``): ``normal`` and ``reduction`` are lists of blocks
``[left_op, left_input, right_op, right_input]`` over the hidden states numbered as in
:class:`~cnnlab.models.nasnet.CellGenotype` (0 = h_i, 1 = h_{i-1}, 2.. the blocks' outputs).
The cell's output concatenates the block outputs no other block reads (the paper's rule for
searched cells), unless ``normal_concat``/``reduction_concat`` name the states, as
NASNet-A's released normal cell does (it also concatenates h_{i-1}).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormAct
from ..layers.nas_cells import NAS_BN_EPS
from ..layers.weight_init import init_he_fan_out
from ..registry import register_model
from .nasnet import (NASNET_A_NORMAL, NASNET_A_REDUCTION, NASNET_PAPER, CellGenotype, NASNetHead, NasNetCell,
                     run_cells)

#: The operations a cell block may apply (the NASNet menu's entries that NasNetCell builds).
CELL_OPS = ("sep3x3", "sep5x5", "sep7x7", "avg3x3", "max3x3", "identity")


def _blocks_of(genotype: CellGenotype) -> list[list]:
    return [[left_op, left_in, right_op, right_in] for (left_op, left_in), (right_op, right_in) in genotype.blocks]


def loose_ends(blocks) -> tuple[int, ...]:
    """The block outputs that no later block reads: what a searched cell concatenates (paper, section 3)."""
    read = {block[1] for block in blocks} | {block[3] for block in blocks}
    return tuple(state for state in range(2, 2 + len(blocks)) if state not in read)


def cell_genotype(blocks, concat=None, *, name: str = "cell") -> CellGenotype:
    """A :class:`CellGenotype` from ``[[left_op, left_input, right_op, right_input], ...]`` (a recipe's
    plain lists), checked: known operations, inputs that exist before the block; ``concat``
    defaults to the :func:`loose_ends`."""
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise CnnlabError(f"{name} must be a non-empty list of blocks [left_op, left_input, right_op, right_input]")
    parsed = []
    for index, block in enumerate(blocks):
        if not isinstance(block, (list, tuple)) or len(block) != 4:
            raise CnnlabError(f"{name} block {index} must be [left_op, left_input, right_op, right_input], "
                              f"got {block!r}")
        left_op, left_in, right_op, right_in = block
        for op in (left_op, right_op):
            if op not in CELL_OPS:
                raise CnnlabError(f"{name} block {index}: unknown operation {op!r}; choose one of {', '.join(CELL_OPS)}")
        for source in (left_in, right_in):
            if isinstance(source, bool) or not isinstance(source, int) or not 0 <= source < 2 + index:
                raise CnnlabError(f"{name} block {index} reads hidden state {source!r}; it may read 0 (h_i), "
                                  f"1 (h_i-1) or the output of an earlier block (2..{1 + index})")
        parsed.append(((left_op, left_in), (right_op, right_in)))
    if concat is None:
        concat = loose_ends(blocks)
    concat = tuple(concat)
    if not concat or any(isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < 2 + len(blocks)
                         for i in concat):
        raise CnnlabError(f"{name} concat must list hidden states 0..{1 + len(blocks)}, got {list(concat)}")
    return CellGenotype(blocks=tuple(parsed), concat=concat)


class NASNetCIFAR(NASNetHead):
    """NASNet's CIFAR network, "``num_normal_cells`` @ 6 x 4 x ``filters``" for NASNet-A (paper, Figure 2).

    ``stem``: 3x3 conv to ``stem_multiplier x filters`` channels and BN (no ReLU: every cell
    operation starts with one). ``cells``: three stages of ``num_normal_cells`` normal cells
    at widths F, 2F and 4F (``F = filters``), with a reduction cell at 2F and 4F between
    them; every cell reads the outputs of the two cells before it (the first reads the stem
    output twice). Then ReLU, global average pooling, ``dropout`` and ``fc``. The auxiliary
    head and ScheduledDropPath of the paper's long training are left out (``drop_path_rate``
    is the plain per-sample rate, scaled by cell position).
    """

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        normal: list | None = None,
        reduction: list | None = None,
        normal_concat: list | None = None,
        reduction_concat: list | None = None,
        num_normal_cells: int = 6,
        filters: int = 32,
        stem_multiplier: int = 3,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        self._check_sizes(num_classes, in_chans)
        for key, value in (("num_normal_cells", num_normal_cells), ("filters", filters),
                           ("stem_multiplier", stem_multiplier)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise CnnlabError(f"{key} must be a positive integer, got {value!r}")
        if filters < 2:
            raise CnnlabError(f"filters must be at least 2 (a factorized reduction splits them in two), got {filters}")
        if not 0.0 <= drop_rate < 1.0 or not 0.0 <= drop_path_rate < 1.0:
            raise CnnlabError(f"drop_rate and drop_path_rate must lie in [0, 1), got {drop_rate}, {drop_path_rate}")
        if normal is None:
            normal, normal_concat = _blocks_of(NASNET_A_NORMAL), normal_concat or list(NASNET_A_NORMAL.concat)
        if reduction is None:
            reduction, reduction_concat = (_blocks_of(NASNET_A_REDUCTION),
                                           reduction_concat or list(NASNET_A_REDUCTION.concat))
        normal_cell = cell_genotype(normal, normal_concat, name="normal")
        reduction_cell = cell_genotype(reduction, reduction_concat, name="reduction")
        self.num_classes = num_classes

        stem_filters = stem_multiplier * filters
        self.stem = ConvNormAct(in_chans, stem_filters, 3, act=None, eps=NAS_BN_EPS)
        plan = []
        for stage in range(3):
            width = filters * 2 ** stage
            if stage > 0:
                plan.append((reduction_cell, width, True))
            plan += [(normal_cell, width, False)] * num_normal_cells
        cells = []
        # Channels and resolution level (reductions so far) of h_i and h_{i-1}. The first cell
        # reads the stem output as both, its h_{i-1} brought to the cell's width by a 1x1 conv as
        # any other (NASNet-A's normal cell concatenates h_{i-1}, so it must have that width).
        current = previous = (stem_filters, 0)
        for index, (genotype, width, is_reduction) in enumerate(plan):
            cell = NasNetCell(genotype, current[0], previous[0], width,
                              reduction=is_reduction, reduce_prev=previous[1] < current[1],
                              drop_path=drop_path_rate * (index + 1) / len(plan))
            cells.append(cell)
            current, previous = (cell.out_channels, current[1] + int(is_reduction)), current
        self.cells = nn.ModuleList(cells)
        self.num_features = cells[-1].out_channels
        self.act = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        # He initialisation with fan_out, the variance scaling of the authors' TF-slim code.
        init_he_fan_out(self, zero_linear_bias=True)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(run_cells(self.stem(x), self.cells))


# weight_layers counted as for nasnet_a_mobile (conv and FC layers on the longest path, a
# separable conv as one layer): stem 1, each normal cell 3 (1x1, then a stacked separable
# op), each reduction cell 5, fc 1: 1 + 18 x 3 + 2 x 5 + 1 = 66.
@register_model(
    family="nasnet", paper=NASNET_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
    weight_layers=66, reference_top1=96.59,
    reference_note=("NASNet paper Table 1: NASNet-A (6 @ 768), 3.3M parameters, 3.41% error on CIFAR-10 "
                    "(2.65% with cutout), trained 600 epochs with ScheduledDropPath and an auxiliary head."),
)
def nasnet_cifar(num_classes: int = 10, in_chans: int = 3, **kwargs) -> NASNetCIFAR:
    """NASNet's CIFAR-10 network; by default NASNet-A (6 @ 768): N = 6, 32 filters in the first stage.
    ``normal``/``reduction`` build it from other cells (a NAS child)."""
    return NASNetCIFAR(num_classes=num_classes, in_chans=in_chans, **kwargs)
