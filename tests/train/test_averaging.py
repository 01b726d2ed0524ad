"""Averages of the weights: airbench94's lookahead (pulled back into the network) and the EMA (kept aside)."""
import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train import Trainer
from cnnlab.train.averaging import Lookahead, ModelEMA

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


def test_ema_follows_the_network_with_a_warm_up():
    model = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = ModelEMA(model, decay=0.99)
    start = model[0].weight.detach().clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    model[1].num_batches_tracked += 3
    ema.update(1)  # warm-up: decay min(0.99, 2/11)
    d = 2 / 11
    assert torch.allclose(ema.module[0].weight, d * start + (1 - d) * (start + 1))
    assert int(ema.module[1].num_batches_tracked) == 3  # integer buffers are copied
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())
    assert torch.equal(model[0].weight, start + 1)  # the network itself is left alone
    ema.update(10_000)
    d = 0.99
    assert ema.decay == 0.99


def test_trainer_evaluates_and_saves_the_ema(tmp_path):
    from cnnlab.eval import evaluate_run, load_run

    out = tmp_path / "run"
    trainer = Trainer(tiny(ema_decay=0.9, epochs=1), out, quiet=True)
    report = trainer.fit()
    assert report["test_weights"].startswith("ema") and (out / "ema.safetensors").is_file()
    again = evaluate_run(load_run(out, "ema", device="cpu"), top_losses=0)
    assert again["top1"] == pytest.approx(report["test_top1"])
    with pytest.raises(CnnlabError, match="ema_decay"):
        tiny(ema_decay=1.5).validate()
