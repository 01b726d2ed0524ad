"""Image-folder trees: one sub-folder per class (torchvision's ``ImageFolder`` convention).

Accepted layouts, in a folder or a .tar/.tar.gz/.zip of one:

    <root>/<class>/<image>                   the training set; a validation split is carved from it
    <root>/{train,val,test}/<class>/<image>  the splits present are used as they are

``<root>`` may sit inside one wrapping folder (``cifar10/train/...``), which is skipped.
Images may sit deeper inside a class folder; hidden files, ``.DS_Store``, ``Thumbs.db`` and
``__MACOSX`` are ignored. Classes are the sorted names of the class folders across all
splits, so a label means the same class in every split.
"""
from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ...errors import CnnlabError
from ..decode import BadImage, decode_images, image_extensions, resize_images
from ..policy import DataWarning, apply_bad_file_policy
from .archive import (archive_kind, is_compressed_tar, is_ignored, iter_files, iter_tar, list_directory,
                      open_zip, read_zip_member, zip_members)

SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                 "test": "test", "testing": "test"}

# Decode this many files at a time while reading the archive, so the encoded bytes of the
# whole data set never sit in memory at once.
DECODE_CHUNK = 2048


@dataclass
class Layout:
    """Where the samples of each split are and what their labels are, before any decoding."""

    classes: list[str]
    samples: dict[str, list[tuple[str, int]]]            # split -> [(path in the source, label)], sorted
    bad: list[tuple[str, str]] = field(default_factory=list)  # files in class folders that are not images
    prefix: str = ""                                      # wrapping folder that was skipped


def _suffix(name: str) -> str:
    base = name[name.rfind("/") + 1:]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def _is_image_name(name: str, extensions: frozenset[str]) -> bool:
    return _suffix(name) in extensions


def plan_layout(names: list[str], source: str) -> Layout:
    """Work out splits, classes and labels from the file names (folders end with ``/``) of a tree."""
    extensions = image_extensions()
    entries = [n for n in names if not is_ignored(n)]
    files = [n for n in entries if not n.endswith("/")]
    folders = {n.rstrip("/") for n in entries if n.endswith("/")}
    for name in files:  # folders implied by the files (zip and tar may not list them)
        cut = name.rfind("/")
        while cut > 0 and name[:cut] not in folders:
            folders.add(name[:cut])
            cut = name.rfind("/", 0, cut)
    if not files and not folders:
        raise CnnlabError(f"{source} holds no files: expected one sub-folder of images per class")

    prefix = ""
    while True:
        top_dirs = {f.split("/", 1)[0] for f in folders if "/" not in f}
        top_images = [f for f in files if "/" not in f and _is_image_name(f, extensions)]
        if len(top_dirs) != 1 or top_images:
            break
        (only,) = top_dirs
        if only.lower() in SPLIT_FOLDERS:
            break
        inner_images = [f for f in files if f.count("/") == 1 and f.startswith(only + "/")
                        and _is_image_name(f, extensions)]
        inner_dirs = [f for f in folders if f.startswith(only + "/")]
        if inner_images or not inner_dirs:
            break  # a single class folder: keep it as the class
        prefix += only + "/"
        cut = len(only) + 1
        files = [f[cut:] for f in files if f.startswith(only + "/")]
        folders = {f[cut:] for f in folders if f.startswith(only + "/")}

    where = f"{source}" + (f" (inside {prefix.rstrip('/')}/)" if prefix else "")
    top_dirs = sorted({f.split("/", 1)[0] for f in folders})
    split_dirs = [d for d in top_dirs if d.lower() in SPLIT_FOLDERS]
    if split_dirs:
        others = [d for d in top_dirs if d.lower() not in SPLIT_FOLDERS]
        if others:
            raise CnnlabError(f"{where} mixes split folders ({', '.join(split_dirs)}) with other folders "
                              f"({', '.join(others[:5])}); put every class folder inside train/ (and val/, test/)")
        seen: dict[str, str] = {}
        for d in split_dirs:
            split = SPLIT_FOLDERS[d.lower()]
            if split in seen:
                raise CnnlabError(f"{where} has two {split} folders: {seen[split]}/ and {d}/")
            seen[split] = d
        if "train" not in seen:
            raise CnnlabError(f"{where} has {', '.join(d + '/' for d in split_dirs)} but no train/ folder")
        roots = {split: d + "/" for split, d in seen.items()}
    else:
        roots = {"train": ""}

    class_files: dict[str, dict[str, list[str]]] = {}
    outside: list[str] = []
    bad: list[tuple[str, str]] = []
    for split, root in roots.items():
        per_class: dict[str, list[str]] = {}
        for folder in folders:
            if folder.startswith(root) and folder != root.rstrip("/") and "/" not in folder[len(root):]:
                per_class.setdefault(folder[len(root):], [])
        for name in files:
            if not name.startswith(root):
                continue
            rest = name[len(root):]
            if "/" not in rest:
                if _is_image_name(rest, extensions):
                    outside.append(prefix + name)
                continue
            per_class.setdefault(rest.split("/", 1)[0], []).append(name)
        if not per_class:
            place = f"{where}/{root.rstrip('/')}" if root else where
            if outside:
                raise CnnlabError(f"{place} has images but no class folders: an image-folder data set needs one "
                                  f"sub-folder per class, like {root}cat/0001.jpg and {root}dog/0001.jpg")
            raise CnnlabError(f"{place} has no class folders with images: expected {root}<class>/<image> "
                              "with images that PIL reads (.jpg, .png, .bmp, .gif, .webp, .tif, ...)")
        class_files[split] = per_class

    classes = sorted({c for per_class in class_files.values() for c in per_class})
    index = {c: i for i, c in enumerate(classes)}
    samples: dict[str, list[tuple[str, int]]] = {}
    for split, per_class in class_files.items():
        rows = []
        for class_name in sorted(per_class):
            members = sorted(per_class[class_name])
            images = [m for m in members if _is_image_name(m, extensions)]
            bad.extend((prefix + m, f"not an image file (extension {_suffix(m) or 'none'})")
                       for m in members if not _is_image_name(m, extensions))
            if not images:
                folder = prefix + roots[split] + class_name
                what = "is empty" if not members else "holds no image files"
                raise CnnlabError(f"{source}: class folder {folder}/ {what}; remove it or add images "
                                  "(every class needs at least one image)")
            rows.extend((prefix + m, index[class_name]) for m in images)
        samples[split] = rows
    if outside:
        warnings.warn(DataWarning(f"{where}: ignored {len(outside)} images outside any class folder "
                                  f"(no label can be given to them): {', '.join(outside[:5])}"), stacklevel=3)
    if len(class_files) > 1:
        train_classes = set(class_files["train"])
        for split, per_class in class_files.items():
            extra = sorted(set(per_class) - train_classes)
            if extra:
                warnings.warn(DataWarning(f"{where}: class folders {', '.join(extra)} appear in {split}/ but not "
                                          "in train/; check their spelling"), stacklevel=3)
    return Layout(classes=classes, samples=samples, bad=bad, prefix=prefix)


