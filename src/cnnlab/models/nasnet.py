"""NASNet-A (Zoph et al., "Learning Transferable Architectures for Scalable Image Recognition", CVPR 2018).

Instead of designing a whole network, a controller RNN trained with reinforcement
learning searched for two *cells* on CIFAR-10: a normal cell that keeps the resolution
and a reduction cell that halves it. Each cell has two inputs, the outputs of the two
previous cells (h_i and h_{i-1}), and five blocks; a block picks two hidden states, applies
one operation from a small menu to each and adds the results. The ImageNet network is
the same cells stacked: a stem, then N normal cells per stage with a reduction cell
between stages, the number of filters doubling at each reduction. NASNet-A "N @ P"
names N and the width P of the penultimate layer; the Mobile model is 4 @ 1056.
"""
from __future__ import annotations

from itertools import chain
from typing import NamedTuple

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormAct
from ..layers.dropout import DropPath
from ..layers.nas_cells import NAS_BN_EPS, FactorizedReduction, NasPool, ReLUConvBN, StackedSeparableConv
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

NASNET_PAPER = Paper(
    title="Learning Transferable Architectures for Scalable Image Recognition",
    authors="B. Zoph, V. Vasudevan, J. Shlens, Q. V. Le",
    venue="CVPR",
    year=2018,
)


class CellGenotype(NamedTuple):
    """A searched cell: five blocks of ``((left op, left input), (right op, right input))`` and the concat.

    Hidden states are numbered as the authors' code does: 0 is the cell's input h_i, 1 the
    previous cell's output h_{i-1}, 2..6 the outputs of blocks 0..4. ``concat`` lists the
    states whose concatenation is the cell's output.
    """

    blocks: tuple[tuple[tuple[str, int], tuple[str, int]], ...]
    concat: tuple[int, ...]


# NASNet-A as found by the search (paper, Figure 4). The normal cell's output is its five
# block outputs plus h_{i-1} (the released models concatenate it too: hence the 6 x width
# output, 6 x 176 = 1056 at the last stage of the Mobile model).
NASNET_A_NORMAL = CellGenotype(
    blocks=(
        (("sep5x5", 0), ("sep3x3", 1)),
        (("sep5x5", 1), ("sep3x3", 1)),
        (("avg3x3", 0), ("identity", 1)),
        (("avg3x3", 1), ("avg3x3", 1)),
        (("sep3x3", 0), ("identity", 0)),
    ),
    concat=(1, 2, 3, 4, 5, 6),
)
# The reduction cell concatenates the four block outputs no other block consumes.
NASNET_A_REDUCTION = CellGenotype(
    blocks=(
        (("sep5x5", 0), ("sep7x7", 1)),
        (("max3x3", 0), ("sep7x7", 1)),
        (("avg3x3", 0), ("sep5x5", 1)),
        (("identity", 3), ("avg3x3", 2)),
        (("sep3x3", 2), ("max3x3", 0)),
    ),
    concat=(3, 4, 5, 6),
)


def _make_operation(name: str, in_channels: int, channels: int, stride: int) -> nn.Module:
    """One entry of the search space's menu, mapping ``in_channels`` to the cell's ``channels``."""
    if name.startswith("sep"):
        return StackedSeparableConv(in_channels, channels, int(name[3]), stride)
    if name in ("avg3x3", "max3x3"):
        return NasPool(name[:3], in_channels, channels, stride)
    if name == "identity":
        if stride == 1 and in_channels == channels:
            return nn.Identity()
        return ReLUConvBN(in_channels, channels, stride)  # an identity cannot stride or change width
    raise CnnlabError(f"unknown NAS cell operation {name!r}; choose sepKxK, avg3x3, max3x3 or identity")


