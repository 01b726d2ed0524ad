"""Writing files atomically: into a hidden file beside the target, then renamed over it.

Checkpoints, reports, curves, data caches and downloads are all written this way, so a
reader never sees half a file under the final name, and a crash, a full disk or a Ctrl-C
while writing leaves the previous file exactly as it was. (The lectures' advice to save
checkpoints often only helps if saving can never destroy the last good one.)

The temporary file sits in the target's own folder, so the final ``os.replace`` is a
rename within one file system, which POSIX and Windows both make atomic. It is created
with ``open()`` rather than ``tempfile.mkstemp`` so it gets the usual umask permissions
(``mkstemp`` makes files private to their owner).
"""
from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["atomic_write", "atomic_write_all", "atomic_write_text"]

# A writer is given the temporary path (a str, which every library's save function takes)
# and writes the whole file there.
Writer = Callable[[str], None]


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _fsync_directory(directory: Path) -> None:
    # The rename itself must reach the disk, or a power cut can still undo it (POSIX only).
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(path: Path, write: Writer, sync: bool) -> Path:
    """Write the future ``path`` through ``write(temporary)`` into a hidden file beside it."""
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with open(temporary, "xb"):  # "x": never clobber anything, even a stray temporary
            pass
        write(str(temporary))
        if sync:
            with open(temporary, "rb+") as handle:
                os.fsync(handle.fileno())
    except BaseException:
        _remove(temporary)
        raise
    return temporary


def atomic_write_all(writers: Sequence[tuple[str | os.PathLike, Writer]], *, sync: bool = True) -> list[Path]:
    """Write every file completely to its temporary first, then rename them all into place.

    A failure or crash while writing (the slow part) leaves every old file untouched; only a
    crash between the renames, microseconds apart, can leave a mixed set (a checkpoint's
    weights and state carry a shared id to detect that). With ``sync`` the data and the
    renames are flushed to disk (``fsync``) before returning.
    """
    if not writers:
        return []
    paths = [Path(path) for path, _ in writers]
    temporaries: list[Path] = []
    try:
        for path, (_, write) in zip(paths, writers):
            temporaries.append(_write_temporary(path, write, sync))
        for path, temporary in zip(paths, temporaries):
            os.replace(temporary, path)
    except BaseException:
        for temporary in temporaries:
            _remove(temporary)
        raise
    if sync:
        for directory in dict.fromkeys(path.parent for path in paths):
            _fsync_directory(directory)
    return paths


def atomic_write(path: str | os.PathLike, write: Writer, *, sync: bool = False) -> Path:
    """Write one file atomically: ``write(temporary)`` fills a temporary beside ``path``,
    which then replaces ``path``. If ``write`` raises, ``path`` is untouched and the
    temporary is gone."""
    return atomic_write_all([(path, write)], sync=sync)[0]


def atomic_write_text(path: str | os.PathLike, text: str, *, sync: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""

    def write(temporary: str) -> None:
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)

    return atomic_write(path, write, sync=sync)
