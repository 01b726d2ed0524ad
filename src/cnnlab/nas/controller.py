"""The controller of neural architecture search: an LSTM that emits an architecture, trained by REINFORCE.

Zoph & Le (ICLR 2017, section 3): a recurrent network emits the architecture's tokens one
at a time; each step's softmax chooses one decision and the chosen token is fed back as
the next step's input, so later decisions depend on earlier ones. The child network the
tokens describe is trained and its validation accuracy R is the reward. The controller's
parameters theta are then moved by the policy gradient (Williams 1992's REINFORCE):

    grad J(theta) ~ (R - b) * sum_t grad log P(a_t | a_1..a_t-1; theta)

with b an exponential moving average of the earlier rewards (a baseline, which lowers the
variance of the estimate without biasing it). NASNet (Zoph et al. 2018) used the same
controller with one LSTM layer of 100 units; here it is smaller (64 units) and updated
after every child, since the budgets on a CPU are a few dozen children, not 20,000.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError

__all__ = ["Controller", "Reinforce"]


class Controller(nn.Module):
    """An LSTM cell run for ``len(sizes)`` steps; step t has its own softmax head over ``sizes[t]``
    choices and its own embedding of the chosen token, which is the input of step t+1.
    Step 0 reads a learned start vector. Weights start uniform in [-0.08, 0.08] (Zoph & Le),
    so the first policy is close to uniform: the controller starts as random search."""

    def __init__(self, sizes: Sequence[int], hidden_size: int = 64, generator: torch.Generator | None = None):
        super().__init__()
        if not sizes or any(int(n) < 1 for n in sizes):
            raise CnnlabError(f"a controller needs at least one decision with at least one choice, got {list(sizes)}")
        self.sizes = [int(n) for n in sizes]
        self.start = nn.Parameter(torch.zeros(1, hidden_size))
        self.lstm = nn.LSTMCell(hidden_size, hidden_size)
        self.heads = nn.ModuleList(nn.Linear(hidden_size, n) for n in self.sizes)
        self.embeddings = nn.ModuleList(nn.Embedding(n, hidden_size) for n in self.sizes)
        for parameter in self.parameters():  # from ``generator`` when given: a search's seed fixes them
            nn.init.uniform_(parameter, -0.08, 0.08, generator=generator)

    def _run(self, tokens: Sequence[int] | None, generator: torch.Generator | None):
        """Walk the steps: sample each token (``tokens=None``) or follow the given ones (teacher
        forcing); returns the tokens, the sum of their log-probabilities and of the entropies."""
        state = None
        x = self.start
        chosen, log_prob, entropy = [], self.start.new_zeros(()), self.start.new_zeros(())
        for step, head in enumerate(self.heads):
            state = self.lstm(x, state)
            logits = head(state[0])[0]
            log_probs = F.log_softmax(logits, dim=-1)
            if tokens is None:
                token = int(torch.multinomial(log_probs.detach().exp(), 1, generator=generator))
            else:
                token = int(tokens[step])
            chosen.append(token)
            log_prob = log_prob + log_probs[token]
            entropy = entropy - (log_probs.exp() * log_probs).sum()
            x = self.embeddings[step](torch.tensor([token]))
        return chosen, log_prob, entropy

    def sample(self, generator: torch.Generator | None = None) -> list[int]:
        """Draw an architecture from the policy (no gradient)."""
        with torch.no_grad():
            return self._run(None, generator)[0]

    def log_prob(self, tokens: Sequence[int]) -> torch.Tensor:
        """log P(tokens) under the policy, differentiable: sum over steps of log P(a_t | a_<t)."""
        if len(tokens) != len(self.sizes) or any(not 0 <= int(t) < n for t, n in zip(tokens, self.sizes)):
            raise CnnlabError(f"tokens {list(tokens)} do not fit the controller's decisions {self.sizes}")
        return self._run(tokens, None)[1]

    def entropy(self, tokens: Sequence[int]) -> torch.Tensor:
        """The summed entropy of the step distributions along ``tokens`` (how undecided the policy is)."""
        return self._run(tokens, None)[2]


class Reinforce:
    """REINFORCE with a moving-average baseline for a :class:`Controller` (Adam, as in Zoph & Le).

    ``update(tokens, reward)`` takes one child's tokens and reward (its validation accuracy
    as a fraction): the advantage is ``reward - baseline``, the loss ``-advantage *
    log P(tokens)`` (minus ``entropy_weight`` x the entropy, which keeps the policy from
    collapsing early), one optimiser step; then the baseline moves towards the reward by
    ``1 - baseline_decay``. The first reward only sets the baseline: with nothing to compare
    it with, it says nothing about whether its architecture was good.
    """

    def __init__(self, controller: Controller, lr: float = 0.01, baseline_decay: float = 0.8,
                 entropy_weight: float = 0.0):
        if not lr > 0 or not 0 <= baseline_decay < 1 or entropy_weight < 0:
            raise CnnlabError(f"the controller needs lr > 0, 0 <= baseline_decay < 1 and entropy_weight >= 0; got "
                              f"{lr}, {baseline_decay}, {entropy_weight}")
        self.controller = controller
        self.optimizer = torch.optim.Adam(controller.parameters(), lr=lr)
        self.baseline_decay, self.entropy_weight = baseline_decay, entropy_weight
        self.baseline: float | None = None

    def update(self, tokens: Sequence[int], reward: float) -> dict:
        """One policy-gradient step on one child; returns the advantage, the baseline used and the log-probability."""
        if self.baseline is None:
            self.baseline = float(reward)
            with torch.no_grad():
                return {"advantage": 0.0, "baseline": None, "log_prob": float(self.controller.log_prob(tokens))}
        baseline = self.baseline
        advantage = float(reward) - baseline
        log_prob = self.controller.log_prob(tokens)
        loss = -advantage * log_prob
        if self.entropy_weight:
            loss = loss - self.entropy_weight * self.controller.entropy(tokens)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.baseline = baseline * self.baseline_decay + (1 - self.baseline_decay) * float(reward)
        return {"advantage": advantage, "baseline": baseline, "log_prob": float(log_prob.detach())}

    def state_dict(self) -> dict:
        return {"controller": self.controller.state_dict(), "optimizer": self.optimizer.state_dict(),
                "baseline": self.baseline}

    def load_state_dict(self, state: dict) -> None:
        self.controller.load_state_dict(state["controller"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.baseline = state["baseline"]
