"""FractalNet: the expansion rule, mean joins, local and global drop-path, the CIFAR nets."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.layers.fractal import FractalBlock, FractalConv, FractalJoin
from cnnlab.models.fractalnet import FractalNet

from .parity import n_params


def _count_conv_calls(module: nn.Module, run) -> int:
    calls = []
    handles = [m.register_forward_hook(lambda *_: calls.append(1)) for m in module.modules()
               if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return len(calls)


# --------------------------------------------------------------------------- expansion rule


@pytest.mark.parametrize("columns", [1, 2, 3, 4, 5])
def test_expansion_rule_depth_and_size(columns):
    block = FractalBlock(3, 4, columns).eval()
    x = torch.randn(1, 3, 6, 6)
    # f_C has 2^C - 1 convs in all, and the full block runs each exactly once.
    assert sum(isinstance(m, nn.Conv2d) for m in block.modules()) == 2 ** columns - 1
    assert _count_conv_calls(block, lambda: block(x)) == 2 ** columns - 1
    # Column j is a chain of 2^(j-1) convs; the longest path (column C) has 2^(C-1).
    for column in range(1, columns + 1):
        assert _count_conv_calls(block, lambda: block(x, column)) == 2 ** (column - 1)
        path = block.column_path(column)
        assert len(path) == 2 ** (column - 1) and all(isinstance(unit, FractalConv) for unit in path)
        assert path[0].conv.in_channels == 3 and all(u.conv.in_channels == 4 for u in path[1:])
    assert block.depth == 2 ** (columns - 1)
    # The rule's terms: f_{C} = join(f_{C-1}(f_{C-1}(z)), conv(z)).
    assert isinstance(block.shallow, FractalConv)
    if columns > 1:
        assert block.deep_first.columns == block.deep_second.columns == columns - 1
        assert block.deep_second.shallow.conv.in_channels == 4
    else:
        assert not hasattr(block, "deep_first")


def test_joins_are_means_over_the_columns_that_meet():
    block = FractalBlock(2, 3, columns=3).eval()
    for module in block.modules():  # give every BN distinct statistics so the units differ
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.weight.data.uniform_(0.5, 1.5)
    x = torch.randn(2, 2, 5, 5)
    first, second = block.deep_first, block.deep_second
    with torch.no_grad():
        # Column outputs of deep_first (C=2): its join averages its 2 columns.
        middle = (first.shallow(x) + first.deep_second.shallow(first.deep_first.shallow(x))) / 2
        # The block's last join is one mean over all 3 columns (the paper's Figure 1).
        col1 = block.shallow(x)
        col2 = second.shallow(middle)
        col3 = second.deep_second.shallow(second.deep_first.shallow(middle))
        torch.testing.assert_close(block(x), (col1 + col2 + col3) / 3)
        # The deepest column alone: four convs in a row.
        chain = x
        for unit in block.column_path(3):
            chain = unit(chain)
        torch.testing.assert_close(block(x, column=3), chain)


def test_join_mean_and_local_drop_path():
    values = [1.0, 2.0, 4.0]
    inputs = [torch.full((1, 1, 2, 2), v) for v in values]
    join = FractalJoin(drop_prob=0.5)
    join.eval()
    torch.testing.assert_close(join(inputs), torch.full((1, 1, 2, 2), 7 / 3))
    assert join([inputs[1]]) is inputs[1]

    join.train()
    subsets = {}
    for size in range(1, 4):
        for subset in itertools.combinations(values, size):
            subsets[round(sum(subset) / size, 6)] = subset
    seen = {}
    for _ in range(400):
        out = join(inputs)
        assert torch.all(out == out.flatten()[0])  # one mask for the whole batch
        mean = round(float(out.flatten()[0]), 6)
        assert mean in subsets, "a join must output the mean of a non-empty subset of its inputs"
        seen[mean] = seen.get(mean, 0) + 1
    assert len(seen) == len(subsets)  # every non-empty subset occurs, never the empty one
    # P(all three kept) = 0.5^3 = 1/8.
    assert 0.06 < seen[round(7 / 3, 6)] / 400 < 0.2

    no_drop = FractalJoin(drop_prob=0.0).train()
    torch.testing.assert_close(no_drop(inputs), torch.full((1, 1, 2, 2), 7 / 3))


def test_fractal_conv_order():
    unit = FractalConv(3, 5, drop_rate=0.3)
    assert [name for name, _ in unit.named_children()] == ["conv", "bn", "act", "drop"]
    assert unit.conv.kernel_size == (3, 3) and unit.conv.bias is None and unit.drop.p == 0.3
    unit.eval()
    x = torch.randn(1, 3, 4, 4)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), torch.relu(unit.bn(unit.conv(x))))


# --------------------------------------------------------------------------- the network


def fractalnet_params_by_hand(columns: int, channels=(64, 128, 256, 512, 512), num_classes: int = 10) -> int:
    convs = 2 ** columns - 1
    total, width = 0, 3
    for out in channels:
        # Each column's first conv reads the block input; the other convs read `out` channels.
        total += columns * width * out * 9 + (convs - columns) * out * out * 9 + convs * 2 * out
        width = out
    return total + width * num_classes + num_classes


@pytest.mark.parametrize("name, columns, depth", [("fractalnet20", 3, 20), ("fractalnet40", 4, 40)])
def test_paper_configurations(name, columns, depth):
    with torch.device("meta"):
        model = cnnlab.create_model(name)
    assert model.columns == columns and model.depth == depth and len(model.blocks) == 5
    assert [b.out_channels for b in model.blocks] == [64, 128, 256, 512, 512]
    drop = [b.shallow.drop.p for b in model.blocks]
    assert drop == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert all(j.drop_prob == 0.15 for j in model.modules() if isinstance(j, FractalJoin))
    assert model.global_drop_ratio == 0.5
    assert n_params(model) == fractalnet_params_by_hand(columns)
    info = cnnlab.model_info(name)
    assert info.dataset == "cifar10" and info.input_size == (3, 32, 32) and info.num_classes == 10
    assert info.weight_layers == depth + 1  # longest conv path + the classifier
    assert info.paper.venue == "ICLR" and info.paper.year == 2017


def test_fractalnet20_parameter_count():
    # Measured 33.7M; the paper's Table 1 lists 38.6M for its 20-layer net (see the metadata note).
    assert fractalnet_params_by_hand(3) == 33_724_618
    assert "38.6M" in cnnlab.model_info("fractalnet20").reference_note


def _small(**kwargs) -> FractalNet:
    # The paper's layout at a test-friendly width: 5 blocks, 32x32 -> 1x1.
    return FractalNet(columns=3, channels=(4, 6, 8, 8, 8), **kwargs)


def test_eval_is_deterministic_full_network():
    model = _small().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        first = model(x)
        torch.testing.assert_close(model(x), first, rtol=0, atol=0)
        assert model.sampled_column is None
        # Eval uses every column: identical to the same weights with drop-path switched off.
        reference = _small(local_drop_prob=0.0, global_drop_ratio=0.0, drop_rates=0.0).eval()
        reference.load_state_dict(model.state_dict())
        torch.testing.assert_close(reference(x), first)
        assert _count_conv_calls(model, lambda: model(x)) == 5 * 7


def test_global_drop_path_uses_one_column_only():
    model = _small(drop_rates=0.0, global_drop_ratio=1.0).train()
    x = torch.randn(4, 3, 32, 32)
    chosen = set()
    for seed in range(12):
        torch.manual_seed(seed)
        logits = model(x)
        column = model.sampled_column
        assert column in (1, 2, 3)
        chosen.add(column)
        # Same batch, same (train-mode) BN statistics: the column alone gives the same logits...
        torch.testing.assert_close(logits, model.forward_column(x, column))
        # ...and so does chaining that column's convs by hand, with the pools in between.
        h = x
        for block, pool in zip(model.blocks, model.pools):
            for unit in block.column_path(column):
                h = unit(h)
            h = pool(h)
        torch.testing.assert_close(logits, model.fc(torch.flatten(h, 1)))
        assert _count_conv_calls(model, lambda: model(x)) == 5 * 2 ** (model.sampled_column - 1)
    assert chosen == {1, 2, 3}


def test_local_and_global_drop_path_mix_half_and_half():
    model = _small().train()
    torch.manual_seed(0)
    draws = [model._sample_column() for _ in range(3000)]
    global_draws = [d for d in draws if d is not None]
    assert 0.45 < len(global_draws) / len(draws) < 0.55
    for column in (1, 2, 3):
        assert 0.28 < global_draws.count(column) / len(global_draws) < 0.39
    model.eval()
    assert all(model._sample_column() is None for _ in range(50))


def test_train_mode_is_stochastic_and_eval_is_not():
    model = _small(drop_rates=0.0, global_drop_ratio=0.0, local_drop_prob=0.5).train()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outputs = [model(x) for _ in range(6)]
    assert any(not torch.equal(outputs[0], o) for o in outputs[1:])


def test_forward_backward():
    model = _small(global_drop_ratio=0.0, local_drop_prob=0.0)
    logits = model(torch.randn(4, 3, 32, 32))
    assert logits.shape == (4, 10)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 3])).backward()
    assert all(p.grad is not None for p in model.parameters())

    # The paper's nets, with drop-path and dropout on (a column may be globally dropped).
    for name in ("fractalnet20", "fractalnet40"):
        net = cnnlab.create_model(name, num_classes=5)
        loss = net(torch.randn(2, 3, 32, 32)).logsumexp(1).sum()
        loss.backward()
        assert torch.isfinite(loss) and net.fc.weight.grad is not None


def test_classifier_interface():
    model = _small().eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 8, 1, 1)
        pooled = model.forward_head(features, pre_logits=True)
        assert model.get_classifier() is model.fc
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pooled)


@pytest.mark.parametrize("kwargs, match", [
    (dict(columns=0), r"columns must be an integer >= 1"),
    (dict(channels=()), r"channels"),
    (dict(drop_rates=(0.1, 0.2)), r"one dropout rate per block"),
    (dict(drop_rates=1.0), r"drop_rate must be in \[0, 1\)"),
    (dict(local_drop_prob=1.0), r"drop_prob must be in \[0, 1\)"),
    (dict(global_drop_ratio=1.5), r"global_drop_ratio must be in \[0, 1\]"),
])
def test_invalid_configurations_are_user_errors(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        FractalNet(**kwargs)


def test_invalid_column_is_a_user_error():
    model = _small().eval()
    with pytest.raises(CnnlabError, match=r"column must be an integer in \[1, 3\]"):
        model.forward_column(torch.randn(1, 3, 32, 32), 4)
    with pytest.raises(CnnlabError, match="columns"):
        cnnlab.create_model("fractalnet20", columns=0)
