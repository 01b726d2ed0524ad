"""One entry point for every data set: ``load_dataset(spec, split)``.

``spec`` is a name (``cifar10``, ``cifar100``, ``mnist``, ``fashion-mnist``, ``digits``) or a
path: a folder or a .tar/.tar.gz/.zip holding an image-folder tree, the CIFAR python
release, or a folder of MNIST IDX files. Whatever fits in memory comes back as an
:class:`ArrayDataset` (one uint8 tensor, decoded once and cached, as in airbench); large
image-folder trees as a :class:`StreamingImageDataset` that decodes files on demand in
DataLoader workers.
"""
from __future__ import annotations

from dataclasses import dataclass

import io
import os
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset

from ..errors import CnnlabError, MissingSplitError
from ..paths import default_cache_dir, resolve_cache_dir
from .cache import CacheEntry, DecodedSet
from .decode import RESIZE_MODES, BadImage, decode_image, resize_images, target_size
from .formats import cifar, idx
from .formats.archive import ARCHIVE_SUFFIXES, archive_kind, is_compressed_tar, peek_names
from .policy import MAX_BAD_FRACTION, DataWarning, apply_bad_file_policy
from .splits import stratified_split

SPLITS = ("train", "val", "test")

# Above this many bytes of decoded pixels an image-folder tree is streamed from its files
# rather than decoded into memory (unless in_memory=True says otherwise).
IN_MEMORY_LIMIT_BYTES = 4 * 2**30

# Bumped when a reader's output changes, so old caches are rebuilt.
_READER_VERSION = {"cifar": 1, "idx": 1, "imagefolder": 1}

MNIST_URLS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }),
}
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]

DATASET_NAMES = ("cifar10", "cifar100", "mnist", "fashion-mnist", "digits")
_ALIASES = {"cifar-10": "cifar10", "cifar-100": "cifar100", "fashionmnist": "fashion-mnist",
            "fashion_mnist": "fashion-mnist"}


class _LabelledImages(Dataset):
    """What both kinds of data set carry: labels (int64), class names, where they came
    from, the split, the per-image transform and the files skipped as unreadable."""

    def __init__(self, labels: torch.Tensor, classes: list[str], name: str, source: str, *, split: str | None,
                 transform: Callable | None, skipped: list[str] | None):
        self.labels = labels.to(torch.int64)
        self.classes = list(classes)
        self.name = name
        self.source = source
        self.split = split
        self.transform = transform
        self.skipped = list(skipped or [])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=len(self.classes)).tolist()


class ArrayDataset(_LabelledImages):
    """A data set held in memory: ``images`` (N x C x H x W uint8) and ``labels`` (N int64).

    Indexing gives ``(image, label)``, the image as a uint8 tensor, or ``transform(image)``
    when a transform is set, so it also works with a ``DataLoader``. Fast training code
    should use ``images``/``labels`` directly and augment whole batches.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[str], name: str, source: str, *,
                 split: str | None = None, transform: Callable | None = None, skipped: list[str] | None = None,
                 cache_path: Path | None = None, cache_status: str = "off"):
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise CnnlabError(f"images must be an N x C x H x W uint8 tensor, got {images.dtype} {tuple(images.shape)}")
        if labels.shape != (images.shape[0],):
            raise CnnlabError(f"need one label per image: {images.shape[0]} images, labels of shape "
                              f"{tuple(labels.shape)}")
        self.images = images
        super().__init__(labels, classes, name, source, split=split, transform=transform, skipped=skipped)
        self.cache_path = cache_path
        self.cache_status = cache_status

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, index: int):
        image = self.images[index]
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(channels, height, width)`` of every image."""
        return tuple(self.images.shape[1:])  # type: ignore[return-value]

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.image_shape))
        return (f"ArrayDataset(name={self.name!r}, split={self.split!r}, images={len(self)}x{shape}, "
                f"classes={len(self.classes)}, source={self.source!r})")


