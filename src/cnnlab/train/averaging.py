"""Averages of the weights over training: airbench's lookahead, and an exponential moving average.

:class:`Lookahead` pulls the network back to its slow average every few steps;
:class:`ModelEMA` keeps the average aside, as a second model that is evaluated instead of
the network (Polyak averaging; timm's ``--model-ema``), a cheap stand-in for an ensemble.

Lookahead: slow weights that trail the fast ones, pulled back into the network every few steps.

Zhang et al. 2019 ("Lookahead Optimizer: k steps forward, 1 step back"), in the form
airbench94 (Jordan 2024) trains with: every ``every`` optimiser steps the slow copy moves
toward the network, ``slow = decay_t * slow + (1 - decay_t) * fast``, and the network is
set to it. ``decay_t = decay ** every * (t / T) ** 3`` grows with training progress
``t / T``: early on the network runs free, near the end it is an average of its recent
states (an exponential moving average, as in Polyak averaging), which generalises a little
better than the last state alone. After the last step the network keeps the slow weights.
Every floating-point tensor of the state dict takes part, BN's running statistics included.
"""
from __future__ import annotations

import copy

import torch
from torch import Tensor, nn


class Lookahead:
    """The slow weights of ``model`` and the rule that pulls the network back to them."""

    def __init__(self, model: nn.Module, *, every: int, decay: float, total_steps: int):
        self.every, self.decay, self.total_steps = int(every), float(decay), int(total_steps)
        # state_dict() tensors share their storage with the live parameters and buffers.
        self._fast = [t for t in model.state_dict().values() if t.is_floating_point()]
        self._slow = [t.detach().clone() for t in self._fast]

    def decay_at(self, step: int) -> float:
        """The slow weights' decay at optimiser step ``step`` (1-based) of ``total_steps``."""
        return self.decay ** self.every * (step / self.total_steps) ** 3

    @torch.no_grad()
    def after_step(self, step: int) -> None:
        """Called after optimiser step ``step``: update and pull back every ``every`` steps;
        after the last step, leave the network at the slow weights."""
        if step % self.every == 0:
            weight = 1.0 - self.decay_at(step)
            for slow, fast in zip(self._slow, self._fast):
                slow.lerp_(fast.to(slow.dtype), weight)
                fast.copy_(slow)
        if step == self.total_steps:
            for slow, fast in zip(self._slow, self._fast):
                fast.copy_(slow)

    def state_dict(self) -> list[Tensor]:
        return [t.detach().cpu() for t in self._slow]

    def load_state_dict(self, tensors: list[Tensor]) -> None:
        if len(tensors) != len(self._slow) or any(a.shape != b.shape for a, b in zip(tensors, self._slow)):
            raise ValueError("the lookahead weights do not fit this model")
        with torch.no_grad():
            for slow, saved in zip(self._slow, tensors):
                slow.copy_(saved)


class ModelEMA:
    """An exponential moving average of ``model``'s weights, kept as a model of its own.

    After every optimiser step ``t``: ``ema = d_t * ema + (1 - d_t) * weights`` with
    ``d_t = min(decay, (1 + t) / (10 + t))``, the warm-up TensorFlow's and timm's EMA use, so
    that the first steps' random weights fade out quickly. Every floating-point tensor of
    the state dict is averaged, BN's running statistics included; integer buffers are copied.
    ``module`` is the averaged model, in eval mode, for evaluation.
    """

    def __init__(self, model: nn.Module, *, decay: float):
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for parameter in self.module.parameters():
            parameter.requires_grad_(False)
        self._pairs = list(zip(self.module.state_dict().values(), model.state_dict().values()))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average toward the network after optimiser step ``step`` (1-based)."""
        decay = min(self.decay, (1 + step) / (10 + step))
        for average, live in self._pairs:
            if average.is_floating_point():
                average.lerp_(live.to(average.dtype), 1.0 - decay)
            else:
                average.copy_(live)

    def state_dict(self) -> list[Tensor]:
        return [average.detach().cpu() for average, _ in self._pairs]

    def load_state_dict(self, tensors: list[Tensor]) -> None:
        if len(tensors) != len(self._pairs) or any(a.shape != t.shape for (a, _), t in zip(self._pairs, tensors)):
            raise ValueError("the EMA weights do not fit this model")
        with torch.no_grad():
            for (average, _), saved in zip(self._pairs, tensors):
                average.copy_(saved)
