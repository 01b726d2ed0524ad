"""The data a search trains its children on: a small class-stratified subset, written once, losslessly.

A search trains dozens of children, each for an epoch or two, so it runs on a subset of
the training split (NASNet's own search held out 5,000 training images as the validation
set that gave the reward). ``--subset K`` takes K training images and K/5 validation
images from the data set's *training* split, the same share of every class, chosen by the
seed; the test split is never read. They are written as a PNG image-folder tree
(``train/<class>/``, ``val/<class>/``: lossless, and a tree with a ``val`` folder gives the
Trainer its validation split as is), decoded once and cached like any data set.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from ..data import load_dataset, stratified_split
from ..errors import CnnlabError

__all__ = ["prepare_subset"]


def _folder_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "class"


def prepare_subset(data: str, subset: int | None, seed: int, root: str | os.PathLike) -> str:
    """The data spec the children train on: ``data`` itself without a subset, else the path of a
    tree of ``subset`` training and ``subset // 5`` validation images under ``root`` (written
    on the first call, reused after)."""
    if subset is None:
        return str(data)
    if isinstance(subset, bool) or not isinstance(subset, int) or subset < 10:
        raise CnnlabError(f"--subset is a number of training images, at least 10, got {subset!r}")
    folder = Path(root) / f"{_folder_name(Path(str(data)).name)}-{subset}-seed{seed}"
    if (folder / ".complete").is_file():
        return str(folder)
    from PIL import Image

    train = load_dataset(data, "train", val_fraction=0)
    if not hasattr(train, "images"):
        raise CnnlabError(f"{data!r} is streamed from its files; a subset is drawn from data sets held in memory")
    val_count = max(len(train.classes), subset // 5)
    total = subset + val_count
    if total > len(train):
        raise CnnlabError(f"--subset {subset} needs {total} images ({subset} to train, {val_count} to validate) but "
                          f"the training split of {data!r} has {len(train)}")
    _, chosen = stratified_split(train.labels, total / len(train), seed)
    labels = train.labels[chosen]
    kept, held = stratified_split(labels, val_count / total, seed + 1)
    names = [_folder_name(name) for name in train.classes]
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    for split, indices in (("train", kept), ("val", held)):
        for rank, index in enumerate(chosen[indices].tolist()):
            target = partial / split / names[int(train.labels[index])]
            target.mkdir(parents=True, exist_ok=True)
            array = train.images[index].permute(1, 2, 0).numpy()
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(target / f"{rank:06d}.png")
    (partial / ".complete").write_text(f"{subset} train, {val_count} val images of {data}, seed {seed}\n")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(partial, folder)
    return str(folder)
