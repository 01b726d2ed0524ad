"""Small self-written data sets for the data tests: image trees, CIFAR pickles, MNIST IDX files."""
from __future__ import annotations

import gzip
import io
import pickle
import struct
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("cat", "dog", "frog")


def class_colour(label: int) -> tuple[int, int, int]:
    """A colour per class, so a test can tell from an image's pixels which class it came from."""
    return ((200, 30, 30), (30, 200, 30), (30, 30, 200))[label % 3]


def make_image(label: int, index: int, size=(8, 8), mode="RGB") -> Image.Image:
    """An image whose top-left pixel is the class colour and whose bottom-right pixel encodes ``index``."""
    width, height = size
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[...] = class_colour(label)
    pixels[-1, -1] = (index % 256, index // 256, 7)
    image = Image.fromarray(pixels, "RGB")
    return image if mode == "RGB" else image.convert(mode)


def write_image(path: Path, image: Image.Image, fmt: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format=fmt)
    return path


def make_tree(root: Path, per_class: int = 4, splits: tuple[str, ...] | None = None, size=(8, 8),
              classes=CLASSES, ext: str = ".png") -> Path:
    """``root/<class>/NNN.png`` (or ``root/<split>/<class>/...``): lossless images coded by class and index."""
    for split in splits or ("",):
        for label, name in enumerate(classes):
            for i in range(per_class):
                write_image(root / split / name / f"{i:03d}{ext}", make_image(label, i, size))
    return root


def decode_label(image_chw) -> int:
    """The class whose colour the top-left pixel of a decoded ``3 x H x W`` image has."""
    pixel = tuple(int(v) for v in image_chw[:, 0, 0])
    colours = [class_colour(i) for i in range(3)]
    return min(range(3), key=lambda i: sum(abs(a - b) for a, b in zip(pixel, colours[i])))


def tar_tree(folder: Path, destination: Path, mode: str = "w:gz", arcname: str = ".") -> Path:
    with tarfile.open(destination, mode) as archive:
        archive.add(folder, arcname=arcname)
    return destination


def zip_tree(folder: Path, destination: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(destination, "w") as archive:
        for path in sorted(folder.rglob("*")):
            archive.write(path, prefix + path.relative_to(folder).as_posix())
    return destination


def write_cifar10(folder: Path, per_batch: int = 6, protocol: int = 2, seed: int = 0) -> dict:
    """The CIFAR-10 python release in miniature; returns the arrays written, by file name."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    for file in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=per_batch)]
        batch = {b"batch_label": file.encode(), b"labels": labels, b"data": data,
                 b"filenames": [f"img_{i}.png".encode() for i in range(per_batch)]}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=protocol))
        written[file] = (data, labels)
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in names], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
    (folder / "readme.html").write_text("<html>CIFAR-10</html>")
    return written


def write_cifar100(folder: Path, count: int = 12, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for file in ("train", "test"):
        data = rng.integers(0, 256, size=(count, 3072), dtype=np.uint8)
        fine = [int(v) for v in rng.integers(0, 100, size=count)]
        batch = {b"data": data, b"fine_labels": fine, b"coarse_labels": [v // 5 for v in fine],
                 b"filenames": [b"x.png"] * count, b"batch_label": file.encode()}
        (folder / file).write_bytes(pickle.dumps(batch, protocol=2))
        written[file] = (data, fine)
    meta = {b"fine_label_names": [f"class{i:02d}".encode() for i in range(100)],
            b"coarse_label_names": [f"super{i:02d}".encode() for i in range(20)]}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.tobytes()


def write_mnist(folder: Path, train: int = 20, test: int = 10, gz: bool = True, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for split, stem, count in (("train", "train", train), ("test", "t10k", test)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count).astype(np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            data = idx_bytes(array)
            name = f"{stem}-{kind}-ubyte"
            if gz:
                (folder / (name + ".gz")).write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        written[split] = (images, labels)
    return written


def jpeg_bytes(image: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()
