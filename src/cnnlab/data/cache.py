"""Decode once, then load in well under a second: decoded data sets cached as uint8 tensors.

The airbench habit: a data set that fits in memory is decoded a single time and kept as
one uint8 tensor per split. The cache is a safetensors file under ``$CNNLAB_CACHE``
(default ``~/.cache/cnnlab``), one per source and decoding options. Inside it:

- the key: the source's absolute path, size and modification time (for a folder, a
  digest of every file's path, size and time), the decoding options (``image_size``,
  resize mode) and the cache format version;
- a CRC-32 of every tensor.

A file whose key differs (the source changed: stale) or that fails to parse, has the
wrong tensors or a wrong checksum (truncated, corrupt) is rebuilt, never trusted. Files
are written to a temporary name and renamed into place, so a reader never sees half a file.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..atomic import atomic_write
from .policy import DataWarning

CACHE_FORMAT = 1


@dataclass
class DecodedSet:
    """A data set decoded into memory: per split ``(images N x C x H x W uint8, labels N int64)``."""

    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]
    classes: list[str]
    skipped: list[str] = field(default_factory=list)
    cache_path: Path | None = None
    cache_status: str = "off"  # "hit", "miss", "stale", "corrupt", "off" (not cached), "unwritable"


def fingerprint(path: Path) -> dict:
    """What identifies the content of a file or folder cheaply: path, size and modification time."""
    path = path.resolve()
    info = path.stat()
    if not path.is_dir():
        return {"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    lines: list[str] = []
    _scan(str(path), "", lines)
    lines.sort()
    digest = hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()
    return {"path": str(path), "files": len(lines), "digest": digest}


def _scan(folder: str, prefix: str, lines: list[str]) -> None:
    # os.scandir and plain strings: this runs on every load of a folder, cache hit included.
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        name = prefix + entry.name
        try:
            if entry.is_dir():
                lines.append(name + "/")
                _scan(entry.path, name + "/", lines)
            else:
                stat = entry.stat()
                lines.append(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}")
        except OSError:
            continue


def cache_file(cache_dir: Path, name: str, identity: dict) -> Path:
    """The cache file of one source and option set (the source's state is checked inside it)."""
    tag = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:60] or "dataset"
    return cache_dir / f"{safe}-{tag}.safetensors"


def _crc(tensor: torch.Tensor) -> int:
    return zlib.crc32(tensor.contiguous().view(torch.uint8).numpy())


def write_cache(path: Path, key: str, data: DecodedSet) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    from safetensors.torch import save_file

    tensors = {}
    for split, (images, labels) in data.splits.items():
        tensors[f"{split}.images"] = images.contiguous()
        tensors[f"{split}.labels"] = labels.contiguous()
    metadata = {
        "cnnlab_cache_format": str(CACHE_FORMAT),
        "key": key,
        "classes": json.dumps(data.classes),
        "skipped": json.dumps(data.skipped),
        "crc32": json.dumps({name: _crc(t) for name, t in tensors.items()}),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda temporary: save_file(tensors, temporary, metadata=metadata))


class _Invalid(Exception):
    pass


def read_cache(path: Path, key: str) -> DecodedSet:
    """Read and verify a cache file; raises ``_Invalid`` with the reason if it cannot be trusted."""
    from safetensors.torch import load

    blob = path.read_bytes()  # one read, no memory map: a file replaced later cannot change our tensors
    if len(blob) < 8:
        raise _Invalid("corrupt", "file too short")
    (header_size,) = struct.unpack("<Q", blob[:8])
    if header_size > len(blob) - 8:
        raise _Invalid("corrupt", "header runs past the end of the file (truncated)")
    try:
        metadata = json.loads(blob[8:8 + header_size]).get("__metadata__") or {}
    except (ValueError, UnicodeDecodeError):
        raise _Invalid("corrupt", "header is not JSON") from None
    if metadata.get("cnnlab_cache_format") != str(CACHE_FORMAT):
        raise _Invalid("stale", "written by another cache format version")
    if metadata.get("key") != key:
        raise _Invalid("stale", "the source or the options changed since it was written")
    try:
        tensors = load(blob)
        classes = json.loads(metadata["classes"])
        skipped = json.loads(metadata["skipped"])
        checksums = json.loads(metadata["crc32"])
    except Exception as error:  # safetensors raises its own error types for bad files
        raise _Invalid("corrupt", f"unreadable ({error})") from None
    if set(checksums) != set(tensors):
        raise _Invalid("corrupt", "tensor list does not match its checksums")
    for name, tensor in tensors.items():
        if _crc(tensor) != checksums[name]:
            raise _Invalid("corrupt", f"checksum of {name} does not match")
    splits = {}
    for name in tensors:
        if not name.endswith(".images"):
            continue
        split = name[:-len(".images")]
        images, labels = tensors[name], tensors.get(f"{split}.labels")
        if (labels is None or images.dtype != torch.uint8 or images.ndim != 4 or labels.dtype != torch.int64
                or labels.shape != (images.shape[0],)
                or (len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(classes)))):
            raise _Invalid("corrupt", f"tensors of split {split} have wrong types or shapes")
        splits[split] = (images, labels)
    if not splits or len(splits) * 2 != len(tensors):
        raise _Invalid("corrupt", "unexpected tensors")
    return DecodedSet(splits=splits, classes=classes, skipped=skipped)


class CacheEntry:
    """One source's cache file: look it up first, store into it after decoding."""

    def __init__(self, cache_dir: Path | None, name: str, identity: dict, source: Path | None):
        self.enabled = cache_dir is not None
        self.status = "off"
        if not self.enabled:
            return
        identity = {**identity, "cache_format": CACHE_FORMAT}
        self.path = cache_file(cache_dir, name, identity)
        self.key = json.dumps({"identity": identity, "source": fingerprint(source) if source else None},
                              sort_keys=True)

    def lookup(self) -> DecodedSet | None:
        """The cached data if the file exists and is valid; else ``None`` (``status`` says why)."""
        if not self.enabled:
            return None
        self.status = "miss"
        if not self.path.exists():
            return None
        try:
            data = read_cache(self.path, self.key)
        except _Invalid as invalid:
            self.status, reason = invalid.args
            if self.status == "corrupt":
                warnings.warn(DataWarning(f"cache {self.path} is damaged ({reason}); decoding the data again"),
                              stacklevel=3)
            return None
        except OSError as error:
            self.status = "corrupt"
            warnings.warn(DataWarning(f"cache {self.path} cannot be read ({error}); decoding the data again"),
                          stacklevel=3)
            return None
        data.cache_path, data.cache_status = self.path, "hit"
        return data

    def store(self, data: DecodedSet) -> DecodedSet:
        """Write ``data`` (a cache that cannot be written, read-only or full, only costs a warning)."""
        if not self.enabled:
            return data
        try:
            write_cache(self.path, self.key, data)
            data.cache_path, data.cache_status = self.path, self.status
        except OSError as error:
            warnings.warn(DataWarning(f"cannot write the cache {self.path} ({error}); the next load decodes again"),
                          stacklevel=3)
            data.cache_status = "unwritable"
        return data
