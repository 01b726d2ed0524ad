"""NASNet's CIFAR network (NASNet-A 6 @ 768 by default, any cells as a NAS child) and the macro-space net."""
from __future__ import annotations

import pytest
import torch

import cnnlab
from cnnlab.errors import CnnlabError
from cnnlab.models.nas_macro import MacroNet, reduction_layers
from cnnlab.models.nasnet_cifar import cell_genotype, loose_ends

from .parity import n_params

PAPER_PARAMS = 3.3e6  # NASNet paper Table 1, NASNet-A (6 @ 768) on CIFAR-10


def test_nasnet_a_cifar_has_the_papers_size():
    model = cnnlab.create_model("nasnet_cifar")
    assert n_params(model) / PAPER_PARAMS == pytest.approx(1.0, rel=0.02)
    # 6 normal cells a stage at F, 2F, 4F = 32, 64, 128, six states concatenated: 768 at the end.
    widths = [cell.out_channels for cell in model.cells]
    assert widths == [192] * 6 + [256] + [384] * 6 + [512] + [768] * 6
    assert model.stem.conv.out_channels == 96 and model.fc.in_features == 768
    with torch.device("meta"):  # shapes only: 32 -> 16 -> 8
        features = cnnlab.create_model("nasnet_cifar").forward_features(torch.zeros(2, 3, 32, 32))
    assert features.shape == (2, 768, 8, 8)


def test_a_searched_cell_concatenates_its_loose_ends():
    normal = [["sep3x3", 0, "identity", 1], ["avg3x3", 2, "max3x3", 0], ["sep5x5", 1, "identity", 2]]
    assert loose_ends(normal) == (3, 4)  # block 0's output (state 2) is read by blocks 1 and 2
    reduction = [["max3x3", 0, "sep3x3", 1], ["identity", 0, "avg3x3", 1]]
    model = cnnlab.create_model("nasnet_cifar", normal=normal, reduction=reduction, num_normal_cells=1, filters=8,
                                num_classes=5).eval()
    assert [cell.out_channels for cell in model.cells] == [16, 32, 32, 64, 64]
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 5)
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 64, 8, 8)


@pytest.mark.parametrize("blocks, fragment", [
    ([["sep3x3", 2, "identity", 1]], "reads hidden state 2"),
    ([["conv9x9", 0, "identity", 1]], "unknown operation"),
    ([["sep3x3", 0, "identity"]], "must be"),
    ([], "non-empty"),
])
def test_bad_cells_are_refused(blocks, fragment):
    with pytest.raises(CnnlabError, match=fragment):
        cell_genotype(blocks)


def test_macro_net_follows_its_layer_list():
    layers = [["conv3x3", 8], ["sep5x5", 16], ["conv5x5", 16], ["sep3x3", 32], ["conv3x3", 32], ["sep3x3", 8]]
    model = MacroNet(num_classes=4, layers=layers).eval()
    assert reduction_layers(6) == (2, 4)
    assert [m.conv.stride[0] if hasattr(m, "conv") else m.depthwise.conv.stride[0] for m in model.features] \
        == [1, 1, 2, 1, 2, 1]
    assert model.features[1].depthwise.conv.kernel_size == (5, 5) and model.fc.in_features == 8
    with torch.no_grad():
        assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(CnnlabError, match="layer 0"):
        MacroNet(layers=[["pool", 8]])
    assert cnnlab.model_info("nas_macro").paper.year == 2017
