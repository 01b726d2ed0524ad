"""Test-time augmentation: flip averaging, 10-crop positions, multi-scale on a tiny model."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.transforms.v2 import functional as TF

from cnnlab import create_model
from cnnlab.errors import CnnlabError
from cnnlab.eval import RESNET_TEST_SCALES, evaluate, resize_shorter_side, ten_crop, translate_views, tta_predict


def tiny_model(classes=5):
    """Position-sensitive (no global pooling before the classifier), so crops and flips matter."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
        nn.Linear(64, classes),
    )


def images(n=3, h=40, w=48):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(1))


def probs(model, x):
    return F.softmax(model(x), dim=-1)


def test_flip_mode_averages_the_image_and_its_mirror():
    model = tiny_model().eval()
    x = images()
    with torch.no_grad():
        expected = (probs(model, x) + probs(model, x.flip(-1))) / 2
    out = tta_predict(model, x, mode="flip")
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, probs(model, x).detach(), atol=1e-4)  # the flip changes something
    assert torch.allclose(out.sum(1), torch.ones(3))


def test_translate_mode_is_airbenchs_flips_and_one_pixel_shifts():
    model = tiny_model().eval()
    x = images()
    views, weights = translate_views(x)
    assert sum(weights) == 1 and len(views) == 6 and all(v.shape == x.shape for v in views)
    up_left, down_right = views[2], views[4]
    assert torch.equal(up_left[..., 1:, 1:], x[..., :-1, :-1])  # content moved one pixel down-right
    assert torch.equal(up_left[..., 0, 1:], x[..., 1, :-1])  # the new edge row is reflected, not zero
    assert torch.equal(down_right[..., :-1, :-1], x[..., 1:, 1:])
    with torch.no_grad():
        pair = lambda v: (probs(model, v) + probs(model, v.flip(-1))) / 2  # noqa: E731
        expected = 0.5 * pair(x) + 0.25 * pair(up_left) + 0.25 * pair(down_right)
    out = tta_predict(model, x, mode="translate")
    assert torch.allclose(out, expected, atol=1e-6)
    assert not torch.allclose(out, tta_predict(model, x, mode="flip"), atol=1e-4)
    # The evaluation loop (per view, as the trainer runs it) gives the same probabilities.
    labels = torch.tensor([0, 1, 2])
    looped = evaluate(model, [(x, labels)], tta="translate")
    assert looped["loss"] == pytest.approx(float(F.nll_loss(expected.log(), labels)), rel=1e-5)


def test_ten_crop_positions_match_torchvision():
    x = images(n=2)
    crops = ten_crop(x, 32)
    assert crops.shape == (10, 2, 3, 32, 32)
    for i, image in enumerate(x):
        reference = TF.ten_crop(image, [32, 32])
        for k in range(10):
            assert torch.equal(crops[k, i], reference[k])
    assert torch.equal(crops[0], x[..., :32, :32])  # top-left
    assert torch.equal(crops[3], x[..., 8:, 16:])  # bottom-right
    assert torch.equal(crops[4], x[..., 4:36, 8:40])  # centre


def test_ten_crop_mode_averages_the_ten_crops():
    model = tiny_model()
    model.train()
    x = images()
    out = tta_predict(model, x, mode="10crop", crop_size=32)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        expected = torch.stack([probs(model, c) for c in ten_crop(x, 32)]).mean(0)
    assert torch.allclose(out, expected, atol=1e-6)
    chunked = tta_predict(model, x, mode="10crop", crop_size=32, batch_size=7)
    assert torch.allclose(chunked, out, atol=1e-6)


def test_multiscale_with_a_subset_of_scales():
    model = tiny_model().eval()
    x = images()
    out = tta_predict(model, x, mode="multiscale", scales=(32, 44), crop_size=32)
    assert out.shape == (3, 5) and torch.allclose(out.sum(1), torch.ones(3))
    with torch.no_grad():
        per_scale = [
            torch.stack([probs(model, c) for c in ten_crop(resize_shorter_side(x, s), 32)]).mean(0) for s in (32, 44)
        ]
    assert torch.allclose(out, sum(per_scale) / 2, atol=1e-6)
    assert resize_shorter_side(x, 44).shape[-2:] == (44, 52)
    assert RESNET_TEST_SCALES == (224, 256, 384, 480, 640)


def test_works_on_a_zoo_model():
    model = create_model("resnet20")
    x = torch.randn(2, 3, 36, 36)
    for mode in ("none", "flip", "10crop"):
        assert tta_predict(model, x, mode=mode, crop_size=32).shape == (2, 10)


def test_bad_arguments():
    model = tiny_model()
    with pytest.raises(CnnlabError, match="flip"):
        tta_predict(model, images(), mode="rotate")
    with pytest.raises(CnnlabError, match="crop_size"):
        tta_predict(model, images(), mode="multiscale", scales=(24, 48), crop_size=32)
    with pytest.raises(CnnlabError):
        tta_predict(model, images(h=20, w=20), mode="10crop", crop_size=32)
