"""Downloads with checksum verification, written atomically (no half file is ever left under the final name)."""
from __future__ import annotations

import hashlib
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..atomic import atomic_write
from ..errors import CnnlabError


def md5sum(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, destination: Path, md5: str, *, timeout: float = 60.0, quiet: bool = False) -> Path:
    """Fetch ``url`` to ``destination`` unless a file with the right MD5 is already there.

    The bytes go to a temporary file beside the destination, are checked against ``md5``
    and only then renamed into place; a mismatch leaves nothing behind and raises.
    """
    destination = Path(destination)
    if destination.is_file() and md5sum(destination) == md5:
        return destination
    destination.parent.mkdir(parents=True, exist_ok=True)
    if not quiet:
        print(f"downloading {url} to {destination}", file=sys.stderr)
    digest = hashlib.md5(usedforsecurity=False)

    def fetch(temporary: str) -> None:
        with open(temporary, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != md5:
            raise CnnlabError(f"download of {url} is corrupt: MD5 {digest.hexdigest()}, expected {md5}; "
                              "try again, or download it by hand to " + str(destination))

    try:
        atomic_write(destination, fetch)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise CnnlabError(f"cannot download {url} ({getattr(error, 'reason', error)}); without network access, "
                          f"copy the file by hand to {destination}") from None
    return destination
