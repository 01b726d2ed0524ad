"""Saving matplotlib figures: the one way every figure of cnnlab (training curves, evaluation
plots, the claims' figures) reaches the disk.

A leaf module: it imports nothing of cnnlab's but :mod:`cnnlab.atomic`, so the training,
evaluation and analysis code can all use it without importing one another. It does not
import matplotlib either; callers build the figure (on the Agg canvas) and pass it in.
"""
from __future__ import annotations

import os
from pathlib import Path

from .atomic import atomic_write

__all__ = ["save_figure"]


def save_figure(figure, path: str | os.PathLike) -> Path:
    """Write a matplotlib figure as PNG atomically (temp file + rename): a reader never sees half a file."""
    return atomic_write(path, lambda temporary: figure.savefig(temporary, format="png"))
