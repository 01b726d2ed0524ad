"""Per-channel statistics and `cnnlab data stats`."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnlab.cli import main
from cnnlab.data import channel_stats, describe_dataset, load_dataset
from cnnlab.errors import CnnlabError

from .helpers import make_tree


def _numpy_stats(images: torch.Tensor):
    values = images.numpy().astype(np.float64) / 255.0
    return values.mean(axis=(0, 2, 3)), values.std(axis=(0, 2, 3))


def test_channel_stats_match_numpy():
    images = torch.randint(0, 256, (50, 3, 9, 7), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)
    mean, std = channel_stats(images)
    expected_mean, expected_std = _numpy_stats(images)
    assert np.allclose(mean, expected_mean, rtol=0, atol=1e-12)
    assert np.allclose(std, expected_std, rtol=0, atol=1e-12)
    # Float input (0-1), a list of (image, label) pairs and an ArrayDataset agree.
    assert np.allclose(channel_stats(images.double() / 255)[1], expected_std, atol=1e-12)
    pairs = [(image, 0) for image in images]
    assert np.allclose(channel_stats(pairs)[0], expected_mean, atol=1e-12)


def test_channel_stats_is_exact_where_naive_float32_fails():
    # Nearly constant, large data: E[x^2] - E[x]^2 in float32 loses the variance entirely.
    images = torch.full((64, 1, 64, 64), 200, dtype=torch.uint8)
    images[:, :, ::2, ::2] = 201
    mean, std = channel_stats(images)
    assert mean[0] == pytest.approx(200.25 / 255, abs=1e-15)
    assert std[0] == pytest.approx(np.sqrt(0.25 * 0.75) / 255, rel=1e-12)


def test_channel_stats_of_datasets(tmp_path):
    tree = make_tree(tmp_path / "t", per_class=5, size=(6, 6))
    in_memory = load_dataset(tree, val_fraction=0)
    streamed = load_dataset(tree, val_fraction=0, in_memory=False, transform=lambda x: "ignored")
    expected_mean, expected_std = _numpy_stats(in_memory.images)
    for dataset in (in_memory, streamed):
        mean, std = channel_stats(dataset)
        assert np.allclose(mean, expected_mean, atol=1e-12) and np.allclose(std, expected_std, atol=1e-12)
    with pytest.raises(CnnlabError):
        channel_stats(torch.empty(0, 3, 4, 4, dtype=torch.uint8))


def test_describe_dataset_digits():
    info = describe_dataset("digits", val_fraction=0)
    assert info["num_images"] == 1437 and info["num_classes"] == 10 and info["image_shape"] == [1, 8, 8]
    assert sum(info["class_counts"].values()) == 1437
    assert 0.25 < info["mean"][0] < 0.35 and 0.3 < info["std"][0] < 0.45


def test_cli_data_stats_digits_json(capsys):
    assert main(["data", "stats", "digits", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["name"] == "digits" and info["split"] == "train"
    assert info["num_images"] == 1437 - 144  # 10% held out as validation by default
    expected = describe_dataset("digits")
    assert info["mean"] == pytest.approx(expected["mean"]) and info["std"] == pytest.approx(expected["std"])


def test_cli_data_stats_table_and_options(tmp_path, capsys):
    tree = make_tree(tmp_path / "pets", per_class=4)
    assert main(["data", "stats", str(tree), "--val-fraction", "0", "--image-size", "4"]) == 0
    out = capsys.readouterr().out
    assert "pets train split: 12 images, 3 classes, 3x4x4" in out
    assert "mean (0-1)" in out and "R " in out and "cat 4" in out
    assert main(["data", "stats", "digits", "--split", "test", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_images"] == 360


def test_cli_data_stats_errors_exit_2(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "missing")]) == 2
    assert "no such file or folder" in " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert main(["data", "stats", "digits", "--image-size", "0"]) == 2
