"""load_dataset on every supported format, written small by the tests themselves."""
from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from cnnlab.data import ArrayDataset, StreamingImageDataset, load_dataset, stratified_split
from cnnlab.data import datasets as datasets_module
from cnnlab.errors import CnnlabError

from .helpers import (CLASSES, decode_label, make_image, make_tree, tar_tree, write_cifar10,
                      write_cifar100, write_image, write_mnist, zip_tree)


def _check_labels_match_pixels(dataset):
    """Every image carries its class colour: a wrong label anywhere fails here."""
    for image, label in zip(dataset.images, dataset.labels.tolist()):
        assert decode_label(image) == label


# ---------------------------------------------------------------- image folders

@pytest.mark.parametrize("packing", ["folder", "tar", "tar.gz", "tgz", "tar.bz2", "tar.xz", "zip"])
def test_image_folder_in_every_packing(tmp_path, packing):
    tree = make_tree(tmp_path / "pets", per_class=4)
    if packing == "folder":
        spec = tree
    elif packing == "zip":
        spec = zip_tree(tree, tmp_path / "pets.zip")
    else:
        mode = {"tar": "w", "tar.gz": "w:gz", "tgz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}[packing]
        spec = tar_tree(tree, tmp_path / f"pets.{packing}", mode)
    dataset = load_dataset(spec, val_fraction=0)
    assert isinstance(dataset, ArrayDataset)
    assert dataset.classes == list(CLASSES)
    assert dataset.images.shape == (12, 3, 8, 8) and dataset.images.dtype == torch.uint8
    assert dataset.labels.dtype == torch.int64
    assert dataset.class_counts() == [4, 4, 4]
    assert dataset.name == "pets"
    _check_labels_match_pixels(dataset)
    # The order is fixed (class, then file name), whatever order the archive stores files in.
    assert [int(image[0, -1, -1]) for image in dataset.images[:4]] == [0, 1, 2, 3]


def test_image_folder_inside_a_wrapping_folder_and_with_split_folders(tmp_path):
    tree = make_tree(tmp_path / "src" / "cifar-mini", per_class=3, splits=("train", "test"))
    archive = tar_tree(tmp_path / "src", tmp_path / "mini.tar.gz")  # members are ./cifar-mini/train/cat/...
    train = load_dataset(archive, "train", val_fraction=0)
    test = load_dataset(archive, "test")
    assert len(train) == 9 and len(test) == 9
    assert train.classes == test.classes == list(CLASSES)
    _check_labels_match_pixels(test)
    assert tree.exists()


def test_validation_split_is_stratified_seeded_and_disjoint(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=10)
    full = load_dataset(tree, val_fraction=0)
    train = load_dataset(tree, "train", val_fraction=0.2, seed=3)
    val = load_dataset(tree, "val", val_fraction=0.2, seed=3)
    assert len(train) == 24 and len(val) == 6
    assert val.class_counts() == [2, 2, 2]
    identity = lambda ds: {(int(lab), int(img[0, -1, -1])) for img, lab in zip(ds.images, ds.labels)}  # noqa: E731
    assert identity(train).isdisjoint(identity(val))
    assert identity(train) | identity(val) == identity(full)
    assert identity(load_dataset(tree, "val", val_fraction=0.2, seed=3)) == identity(val)
    assert identity(load_dataset(tree, "val", val_fraction=0.2, seed=4)) != identity(val)
    with pytest.raises(CnnlabError, match="no test split"):
        load_dataset(tree, "test")
    with pytest.raises(CnnlabError, match="val_fraction is 0"):
        load_dataset(tree, "val", val_fraction=0)


def test_explicit_val_folder_is_used_as_is(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2, splits=("train", "val"))
    assert len(load_dataset(tree, "train")) == 6  # nothing carved out: val/ exists
    assert len(load_dataset(tree, "val")) == 6
    with pytest.raises(CnnlabError, match="no test split"):
        load_dataset(tree, "test")


def test_stratified_split_counts():
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)
    keep, held = stratified_split(labels, 0.1, seed=0)
    assert len(held) == 10 and len(keep) == 90
    assert torch.bincount(labels[held]).tolist() == [5, 3, 2]
    assert torch.equal(held, stratified_split(labels, 0.1, seed=0)[1])