class StreamingImageDataset(_LabelledImages):
    """Images decoded from their files on each access, for trees too large for memory.

    Indexing gives ``(image, label)``: the image a ``3 x H x W`` uint8 RGB tensor (resized
    when ``image_size`` is set) or ``transform(image)``. Use it with a ``DataLoader`` and
    workers; each worker opens its own file handles. A file that cannot be decoded
    mid-epoch does not stop training: it is reported with a :class:`DataWarning` and the
    next readable sample (with its own correct label) is returned in its place.
    """

    MAX_CONSECUTIVE_BAD = 16

    def __init__(self, files: list, labels: torch.Tensor, classes: list[str], name: str, source: str, reader, *,
                 split: str | None = None, image_size: tuple[int, int] | None = None, resize: str = "crop",
                 transform: Callable | None = None, skipped: list[str] | None = None):
        self.files = list(files)
        super().__init__(labels, classes, name, source, split=split, transform=transform, skipped=skipped)
        self.reader = reader
        self.image_size = image_size
        self.resize = resize

    def __len__(self) -> int:
        return len(self.files)

    def load_image(self, index: int) -> torch.Tensor:
        """Decode (and resize) one image, without the transform; raises :class:`CnnlabError` if it is bad."""
        locator = self.files[index]
        try:
            image = decode_image(self.reader.read(locator))
        except (BadImage, OSError) as error:
            raise CnnlabError(f"{self.reader.describe(locator)}: {error}") from None
        if self.image_size is not None:
            image = resize_images(image, self.image_size, self.resize)
        return image

    def __getitem__(self, index: int):
        for attempt in range(self.MAX_CONSECUTIVE_BAD):
            position = (index + attempt) % len(self.files)
            try:
                image = self.load_image(position)
            except CnnlabError as error:
                warnings.warn(DataWarning(f"skipping unreadable image {error}"), stacklevel=2)
                continue
            if self.transform is not None:
                image = self.transform(image)
            return image, int(self.labels[position])
        raise CnnlabError(f"{self.source}: {self.MAX_CONSECUTIVE_BAD} images in a row from index {index} cannot be "
                          "decoded; check the data set")

    def __repr__(self) -> str:
        return (f"StreamingImageDataset(name={self.name!r}, split={self.split!r}, images={len(self)}, "
                f"classes={len(self.classes)}, source={self.source!r})")


def default_data_root() -> Path:
    """Where named data sets are looked for and downloaded: ``$CNNLAB_DATA``, else ``<cache>/datasets``."""
    if os.environ.get("CNNLAB_DATA"):
        return Path(os.environ["CNNLAB_DATA"]).expanduser()
    return default_cache_dir() / "datasets"


def list_datasets() -> list[str]:
    """The data sets known by name (any folder or archive path works as well)."""
    return list(DATASET_NAMES)


def _canonical_name(spec: str) -> str | None:
    key = spec.strip().lower()
    key = _ALIASES.get(key, key)
    return key if key in DATASET_NAMES else None


def _no_such_data(spec, path: Path) -> CnnlabError:
    return CnnlabError(f"no data set named {str(spec)!r} and no such file or folder: {path}. Known names: "
                       f"{', '.join(DATASET_NAMES)}; or give the path of a folder or .tar/.tar.gz/.zip archive")


