"""Checkpoints: exact resume of model, optimiser, schedule and RNG; atomic writes; weights-only loading."""
import os
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train import (
    build_optimizer,
    build_schedule,
    capture_rng_state,
    checkpoint_tags,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from cnnlab.runs import checkpoint as checkpoint_module

from .conftest import SmallNet


def _train(model, optimizer, schedule, steps):
    for _ in range(steps):
        loss = model(torch.randn(4, 3, 8, 8)).logsumexp(dim=1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()


def _setup():
    model = SmallNet()
    optimizer = build_optimizer(model, "sgd", 0.1)
    schedule = build_schedule(optimizer, "cosine", 20, warmup_steps=3)
    return model, optimizer, schedule


def _draws():
    return torch.rand(3), np.random.rand(3), [random.random() for _ in range(3)], np.random.randn()


def _state(optimizer, schedule, step):
    return {"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(), "epoch": 1, "step": step,
            "config": {"model": "small", "lr": 0.1, "milestones": (3, 5)}, "metrics": {"top1": np.float64(41.5)}}


def test_round_trip_resumes_exactly(tmp_path):
    model, optimizer, schedule = _setup()
    _train(model, optimizer, schedule, 5)
    np.random.randn()  # leave NumPy with a cached Gaussian, part of its state
    save_checkpoint(tmp_path, "last", model, _state(optimizer, schedule, 5))
    expected_draws = _draws()
    _train(model, optimizer, schedule, 6)
    expected_weights = {k: v.clone() for k, v in model.state_dict().items()}
    expected_lr = optimizer.param_groups[0]["lr"]

    torch.manual_seed(1234)  # a new process: different RNG state, fresh objects
    np.random.seed(1234)
    random.seed(1234)
    model, optimizer, schedule = _setup()
    weights, state = load_checkpoint(tmp_path, "last", model=model)
    optimizer.load_state_dict(state["optimizer"])
    schedule.load_state_dict(state["schedule"])
    restore_rng_state(state["rng"])
    assert state["step"] == 5 and state["config"]["milestones"] == (3, 5)
    assert state["metrics"]["top1"] == 41.5 and type(state["metrics"]["top1"]) is float
    draws = _draws()
    assert torch.equal(draws[0], expected_draws[0]) and np.array_equal(draws[1], expected_draws[1])
    assert draws[2] == expected_draws[2] and draws[3] == expected_draws[3]
    _train(model, optimizer, schedule, 6)
    assert optimizer.param_groups[0]["lr"] == expected_lr
    for key, value in model.state_dict().items():
        assert torch.equal(value, expected_weights[key]), key


def test_files_load_weights_only_and_by_themselves(tmp_path):
    model, optimizer, schedule = _setup()
    weights_path, state_path = save_checkpoint(tmp_path, "best", model, _state(optimizer, schedule, 0))
    assert (weights_path.name, state_path.name) == ("best.safetensors", "best.state.pt")
    state = torch.load(state_path, weights_only=True)
    assert set(state) >= {"optimizer", "schedule", "epoch", "step", "config", "metrics", "rng", "checkpoint_id"}
    weights = load_file(weights_path)
    assert weights.keys() == model.state_dict().keys()
    fresh = SmallNet()
    fresh.load_state_dict(weights)  # the weights file is an ordinary state_dict
    assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert checkpoint_tags(tmp_path) == ["best"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_zoo_model_checkpoint_loads_with_create_model(tmp_path):
    import cnnlab

    model = cnnlab.create_model("resnet20").to(memory_format=torch.channels_last)
    weights_path, _ = save_checkpoint(tmp_path, "best", model, {"epoch": 3})
    again = cnnlab.create_model("resnet20", weights=str(weights_path))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    model.eval(), again.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():  # channels_last convolutions round differently
        assert torch.allclose(model(x), again(x), atol=1e-5)


def test_tied_weights_are_saved(tmp_path):
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    model[1].weight = model[0].weight
    save_checkpoint(tmp_path, "last", model, {})
    fresh = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False))
    load_checkpoint(tmp_path, model=fresh)
    assert torch.equal(fresh[0].weight, model[0].weight) and torch.equal(fresh[1].weight, model[0].weight)


@pytest.mark.parametrize("failing", ["weights", "state"])
def test_failure_during_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch, failing):
    model = SmallNet()
    save_checkpoint(tmp_path, "last", model, {"epoch": 1})
    old = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.fc.weight.add_(1.0)

    def crash(original):
        def write(obj, path, *args, **kwargs):
            original(obj, path, *args, **kwargs)
            with open(path, "r+b") as handle:  # half written when the "power goes out"
                handle.truncate(os.path.getsize(path) // 2)
            raise KeyboardInterrupt

        return write

    if failing == "weights":
        import safetensors.torch

        monkeypatch.setattr(safetensors.torch, "save_file", crash(safetensors.torch.save_file))
    else:
        monkeypatch.setattr(checkpoint_module.torch, "save", crash(torch.save))
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", model, {"epoch": 2})
    monkeypatch.undo()
    weights, state = load_checkpoint(tmp_path, "last")
    assert state["epoch"] == 1
    assert all(torch.equal(weights[k], old[k]) for k in old)
    assert sorted(os.listdir(tmp_path)) == ["last.safetensors", "last.state.pt"]


def test_crash_between_the_two_renames_is_detected(tmp_path, monkeypatch):
    model = SmallNet()
    save_checkpoint(tmp_path, "last", model, {"epoch": 1})
    replace = os.replace
    calls = []

    def replace_then_crash(source, target):
        calls.append(target)
        if len(calls) == 2:
            raise KeyboardInterrupt
        replace(source, target)

    monkeypatch.setattr(checkpoint_module.os, "replace", replace_then_crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, "last", model, {"epoch": 2})
    monkeypatch.undo()
    with pytest.raises(CnnlabError, match="come from different saves"):
        load_checkpoint(tmp_path, "last")


@pytest.mark.parametrize("damaged", ["last.safetensors", "last.state.pt"])
def test_corrupt_file_raises_a_clear_error(tmp_path, damaged):
    save_checkpoint(tmp_path, "last", SmallNet(), {"epoch": 1})
    path = tmp_path / damaged
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(CnnlabError, match=f"cannot read .*{damaged}.*corrupt or incomplete"):
        load_checkpoint(tmp_path, "last")
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CnnlabError, match="corrupt or incomplete"):
        load_checkpoint(tmp_path, "last")


