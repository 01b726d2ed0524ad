"""Seeding: one call makes Python, NumPy and torch draws repeat; the seed is returned for the run record."""
import random

import numpy as np
import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab.train import seed_everything


def _draws():
    return random.random(), float(np.random.rand()), torch.rand(2).tolist()


def test_same_seed_same_numbers():
    assert seed_everything(123) == 123
    first = _draws()
    seed_everything(123)
    assert _draws() == first
    seed_everything(124)
    assert _draws() != first


def test_no_seed_draws_one_that_reproduces_the_run():
    seed = seed_everything(None)
    assert 0 <= seed < 2**32
    first = _draws()
    seed_everything(seed)
    assert _draws() == first


def test_deterministic_flags():
    seed_everything(0, deterministic=True)
    assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
    assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    seed_everything(0)
    assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "42"])
def test_invalid_seed(seed):
    with pytest.raises(CnnlabError, match=r"seed must be an integer in \[0, 4294967295\]"):
        seed_everything(seed)
