"""Files of a data set, read from a folder, a zip file or a tar archive (plain, gzip, bz2, xz).

Tar archives are read by a small sequential reader of our own rather than ``tarfile``:
``tarfile`` spends about 70 microseconds of Python per member, which for the 60,000
members of CIFAR-10 costs more than decoding the JPEGs. This reader parses the POSIX
ustar, GNU and pax headers that real archives use, verifies each header's checksum, and
reads the archive once from start to end without extracting anything to disk.
"""
from __future__ import annotations

import bz2
import lzma
import os
import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO, Iterator

from ...errors import CnnlabError

# Operating-system litter that is never part of a data set.
IGNORED_NAMES = frozenset({".ds_store", "thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx", "icon\r"})

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)
ARCHIVE_SUFFIXES = TAR_SUFFIXES + ZIP_SUFFIXES

_CHUNK = 1 << 20


def is_ignored(relpath: str) -> bool:
    """Hidden files and folders (``.name``), ``__MACOSX``, ``.DS_Store``, ``Thumbs.db`` and the like."""
    # Plain string operations: this runs once per file, and pathlib would cost more than decoding.
    return any(part[:1] == "." or part.lower() in IGNORED_NAMES for part in relpath.split("/") if part)


def archive_kind(path: Path) -> str | None:
    """``"tar"`` or ``"zip"`` judged by the file's first bytes; ``None`` for anything else.

    Raises a :class:`CnnlabError` when the name says archive and the content does not.
    """
    with open(path, "rb") as handle:
        head = handle.read(512)
    compression = _compression(head)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if compression is not None:
        return "tar"
    if len(head) == 512 and (head[257:262] == b"ustar" or _checksum_ok(head)):
        return "tar"
    lower = path.name.lower()
    if lower.endswith(ARCHIVE_SUFFIXES):
        raise CnnlabError(f"{path} is not a {'zip' if lower.endswith('.zip') else 'tar'} archive "
                          "(its content does not start like one); is the download complete?")
    return None


def _compression(head: bytes) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"BZh"):
        return "bz2"
    if head.startswith(b"\xfd7zXZ\x00"):
        return "xz"
    return None


