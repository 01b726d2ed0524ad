"""airbench94's lookahead: slow weights that trail the network and are pulled back into it."""
import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train import Trainer
from cnnlab.train.lookahead import Lookahead

from .helpers import tiny


def test_pull_back_every_few_steps_with_a_ramped_decay():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    lookahead = Lookahead(model, every=2, decay=0.9, total_steps=4)
    start = model[0].weight.detach().clone()
    assert lookahead.decay_at(4) == pytest.approx(0.9 ** 2) and lookahead.decay_at(2) == pytest.approx(0.81 / 8)

    with torch.no_grad():
        model[0].weight.add_(1.0)  # step 1: the network moves, no pull-back yet
    lookahead.after_step(1)
    assert torch.equal(model[0].weight, start + 1)
    with torch.no_grad():
        model[0].weight.add_(1.0)  # step 2: slow = d * slow + (1 - d) * fast, then fast = slow
    lookahead.after_step(2)
    d = lookahead.decay_at(2)
    expected = d * start + (1 - d) * (start + 2)
    assert torch.allclose(model[0].weight, expected)
    # BN's running statistics take part; its integer step counter does not.
    assert len(lookahead.state_dict()) == 2 + 4


def test_the_network_ends_at_the_slow_weights():
    model = nn.Linear(3, 1)
    lookahead = Lookahead(model, every=5, decay=0.95, total_steps=7)
    for step in range(1, 8):
        with torch.no_grad():
            model.weight.add_(1.0)
        lookahead.after_step(step)
    slow = lookahead.state_dict()
    assert torch.equal(model.weight.detach(), slow[0])  # after the last step: the slow weights
    assert not torch.equal(slow[0], torch.zeros(1))


def test_trainer_runs_with_lookahead_and_checks_its_keys(tmp_path):
    trainer = Trainer(tiny(lookahead_every=5, epochs=1), tmp_path / "run", quiet=True)
    report = trainer.fit()
    assert report["config"]["lookahead_every"] == 5 and report["test_top1"] > 50
    assert torch.equal(trainer.model.conv1.weight.detach().cpu(), trainer.lookahead.state_dict()[0])
    for bad in (dict(lookahead_every=-1), dict(lookahead_decay=1.0)):
        with pytest.raises(CnnlabError, match="lookahead"):
            tiny(**bad).validate()
