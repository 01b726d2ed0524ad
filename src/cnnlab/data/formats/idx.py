"""MNIST and Fashion-MNIST in their IDX files (LeCun et al., 1998; Xiao et al., 2017), gzipped or raw.

An IDX file is a big-endian header (two zero bytes, a type code, the number of
dimensions, then each dimension as a 32-bit integer) followed by the values.
"""
from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from ...errors import CnnlabError

# split -> (images file, labels file), without extension; mirrors also use a dot.
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_TYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
          0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _candidates(stem: str) -> list[str]:
    dotted = stem.replace("-idx", ".idx")
    return [stem, stem + ".gz", dotted, dotted + ".gz"]


def find_file(folder: Path, stem: str) -> Path | None:
    for name in _candidates(stem):
        if (folder / name).is_file():
            return folder / name
    return None


def is_idx_folder(folder: Path) -> bool:
    """Whether ``folder`` holds the MNIST-style training files."""
    return folder.is_dir() and all(find_file(folder, stem) for stem in FILES["train"])


def read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (``.gz`` or raw) into a numpy array of its declared shape."""
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as error:
        raise CnnlabError(f"cannot read {path}: {error}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _TYPES:
        raise CnnlabError(f"{path} is not an IDX file (bad magic number {data[:4].hex() or 'empty'})")
    dtype = np.dtype(_TYPES[data[2]])
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise CnnlabError(f"{path} is truncated inside its header")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) != expected:
        raise CnnlabError(f"{path} holds {len(data)} bytes but its header {shape} needs {expected}; "
                          "is it truncated?")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_mnist_folder(folder: Path, num_classes: int | None = 10) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """``{"train": (images N x 1 x 28 x 28 uint8, labels), "test": ...}`` from a folder of IDX files.

    ``num_classes=None`` accepts any non-negative labels (for MNIST-like sets of unknown size).
    """
    splits = {}
    for split, (images_stem, labels_stem) in FILES.items():
        images_path, labels_path = find_file(folder, images_stem), find_file(folder, labels_stem)
        if images_path is None or labels_path is None:
            missing = images_stem if images_path is None else labels_stem
            raise CnnlabError(f"{folder} has no {missing} (or {missing}.gz); an MNIST folder needs "
                              + ", ".join(s for pair in FILES.values() for s in pair))
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CnnlabError(f"{images_path} should hold N x H x W uint8 images, got {images.dtype} {images.shape}")
        if labels.ndim != 1 or len(labels) != len(images):
            raise CnnlabError(f"{labels_path} holds {labels.shape} labels for {len(images)} images in {images_path}")
        if len(labels) and (labels.min() < 0 or (num_classes is not None and labels.max() >= num_classes)):
            raise CnnlabError(f"{labels_path}: labels must lie in 0..{(num_classes or 1) - 1}, "
                              f"found {labels.min()}..{labels.max()}")
        splits[split] = (torch.from_numpy(images.copy()).unsqueeze(1),
                         torch.from_numpy(labels.astype(np.int64)))
    return splits
