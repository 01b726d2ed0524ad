"""CIFAR-10 and CIFAR-100 in the official "python version" release (Krizhevsky, 2009).

Each batch file is a pickled dict: ``data`` (uint8 array, one row of 3,072 values per image,
the red plane then green then blue, each 32x32 row-major), ``labels`` (CIFAR-10) or
``fine_labels``/``coarse_labels`` (CIFAR-100), and the class names in ``batches.meta`` /
``meta``. Pickle can run arbitrary code, so the files are read with an unpickler that
resolves only the few numpy functions an array needs and refuses every other global.
"""
from __future__ import annotations

import codecs
import io
import pickle
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

from ...errors import CnnlabError
from .archive import is_ignored, iter_files


@dataclass(frozen=True)
class CifarFormat:
    name: str
    folder: str          # the folder inside the official archive
    archive: str         # the official archive's file name
    url: str
    md5: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str

    @property
    def files(self) -> tuple[str, ...]:
        return self.train_files + self.test_files + (self.meta_file,)


CIFAR10 = CifarFormat(
    name="cifar10", folder="cifar-10-batches-py", archive="cifar-10-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", md5="c58f30108f718f92721af3b95e74349a",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)), test_files=("test_batch",),
    meta_file="batches.meta", label_key="labels", names_key="label_names",
)
CIFAR100 = CifarFormat(
    name="cifar100", folder="cifar-100-python", archive="cifar-100-python.tar.gz",
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", md5="eb9058c3a382ffc7106e4002c42a8d85",
    train_files=("train",), test_files=("test",), meta_file="meta",
    label_key="fine_labels", names_key="fine_label_names",
)


def _allowed_globals() -> dict[tuple[str, str], object]:
    # Take the functions from numpy's own pickling, so the table is right for numpy 1 and 2.
    reconstruct = np.ndarray(0).__reduce__()[0]
    from_buffer = np.arange(2).__reduce_ex__(5)[0]
    scalar = np.float64(0).__reduce__()[0]
    table: dict[tuple[str, str], object] = {}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        table[(module, "_reconstruct")] = reconstruct
        table[(module, "scalar")] = scalar
    for module in ("numpy.core.numeric", "numpy._core.numeric"):
        table[(module, "_frombuffer")] = from_buffer
    table[("numpy", "ndarray")] = np.ndarray
    table[("numpy", "dtype")] = np.dtype
    # Python 3 writes bytes at pickle protocol 2 as _codecs.encode(text, "latin1").
    table[("_codecs", "encode")] = codecs.encode
    for module in ("builtins", "__builtin__"):
        table[(module, "bytearray")] = bytearray
    return table


class SafeUnpickler(pickle.Unpickler):
    """An unpickler for plain data and numpy arrays only: any other global is refused."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: a data file may hold only "
                                         "numpy arrays, lists, numbers and strings") from None


def safe_unpickle(data: bytes, source: str) -> dict:
    """Unpickle one CIFAR file (``encoding="bytes"`` for the Python 2 originals) into a dict with str keys."""
    try:
        value = SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except pickle.UnpicklingError as error:
        raise CnnlabError(f"{source} is not a CIFAR batch file: {error}") from None
    except Exception as error:  # truncated or garbage data fails in many ways inside pickle
        raise CnnlabError(f"{source} is not a CIFAR batch file (cannot unpickle it: "
                          f"{type(error).__name__}: {error})") from None
    if not isinstance(value, dict):
        raise CnnlabError(f"{source} is not a CIFAR batch file: it holds a {type(value).__name__}, not a dict")
    return {(k.decode("latin-1") if isinstance(k, bytes) else str(k)): v for k, v in value.items()}


def detect(names: list[str]) -> CifarFormat | None:
    """The CIFAR format whose files appear among ``names`` (file paths), if any."""
    basenames = {PurePosixPath(n).name for n in names if not is_ignored(n)}
    if basenames & {"batches.meta", "data_batch_1", "test_batch"}:
        return CIFAR10
    if {"meta", "train"} <= basenames or {"meta", "test"} <= basenames:
        return CIFAR100
    return None


def _batch(content: dict, source: str, label_key: str, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    if "data" not in content or label_key not in content:
        raise CnnlabError(f"{source} is not a CIFAR batch file: it has keys {sorted(content)}, "
                          f"expected 'data' and '{label_key}'")
    data = content["data"]
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        shape = getattr(data, "shape", type(data).__name__)
        raise CnnlabError(f"{source}: 'data' should be an N x 3072 uint8 array, got {shape}")
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or data.min() < 0 or data.max() > 255:
            raise CnnlabError(f"{source}: 'data' should hold uint8 pixel values, got {data.dtype}")
        data = data.astype(np.uint8)
    labels = np.asarray(content[label_key])
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise CnnlabError(f"{source}: '{label_key}' should be {len(data)} integer labels, "
                          f"got {labels.dtype} of shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise CnnlabError(f"{source}: labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def read_cifar(path: Path, fmt: CifarFormat) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], list[str]]:
    """Read a CIFAR folder or archive: ``({"train": (images, labels), "test": ...}, class_names)``."""
    wanted = set(fmt.files)
    found: dict[str, tuple[str, bytes]] = {}
    root = path / fmt.folder if path.is_dir() and (path / fmt.folder).is_dir() else path
    for name, data in iter_files(root):
        base = PurePosixPath(name).name
        if base in wanted and not is_ignored(name):
            # Prefer the official folder's copy should an archive hold two.
            if base not in found or PurePosixPath(name).parent.name == fmt.folder:
                found[base] = (name, data)
    missing = [f for f in fmt.files if f not in found]
    if missing:
        raise CnnlabError(f"{path} is not a complete {fmt.name.upper()} python release: missing "
                          f"{', '.join(missing)} (expected {', '.join(fmt.files)})")
    meta_name, meta_data = found[fmt.meta_file]
    meta = safe_unpickle(meta_data, f"{path}:{meta_name}")
    names = meta.get(fmt.names_key)
    if not isinstance(names, (list, tuple)) or not names:
        raise CnnlabError(f"{path}:{meta_name} has no '{fmt.names_key}' list of class names")
    classes = [n.decode("utf-8") if isinstance(n, bytes) else str(n) for n in names]
    splits = {}
    for split, files in (("train", fmt.train_files), ("test", fmt.test_files)):
        images, labels = [], []
        for file in files:
            member, data = found[file]
            batch_images, batch_labels = _batch(safe_unpickle(data, f"{path}:{member}"), f"{path}:{member}",
                                                fmt.label_key, len(classes))
            images.append(batch_images)
            labels.append(batch_labels)
        splits[split] = (torch.from_numpy(np.concatenate(images)), torch.from_numpy(np.concatenate(labels)))
    return splits, classes