def _sample_count(layout: Layout) -> int:
    return sum(len(rows) for rows in layout.samples.values()) + len(layout.bad)


def read_image_folder(path: Path, image_size: tuple[int, int] | None = None, resize: str = "crop",
                      max_bad_fraction: float = 0.01):
    """Decode a whole tree into memory: ``({split: (images N x 3 x H x W uint8, labels)}, classes, skipped)``.

    The folder or archive is read once, front to back; images are decoded in batches as
    they arrive (and resized at once when ``image_size`` is given), so the encoded bytes
    of the whole set are never held together.
    """
    extensions = image_extensions()
    names: list[str] = []
    decoded: dict[str, torch.Tensor | BadImage] = {}
    pending: list[tuple[str, bytes]] = []
    chunks: list[tuple[list[str], Future]] = []

    def decode_chunk(items: list[bytes]) -> list[torch.Tensor | BadImage]:
        results = decode_images(items)
        if image_size is None:
            return results
        return [resize_images(r, image_size, resize) if isinstance(r, torch.Tensor) else r for r in results]

    # libjpeg-turbo releases the GIL: chunks decode on every core while this thread reads
    # the archive, so the first load is bound by decoding, not by reading.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        for name, data in iter_files(path, include_dirs=True):
            names.append(name)
            if not name.endswith("/") and not is_ignored(name) and _is_image_name(name, extensions):
                pending.append((name, data))
                if len(pending) >= DECODE_CHUNK:
                    chunks.append(([n for n, _ in pending], pool.submit(decode_chunk, [d for _, d in pending])))
                    pending = []
        if pending:
            chunks.append(([n for n, _ in pending], pool.submit(decode_chunk, [d for _, d in pending])))
        for chunk_names, future in chunks:
            decoded.update(zip(chunk_names, future.result()))

    layout = plan_layout(names, str(path))
    total = _sample_count(layout)
    bad = list(layout.bad)
    for rows in layout.samples.values():
        bad.extend((name, str(decoded[name])) for name, _ in rows
                   if isinstance(decoded[name], BadImage))
    skipped = apply_bad_file_policy(sorted(bad), total, str(path), max_bad_fraction)

    splits = {}
    first_shape: tuple[str, tuple[int, ...]] | None = None
    for split, rows in layout.samples.items():
        good = [(name, label) for name, label in rows if isinstance(decoded[name], torch.Tensor)]
        lost = {label for _, label in rows} - {label for _, label in good}
        if lost:
            names_lost = ", ".join(layout.classes[i] for i in sorted(lost))
            raise CnnlabError(f"{path}: no readable image is left in the {split} class folder(s) {names_lost}")
        for name, _ in good:
            shape = tuple(decoded[name].shape)
            if first_shape is None:
                first_shape = (name, shape)
            elif shape != first_shape[1]:
                raise CnnlabError(
                    f"{path}: images have different sizes ({first_shape[0]} is "
                    f"{first_shape[1][2]}x{first_shape[1][1]}, {name} is {shape[2]}x{shape[1]} "
                    "pixels, width x height); pass image_size (e.g. image_size=32) to resize them all, or "
                    "in_memory=False to stream them at their own sizes")
        images = torch.stack([decoded[name] for name, _ in good]) if good else torch.empty(0, 3, 1, 1,
                                                                                           dtype=torch.uint8)
        labels = torch.tensor([label for _, label in good], dtype=torch.int64)
        splits[split] = (images, labels)
    return splits, layout.classes, skipped


