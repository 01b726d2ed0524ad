"""ConvNeXt family: torchvision parity (keys, shapes, counts, logits), the paper's XL, options and errors."""
from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import cnnlab
from cnnlab.analysis import count_macs
from cnnlab.errors import CnnlabError
from cnnlab.layers import LayerNorm2d
from cnnlab.layers.convnext_block import ConvNeXtBlock
from cnnlab.models.convnext import ConvNeXt, linear_drop_path_rates

from .parity import n_params, torchvision_parity

TORCHVISION_VARIANTS = ["tiny", "small", "base", "large"]
# torchvision's documented parameter counts (ConvNeXt_*_Weights.meta["num_params"]).
TORCHVISION_PARAMS = {"tiny": 28_589_128, "small": 50_223_688, "base": 88_591_464, "large": 197_767_336}


def _random_torchvision_convnext(variant: str, generator: torch.Generator) -> nn.Module:
    """torchvision's ConvNeXt with random weights, every LayerNorm and layer scale included.

    Fresh LayerNorms are (1, 0) and layer scales 1e-6, which would make every residual
    branch invisible in the logits; distinct values let the test see each one. Built on
    the meta device and filled with ``randn`` (much faster than the truncated-normal init).
    """
    with torch.device("meta"):
        model = getattr(torchvision.models, f"convnext_{variant}")()
    model.to_empty(device="cpu").eval()

    def noise(tensor: torch.Tensor) -> torch.Tensor:
        return torch.randn(tensor.shape, generator=generator)

    with torch.no_grad():
        for name, parameter in model.named_parameters():
            owner = model.get_submodule(name.rpartition(".")[0])
            if name.endswith("layer_scale"):
                parameter.copy_(noise(parameter).abs() * 0.1 + 0.05)
            elif isinstance(owner, nn.LayerNorm) and name.endswith("weight"):
                parameter.copy_(1.0 + 0.1 * noise(parameter))
            else:  # conv/linear weights, all biases and LayerNorm shifts
                parameter.copy_((0.02 if parameter.dim() > 1 else 0.1) * noise(parameter))
    return model


@pytest.mark.parametrize("variant", TORCHVISION_VARIANTS)
def test_convnext_matches_torchvision_structure(variant):
    # On the meta device: no memory, no initialisation, so even ConvNeXt-L is instant.
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"convnext_{variant}")()
    model, _ = torchvision_parity(f"convnext_{variant}", reference=reference, params=TORCHVISION_PARAMS[variant],
                                  on_meta=True)
    assert model.pretrained_cfg.torchvision_name == f"convnext_{variant}"


@pytest.mark.parametrize("variant", ["tiny", "small"])
def test_convnext_logits_match_torchvision(variant):
    generator = torch.Generator().manual_seed(len(variant))
    reference = _random_torchvision_convnext(variant, generator)
    x = torch.randn(1, 3, 64, 64, generator=generator)
    torchvision_parity(f"convnext_{variant}", [x], reference=reference, on_meta=True)
    with torch.no_grad():
        # Not a vacuous agreement: the randomised branches move the logits far from zero.
        assert reference(x).abs().max() > 0.1


def test_convnext_xlarge_is_the_papers_350m_model():
    with torch.device("meta"):
        model = cnnlab.create_model("convnext_xlarge")
    count = n_params(model)
    assert count == 350_196_968
    assert count / 350e6 == pytest.approx(1.0, rel=0.01)
    stages = [model.features[i] for i in (1, 3, 5, 7)]
    assert [len(s) for s in stages] == [3, 3, 27, 3]
    assert [s[0].block[0].in_channels for s in stages] == [256, 512, 1024, 2048]
    assert model.classifier[2].in_features == 2048
    info = cnnlab.model_info("convnext_xlarge")
    assert info.torchvision_name is None and info.mean is None
    assert info.reference_top1 == pytest.approx(87.0) and "22K" in info.reference_note


def test_convnext_tiny_macs_match_the_paper():
    # Paper Table 1: ConvNeXt-T 4.5 GFLOPs (multiply-adds) at 224x224.
    assert 4.4e9 < count_macs("convnext_tiny") < 4.5e9