def _display_name(path: Path) -> str:
    name = path.name
    for suffix in sorted(ARCHIVE_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[:-len(suffix)] or name
    return name


def _locate_cifar(fmt: cifar.CifarFormat, root: Path, download: bool) -> Path:
    for candidate in (root / fmt.archive, root / fmt.folder,
                      root / fmt.name / fmt.archive, root / fmt.name / fmt.folder):
        if candidate.exists():
            return candidate
    if not download:
        raise CnnlabError(f"{fmt.name.upper()} is not under {root} (looked for {fmt.archive} and {fmt.folder}/); "
                          f"pass download=True (--download) to fetch it from {fmt.url}, or root= the folder that "
                          f"holds {fmt.archive}, or give the path of a copy as the data set")
    from .download import download as fetch

    return fetch(fmt.url, root / fmt.archive, fmt.md5)


def _locate_mnist(name: str, root: Path, download: bool) -> Path:
    folders = {"mnist": ("mnist", "MNIST/raw", "MNIST"), "fashion-mnist": ("fashion-mnist", "FashionMNIST/raw",
                                                                          "FashionMNIST", "fashion_mnist")}[name]
    for folder in (*(root / f for f in folders), root):
        if idx.is_idx_folder(folder):
            return folder
    base, files = MNIST_URLS[name]
    if not download:
        raise CnnlabError(f"{name} is not under {root} (looked in {', '.join(folders)}/ for {', '.join(files)}); "
                          "pass download=True (--download) to fetch it, or root= the folder holding those files")
    from .download import download as fetch

    target = root / folders[0]
    for file, md5 in files.items():
        fetch(base + file, target / file, md5)
    return target


def _detect(path: Path) -> tuple[str, object]:
    """What kind of data set a path holds: ``("cifar", format)``, ``("idx", None)`` or ``("imagefolder", None)``."""
    if path.is_dir():
        if idx.is_idx_folder(path):
            return "idx", None
        fmt = cifar.detect([n for n in os.listdir(path) if (path / n).is_file()])
        if fmt is None:
            for sub in (cifar.CIFAR10, cifar.CIFAR100):
                if (path / sub.folder).is_dir():
                    fmt = sub
        if fmt is not None:
            return "cifar", fmt
        return "imagefolder", None
    if archive_kind(path) is None:
        raise CnnlabError(f"{path} is a file but not a data set: expected a folder, a .tar, .tar.gz, .tgz or .zip "
                          "archive of an image-folder tree, or the CIFAR python archive")
    fmt = cifar.detect(peek_names(path))
    return ("cifar", fmt) if fmt is not None else ("imagefolder", None)


def _resize_splits(splits: dict, size: tuple[int, int] | None, resize: str) -> dict:
    if size is None:
        return splits
    out = {}
    for split, (images, labels) in splits.items():
        chunks = [resize_images(images[i:i + 1024], size, resize) for i in range(0, len(images), 1024)]
        out[split] = (torch.cat(chunks) if chunks else images, labels)
    return out


def load_dataset(spec: str | os.PathLike, split: str = "train", *, root: str | os.PathLike | None = None,
                 download: bool = False, val_fraction: float = 0.1, seed: int = 0,
                 cache_dir: str | os.PathLike | bool | None = None, image_size=None, resize: str = "crop",
                 in_memory: bool | None = None, transform: Callable | None = None,
                 max_bad_fraction: float = MAX_BAD_FRACTION) -> ArrayDataset | StreamingImageDataset:
    """Load one split of a data set by name or path (lecture 7's "train / validation / test").

    - ``split``: ``"train"``, ``"val"`` or ``"test"``. Where the source has no validation
      split of its own, ``val`` is a class-stratified ``val_fraction`` of the training set,
      chosen by ``seed``, and ``train`` is the rest (``val_fraction=0``: the whole training set).
    - ``root``: where named data sets live or are downloaded to (default ``$CNNLAB_DATA`` or
      ``~/.cache/cnnlab/datasets``); ``download=True`` fetches CIFAR/MNIST with checksums.
    - ``cache_dir``: decoded-tensor cache (default ``$CNNLAB_CACHE`` or ``~/.cache/cnnlab``;
      ``False`` turns it off).
    - ``image_size``: ``32`` or ``(height, width)``; every image is resized to it
      (``resize="crop"``: shorter side to size, then centre crop; ``"stretch"``: plain resize).
      Required when the images of a tree differ in size and are loaded into memory.
    - ``in_memory``: ``None`` decides by size (trees above 4 GiB of pixels stream), ``False``
      streams an image-folder tree from its files (array formats are always in memory).
    - ``transform``: applied to each image on indexing (not to ``images``).
    - ``max_bad_fraction``: unreadable files in a tree are skipped with a warning up to this
      fraction (default 1%); above it, loading stops with an error naming them.

    Images are uint8, RGB for image folders and CIFAR, one grey channel for MNIST and digits.
    """
    if split not in SPLITS:
        raise CnnlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not isinstance(val_fraction, (int, float)) or not 0 <= val_fraction < 1:
        raise CnnlabError(f"val_fraction must be at least 0 and below 1, got {val_fraction!r}")
    if not 0 <= max_bad_fraction <= 1:
        raise CnnlabError(f"max_bad_fraction must lie between 0 and 1, got {max_bad_fraction!r}")
    if resize not in RESIZE_MODES:
        raise CnnlabError(f"resize must be one of {', '.join(RESIZE_MODES)}, got {resize!r}")
    size = target_size(image_size)
    cache = resolve_cache_dir(cache_dir)
    data_root = Path(root).expanduser() if root is not None else default_data_root()
    options = {"image_size": list(size) if size else None, "resize": resize if size else None}

    # A str is a name first (cifar10, digits, ...); use "./digits" or a Path for a folder of that name.
    name = _canonical_name(spec) if isinstance(spec, str) else None
    if name == "digits":
        from .formats.digits import read_digits

        splits, classes, version = read_digits()
        decoded = DecodedSet(_resize_splits(splits, size, resize), classes)
        source = f"sklearn.datasets.load_digits (scikit-learn {version})"
        return _select(decoded, "digits", source, split, val_fraction, seed, transform)
    if name in ("cifar10", "cifar100"):
        fmt = cifar.CIFAR10 if name == "cifar10" else cifar.CIFAR100
        path = _locate_cifar(fmt, data_root, download)
        kind, detail = "cifar", fmt
    elif name in ("mnist", "fashion-mnist"):
        path = _locate_mnist(name, data_root, download)
        kind, detail = "idx", name
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise _no_such_data(spec, path)
        path = path.resolve()
        kind, detail = _detect(path)
        name = _display_name(path)

    if kind == "imagefolder" and in_memory is False:
        return _stream(path, name, split, val_fraction, seed, size, resize, transform, max_bad_fraction)

    identity = {"reader": kind, "version": _READER_VERSION[kind], "source": str(path.resolve()), **options}
    if kind == "imagefolder":
        identity["max_bad_fraction"] = max_bad_fraction
    entry = CacheEntry(cache, name, identity, path)
    decoded = entry.lookup()
    if decoded is None and kind == "imagefolder" and in_memory is None and _too_big_for_memory(path, size):
        return _stream(path, name, split, val_fraction, seed, size, resize, transform, max_bad_fraction)

    def build() -> DecodedSet:
        if kind == "cifar":
            splits, classes = cifar.read_cifar(path, detail)
            return DecodedSet(_resize_splits(splits, size, resize), classes)
        if kind == "idx":
            splits = idx.read_mnist_folder(path, num_classes=None if detail is None else 10)
            if detail == "fashion-mnist":
                classes = FASHION_MNIST_CLASSES
            elif detail == "mnist":
                classes = MNIST_CLASSES
            else:
                top = max((int(labels.max()) for _, labels in splits.values() if len(labels)), default=-1) + 1
                classes = [str(i) for i in range(top)]
            return DecodedSet(_resize_splits(splits, size, resize), classes)
        from .formats.imagefolder import read_image_folder

        splits, classes, skipped = read_image_folder(path, size, resize, max_bad_fraction)
        return DecodedSet(splits, classes, skipped)

    if decoded is None:
        decoded = entry.store(build())
    elif decoded.skipped and decoded.cache_status == "hit":
        warnings.warn(DataWarning(f"{path}: {len(decoded.skipped)} unreadable files were skipped when it was decoded: "
                                  f"{', '.join(decoded.skipped[:5])}"), stacklevel=2)
    return _select(decoded, name, str(path), split, val_fraction, seed, transform)


def _too_big_for_memory(path: Path, size: tuple[int, int] | None) -> bool:
    if path.is_file() and is_compressed_tar(path):
        return False  # cannot be streamed anyway
    from .formats.imagefolder import index_image_folder

    layout, reader, locators = index_image_folder(path)
    count = sum(len(rows) for rows in layout.samples.values())
    if size is None:
        first = next(iter(rows[0][0] for rows in layout.samples.values() if rows))
        try:
            from PIL import Image

            with Image.open(io.BytesIO(reader.read(locators[first]))) as image:
                width, height = image.size
        except Exception:
            return False  # the in-memory reader will name the problem
    else:
        height, width = size
    return count * 3 * height * width > IN_MEMORY_LIMIT_BYTES


def _stream(path: Path, name: str, split: str, val_fraction: float, seed: int, size, resize: str,
            transform, max_bad_fraction: float) -> StreamingImageDataset:
    from .formats.imagefolder import index_image_folder

    layout, reader, locators = index_image_folder(path)
    total = sum(len(rows) for rows in layout.samples.values()) + len(layout.bad)
    skipped = apply_bad_file_policy(sorted(layout.bad), total, str(path), max_bad_fraction)
    splits = {s: ([locators[n] for n, _ in rows], torch.tensor([label for _, label in rows], dtype=torch.int64))
              for s, rows in layout.samples.items()}
    files, labels = _choose(splits, split, val_fraction, seed, str(path))
    return StreamingImageDataset(files, labels, layout.classes, name, str(path), reader, split=split,
                                 image_size=size, resize=resize, transform=transform, skipped=skipped)


def _choose(splits: dict, split: str, val_fraction: float, seed: int, source: str):
    """Pick ``split`` from ``{split: (items, labels)}``, carving ``val`` out of ``train`` if needed."""
    if split == "test" or "val" in splits:
        if split not in splits:
            raise MissingSplitError(f"{source} has no {split} split (it has {', '.join(sorted(splits))})", split)
        return splits[split]
    if "train" not in splits:
        raise MissingSplitError(f"{source} has no training split (it has {', '.join(sorted(splits))})", "train")
    items, labels = splits["train"]
    if val_fraction == 0:
        if split == "val":
            raise MissingSplitError(f"{source} has no validation split of its own and val_fraction is 0; "
                                    "pass val_fraction > 0 to hold out part of the training set", "val")
        return items, labels
    keep, held = stratified_split(labels, val_fraction, seed)
    chosen = keep if split == "train" else held
    if isinstance(items, torch.Tensor):
        return items[chosen], labels[chosen]
    return [items[i] for i in chosen.tolist()], labels[chosen]


def _select(decoded: DecodedSet, name: str, source: str, split: str, val_fraction: float, seed: int,
            transform) -> ArrayDataset:
    images, labels = _choose(decoded.splits, split, val_fraction, seed, source)
    return ArrayDataset(images, labels, decoded.classes, name, source, split=split, transform=transform,
                        skipped=decoded.skipped, cache_path=decoded.cache_path, cache_status=decoded.cache_status)


# Image shape (channels, height, width) of the data sets known by name.
_NAMED_SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "mnist": (1, 28, 28),
                 "fashion-mnist": (1, 28, 28), "digits": (1, 8, 8)}