def test_missing_directory_tag_and_unfit_weights(tmp_path):
    with pytest.raises(CnnlabError, match="does not exist"):
        load_checkpoint(tmp_path / "nowhere")
    save_checkpoint(tmp_path, "best", SmallNet(), {})
    with pytest.raises(CnnlabError, match="no checkpoint 'last'.*available tags: best"):
        load_checkpoint(tmp_path, "last")
    with pytest.raises(CnnlabError, match=r"(?s)do not fit.*shape mismatches \(2\): fc.weight"):
        load_checkpoint(tmp_path, "best", model=SmallNet(num_classes=5))
    with pytest.raises(CnnlabError, match=r"missing keys \(1\): extra.weight"):
        other = SmallNet()
        other.extra = nn.Linear(2, 2, bias=False)
        load_checkpoint(tmp_path, "best", model=other)


def test_state_that_weights_only_cannot_hold_is_refused_before_writing(tmp_path):
    with pytest.raises(CnnlabError, match=r"state\['config'\]\['path'\] is a pathlib.*PosixPath|WindowsPath"):
        from pathlib import Path

        save_checkpoint(tmp_path, "last", SmallNet(), {"config": {"path": Path("/data")}})
    with pytest.raises(CnnlabError, match=r"state\['metrics'\]\[0\] is a numpy.ndarray"):
        save_checkpoint(tmp_path, "last", SmallNet(), {"metrics": [np.zeros(3)]})
    assert os.listdir(tmp_path) == []
    with pytest.raises(CnnlabError, match="checkpoint tag must be"):
        save_checkpoint(tmp_path, "../escape", SmallNet(), {})


def test_rng_state_capture_and_restore():
    state = capture_rng_state()
    expected = _draws()
    random.random(), np.random.rand(), torch.rand(1)
    restore_rng_state(state)
    draws = _draws()
    assert torch.equal(draws[0], expected[0]) and np.array_equal(draws[1], expected[1]) and draws[2] == expected[2]
    with pytest.raises(CnnlabError, match="not a random-generator state"):
        restore_rng_state({"torch": torch.get_rng_state()})