def test_layout_keys_and_drop_path_defaults():
    with torch.device("meta"):
        model = cnnlab.create_model("convnext_tiny")
    stem = model.features[0]
    assert isinstance(stem[0], nn.Conv2d) and stem[0].kernel_size == (4, 4) and stem[0].stride == (4, 4)
    assert stem[0].bias is not None and isinstance(stem[1], LayerNorm2d) and stem[1].eps == 1e-6
    for index in (2, 4, 6):
        norm, conv = model.features[index]
        assert isinstance(norm, LayerNorm2d) and conv.kernel_size == (2, 2) and conv.stride == (2, 2)
        assert conv.out_channels == 2 * conv.in_channels
    assert isinstance(model.classifier[0], LayerNorm2d) and isinstance(model.classifier[1], nn.Flatten)
    assert model.get_classifier() is model.classifier[2]

    # torchvision's defaults (the paper's ImageNet-1K recipe): 0.1 / 0.4 / 0.5 / 0.5, linear from 0.
    for variant, rate in {"tiny": 0.1, "small": 0.4, "base": 0.5, "large": 0.5}.items():
        with torch.device("meta"):
            blocks = [m for m in cnnlab.create_model(f"convnext_{variant}").modules()
                      if isinstance(m, ConvNeXtBlock)]
        rates = [b.drop_path.drop_prob for b in blocks]
        assert rates == pytest.approx([rate * i / (len(blocks) - 1) for i in range(len(blocks))])
        assert rates[0] == 0.0 and rates[-1] == pytest.approx(rate)
    assert all(b.layer_scale.flatten()[0].item() == pytest.approx(1e-6)
               for b in ConvNeXt([1, 1], [8, 16]).modules() if isinstance(b, ConvNeXtBlock))


def test_linear_drop_path_rates():
    assert linear_drop_path_rates(0.3, 4) == pytest.approx([0.0, 0.1, 0.2, 0.3])
    assert linear_drop_path_rates(0.5, 1) == [0.0]
    with pytest.raises(CnnlabError, match="drop_path_rate"):
        linear_drop_path_rates(1.0, 4)


def test_classifier_interface_and_overrides():
    with torch.device("meta"):
        tiny = cnnlab.create_model("convnext_tiny", num_classes=7, in_chans=1, drop_path_rate=0.0)
    assert tiny.features[0][0].in_channels == 1 and tiny.num_classes == 7 and tiny.classifier[2].out_features == 7
    assert all(m.drop_path.drop_prob == 0.0 for m in tiny.modules() if isinstance(m, ConvNeXtBlock))

    model = ConvNeXt([1, 1, 1, 1], [16, 32, 64, 128], num_classes=7, in_chans=1).eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        features = model.forward_features(x)
        assert features.shape == (2, 128, 2, 2)  # stride 32
        pooled = model.forward_head(features, pre_logits=True)
        assert pooled.shape == (2, model.num_features) == (2, 128)
        assert model(x).shape == (2, 7)
        model.reset_classifier(5)
        assert model.classifier[2].out_features == 5 and model(x).shape == (2, 5)
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), nn.Identity)
        torch.testing.assert_close(model(x), pooled)


def test_small_convnext_trains_and_stochastic_depth_is_training_only():
    model = ConvNeXt([1, 2], [16, 32], num_classes=3, drop_path_rate=0.5)
    rates = [m.drop_path.drop_prob for m in model.modules() if isinstance(m, ConvNeXtBlock)]
    assert rates == pytest.approx([0.0, 0.25, 0.5])
    logits = model(torch.randn(2, 3, 32, 32))
    nn.functional.cross_entropy(logits, torch.tensor([0, 2])).backward()
    assert all(p.grad is not None for p in model.parameters())
    reference = ConvNeXt([1, 2], [16, 32], num_classes=3).eval()
    reference.load_state_dict(model.state_dict())
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x))


def test_invalid_configurations_are_user_errors():
    with pytest.raises(CnnlabError, match="equal length"):
        ConvNeXt([3, 3, 9], [96, 192, 384, 768])
    with pytest.raises(CnnlabError, match="equal length"):
        ConvNeXt([], [])
    with pytest.raises(CnnlabError, match="dims must be positive"):
        ConvNeXt([1, 1], [16, 0])
    with pytest.raises(CnnlabError, match="depths must be positive"):
        ConvNeXt([1, -1], [16, 32])
    for rate in (1.0, -0.1):
        with pytest.raises(CnnlabError, match=r"drop_path_rate must be in \[0, 1\)"):
            cnnlab.create_model("convnext_tiny", drop_path_rate=rate)
    with pytest.raises(CnnlabError, match="layer_scale"):
        ConvNeXt([1], [8], layer_scale=0.0)


def test_convnext_metadata():
    info = cnnlab.model_info("convnext_tiny")
    assert info.family == "convnext" and info.paper.title == "A ConvNet for the 2020s"
    assert info.paper.venue == "CVPR" and info.paper.year == 2022
    assert info.input_size == (3, 224, 224) and info.num_classes == 1000 and info.dataset == "imagenet"
    assert info.mean == (0.485, 0.456, 0.406)
    assert info.reference_top1 == pytest.approx(82.1) and "Table 1" in info.reference_note
    expected = {"small": 83.1, "base": 83.8, "large": 84.3}
    for variant, top1 in expected.items():
        assert cnnlab.model_info(f"convnext_{variant}").reference_top1 == pytest.approx(top1)
    assert cnnlab.list_models("convnext_*") == [
        "convnext_base", "convnext_large", "convnext_small", "convnext_tiny", "convnext_xlarge"]