def test_colour_modes_become_rgb(tmp_path):
    root = tmp_path / "modes"
    base = make_image(0, 0)  # (200, 30, 30)
    write_image(root / "a" / "grey.png", base.convert("L"))
    write_image(root / "a" / "rgba.png", base.convert("RGBA"))
    write_image(root / "a" / "palette.png", base.convert("P"))
    transparent = base.convert("P")
    transparent.info["transparency"] = 0
    write_image(root / "a" / "palette_transparent.png", transparent)
    write_image(root / "a" / "la.png", base.convert("LA"))
    write_image(root / "a" / "bilevel.png", base.convert("1"))
    write_image(root / "a" / "cmyk.jpg", base.convert("CMYK"), "JPEG")
    write_image(root / "a" / "grey16.png", Image.fromarray(np.full((8, 8), 40000, dtype=np.uint16)))
    write_image(root / "a" / "plain.bmp", base, "BMP")
    write_image(root / "a" / "anim.gif", base)
    write_image(root / "a" / "page.tiff", base, "TIFF")
    if _has_webp():
        write_image(root / "a" / "pic.webp", base, "WEBP")
    dataset = load_dataset(root, val_fraction=0)
    assert dataset.images.shape[1:] == (3, 8, 8)
    by_name = dict(zip(sorted(p.name for p in (root / "a").iterdir()), dataset.images))
    grey = int(np.asarray(base.convert("L"))[0, 0])
    assert by_name["grey.png"][:, 0, 0].tolist() == [grey] * 3
    assert by_name["rgba.png"][:, 0, 0].tolist() == [200, 30, 30]
    palette_rgb = np.asarray(base.convert("P").convert("RGB"))[0, 0].tolist()  # the web palette's nearest red
    assert by_name["palette.png"][:, 0, 0].tolist() == palette_rgb
    assert by_name["palette_transparent.png"][:, 0, 0].tolist() == palette_rgb
    assert by_name["plain.bmp"][:, 0, 0].tolist() == [200, 30, 30]
    assert by_name["grey16.png"][:, 0, 0].tolist() == [40000 // 257] * 3
    # CMYK JPEG: the same RGB as PIL's conversion, close to the original red (JPEG is lossy).
    cmyk_rgb = np.asarray(Image.open(root / "a" / "cmyk.jpg").convert("RGB"))[0, 0].astype(int)
    assert np.abs(by_name["cmyk.jpg"][:, 0, 0].numpy().astype(int) - cmyk_rgb).max() <= 1
    assert abs(int(by_name["cmyk.jpg"][0, 0, 0]) - 200) < 20


def _has_webp() -> bool:
    from PIL import features

    return bool(features.check("webp"))


def test_different_sizes_need_image_size(tmp_path):
    root = tmp_path / "sizes"
    write_image(root / "a" / "small.png", make_image(0, 0, (8, 8)))
    write_image(root / "b" / "wide.png", make_image(1, 0, (40, 30)))
    with pytest.raises(CnnlabError, match=r"different sizes.*small\.png.*8x8.*wide\.png is 40x30.*image_size"):
        load_dataset(root, val_fraction=0)
    dataset = load_dataset(root, val_fraction=0, image_size=16)
    assert dataset.images.shape == (2, 3, 16, 16)
    _check_labels_match_pixels(dataset)
    assert load_dataset(root, val_fraction=0, image_size=(12, 20)).images.shape == (2, 3, 12, 20)


def test_resize_modes(tmp_path):
    # A 2:1 image, blue in its outer quarters and red in the middle half.
    pixels = np.zeros((16, 32, 3), dtype=np.uint8)
    pixels[:, :] = (0, 0, 255)
    pixels[:, 8:24] = (255, 0, 0)
    write_image(tmp_path / "t" / "a" / "x.png", Image.fromarray(pixels))
    crop = load_dataset(tmp_path / "t", val_fraction=0, image_size=8, cache_dir=False).images[0]
    stretch = load_dataset(tmp_path / "t", val_fraction=0, image_size=8, resize="stretch", cache_dir=False).images[0]
    assert crop.shape == stretch.shape == (3, 8, 8)
    assert (crop[0] > 200).all() and (crop[2] < 50).all()  # shorter side to 8, centre crop: only red
    assert (stretch[2, :, 0] > 200).all()  # squeezed: the blue edges survive
    with pytest.raises(CnnlabError, match="resize must be one of"):
        load_dataset(tmp_path / "t", image_size=8, resize="squash")


def test_transform_and_dataloader(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=4)
    dataset = load_dataset(tree, val_fraction=0, transform=lambda image: image.float() / 255)
    image, label = dataset[5]
    assert image.dtype == torch.float32 and isinstance(label, int)
    batches = list(DataLoader(dataset, batch_size=5))
    assert sum(len(b[1]) for b in batches) == 12 and batches[0][0].shape == (5, 3, 8, 8)


# ---------------------------------------------------------------- streaming

@pytest.mark.parametrize("packing", ["folder", "zip", "tar"])
def test_streaming_dataset_with_workers(tmp_path, packing):
    tree = make_tree(tmp_path / "t", per_class=8)
    spec = {"folder": tree, "zip": lambda: zip_tree(tree, tmp_path / "t.zip"),
            "tar": lambda: tar_tree(tree, tmp_path / "t.tar", "w")}[packing]
    spec = spec() if callable(spec) else spec
    dataset = load_dataset(spec, "train", val_fraction=0.25, in_memory=False, transform=lambda x: x.float())
    assert isinstance(dataset, StreamingImageDataset)
    assert len(dataset) == 18 and dataset.class_counts() == [6, 6, 6]
    seen = []
    for images, labels in DataLoader(dataset, batch_size=4, num_workers=2):
        assert images.dtype == torch.float32
        seen.extend((decode_label(img), int(lab)) for img, lab in zip(images, labels))
    assert len(seen) == 18 and all(colour == label for colour, label in seen)
    in_memory_val = load_dataset(spec, "val", val_fraction=0.25)
    streamed_val = load_dataset(spec, "val", val_fraction=0.25, in_memory=False)
    assert torch.equal(torch.stack([streamed_val[i][0] for i in range(len(streamed_val))]), in_memory_val.images)


def test_streaming_resizes_and_compressed_tar_cannot_stream(tmp_path):
    root = tmp_path / "sizes"
    write_image(root / "a" / "small.png", make_image(0, 0, (8, 8)))
    write_image(root / "b" / "wide.png", make_image(1, 0, (40, 30)))
    streamed = load_dataset(root, val_fraction=0, in_memory=False)
    assert streamed[1][0].shape == (3, 30, 40)  # streamed images keep their own size
    assert load_dataset(root, val_fraction=0, in_memory=False, image_size=16)[1][0].shape == (3, 16, 16)
    archive = tar_tree(root, tmp_path / "s.tar.gz")
    with pytest.raises(CnnlabError, match="compressed tar.*cannot be streamed"):
        load_dataset(archive, in_memory=False)


def test_large_trees_stream_automatically(tmp_path, monkeypatch):
    tree = make_tree(tmp_path / "t", per_class=2)
    monkeypatch.setattr(datasets_module, "IN_MEMORY_LIMIT_BYTES", 100)
    assert isinstance(load_dataset(tree, val_fraction=0), StreamingImageDataset)
    assert isinstance(load_dataset(tree, val_fraction=0, in_memory=True), ArrayDataset)


# ---------------------------------------------------------------- CIFAR python release

@pytest.mark.parametrize("protocol", [2, 5])
@pytest.mark.parametrize("packing", ["folder", "tar.gz"])
def test_cifar10_python_release(tmp_path, protocol, packing):
    folder = tmp_path / "cifar-10-batches-py"
    written = write_cifar10(folder, per_batch=6, protocol=protocol)
    spec = folder if packing == "folder" else tar_tree(folder, tmp_path / "cifar-10-python.tar.gz",
                                                       arcname="cifar-10-batches-py")
    train = load_dataset(spec, "train", val_fraction=0)
    test = load_dataset(spec, "test")
    assert train.images.shape == (30, 3, 32, 32) and len(test) == 6
    assert train.classes[0] == "airplane" and len(train.classes) == 10
    data, labels = written["data_batch_2"]
    # Row 3,072 = red plane, green plane, blue plane of 32 x 32.
    assert torch.equal(train.images[6:12], torch.from_numpy(data.reshape(-1, 3, 32, 32)))
    assert train.labels[6:12].tolist() == labels
    assert test.labels.tolist() == written["test_batch"][1]


def test_cifar10_by_name_from_root(tmp_path):
    folder = tmp_path / "root" / "cifar-10-batches-py"
    write_cifar10(folder, per_batch=4)
    tar_tree(folder, tmp_path / "root" / "cifar-10-python.tar.gz", arcname="cifar-10-batches-py")
    dataset = load_dataset("cifar10", "val", root=tmp_path / "root", val_fraction=0.25)
    assert len(dataset) == 5 and dataset.name == "cifar10"
    with pytest.raises(CnnlabError, match="CIFAR10 is not under .*download=True"):
        load_dataset("cifar10", root=tmp_path / "elsewhere")


def test_cifar100_python_release(tmp_path):
    folder = tmp_path / "cifar-100-python"
    written = write_cifar100(folder)
    dataset = load_dataset(tmp_path / "cifar-100-python", "test")
    assert len(dataset.classes) == 100 and dataset.classes[3] == "class03"
    assert dataset.labels.tolist() == written["test"][1]
    by_name = load_dataset("cifar100", "test", root=tmp_path)
    assert torch.equal(by_name.images, dataset.images)


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar_unpickler_refuses_code(tmp_path):
    folder = tmp_path / "evil"
    write_cifar10(folder, per_batch=2)
    marker = tmp_path / "pwned"
    (folder / "data_batch_3").write_bytes(pickle.dumps({b"data": _Exploit(marker), b"labels": [0, 1]}))
    with pytest.raises(CnnlabError, match=r"data_batch_3.*refusing to load (posix|os)\.system"):
        load_dataset(folder)
    assert not marker.exists()


def test_cifar_bad_batches(tmp_path):
    folder = tmp_path / "bad"
    write_cifar10(folder, per_batch=2)
    (folder / "data_batch_4").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(CnnlabError, match=r"data_batch_4.*N x 3072"):
        load_dataset(folder, cache_dir=False)
    (folder / "data_batch_4").write_bytes(b"\x80\x02garbage")
    with pytest.raises(CnnlabError, match=r"data_batch_4 is not a CIFAR batch file"):
        load_dataset(folder, cache_dir=False)
    (folder / "data_batch_4").unlink()
    with pytest.raises(CnnlabError, match="missing data_batch_4"):
        load_dataset(folder, cache_dir=False)


def test_cifar_download_checks_md5(tmp_path, monkeypatch):
    from cnnlab.data.formats import cifar

    source = tmp_path / "mirror"
    write_cifar10(source / "cifar-10-batches-py", per_batch=2)
    archive = tar_tree(source / "cifar-10-batches-py", tmp_path / "official.tar.gz", arcname="cifar-10-batches-py")
    from cnnlab.data.download import md5sum

    good = cifar.CifarFormat(**{**cifar.CIFAR10.__dict__, "url": archive.as_uri(), "md5": md5sum(archive)})
    monkeypatch.setattr(cifar, "CIFAR10", good)
    root = tmp_path / "downloads"
    dataset = load_dataset("cifar10", root=root, download=True, val_fraction=0)
    assert len(dataset) == 10 and (root / "cifar-10-python.tar.gz").is_file()
    monkeypatch.setattr(cifar, "CIFAR10", cifar.CifarFormat(**{**good.__dict__, "md5": "0" * 32}))
    with pytest.raises(CnnlabError, match="download of .* is corrupt: MD5"):
        load_dataset("cifar10", root=tmp_path / "other", download=True)
    assert not any((tmp_path / "other").iterdir())  # no partial file left behind


# ---------------------------------------------------------------- MNIST IDX and digits

@pytest.mark.parametrize("gz", [True, False])
def test_mnist_idx_folder(tmp_path, gz):
    written = write_mnist(tmp_path / "mnist", gz=gz)
    train = load_dataset(tmp_path / "mnist", val_fraction=0)
    test = load_dataset(tmp_path / "mnist", "test")
    assert train.images.shape == (20, 1, 28, 28) and len(test) == 10
    assert torch.equal(test.images[:, 0], torch.from_numpy(written["test"][0]))
    assert test.labels.tolist() == written["test"][1].tolist()
    padded = load_dataset(tmp_path / "mnist", "test", image_size=32)
    assert padded.images.shape == (10, 1, 32, 32)


def test_mnist_and_fashion_by_name(tmp_path):
    write_mnist(tmp_path / "MNIST" / "raw")
    write_mnist(tmp_path / "fashion-mnist", seed=1)
    mnist = load_dataset("mnist", "test", root=tmp_path)
    fashion = load_dataset("fashion-mnist", "test", root=tmp_path)
    assert mnist.classes == [str(i) for i in range(10)]
    assert fashion.classes[0] == "T-shirt/top" and not torch.equal(mnist.images, fashion.images)
    with pytest.raises(CnnlabError, match="mnist is not under"):
        load_dataset("mnist", root=tmp_path / "none")


def test_mnist_truncated_file(tmp_path):
    write_mnist(tmp_path / "m", gz=False)
    path = tmp_path / "m" / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CnnlabError, match="train-images-idx3-ubyte holds .* truncated"):
        load_dataset(tmp_path / "m")


def test_digits_offline_default():
    train = load_dataset("digits", val_fraction=0)
    test = load_dataset("digits", "test")
    assert len(train) == 1437 and len(test) == 360
    assert train.images.shape[1:] == (1, 8, 8) and train.images.dtype == torch.uint8
    assert int(train.images.max()) == 255
    assert len(load_dataset("digits", "train")) + len(load_dataset("digits", "val")) == 1437
    # The test split is part of the data set: the seed moves only the validation split.
    assert torch.equal(load_dataset("digits", "test", seed=5).images, test.images)
    lenet = load_dataset("digits", "test", image_size=32)
    assert lenet.images.shape == (360, 1, 32, 32)


def test_bad_arguments():
    with pytest.raises(CnnlabError, match="split must be one of"):
        load_dataset("digits", "validation")
    with pytest.raises(CnnlabError, match="val_fraction"):
        load_dataset("digits", val_fraction=1.5)
    with pytest.raises(CnnlabError, match="image_size"):
        load_dataset("digits", image_size="big")
