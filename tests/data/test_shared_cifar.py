"""The project's real data set: all of CIFAR-10 as JPEG (../shared/data/cifar10-jpg.tar.gz).

The 60,000 JPEGs are decoded once per test session (a session-scoped fixture with its
own cache folder, shared by pytest-xdist workers through a lock); every other load in
this file is a cache hit.
"""
from __future__ import annotations

import os
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cnnlab.data import channel_stats, load_dataset

SHARED_CIFAR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cifar10-jpg.tar.gz"
CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

pytestmark = pytest.mark.skipif(not SHARED_CIFAR.parent.parent.is_dir(),
                                reason=f"../shared is absent ({SHARED_CIFAR.parent.parent}): no shared CIFAR-10 tree")


@pytest.fixture(scope="session")
def cifar(tmp_path_factory):
    """``(train, test, cache_dir, decode_seconds)``; decoded once per session, whichever worker comes first."""
    assert SHARED_CIFAR.is_file(), f"{SHARED_CIFAR} is missing although ../shared exists"
    # One folder per test session: under xdist each worker's basetemp sits in the session's folder.
    base = tmp_path_factory.getbasetemp()
    cache = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "cnnlab-shared-cifar-cache"
    cache.mkdir(exist_ok=True)
    with open(cache / ".lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - no flock: each worker may decode once
            pass
        start = time.perf_counter()
        train = load_dataset(SHARED_CIFAR, "train", val_fraction=0, cache_dir=cache)
        seconds = time.perf_counter() - start
    test = load_dataset(SHARED_CIFAR, "test", cache_dir=cache)
    print(f"\nshared CIFAR-10 JPEG tree: first load {seconds:.2f} s (cache {train.cache_status})")
    return train, test, cache, seconds


def test_counts_shapes_and_classes(cifar):
    train, test, _, _ = cifar
    assert train.images.shape == (50_000, 3, 32, 32) and test.images.shape == (10_000, 3, 32, 32)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.classes == CLASSES == test.classes
    assert train.class_counts() == [5000] * 10 and test.class_counts() == [1000] * 10
    assert not train.skipped


def test_second_load_is_fast(cifar):
    _, _, cache, first = cifar
    start = time.perf_counter()
    again = load_dataset(SHARED_CIFAR, "train", val_fraction=0, cache_dir=cache)
    seconds = time.perf_counter() - start
    print(f"\ncached load of the 50,000 training images: {seconds:.2f} s (first load: {first:.2f} s)")
    assert again.cache_status == "hit" and len(again) == 50_000
    assert seconds < 2.0


def test_images_and_labels_match_an_independent_decode(cifar):
    train, test, _, _ = cifar
    index = {}
    for split, dataset in (("train", train), ("test", test)):
        flat = dataset.images.flatten(1).numpy()
        for row in range(len(flat)):
            index.setdefault((split, flat[row].tobytes()), []).append(row)
    checked = 0
    with tarfile.open(SHARED_CIFAR, "r|gz") as archive:  # the first members, decoded by PIL
        for member in archive:
            if not member.isfile() or not member.name.endswith(".jpg"):
                continue
            split, class_name, _ = Path(member.name).parts[-3:]
            dataset = train if split == "train" else test
            image = torch.from_numpy(np.asarray(Image.open(archive.extractfile(member)).convert("RGB")).copy())
            image = image.permute(2, 0, 1)
            matches = index.get((split, image.flatten().numpy().tobytes()), [])
            assert matches, f"{member.name} not found in the {split} split"
            assert {dataset.classes[int(dataset.labels[m])] for m in matches} == {class_name}, member.name
            checked += 1
            if checked == 25:
                break
    assert checked == 25


def test_channel_stats_match_numpy_and_readme(cifar):
    train, _, _, _ = cifar
    mean, std = channel_stats(train)
    values = train.images.numpy()
    direct_mean = [values[:, c].mean(dtype=np.float64) / 255 for c in range(3)]
    direct_std = [values[:, c].std(dtype=np.float64) / 255 for c in range(3)]
    assert np.allclose(mean, direct_mean, rtol=0, atol=1e-9)
    assert np.allclose(std, direct_std, rtol=0, atol=1e-9)
    assert np.allclose(mean, (0.4913, 0.4821, 0.4465), atol=2e-4)
    assert np.allclose(std, (0.2452, 0.2428, 0.2606), atol=2e-4)


def test_validation_split_of_the_training_set(cifar):
    _, _, cache, _ = cifar
    train = load_dataset(SHARED_CIFAR, "train", cache_dir=cache)
    val = load_dataset(SHARED_CIFAR, "val", cache_dir=cache)
    assert len(train) == 45_000 and len(val) == 5_000
    assert val.class_counts() == [500] * 10