class FileReader:
    """Reads one file of a folder, zip or plain tar by its locator; safe to use in DataLoader workers.

    Each process opens its own handle on first use (a zip or file handle must not be
    shared across fork).
    """

    def __init__(self, path: Path, kind: str):
        self.path = path
        self.kind = kind
        self._local = threading.local()
        self._pid = None

    def __getstate__(self):
        return {"path": self.path, "kind": self.kind}

    def __setstate__(self, state):
        self.__init__(state["path"], state["kind"])

    def _handle(self):
        if self._pid != os.getpid():
            self._local = threading.local()
            self._pid = os.getpid()
        handle = getattr(self._local, "handle", None)
        if handle is None:
            handle = open_zip(self.path) if self.kind == "zip" else open(self.path, "rb")
            self._local.handle = handle
        return handle

    def read(self, locator) -> bytes:
        if self.kind == "dir":
            return (self.path / locator).read_bytes()
        if self.kind == "zip":
            return read_zip_member(self._handle(), locator)
        offset, size = locator
        handle = self._handle()
        handle.seek(offset)
        return handle.read(size)

    def describe(self, locator) -> str:
        if self.kind == "tar":
            return f"{self.path} (member at byte {locator[0]})"
        return f"{self.path}/{locator}" if self.kind == "dir" else f"{self.path}:{locator}"


def index_image_folder(path: Path):
    """List a tree for streaming without decoding: ``(layout, reader, {relative path: locator})``.

    Works for folders, zip archives and uncompressed tar archives; a compressed tar cannot
    be read at random positions, so it must be loaded into memory or extracted first.
    """
    if path.is_dir():
        names = list_directory(path, include_dirs=True)
        reader = FileReader(path, "dir")
        locators = {n: n for n in names}
    else:
        kind = archive_kind(path)
        if kind == "zip":
            with open_zip(path) as archive:
                names = zip_members(archive, include_dirs=True)
            reader = FileReader(path, "zip")
            locators = {n: n for n in names}
        elif kind == "tar":
            if is_compressed_tar(path):
                raise CnnlabError(f"{path} is a compressed tar archive, which cannot be streamed (its files can "
                                  "only be read front to back): load it into memory (in_memory=True, with "
                                  "image_size if the images differ in size) or extract it and pass the folder")
            names, locators = [], {}
            for name, _, offset, size in iter_tar(path, read_data=False, include_dirs=True):
                names.append(name)
                locators[name] = (offset, size)
            reader = FileReader(path, "tar")
        else:
            raise CnnlabError(f"{path} is a file but not an archive: expected a folder, a .tar, .tar.gz or .zip")
    layout = plan_layout(names, str(path))
    return layout, reader, locators


__all__ = ["Layout", "plan_layout", "read_image_folder", "index_image_folder", "FileReader", "SPLIT_FOLDERS"]