class NasCellBlock(nn.Module):
    """One block of a cell: ``left(state[a]) + right(state[b])`` (paper, Figure 3, combined by addition).

    ``drop_path`` is ScheduledDropPath (paper, section 4) without the schedule over
    training steps: each non-identity operation's output is dropped per sample.
    """

    def __init__(self, left: nn.Module, right: nn.Module, inputs: tuple[int, int], drop_path: float):
        super().__init__()
        self.left = left
        self.right = right
        self.inputs = inputs
        self.drop_path = DropPath(drop_path)

    def _run(self, op: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = op(x)
        return out if isinstance(op, nn.Identity) else self.drop_path(out)

    def forward(self, states: list[torch.Tensor]) -> torch.Tensor:
        return self._run(self.left, states[self.inputs[0]]) + self._run(self.right, states[self.inputs[1]])

    def extra_repr(self) -> str:
        return f"inputs={self.inputs}"


class NasNetCell(nn.Module):
    """A NASNet cell built from a :class:`CellGenotype` (normal or reduction).

    ``preprocess`` (ReLU, 1x1 conv, BN) brings the input h_i to ``channels``;
    ``preprocess_prev`` does the same for h_{i-1}, by :class:`FactorizedReduction` when
    h_{i-1} has twice the resolution (it comes from before a reduction cell), and is the
    identity when ``prev_channels`` is None (the first cell, whose h_{i-1} is its own raw
    input). In a reduction cell the operations reading h_i or h_{i-1} have stride 2.
    The output concatenates ``genotype.concat``: ``len(concat) * channels`` channels.
    """

    def __init__(
        self,
        genotype: CellGenotype,
        in_channels: int,
        prev_channels: int | None,
        channels: int,
        reduction: bool,
        reduce_prev: bool,
        drop_path: float = 0.0,
    ):
        super().__init__()
        self.preprocess = ReLUConvBN(in_channels, channels)
        if prev_channels is None:
            self.preprocess_prev: nn.Module = nn.Identity()
            state_channels = [channels, in_channels]
        elif reduce_prev:
            self.preprocess_prev = FactorizedReduction(prev_channels, channels, stride=2)
            state_channels = [channels, channels]
        elif prev_channels != channels:
            self.preprocess_prev = ReLUConvBN(prev_channels, channels)
            state_channels = [channels, channels]
        else:
            self.preprocess_prev = nn.Identity()
            state_channels = [channels, channels]

        blocks = []
        for (left_op, left_in), (right_op, right_in) in genotype.blocks:
            ops = []
            for op, source in ((left_op, left_in), (right_op, right_in)):
                if not 0 <= source < len(state_channels):
                    raise CnnlabError(f"cell block reads hidden state {source} before it exists")
                stride = 2 if reduction and source < 2 else 1  # new states already have the reduced size
                ops.append(_make_operation(op, state_channels[source], channels, stride))
            blocks.append(NasCellBlock(ops[0], ops[1], (left_in, right_in), drop_path))
            state_channels.append(channels)
        self.blocks = nn.ModuleList(blocks)
        self.concat = tuple(genotype.concat)
        if reduction and any(i < 2 for i in self.concat):
            raise CnnlabError("a reduction cell cannot concatenate its unreduced inputs")
        self.out_channels = len(self.concat) * channels

    def forward(self, x: torch.Tensor, prev: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess(x), self.preprocess_prev(prev)]
        for block in self.blocks:
            states.append(block(states))
        return torch.cat([states[i] for i in self.concat], dim=1)


def _init_weights(model: nn.Module) -> None:
    # He initialisation with fan_out, the variance scaling of the authors' TF-slim code.
    init_he_fan_out(model, zero_linear_bias=True)


def run_cells(x: torch.Tensor, cells) -> torch.Tensor:
    """NASNet's chain of cells: each cell reads the two previous outputs (h_i, h_{i-1}); the
    first has no earlier cell, so its input serves as both."""
    prev = x
    for cell in cells:
        x, prev = cell(x, prev), x
    return x


class NASNetHead(ClassifierModel):
    """NASNet's head: global average pooling, dropout and the classifier ``fc``."""

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.dropout(torch.flatten(self.avgpool(x), 1))
        return x if pre_logits else self.fc(x)


class NASNet(NASNetHead):
    """NASNet-A for ImageNet, "``num_normal_cells`` @ ``penultimate_filters``" (paper, section 4.2).

    ``stem``: 3x3 conv, stride 2, no padding, ``stem_filters`` channels, BN (no ReLU:
    every cell operation starts with one). ``stem_cells``: two reduction cells at 1/4
    and 1/2 of the first stage's width, bringing 224x224 down to 28x28 cheaply.
    ``cells``: three stages of ``num_normal_cells`` normal cells, with a reduction cell
    before the second and third, widths F, 2F and 4F with
    ``F = penultimate_filters / 24`` (the last normal cell outputs 6 x 4F). Every cell
    reads the outputs of the two cells before it. Then ReLU, global average pooling,
    ``dropout`` (0.5 in the paper's ImageNet models) and ``fc``.

    ``drop_path_rate`` is the per-sample drop rate of the operations in the last cell,
    scaled linearly by cell position (0 for the Mobile model in the authors' code). The
    auxiliary classifier used in training is not built.
    """

    classifier_name = "fc"

    def __init__(
        self,
        num_classes: int = 1000,
        in_chans: int = 3,
        num_normal_cells: int = 4,
        penultimate_filters: int = 1056,
        stem_filters: int = 32,
        drop_rate: float = 0.5,
        drop_path_rate: float = 0.0,
    ):
        super().__init__()
        if not isinstance(num_normal_cells, int) or num_normal_cells < 1:
            raise CnnlabError(f"num_normal_cells (N) must be a positive integer, got {num_normal_cells}")
        if not isinstance(penultimate_filters, int) or penultimate_filters < 96 or penultimate_filters % 24:
            raise CnnlabError(f"penultimate_filters must be a positive multiple of 24 (6 hidden states x 4F), "
                              f"at least 96, got {penultimate_filters}")
        if not isinstance(stem_filters, int) or stem_filters < 1:
            raise CnnlabError(f"stem_filters must be a positive integer, got {stem_filters}")
        if not 0.0 <= drop_rate < 1.0:
            raise CnnlabError(f"drop_rate must be in [0, 1), got {drop_rate}")
        if not 0.0 <= drop_path_rate < 1.0:
            raise CnnlabError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
        self.num_classes = num_classes
        filters = penultimate_filters // 24

        self.stem = ConvNormAct(in_chans, stem_filters, 3, stride=2, padding=0, act=None, eps=NAS_BN_EPS)

        # (genotype, width, is_reduction) for every cell, stem cells first.
        plan = [(NASNET_A_REDUCTION, filters // 4, True), (NASNET_A_REDUCTION, filters // 2, True)]
        for stage in range(3):
            width = filters * 2 ** stage
            if stage > 0:
                plan.append((NASNET_A_REDUCTION, width, True))
            plan += [(NASNET_A_NORMAL, width, False)] * num_normal_cells

        cells = []
        # Channels and resolution level (number of reductions so far) of h_i and h_{i-1}.
        current, previous = (stem_filters, 0), None
        for index, (genotype, width, reduction) in enumerate(plan):
            rate = drop_path_rate * (index + 1) / len(plan)
            cell = NasNetCell(genotype, current[0], None if previous is None else previous[0], width,
                              reduction=reduction, reduce_prev=previous is not None and previous[1] < current[1],
                              drop_path=rate)
            cells.append(cell)
            current, previous = (cell.out_channels, current[1] + int(reduction)), current
        self.stem_cells = nn.ModuleList(cells[:2])
        self.cells = nn.ModuleList(cells[2:])
        self.num_features = cells[-1].out_channels

        self.act = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(drop_rate)
        self.fc = nn.Linear(self.num_features, num_classes)
        _init_weights(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(run_cells(self.stem(x), chain(self.stem_cells, self.cells)))


# weight_layers: the paper gives no layer count. Ours counts conv and FC layers on the
# longest path, a separable conv as one layer (as the Xception paper counts them): stem
# 1, each reduction cell 5 (1x1, then two stacked separable ops), each normal cell 3,
# fc 1: 1 + 2 x 5 + 12 x 3 + 2 x 5 + 1 = 58.
@register_model(
    family="nasnet", paper=NASNET_PAPER, weight_layers=58,
    reference_top1=74.0, reference_top5=91.6,
    reference_note=("NASNet paper Table 2 (mobile-sized models): NASNet-A (4 @ 1056), 5.3M parameters, "
                    "564M multiply-adds, ImageNet val top-1 74.0% / top-5 91.6%, single crop 224x224."),
)
def nasnet_a_mobile(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> NASNet:
    """NASNet-A Mobile (4 @ 1056): N = 4 normal cells per stage, 44 filters in the first stage."""
    kwargs.setdefault("num_normal_cells", 4)
    kwargs.setdefault("penultimate_filters", 1056)
    return NASNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
