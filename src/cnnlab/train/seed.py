"""One place that seeds every random number generator a training run touches."""
from __future__ import annotations

import os
import random
import secrets

import numpy as np
import torch

from ..errors import CnnlabError

_MAX_SEED = 2**32 - 1  # numpy's legacy global generator takes 32-bit seeds


def seed_everything(seed: int | None, deterministic: bool = False) -> int:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every GPU); return the seed.

    Lecture idea: a run is only reproducible, and a comparison between two runs only
    fair, if all of its randomness (initialisation, data order, augmentation, dropout)
    starts from one recorded seed. ``seed=None`` draws a fresh seed and returns it, so
    the caller can write it into the run's record.

    ``deterministic=True`` also asks PyTorch for deterministic kernels
    (``torch.use_deterministic_algorithms(True, warn_only=True)``: an op without a
    deterministic implementation warns instead of failing), turns cuDNN's autotuner off
    and its deterministic mode on, and sets ``CUBLAS_WORKSPACE_CONFIG`` (needed by
    cuBLAS) unless the environment already does. This costs speed on GPUs.
    ``deterministic=False`` switches those flags back off (``cudnn.benchmark`` is left
    as it is: whether to autotune is the trainer's choice).
    """
    if seed is None:
        seed = secrets.randbelow(_MAX_SEED + 1)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= int(seed) <= _MAX_SEED:
        raise CnnlabError(f"seed must be an integer in [0, {_MAX_SEED}] (or None for a fresh one), got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU generator and every CUDA device's
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        # cuBLAS reproducibility needs a fixed workspace; it must be set before the first
        # cuBLAS call, so setting it here is harmless when it is too late to matter.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    else:
        # Only when it is on: the call itself imports torch._inductor (seconds at start-up).
        if torch.are_deterministic_algorithms_enabled():
            torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False
    return seed
