"""The decoded-tensor cache: hit, miss, stale and corrupt files, atomic writes."""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from cnnlab.data import DataWarning, default_cache_dir, load_dataset

from .helpers import make_image, make_tree, tar_tree, write_cifar10, write_image


def _touch_later(path):
    later = time.time() + 10
    os.utime(path, (later, later))


def test_miss_then_hit(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    cache = tmp_path / "cache"
    first = load_dataset(tree, val_fraction=0, cache_dir=cache)
    second = load_dataset(tree, val_fraction=0, cache_dir=cache)
    assert (first.cache_status, second.cache_status) == ("miss", "hit")
    assert first.cache_path == second.cache_path and first.cache_path.parent == cache
    assert first.cache_path.suffix == ".safetensors"
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    assert second.classes == first.classes
    assert [p.name for p in cache.iterdir()] == [first.cache_path.name]  # no temporary files left


def test_default_cache_dir_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNLAB_CACHE", str(tmp_path / "elsewhere"))
    assert default_cache_dir() == tmp_path / "elsewhere"
    tree = make_tree(tmp_path / "t", per_class=2)
    assert load_dataset(tree).cache_path.parent == tmp_path / "elsewhere"
    monkeypatch.delenv("CNNLAB_CACHE")
    assert default_cache_dir() == Path("~/.cache/cnnlab").expanduser()


def test_options_get_their_own_cache_file(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2)
    plain = load_dataset(tree, val_fraction=0)
    resized = load_dataset(tree, val_fraction=0, image_size=4)
    assert plain.cache_path != resized.cache_path and resized.cache_status == "miss"
    assert resized.images.shape[-2:] == (4, 4)
    # The validation split is carved after the cache: a new fraction or seed reuses it.
    assert load_dataset(tree, "val", val_fraction=0.5, seed=9).cache_status == "hit"


def test_stale_when_a_file_of_the_folder_changes(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    before = load_dataset(tree, val_fraction=0)
    write_image(tree / "cat" / "000.png", make_image(2, 0))  # now frog-coloured, in cat/
    _touch_later(tree / "cat" / "000.png")
    after = load_dataset(tree, val_fraction=0)
    assert after.cache_status == "stale" and after.cache_path == before.cache_path
    assert not torch.equal(after.images[0], before.images[0])
    write_image(tree / "dog" / "new.png", make_image(1, 50))
    grown = load_dataset(tree, val_fraction=0)
    assert grown.cache_status == "stale" and len(grown) == 10
    assert load_dataset(tree, val_fraction=0).cache_status == "hit"


def test_stale_when_an_archive_changes(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=3)
    archive = tar_tree(tree, tmp_path / "t.tar.gz")
    assert load_dataset(archive, val_fraction=0).cache_status == "miss"
    write_image(tree / "frog" / "extra.png", make_image(2, 99))
    tar_tree(tree, archive)
    _touch_later(archive)
    reloaded = load_dataset(archive, val_fraction=0)
    assert reloaded.cache_status == "stale" and len(reloaded) == 10


@pytest.mark.parametrize("damage", ["truncate", "flip-pixels", "flip-header", "empty", "garbage"])
def test_corrupt_cache_is_rebuilt(tmp_path, damage):
    tree = make_tree(tmp_path / "t", per_class=20, size=(16, 16))
    good = load_dataset(tree, val_fraction=0)
    path = good.cache_path
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[: len(data) - 1000]
    elif damage == "flip-pixels":
        for i in range(len(data) - 3000, len(data) - 2900):
            data[i] ^= 0xFF
    elif damage == "flip-header":
        data[20:30] = b"@@@@@@@@@@"
    elif damage == "empty":
        data = bytearray()
    else:
        data = bytearray(os.urandom(5000))
    path.write_bytes(bytes(data))
    with pytest.warns(DataWarning, match="cache .* is damaged"):
        rebuilt = load_dataset(tree, val_fraction=0)
    assert rebuilt.cache_status == "corrupt"
    assert torch.equal(rebuilt.images, good.images) and torch.equal(rebuilt.labels, good.labels)
    assert load_dataset(tree, val_fraction=0).cache_status == "hit"


def test_cifar_is_cached_too(tmp_path):
    write_cifar10(tmp_path / "cifar-10-batches-py", per_batch=3)
    first = load_dataset(tmp_path / "cifar-10-batches-py", "test")
    second = load_dataset(tmp_path / "cifar-10-batches-py", "train", val_fraction=0)
    assert (first.cache_status, second.cache_status) == ("miss", "hit")
    assert len(second) == 15


def test_no_cache_and_unwritable_cache(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=2)
    off = load_dataset(tree, cache_dir=False)
    assert off.cache_status == "off" and off.cache_path is None
    blocker = tmp_path / "a-file"
    blocker.write_text("the cache folder cannot be created here")
    with pytest.warns(DataWarning, match="cannot write the cache"):
        dataset = load_dataset(tree, cache_dir=blocker / "cache")
    assert dataset.cache_status == "unwritable" and len(dataset) == 5
