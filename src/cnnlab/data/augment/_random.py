"""The random draws every batched augmentation makes, from one ``torch.Generator``.

Parameters are drawn on the generator's device (CPU by default) and moved to the images'
device, so one CPU generator reproduces the same augmentation on CPU and GPU. The order
and number of draws is part of the training run's seed: changing either changes every
augmented batch.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def _draw_device(generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else torch.device("cpu")


def _to_device(values: Tensor, device) -> Tensor:
    """Move drawn parameters to ``device``; to a GPU through pinned memory, without waiting.

    A plain copy from ordinary (pageable) host memory synchronises the stream: the CPU
    would wait for the GPU to finish the previous training step before it could queue the
    next batch's augmentation, and the GPU would then idle while the CPU queued it.
    """
    device = torch.device(device)
    if device.type == "cuda" and values.device.type == "cpu":
        return values.pin_memory().to(device, non_blocking=True)
    return values.to(device)


def _uniform(n: int, generator, device, low: float = 0.0, high: float = 1.0) -> Tensor:
    """``n`` draws from U[low, high) as float64 on ``device``."""
    u = torch.rand(n, generator=generator, device=_draw_device(generator), dtype=torch.float64)
    return _to_device(low + (high - low) * u, device)


def _randint(n: int, high: Tensor | int, generator, device) -> Tensor:
    """``n`` integers uniform in [0, high) where ``high`` may differ per sample (>= 1)."""
    u = _to_device(torch.rand(n, generator=generator, device=_draw_device(generator), dtype=torch.float64), device)
    if not isinstance(high, Tensor):  # a plain bound needs no tensor (and no copy to the GPU)
        return (u * high).long().clamp_(max=int(high) - 1)
    return torch.minimum((u * high).long(), high.long() - 1)


def _beta(n: int, alpha: float, generator, device) -> Tensor:
    """``n`` draws from Beta(alpha, alpha); torch's Beta takes no generator, so numpy's,
    seeded from ``generator``, draws them (still reproducible from the one seed)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=_draw_device(generator)).item())
    lam = np.random.default_rng(seed).beta(alpha, alpha, size=n)
    return _to_device(torch.as_tensor(lam, dtype=torch.float64), device)


def _bernoulli(n: int, p: float, generator, device) -> Tensor:
    if p >= 1.0:
        return torch.ones(n, dtype=torch.bool, device=device)
    return _uniform(n, generator, device) < p


def _permutation(n: int, generator, device) -> Tensor:
    """A random permutation of ``range(n)`` (the mixing partners), drawn like the rest."""
    return _to_device(torch.randperm(n, generator=generator, device=_draw_device(generator)), device)


# splitmix64's constants as signed 64-bit integers (torch's int64 arithmetic wraps around).
_GOLDEN = 0x9E3779B97F4A7C15 - 2**64
_MIX1 = 0xBF58476D1CE4E5B9 - 2**64
_MIX2 = 0x94D049BB133111EB - 2**64


def _sample_bits(indices: Tensor, seed: int) -> Tensor:
    """One fair coin per sample, a fixed function of (sample index, seed): the same sample
    gets the same coin in every epoch and on every device (splitmix64's finaliser)."""
    salt = ((int(seed) * 2 + 1) * _MIX2) % 2**64  # wrapped to a signed 64-bit integer, as torch would
    x = indices.to(torch.int64) * _GOLDEN + (salt - 2**64 if salt >= 2**63 else salt)
    x = (x ^ ((x >> 30) & ((1 << 34) - 1))) * _MIX1
    x = (x ^ ((x >> 27) & ((1 << 37) - 1))) * _MIX2
    x = x ^ ((x >> 31) & ((1 << 33) - 1))
    return (x & 1).bool()
