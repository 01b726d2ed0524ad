"""The search spaces: what they sample builds a working network, and the tokens mean what they say."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.nas import CELL_SEARCH_OPS, CellSpace, MacroSpace, make_space


def test_cell_space_decisions_follow_nasnets_five_steps():
    space = CellSpace(nodes=3)
    assert len(space.decisions) == 2 * 3 * 4  # normal and reduction cell, 3 blocks, 4 tokens a block
    assert space.decisions[0].name == "normal block 0 input a" and space.decisions[0].choices == (0, 1)
    assert space.decisions[4 * 2].choices == (0, 1, 2, 3)  # block 2 may read both inputs and blocks 0-1
    assert space.decisions[2].choices == CELL_SEARCH_OPS
    assert space.decisions[12].name == "reduction block 0 input a"
    # Per block (2 + b)^2 input pairs and 5^2 operation pairs; the two cells independently.
    per_cell = (4 * 25) * (9 * 25) * (16 * 25)
    assert space.size() == per_cell ** 2


def test_tokens_decode_into_cells():
    space = CellSpace(nodes=2, filters=8)
    ops = {op: i for i, op in enumerate(CELL_SEARCH_OPS)}
    tokens = [1, 0, ops["sep3x3"], ops["identity"], 2, 0, ops["max3x3"], ops["avg3x3"],
              0, 0, ops["sep5x5"], ops["sep5x5"], 1, 2, ops["identity"], ops["max3x3"]]
    args = space.model_args(tokens)
    assert args["normal"] == [["sep3x3", 1, "identity", 0], ["max3x3", 2, "avg3x3", 0]]
    assert args["reduction"] == [["sep5x5", 0, "sep5x5", 0], ["identity", 1, "max3x3", 2]]
    assert args["filters"] == 8 and args["num_normal_cells"] == 1
    text = space.describe(tokens)
    assert "b0 = sep3x3(h_i-1) + identity(h_i)" in text and "out = concat(b1)" in text
    with pytest.raises(CnnlabError, match="not an architecture"):
        space.model_args(tokens[:-1])
    with pytest.raises(CnnlabError, match="not an architecture"):
        space.model_args(tokens[:-1] + [len(CELL_SEARCH_OPS)])


@pytest.mark.parametrize("space", [CellSpace(nodes=4, filters=8), MacroSpace(layers=5)], ids=["cells", "macro"])
def test_sampled_architectures_build_and_run(space):
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(4):
        tokens = space.sample(rng)
        assert all(0 <= t < n for t, n in zip(tokens, space.sizes))
        seen.add(tuple(tokens))
        model = cnnlab.create_model(space.model, num_classes=10, **space.model_args(tokens)).eval()
        with torch.no_grad():
            assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
        assert space.describe(tokens)
    assert len(seen) == 4  # different draws, not one architecture four times


def test_macro_space_and_make_space():
    space = make_space("macro", layers=3)
    assert [d.name for d in space.decisions[:2]] == ["layer 0 op", "layer 0 width"]
    assert space.model_args([0, 0, 3, 2, 1, 1]) == {"layers": [["conv3x3", 16], ["sep5x5", 64], ["conv5x5", 32]]}
    assert space.describe([0, 0, 3, 2, 1, 1]) == "conv3x3/16 -> sep5x5/64/s2 -> conv5x5/32/s2"
    assert make_space("cells", nodes=2, filters=12).spec()["filters"] == 12
    with pytest.raises(CnnlabError, match="unknown search space"):
        make_space("micro")
    with pytest.raises(CnnlabError, match="nodes"):
        CellSpace(nodes=0)
