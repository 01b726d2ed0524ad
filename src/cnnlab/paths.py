"""Where cnnlab keeps its caches: ``$CNNLAB_CACHE``, else ``~/.cache/cnnlab``.

The decoded-data cache (:mod:`cnnlab.data.cache`) and the zoo table's cache
(:mod:`cnnlab.analysis.zoo`) both live below this folder. A leaf module: it imports
nothing of cnnlab's, so data and analysis can share it without importing each other.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir", "resolve_cache_dir"]


def default_cache_dir() -> Path:
    """``$CNNLAB_CACHE`` if set, else ``~/.cache/cnnlab``."""
    return Path(os.environ.get("CNNLAB_CACHE") or "~/.cache/cnnlab").expanduser()


def resolve_cache_dir(cache_dir: str | os.PathLike | bool | None) -> Path | None:
    """``None``: the default; ``False``: no cache; anything else: that folder."""
    if cache_dir is False:
        return None
    if cache_dir is None or cache_dir is True:
        return default_cache_dir()
    return Path(cache_dir).expanduser()
