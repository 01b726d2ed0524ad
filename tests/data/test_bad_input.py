"""Bad input gets a clear CnnlabError naming the file, or a counted, documented skip; never a wrong label."""
from __future__ import annotations

import warnings

import pytest
import torch

from cnnlab.data import DataWarning, load_dataset
from cnnlab.errors import CnnlabError

from .helpers import jpeg_bytes, make_image, make_tree, tar_tree, write_image, zip_tree


def test_corrupt_image_is_named(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    (tree / "dog" / "001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(CnnlabError, match=r"dog/001\.png: corrupt or truncated image"):
        load_dataset(tree)


def test_truncated_jpeg_is_named(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    data = jpeg_bytes(make_image(0, 0, (32, 32)))
    (tree / "cat" / "broken.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnlabError, match=r"cat/broken\.jpg: corrupt or truncated image"):
        load_dataset(tree)


def test_non_image_files_among_images(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    (tree / "frog" / "notes.txt").write_text("not a frog")
    with pytest.raises(CnnlabError, match=r"frog/notes\.txt: not an image file \(extension \.txt\)"):
        load_dataset(tree)
    (tree / "frog" / "notes.txt").unlink()
    (tree / "frog" / "fake.jpg").write_text("hello")  # right extension, wrong content
    with pytest.raises(CnnlabError, match=r"frog/fake\.jpg: not an image"):
        load_dataset(tree)


def test_few_bad_files_are_skipped_with_a_count(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=70)  # 210 images
    (tree / "dog" / "005.png").write_bytes(b"not an image at all")
    (tree / "cat" / "Icon.txt").write_text("x")
    with pytest.warns(DataWarning, match=r"skipped 2 of 211 files.*cat/Icon\.txt.*dog/005\.png"):
        dataset = load_dataset(tree, val_fraction=0)
    assert len(dataset) == 209 and dataset.class_counts() == [70, 69, 70]
    assert sorted(dataset.skipped) == ["cat/Icon.txt", "dog/005.png"]
    # Labels still follow the folders: no image shifted into another class.
    from .helpers import decode_label

    assert all(decode_label(img) == int(lab) for img, lab in zip(dataset.images, dataset.labels))
    # Above the limit it is an error listing them.
    with pytest.raises(CnnlabError, match=r"2 of 211 files cannot be used as images.*at most 0%"):
        load_dataset(tree, val_fraction=0, max_bad_fraction=0.0, cache_dir=False)


def test_system_and_hidden_files_are_ignored(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2)
    (tree / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tree / "cat" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (tree / "dog" / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0")
    (tree / "dog" / "._001.png").write_bytes(b"AppleDouble")
    (tree / ".git").mkdir()
    (tree / ".git" / "HEAD").write_text("ref: refs/heads/main")
    (tree / "README.md").write_text("my pets")
    write_image(tree / "__MACOSX" / "cat" / "._x.png", make_image(0, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even a warning
        for spec in (tree, zip_tree(tree, tmp_path / "t.zip"), tar_tree(tree, tmp_path / "t.tgz")):
            dataset = load_dataset(spec, val_fraction=0)
            assert dataset.classes == ["cat", "dog", "frog"] and len(dataset) == 6 and not dataset.skipped


def test_empty_class_folder(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2)
    (tree / "zebra").mkdir()
    with pytest.raises(CnnlabError, match=r"class folder zebra/ is empty"):
        load_dataset(tree)
    with pytest.raises(CnnlabError, match=r"class folder zebra/ is empty"):
        load_dataset(tar_tree(tree, tmp_path / "t.tar.gz"))
    (tree / "zebra" / ".DS_Store").write_bytes(b"x")
    with pytest.raises(CnnlabError, match=r"class folder zebra/ is empty"):
        load_dataset(tree)


def test_tree_without_class_folders(tmp_path):
    for i in range(3):
        write_image(tmp_path / "flat" / f"{i}.png", make_image(0, i))
    with pytest.raises(CnnlabError, match="has images but no class folders"):
        load_dataset(tmp_path / "flat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CnnlabError, match="holds no files"):
        load_dataset(tmp_path / "empty")
    write_image(tmp_path / "split" / "train" / "0.png", make_image(0, 0))
    with pytest.raises(CnnlabError, match=r"split/train has images but no class folders"):
        load_dataset(tmp_path / "split")


def test_images_outside_class_folders_are_ignored_with_a_warning(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2)
    write_image(tree / "stray.png", make_image(0, 9))
    with pytest.warns(DataWarning, match=r"ignored 1 images outside any class folder.*stray\.png"):
        assert len(load_dataset(tree, val_fraction=0)) == 6


def test_split_folders_mixed_with_class_folders(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2, splits=("train",))
    write_image(tree / "zebra" / "0.png", make_image(0, 0))
    with pytest.raises(CnnlabError, match=r"mixes split folders \(train\) with other folders \(zebra\)"):
        load_dataset(tree)


def test_missing_path_and_unknown_name(tmp_path):
    with pytest.raises(CnnlabError, match=r"no data set named .* no such file or folder.*Known names: cifar10"):
        load_dataset(tmp_path / "nothing-here")
    with pytest.raises(CnnlabError, match="no data set named 'imagenet'"):
        load_dataset("imagenet")


@pytest.mark.parametrize("name", ["data.tar.gz", "data.tgz", "data.tar", "data.zip"])
def test_archive_that_is_not_one(tmp_path, name):
    path = tmp_path / name
    path.write_text("this is a text file, not an archive\n" * 40)
    with pytest.raises(CnnlabError, match=rf"{name} is not a (tar|zip) archive"):
        load_dataset(path)


def test_gzip_that_holds_no_tar(tmp_path):
    import gzip

    path = tmp_path / "data.tar.gz"
    path.write_bytes(gzip.compress(b"plain text, no tar headers\n" * 100))
    with pytest.raises(CnnlabError, match=r"data\.tar\.gz is not a tar archive"):
        load_dataset(path)


def test_file_that_is_not_a_data_set(tmp_path):
    path = tmp_path / "photo.png"
    write_image(path, make_image(0, 0))
    with pytest.raises(CnnlabError, match=r"photo\.png is a file but not a data set"):
        load_dataset(path)


def test_truncated_archives(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=30, size=(32, 32))
    for name, mode in (("t.tar.gz", "w:gz"), ("t.tar", "w")):
        archive = tar_tree(tree, tmp_path / name, mode)
        data = archive.read_bytes()
        archive.write_bytes(data[: len(data) // 2])
        with pytest.raises(CnnlabError, match=rf"{name} is truncated"):
            load_dataset(archive)
    archive = zip_tree(tree, tmp_path / "t.zip")
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(CnnlabError, match=r"t\.zip is not a readable zip archive"):
        load_dataset(archive)


def test_damaged_gzip_stream(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=30, size=(32, 32))
    archive = tar_tree(tree, tmp_path / "t.tar.gz")
    data = bytearray(archive.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0x5A
    archive.write_bytes(bytes(data))
    with pytest.raises(CnnlabError, match=r"t\.tar\.gz is damaged"):
        load_dataset(archive)


def test_streaming_skips_a_file_that_breaks_mid_epoch(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    dataset = load_dataset(tree, val_fraction=0, in_memory=False)
    (tree / "dog" / "000.png").write_bytes(b"overwritten after indexing")
    labels = []
    with pytest.warns(DataWarning, match=r"skipping unreadable image .*dog/000\.png"):
        for index in range(len(dataset)):
            image, label = dataset[index]
            labels.append(label)
            from .helpers import decode_label

            assert decode_label(image) == label  # the replacement carries its own label
    assert len(labels) == 9
    for path in tree.rglob("*.png"):
        path.write_bytes(b"all gone")
    with pytest.raises(CnnlabError, match="images in a row"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dataset[0]


def test_labels_never_shift_when_a_class_is_lost(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=200)
    (tree / "solo").mkdir()
    (tree / "solo" / "only.png").write_bytes(b"broken")
    with pytest.raises(CnnlabError, match="no readable image is left in the train class folder.*solo"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        load_dataset(tree)


def test_uint8_images_and_int64_labels_even_for_a_single_class(tmp_path):
    write_image(tmp_path / "one" / "only" / "a.png", make_image(0, 0))
    dataset = load_dataset(tmp_path / "one", val_fraction=0)
    assert dataset.classes == ["only"] and dataset.labels.tolist() == [0]
    assert dataset.images.dtype == torch.uint8
