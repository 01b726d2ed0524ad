"""Lookahead: slow weights that trail the fast ones, pulled back into the network every few steps.

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