def _checksum_ok(header: bytes) -> bool:
    try:
        stored = int(header[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(header[:148]) + 256 + sum(header[156:])


class _DecompressedStream:
    """Exact-length reads from a (possibly compressed, possibly multi-member) file."""

    def __init__(self, path: Path):
        self.path = path
        self.raw: BinaryIO = open(path, "rb")
        head = self.raw.read(8)
        self.raw.seek(0)
        self.compression = _compression(head)
        self._decompressor = self._new_decompressor()
        self._buffer = b""
        self._position = 0
        self._eof = False

    def _new_decompressor(self):
        if self.compression == "gzip":
            return zlib.decompressobj(31)
        if self.compression == "bz2":
            return bz2.BZ2Decompressor()
        if self.compression == "xz":
            return lzma.LZMADecompressor()
        return None

    def close(self) -> None:
        self.raw.close()

    def _more(self) -> bytes:
        if self._decompressor is None:
            chunk = self.raw.read(_CHUNK)
            self._eof = not chunk
            return chunk
        while True:
            if self._decompressor.eof:  # a concatenated gzip/bz2/xz member may follow
                data = self._decompressor.unused_data or self.raw.read(_CHUNK)
                if data:
                    self._decompressor = self._new_decompressor()
            else:
                data = self.raw.read(_CHUNK)
            if not data:
                self._eof = True
                return b""
            try:
                out = self._decompressor.decompress(data)
            except (zlib.error, OSError, EOFError, lzma.LZMAError) as error:
                raise CnnlabError(f"{self.path} is damaged: its {self.compression} stream cannot be "
                                  f"decompressed ({error})") from None
            if out:
                return out

    @property
    def incomplete(self) -> bool:
        """True when the file ended before its compressed stream did (a truncated download)."""
        return self._eof and self._decompressor is not None and not self._decompressor.eof

    def read(self, size: int) -> bytes:
        end = self._position + size
        if end <= len(self._buffer):
            out = self._buffer[self._position:end]
            self._position = end
            return out
        parts = [self._buffer[self._position:]]
        have = len(parts[0])
        while have < size and not self._eof:
            chunk = self._more()
            if not chunk:
                break
            parts.append(chunk)
            have += len(chunk)
        data = b"".join(parts)
        self._buffer, self._position = data, size
        return data[:size]

    def skip(self, size: int) -> None:
        if self._decompressor is None and self._position >= len(self._buffer):
            self.raw.seek(size, os.SEEK_CUR)
            return
        self.read(size)


def _octal(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.replace(b"\x00", b" ").strip()
    return int(text, 8) if text else 0


def _name(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _pax_records(data: bytes) -> dict[str, str]:
    records = {}
    position = 0
    while position < len(data):
        space = data.index(b" ", position)
        length = int(data[position:space])
        key, _, value = data[space + 1:position + length - 1].partition(b"=")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        position += length
    return records


def iter_tar(path: Path, *, read_data: bool = True,
             include_dirs: bool = False) -> Iterator[tuple[str, bytes | None, int, int]]:
    """Regular files of a tar archive in archive order: ``(name, data, data_offset, size)``.

    With ``read_data=False`` the data is skipped (``None``); ``data_offset`` is the
    position of the file's bytes in the uncompressed archive, for random access later.
    Links and devices are left out, and so are folders unless ``include_dirs`` (then as
    ``("name/", None, offset, 0)``). Names are POSIX paths without a leading ``./``.
    """
    stream = _DecompressedStream(path)
    offset = 0
    long_name: str | None = None
    pax: dict[str, str] = {}
    first = True
    try:
        while True:
            header = stream.read(512)
            if len(header) < 512 or header == b"\x00" * 512:
                if first and len(header) < 512:
                    raise CnnlabError(f"{path} is not a tar archive (it is empty or too short)")
                if header and len(header) < 512 or stream.incomplete:
                    raise CnnlabError(f"{path} is truncated: the archive ends in the middle "
                                      f"(after {offset} bytes); download or copy it again")
                return
            if not _checksum_ok(header):
                if first:
                    raise CnnlabError(f"{path} is not a tar archive (its first header is not a tar header)")
                raise CnnlabError(f"{path} is damaged: the tar header at byte {offset} fails its checksum")
            first = False
            offset += 512
            kind = header[156:157]
            try:
                size = _octal(header[124:136])
            except ValueError:
                raise CnnlabError(f"{path} is damaged: bad size field in the tar header "
                                  f"at byte {offset - 512}") from None
            if kind in (b"L", b"K", b"x", b"g"):  # records about the next member: GNU long names, pax
                padded = (size + 511) // 512 * 512
                data = stream.read(padded)
                if len(data) < padded:
                    raise CnnlabError(f"{path} is truncated: it ends inside a tar header record")
                if kind == b"L":
                    long_name = _name(data[:size].split(b"\x00", 1)[0])
                elif kind == b"x":
                    pax = _pax_records(data[:size])
                offset += padded
                continue
            if "size" in pax:
                size = int(pax["size"])
            name = _name(header[0:100].split(b"\x00", 1)[0])
            if header[257:263] == b"ustar\x00":  # POSIX: a prefix field extends the name
                prefix = _name(header[345:500].split(b"\x00", 1)[0])
                if prefix:
                    name = f"{prefix}/{name}"
            if long_name is not None:
                name, long_name = long_name, None
            if "path" in pax:
                name = pax["path"]
            padded = (size + 511) // 512 * 512
            pax = {}
            name = name.lstrip("/")
            while name.startswith("./"):
                name = name[2:]
            if kind in (b"0", b"\x00", b"7") and not name.endswith("/"):
                if read_data:
                    data = stream.read(padded)
                    if len(data) < size:
                        raise CnnlabError(f"{path} is truncated: member {name} ends early "
                                          f"({len(data)} of {size} bytes); download or copy it again")
                    yield name, data[:size], offset, size
                else:
                    stream.skip(padded)
                    yield name, None, offset, size
                offset += padded
            elif kind == b"5" or (kind in (b"0", b"\x00", b"7") and name.endswith("/")):
                if include_dirs and name.strip("/"):
                    yield name.rstrip("/") + "/", None, offset, 0
            elif kind not in (b"1", b"2", b"3", b"4", b"6"):  # links, devices, folders carry no data
                stream.skip(padded)
                offset += padded
    finally:
        stream.close()


def list_directory(root: Path, include_dirs: bool = False) -> list[str]:
    """Relative POSIX paths of the files under ``root``, sorted; hidden and system files left out.

    With ``include_dirs``, folders are listed too, as ``"name/"``.
    """
    found = []
    for folder, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
        relative = Path(folder).relative_to(root)
        if include_dirs:
            found.extend((relative / d).as_posix() + "/" for d in dirnames)
        for filename in filenames:
            if not is_ignored(filename):
                found.append((relative / filename).as_posix())
    return sorted(found)


def open_zip(path: Path) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise CnnlabError(f"{path} is not a readable zip archive ({error})") from None


def zip_members(archive: zipfile.ZipFile, include_dirs: bool = False) -> list[str]:
    return [info.filename for info in archive.infolist() if include_dirs or not info.is_dir()]


def read_zip_member(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        return archive.read(name)
    except (zipfile.BadZipFile, zlib.error, OSError, RuntimeError, NotImplementedError) as error:
        raise CnnlabError(f"{archive.filename}: member {name} cannot be read ({error})") from None


def iter_files(path: Path, include_dirs: bool = False) -> Iterator[tuple[str, bytes]]:
    """Every file of a folder, zip or tar archive as ``(relative path, bytes)``, in one sequential pass.

    With ``include_dirs``, folders come too, as ``("name/", b"")``, so that empty ones can be seen.
    """
    if path.is_dir():
        for relpath in list_directory(path, include_dirs):
            if relpath.endswith("/"):
                yield relpath, b""
                continue
            try:
                yield relpath, (path / relpath).read_bytes()
            except OSError as error:
                raise CnnlabError(f"cannot read {path / relpath}: {error.strerror or error}") from None
        return
    kind = archive_kind(path)
    if kind == "zip":
        with open_zip(path) as archive:
            for name in zip_members(archive, include_dirs):
                yield name, b"" if name.endswith("/") else read_zip_member(archive, name)
    elif kind == "tar":
        for name, data, _, _ in iter_tar(path, include_dirs=include_dirs):
            yield name, data or b""
    else:
        raise CnnlabError(f"{path} is a file but not an archive: expected a folder, a .tar, .tar.gz or .zip "
                          "of a data set")


def peek_names(path: Path, limit: int = 64) -> list[str]:
    """Up to ``limit`` file names of a folder or archive, cheaply, to recognise its format."""
    if path.is_dir():
        names = []
        for folder, dirnames, filenames in os.walk(path):
            dirnames[:] = sorted(d for d in dirnames if not is_ignored(d))
            relative = Path(folder).relative_to(path)
            names.extend((relative / f).as_posix() for f in sorted(filenames) if not is_ignored(f))
            if len(names) >= limit:
                break
        return names[:limit]
    kind = archive_kind(path)
    if kind == "zip":
        with open_zip(path) as archive:
            return zip_members(archive)[:limit]
    if kind == "tar":
        names = []
        for name, _, _, _ in iter_tar(path, read_data=False):
            names.append(name)
            if len(names) >= limit:
                break
        return names
    return []


def is_compressed_tar(path: Path) -> bool:
    with open(path, "rb") as handle:
        return _compression(handle.read(8)) is not None
