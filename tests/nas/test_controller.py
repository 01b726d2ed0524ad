"""The controller: a proper distribution over architectures, and REINFORCE moves it towards reward."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from cnnlab.errors import CnnlabError
from cnnlab.nas import Controller, Reinforce


def log_p(controller: Controller, tokens) -> float:
    with torch.no_grad():
        return float(controller.log_prob(tokens))


def test_log_probabilities_form_a_distribution_over_architectures():
    controller = Controller([2, 3, 2], hidden_size=8)
    total = sum(math.exp(log_p(controller, list(t))) for t in itertools.product(range(2), range(3), range(2)))
    assert total == pytest.approx(1.0, abs=1e-5)
    # The first step's probability is the softmax of the head on the LSTM's first state.
    with torch.no_grad():
        h, _ = controller.lstm(controller.start)
        first = F.log_softmax(controller.heads[0](h)[0], dim=-1)
        marginal = math.log(sum(math.exp(log_p(controller, [1, j, k])) for j in range(3) for k in range(2)))
    assert marginal == pytest.approx(float(first[1]), abs=1e-5)
    with pytest.raises(CnnlabError):
        controller.log_prob([0, 3, 0])


def test_sampling_is_seeded_and_starts_near_uniform():
    controller = Controller([5] * 6)
    a = controller.sample(torch.Generator().manual_seed(3))
    b = controller.sample(torch.Generator().manual_seed(3))
    assert a == b and len(a) == 6 and all(0 <= t < 5 for t in a)
    # Small initial weights: every architecture about as likely as under random search.
    assert log_p(controller, a) == pytest.approx(6 * math.log(1 / 5), abs=0.3)


def test_one_update_follows_the_sign_of_the_advantage():
    controller = Controller([4, 4], hidden_size=16)
    reinforce = Reinforce(controller, lr=0.05)
    assert reinforce.update([1, 2], 0.5)["advantage"] == 0.0  # the first reward only sets the baseline
    before = log_p(controller, [1, 2])
    info = reinforce.update([1, 2], 0.9)  # better than the baseline: more likely
    assert info["advantage"] == pytest.approx(0.4) and log_p(controller, [1, 2]) > before
    assert reinforce.baseline == pytest.approx(0.8 * 0.5 + 0.2 * 0.9)
    before = log_p(controller, [3, 0])
    reinforce.update([3, 0], 0.1)  # worse than the baseline: less likely
    assert log_p(controller, [3, 0]) < before


def test_reinforce_learns_a_rewarded_choice():
    # Toy reward, no training: 1 when the second decision picks choice 3 of 5, else 0.
    torch.manual_seed(0)
    controller = Controller([3, 5, 2], hidden_size=16)
    reinforce = Reinforce(controller, lr=0.05)
    generator = torch.Generator().manual_seed(0)

    def chance_of_three() -> float:
        with torch.no_grad():
            return sum(math.exp(log_p(controller, [i, 3, k])) for i in range(3) for k in range(2))

    start = chance_of_three()
    for _ in range(80):
        tokens = controller.sample(generator)
        reinforce.update(tokens, 1.0 if tokens[1] == 3 else 0.0)
    assert start == pytest.approx(0.2, abs=0.05) and chance_of_three() > 0.8


def test_state_round_trip():
    controller = Controller([3, 3])
    reinforce = Reinforce(controller)
    reinforce.update([0, 1], 0.3)
    reinforce.update([2, 1], 0.6)
    other = Reinforce(Controller([3, 3]))
    other.load_state_dict(reinforce.state_dict())
    assert other.baseline == reinforce.baseline
    assert log_p(other.controller, [2, 1]) == pytest.approx(log_p(controller, [2, 1]))


def test_a_seeded_controller_starts_the_same_whatever_the_global_state():
    first = Controller([3, 4], generator=torch.Generator().manual_seed(5))
    torch.manual_seed(123)
    second = Controller([3, 4], generator=torch.Generator().manual_seed(5))
    assert all(torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters()))
