"""airbench94: the paper's size, the patch-whitening layer, Dirac starts, shift-only BN, the trainer's data init."""
import pytest
import torch
from torch import nn

from cnnlab import create_model
from cnnlab.errors import CnnlabError
from cnnlab.models.airbench import AirbenchNet, PatchWhitening


def airbench_params_by_hand(widths=(64, 256, 256), num_classes=10) -> int:
    whiten = 24 * 3 * 2 * 2 + 24
    convs, channels = 0, 24
    for width in widths:
        convs += 9 * channels * width + 9 * width * width
        channels = width
    norms = sum(2 * 2 * width for width in widths)  # BN weight (frozen) and bias, two per block
    return whiten + convs + norms + widths[-1] * num_classes


def test_parameter_count_and_shapes():
    model = create_model("airbench94")
    assert sum(p.numel() for p in model.parameters()) == airbench_params_by_hand() == 1_972_792
    assert model.pretrained_cfg.input_size == (3, 32, 32)
    features = model.forward_features(torch.randn(2, 3, 32, 32))
    assert features.shape == (2, 256, 3, 3)  # 32 -> 31 (2x2 whitening) -> 15 -> 7 -> 3
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_forward_backward_trains_only_what_the_paper_trains():
    model = AirbenchNet(widths=(8, 16, 16), num_classes=5, in_chans=1)
    out = model(torch.randn(4, 1, 32, 32))
    out.sum().backward()
    assert out.shape == (4, 5)
    assert model.whiten.conv.weight.grad is None and model.whiten.conv.bias.grad is not None
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(n.weight.grad is None and n.bias.grad is not None for n in norms)
    assert all(n.momentum == 0.4 for n in norms)


def test_convolutions_start_as_partial_identities():
    model = AirbenchNet(widths=(32, 64, 64))
    conv = model.block2.conv1  # 32 -> 64: the first 32 filters pass their own channel through
    centre = conv.weight[:32, :, 1, 1]
    assert torch.equal(centre, torch.eye(32))
    assert torch.equal(conv.weight[:32].abs().sum(dim=(1, 2, 3)), torch.ones(32))
    assert conv.weight[32:].abs().sum() > 0  # the rest keep the default random start


def correlated_images(n=400, seed=0):
    """Images whose channels and neighbouring pixels are strongly correlated, as real photos are."""
    generator = torch.Generator().manual_seed(seed)
    base = torch.randn(n, 1, 17, 17, generator=generator)
    smooth = nn.functional.interpolate(base, size=(32, 32), mode="bilinear", align_corners=False)
    colour = torch.tensor([1.0, 0.8, 0.6]).view(1, 3, 1, 1)
    return smooth * colour + 0.1 * torch.randn(n, 3, 32, 32, generator=generator)


def test_patch_whitening_whitens_the_data_it_was_set_from():
    images = correlated_images()
    layer = PatchWhitening(3)
    before = torch.cov(layer.patches(images).T)
    assert before.diagonal().min() > 0 and (before - torch.diag(before.diagonal())).abs().max() > 0.3
    layer.init_from_data(images)
    with torch.no_grad():
        out = layer(images)
    assert out.shape == (400, 24, 31, 31)
    white = out[:, :12].permute(0, 2, 3, 1).reshape(-1, 12).double()
    # Identity covariance, up to the eps added to each eigenvalue (it damps the tiny ones).
    covariance = torch.cov(white.T)
    off_diagonal = covariance - torch.diag(covariance.diagonal())
    assert off_diagonal.abs().max() < 1e-3
    eigenvalues = torch.linalg.eigvalsh(before.double())
    expected = eigenvalues / (eigenvalues + layer.eps)  # 1 for strong directions, less for faint ones
    assert torch.allclose(covariance.diagonal(), expected, rtol=1e-2)
    assert expected.min() < 0.96 and expected.max() > 0.999  # the test data has both kinds
    assert torch.equal(layer.conv.weight[12:], -layer.conv.weight[:12])  # both signs of every filter
    assert torch.equal(layer.conv.bias, torch.zeros(24))


def test_bad_configurations_name_the_parameter():
    with pytest.raises(CnnlabError, match="widths"):
        AirbenchNet(widths=(64, 0, 256))
    with pytest.raises(CnnlabError, match="widths"):
        AirbenchNet(widths=(64, 256))
    with pytest.raises(CnnlabError, match="logit_scale"):
        AirbenchNet(logit_scale=0)
    with pytest.raises(CnnlabError, match="x 3 x H x W"):
        PatchWhitening(3).init_from_data(torch.randn(2, 1, 8, 8))
