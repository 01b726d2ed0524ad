"""NASNet-A Mobile: the paper's size and cost, the searched cells, the stem, options and errors."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import cnnlab
from cnnlab.analysis import count_macs
from cnnlab.errors import CnnlabError
from cnnlab.layers.nas_cells import FactorizedReduction, ReLUConvBN, StackedSeparableConv
from cnnlab.models.nasnet import NASNET_A_NORMAL, NASNET_A_REDUCTION, NASNet, NasNetCell

from .parity import n_params

PAPER_PARAMS = 5.3e6  # paper Table 2, NASNet-A (4 @ 1056)
PAPER_MACS = 564e6


@pytest.fixture(scope="module")
def mobile() -> NASNet:
    return cnnlab.create_model("nasnet_a_mobile")


def test_parameter_count_matches_the_paper(mobile):
    count = n_params(mobile)
    # The authors' released NASNet-A Mobile (TF-slim, and Keras' NASNetMobile) has 5,289,978
    # trainable parameters without the auxiliary head: the same cells, op for op.
    assert count == 5_289_978
    assert count / PAPER_PARAMS == pytest.approx(1.0, rel=0.01)


def test_multiply_adds_match_the_paper():
    assert count_macs("nasnet_a_mobile") / PAPER_MACS == pytest.approx(1.0, rel=0.01)


def test_stem_and_cell_plan(mobile):
    assert mobile.stem.conv.kernel_size == (3, 3) and mobile.stem.conv.stride == (2, 2)
    assert mobile.stem.conv.padding == (0, 0) and mobile.stem.conv.out_channels == 32
    assert mobile.stem.bn.eps == 1e-3
    # Two reduction cells in the stem at F/4 and F/2 (F = 44), each outputting 4 states.
    assert [c.out_channels for c in mobile.stem_cells] == [4 * 11, 4 * 22]
    assert isinstance(mobile.stem_cells[0].preprocess_prev, nn.Identity)  # reads the raw stem conv
    assert isinstance(mobile.stem_cells[1].preprocess_prev, FactorizedReduction)  # 111x111 -> 56x56
    # 4 normal cells per stage (6 x width), reduction cells (4 x width) between stages.
    widths = [c.out_channels for c in mobile.cells]
    assert widths == [264] * 4 + [352] + [528] * 4 + [704] + [1056] * 4
    assert mobile.num_features == 1056 and mobile.fc.in_features == 1056
    # h_{i-1} needs a factorized reduction exactly when it comes from before a reduction cell.
    reduced_prev = [i for i, c in enumerate(mobile.cells) if isinstance(c.preprocess_prev, FactorizedReduction)]
    assert reduced_prev == [0, 5, 10]
    assert mobile.dropout.p == 0.5


def test_feature_map_sizes():
    # Shapes only, on the meta device: a real 224x224 pass is not needed to follow the sizes.
    with torch.device("meta"):
        model = cnnlab.create_model("nasnet_a_mobile").eval()
        shapes = []
        hooks = [cell.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
                 for cell in list(model.stem_cells) + list(model.cells)]
        features = model.forward_features(torch.zeros(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    assert features.shape == (1, 1056, 7, 7)
    assert shapes[:2] == [(44, 56, 56), (88, 28, 28)]  # 224 -> 111 (valid 3x3/2) -> 56 -> 28
    assert shapes[2:6] == [(264, 28, 28)] * 4
    assert shapes[6] == (352, 14, 14) and shapes[11] == (704, 7, 7) and shapes[-1] == (1056, 7, 7)


def test_searched_cells():
    # Figure 4: the normal cell reads only h_i (0) and h_{i-1} (1) and keeps all five block
    # outputs plus h_{i-1}; the reduction cell's blocks 3 and 4 read block 0 and 1's outputs.
    assert {i for pair in NASNET_A_NORMAL.blocks for _, i in pair} == {0, 1}
    assert NASNET_A_NORMAL.concat == (1, 2, 3, 4, 5, 6)
    assert NASNET_A_REDUCTION.concat == (3, 4, 5, 6)
    ops = sorted(op for pair in NASNET_A_NORMAL.blocks + NASNET_A_REDUCTION.blocks for op, _ in pair)
    assert set(ops) == {"sep3x3", "sep5x5", "sep7x7", "avg3x3", "max3x3", "identity"}

    cell = NasNetCell(NASNET_A_REDUCTION, 24, 24, 8, reduction=True, reduce_prev=False)
    assert isinstance(cell.blocks[0].left, StackedSeparableConv)
    assert cell.blocks[0].left.separable1.depthwise.stride == (2, 2)  # reads h_i: strided
    assert cell.blocks[1].left.pool.stride == 2 and cell.blocks[2].left.pool.stride == 2
    assert isinstance(cell.blocks[3].left, nn.Identity)  # reads block 1's already reduced output
    assert cell.blocks[4].left.separable1.depthwise.stride == (1, 1)
    out = cell(torch.randn(2, 24, 16, 16), torch.randn(2, 24, 16, 16))
    assert out.shape == (2, 32, 8, 8)

    normal = NasNetCell(NASNET_A_NORMAL, 32, 24, 8, reduction=False, reduce_prev=True)
    assert isinstance(normal.preprocess, ReLUConvBN) and isinstance(normal.preprocess_prev, FactorizedReduction)
    assert normal(torch.randn(2, 32, 8, 8), torch.randn(2, 24, 16, 16)).shape == (2, 48, 8, 8)
    # The concat carries h_{i-1} through: its first channels are the preprocessed h_{i-1}.
    normal.eval()
    x, prev = torch.randn(1, 32, 8, 8), torch.randn(1, 24, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(normal(x, prev)[:, :8], normal.preprocess_prev(prev))


def test_forward_backward_and_classifier_interface(mobile):
    mobile = copy.deepcopy(mobile).train()  # the shared instance stays untouched
    logits = mobile(torch.randn(2, 3, 32, 32))
    assert logits.shape == (2, 1000)
    nn.functional.cross_entropy(logits, torch.tensor([1, 7])).backward()
    assert all(p.grad is not None for p in mobile.parameters())

    mobile.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        features = mobile.forward_features(x)
        assert features.shape == (2, 1056, 1, 1)  # 32 -> 15 -> 8 -> 4 -> 2 -> 1
        assert torch.all(features >= 0)  # the last cell's output goes through a ReLU
        pooled = mobile.forward_head(features, pre_logits=True)
        assert pooled.shape == (2, 1056)
        torch.testing.assert_close(mobile.forward_head(features), mobile(x))  # eval: no dropout
        assert mobile.get_classifier() is mobile.fc
        mobile.reset_classifier(5)
        assert mobile(x).shape == (2, 5) and mobile.num_classes == 5
        mobile.reset_classifier(0)
        torch.testing.assert_close(mobile(x), pooled)


def test_drop_path_rates_grow_with_depth():
    model = NASNet(num_normal_cells=1, penultimate_filters=96, drop_path_rate=0.3)
    cells = list(model.stem_cells) + list(model.cells)
    rates = [cell.blocks[0].drop_path.drop_prob for cell in cells]
    assert rates == pytest.approx([0.3 * (i + 1) / len(cells) for i in range(len(cells))])
    # Identity operations are never dropped: in training the identity branch passes through unchanged.
    cell = NasNetCell(NASNET_A_NORMAL, 8, 8, 8, reduction=False, reduce_prev=False, drop_path=0.9).train()
    block = cell.blocks[4]  # sep3x3(h_i) + identity(h_i)
    assert isinstance(block.right, nn.Identity)
    state = torch.randn(64, 8, 4, 4)
    torch.manual_seed(0)
    out = block([state, state])
    kept_only_identity = [torch.equal(out[i], state[i]) for i in range(64)]
    assert any(kept_only_identity)


def test_smaller_nasnet_and_overrides():
    model = cnnlab.create_model("nasnet_a_mobile", num_normal_cells=2, penultimate_filters=264, in_chans=1,
                                num_classes=3, drop_rate=0.0)
    assert len(model.cells) == 3 * 2 + 2 and model.num_features == 264 and model.stem.conv.in_channels == 1
    assert model.eval()(torch.randn(1, 1, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize("kwargs, match", [
    (dict(num_normal_cells=0), "num_normal_cells"),
    (dict(penultimate_filters=1000), "penultimate_filters"),
    (dict(penultimate_filters=0), "penultimate_filters"),
    (dict(stem_filters=0), "stem_filters"),
    (dict(drop_rate=1.0), "drop_rate"),
    (dict(drop_path_rate=-0.1), "drop_path_rate"),
])
def test_invalid_configurations_are_user_errors(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        cnnlab.create_model("nasnet_a_mobile", **kwargs)


def test_nasnet_metadata():
    info = cnnlab.model_info("nasnet_a_mobile")
    assert info.family == "nasnet" and info.torchvision_name is None and info.mean is None
    assert info.paper.title == "Learning Transferable Architectures for Scalable Image Recognition"
    assert info.paper.venue == "CVPR" and info.paper.year == 2018
    assert info.input_size == (3, 224, 224) and info.num_classes == 1000 and info.dataset == "imagenet"
    assert info.reference_top1 == pytest.approx(74.0) and info.reference_top5 == pytest.approx(91.6)
    assert "Table 2" in info.reference_note
    assert info.weight_layers == 58