@dataclass(frozen=True)
class SourcePeek:
    """What a data source's images look like, from a glance at a few of them (nothing decoded
    in bulk): ``channels`` as the loader will give them, the typical ``height`` x ``width``
    (the median image of the sample) and whether the sizes vary."""

    name: str
    channels: int
    height: int
    width: int
    sizes_vary: bool = False
    sampled: int = 0


def peek_source(spec: str | os.PathLike, sample: int = 16) -> SourcePeek:
    """The image shape of a data set name, a CIFAR/MNIST folder or archive, or an image-folder
    tree (its first ``sample`` images; every image becomes RGB when loaded)."""
    name = _canonical_name(str(spec))
    if name is not None:
        return SourcePeek(name, *_NAMED_SHAPES[name])
    path = Path(spec).expanduser()
    if not path.exists():
        raise _no_such_data(spec, path)
    kind, fmt = _detect(path)
    if kind == "cifar":
        return SourcePeek(_display_name(path), 3, 32, 32)
    if kind == "idx":
        return SourcePeek(_display_name(path), 1, 28, 28)
    from PIL import Image

    from .formats.archive import iter_files, is_ignored

    sizes = []
    for relpath, data in iter_files(path):
        if is_ignored(relpath):
            continue
        try:
            with Image.open(io.BytesIO(data)) as image:
                sizes.append(image.size)
        except Exception:
            continue  # not an image: the loader names such files
        if len(sizes) >= sample:
            break
    if not sizes:
        raise CnnlabError(f"{path} holds no readable images")
    width, height = sorted(sizes, key=lambda size: size[0] * size[1])[len(sizes) // 2]
    return SourcePeek(_display_name(path), 3, height, width, sizes_vary=len(set(sizes)) > 1, sampled=len(sizes))
