"""The augmentation gallery is drawn from real images: digits, and the shared CIFAR-10 tree."""
import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab import CnnlabError
from cnnlab.cli import main
from cnnlab.data import load_dataset
from cnnlab.data.gallery import augmentation_gallery, gallery_from_dataset, gallery_rows


def test_rows_follow_the_image_size():
    assert gallery_rows(32) == ["flip(p=1)", "crop(pad=4)", "rrc(32)", "jitter(0.4, 0.4, 0.4)", "cutout(16)",
                                "mixup(1.0)", "cutmix(1.0)"]


def test_gallery_rows_are_the_augmented_originals():
    digits = load_dataset("digits", "train", image_size=32)
    images, labels = digits.images[:6], digits.labels[:6]
    rows = dict(augmentation_gallery(images, labels, 10, seed=3))
    assert torch.equal(rows["original"], images)
    assert torch.equal(rows["flip(p=1)"], images.flip(-1))
    holes = (rows["cutout(16)"] == 0) & (images != 0)
    assert holes.any() and torch.equal(rows["cutout(16)"][~holes.expand_as(images)], images[~holes.expand_as(images)])
    assert not torch.equal(rows["mixup(1.0)"], images)
    again = dict(augmentation_gallery(images, labels, 10, seed=3))
    assert all(torch.equal(again[k], rows[k]) for k in rows)


def test_gallery_png_from_digits(tmp_path):
    digits = load_dataset("digits", "train", image_size=32)
    path = gallery_from_dataset(digits, tmp_path / "digits.png", count=5)
    image = np.asarray(Image.open(path))
    assert image.ndim == 3 and image.shape[1] > 5 * 32 and image.shape[0] > 8 * 32  # 8 rows of 5 images
    with pytest.raises(CnnlabError, match="does not exist"):
        gallery_from_dataset(digits, tmp_path / "missing" / "g.png")


def test_gallery_command_on_the_shared_cifar10_tree(tmp_path, capsys):
    from pathlib import Path

    archive = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg.tar.gz"
    if not archive.is_file():
        pytest.skip("../shared/data/cifar10-jpg.tar.gz is absent: the shared CIFAR-10 tree is needed")
    out = tmp_path / "cifar.png"
    assert main(["data", "gallery", str(archive), "--out", str(out), "--count", "4",
                 "--rows", "flip(p=1); cutout(16)"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert Image.open(out).size[0] > 4 * 96
    assert main(["data", "gallery", str(archive), "--out", str(out), "--rows", "nonsense(1)"]) == 2
