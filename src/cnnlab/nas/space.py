"""Search spaces: an architecture as the sequence of decisions a controller emits, token by token.

Zoph & Le (ICLR 2017) describe a network by a string of tokens, each one decision (a
filter size, a number of filters), which an RNN can emit one at a time; NASNet (Zoph et
al., CVPR 2018) made the string describe a *cell* instead, repeated to form the network.
A space here lists its :class:`Decision` s in the order they are emitted; an architecture
is one choice index per decision (its tokens). Random search draws every token uniformly;
the controller (:mod:`cnnlab.nas.controller`) draws them from its policy. Either way the
space turns the tokens into the ``model_args`` of a registered model, so every child is an
ordinary model of the zoo that the Trainer trains and ``cnnlab eval`` reads back.

- :class:`CellSpace` (``cells``): NASNet's space. A normal and a reduction cell of
  ``nodes`` blocks each; a block picks two inputs among the cell's inputs and the earlier
  blocks, and one operation for each (separable 3x3/5x5 convolutions, 3x3 max/average
  pooling, identity), and adds the results; the cell concatenates the block outputs nothing
  else reads. The cells are stacked by :class:`~cnnlab.models.nasnet_cifar.NASNetCIFAR`.
- :class:`MacroSpace` (``macro``): the original per-layer space, small: each of ``layers``
  layers is an operation and a width (:class:`~cnnlab.models.nas_macro.MacroNet`).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import CnnlabError
from ..models.nas_macro import MACRO_OPS, reduction_layers
from ..models.nasnet_cifar import loose_ends

__all__ = ["CELL_SEARCH_OPS", "SPACES", "CellSpace", "Decision", "MacroSpace", "SearchSpace", "make_space"]

#: The NASNet operations the cell space chooses from (the paper's list, without the 1x1,
#: 3x3, 1x7-7x1 convolutions, the dilated and the 7x7 separable ones, to stay small).
CELL_SEARCH_OPS = ("sep3x3", "sep5x5", "max3x3", "avg3x3", "identity")
MACRO_WIDTHS = (16, 32, 64)


@dataclass(frozen=True)
class Decision:
    """One token of an architecture: what is decided (``name``) and the values it can take."""

    name: str
    choices: tuple


class SearchSpace:
    """An ordered list of decisions, and what a list of chosen indices (tokens) builds."""

    name: str
    model: str  # the registered model every child is
    decisions: list[Decision]

    @property
    def sizes(self) -> list[int]:
        """The number of choices of each decision (the controller's softmax sizes)."""
        return [len(d.choices) for d in self.decisions]

    def size(self) -> int:
        """How many architectures the space holds (the product of the choices)."""
        return math.prod(self.sizes)

    def sample(self, rng: np.random.Generator) -> list[int]:
        """Random search's draw: every token uniform over its choices."""
        return [int(rng.integers(n)) for n in self.sizes]

    def check(self, tokens: Sequence[int]) -> list[int]:
        tokens = [int(t) for t in tokens]
        if len(tokens) != len(self.decisions) or any(not 0 <= t < n for t, n in zip(tokens, self.sizes)):
            raise CnnlabError(f"{tokens} is not an architecture of the {self.name} space "
                              f"({len(self.decisions)} tokens with {self.sizes} choices)")
        return tokens

    def values(self, tokens: Sequence[int]) -> list:
        return [d.choices[t] for d, t in zip(self.decisions, self.check(tokens))]

    def model_args(self, tokens: Sequence[int]) -> dict:  # pragma: no cover - each space has its own
        raise NotImplementedError

    def describe(self, tokens: Sequence[int]) -> str:  # pragma: no cover - each space has its own
        raise NotImplementedError

    def spec(self) -> dict:  # pragma: no cover - each space has its own
        raise NotImplementedError


class CellSpace(SearchSpace):
    """NASNet's cell space: per cell (normal, then reduction) and per block, the tokens
    input a, input b, operation a, operation b (the paper's steps 1-4; step 5, the
    combination, is always addition here). ``num_normal_cells`` and ``filters`` size the
    network the cells are stacked into."""

    name = "cells"
    model = "nasnet_cifar"

    def __init__(self, nodes: int = 4, ops: Sequence[str] = CELL_SEARCH_OPS, num_normal_cells: int = 1,
                 filters: int = 16):
        for key, value, low in (("nodes", nodes, 1), ("cells (normal cells per stage)", num_normal_cells, 1),
                                ("filters", filters, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise CnnlabError(f"{key} must be an integer of at least {low}, got {value!r}")
        self.nodes, self.ops = nodes, tuple(ops)
        self.num_normal_cells, self.filters = num_normal_cells, filters
        self.decisions = []
        for cell in ("normal", "reduction"):
            for block in range(nodes):
                inputs = tuple(range(2 + block))  # h_i, h_i-1 and the blocks before this one
                self.decisions += [Decision(f"{cell} block {block} input a", inputs),
                                   Decision(f"{cell} block {block} input b", inputs),
                                   Decision(f"{cell} block {block} op a", self.ops),
                                   Decision(f"{cell} block {block} op b", self.ops)]

    def cells(self, tokens: Sequence[int]) -> dict[str, list[list]]:
        """``{"normal": [[op_a, input_a, op_b, input_b], ...], "reduction": [...]}``."""
        values = self.values(tokens)
        cells = {}
        for index, cell in enumerate(("normal", "reduction")):
            part = values[index * 4 * self.nodes:(index + 1) * 4 * self.nodes]
            cells[cell] = [[part[4 * b + 2], part[4 * b], part[4 * b + 3], part[4 * b + 1]] for b in range(self.nodes)]
        return cells

    def model_args(self, tokens: Sequence[int]) -> dict:
        return {**self.cells(tokens), "num_normal_cells": self.num_normal_cells, "filters": self.filters}

    def describe(self, tokens: Sequence[int]) -> str:
        def state(i: int) -> str:
            return {0: "h_i", 1: "h_i-1"}.get(i, f"b{i - 2}")

        parts = []
        for cell, blocks in self.cells(tokens).items():
            text = "; ".join(f"b{j} = {a}({state(i)}) + {b}({state(k)})" for j, (a, i, b, k) in enumerate(blocks))
            ends = "+".join(state(i) for i in loose_ends(blocks))
            parts.append(f"{cell}: {text}; out = concat({ends})")
        return " | ".join(parts)

    def spec(self) -> dict:
        return {"space": self.name, "nodes": self.nodes, "ops": list(self.ops),
                "num_normal_cells": self.num_normal_cells, "filters": self.filters}


class MacroSpace(SearchSpace):
    """The per-layer space: for each of ``layers`` layers, the tokens operation and width."""

    name = "macro"
    model = "nas_macro"

    def __init__(self, layers: int = 6, ops: Sequence[str] = MACRO_OPS, widths: Sequence[int] = MACRO_WIDTHS):
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise CnnlabError(f"layers must be a positive integer, got {layers!r}")
        self.layers, self.ops, self.widths = layers, tuple(ops), tuple(int(w) for w in widths)
        self.decisions = []
        for layer in range(layers):
            self.decisions += [Decision(f"layer {layer} op", self.ops), Decision(f"layer {layer} width", self.widths)]

    def model_args(self, tokens: Sequence[int]) -> dict:
        values = self.values(tokens)
        return {"layers": [[values[2 * i], values[2 * i + 1]] for i in range(self.layers)]}

    def describe(self, tokens: Sequence[int]) -> str:
        strided = reduction_layers(self.layers)
        return " -> ".join(f"{op}/{width}" + ("/s2" if i in strided else "")
                           for i, (op, width) in enumerate(self.model_args(tokens)["layers"]))

    def spec(self) -> dict:
        return {"space": self.name, "layers": self.layers, "ops": list(self.ops), "widths": list(self.widths)}


SPACES = ("cells", "macro")


def make_space(name: str, *, nodes: int = 4, num_normal_cells: int = 1, filters: int = 16,
               layers: int = 6) -> SearchSpace:
    """The ``cells`` or ``macro`` space with its size settings (the others are ignored)."""
    if name == "cells":
        return CellSpace(nodes=nodes, num_normal_cells=num_normal_cells, filters=filters)
    if name == "macro":
        return MacroSpace(layers=layers)
    raise CnnlabError(f"unknown search space {name!r}; choose one of {', '.join(SPACES)}")
