"""LR schedules: the curves of the lectures, lr_at agreeing with the optimiser, exact resume."""
import io
import math

import pytest
import torch
from torch import nn

from cnnlab.errors import CnnlabError
from cnnlab.train import ReduceOnPlateau, build_optimizer, build_schedule

TOTAL = 60

CONFIGS = [
    ("constant", {}),
    ("constant", {"warmup_steps": 7}),
    ("step", {}),
    ("step", {"warmup_steps": 5, "milestones": [20, 45]}),
    ("cosine", {}),
    ("cosine", {"warmup_steps": 10, "min_lr": 1e-3, "warmup_start_factor": 0.01}),
    ("onecycle", {}),
    ("onecycle", {"max_lr": 0.4, "pct_start": 0.25}),
    ("onecycle", {"pct_start": 0.23, "div_factor": 5, "final_div_factor": 0.2 / 0.07, "anneal_strategy": "linear",
                  "cycle_momentum": False}),
]


def _setup(name, kwargs, optimizer_name="sgd"):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4))
    optimizer = build_optimizer(model, optimizer_name, 0.1)
    return optimizer, build_schedule(optimizer, name, TOTAL, **kwargs)


def _run(optimizer, schedule, steps):
    lrs = []
    for _ in range(steps):
        lrs.append([g["lr"] for g in optimizer.param_groups] + [optimizer.param_groups[0].get("momentum")])
        optimizer.step()  # no gradients: the parameters stay, the schedule advances
        schedule.step()
    return lrs


def _weights_only_copy(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_step_decay_divides_by_ten_at_milestones():
    _, schedule = _setup("step", {"milestones": [20, 40]})
    assert [schedule.lr_at(s) for s in (0, 19)] == [0.1, 0.1]
    assert schedule.lr_at(20) == pytest.approx(0.01) and schedule.lr_at(39) == pytest.approx(0.01)
    assert schedule.lr_at(40) == pytest.approx(0.001) and schedule.lr_at(TOTAL - 1) == pytest.approx(0.001)
    _, default = _setup("step", {})  # the CIFAR ResNets' 32k/48k of 64k
    assert default.config["milestones"] == [TOTAL // 2, TOTAL * 3 // 4]


def test_cosine_goes_down_to_min_lr():
    _, schedule = _setup("cosine", {"min_lr": 0.001})
    lrs = [schedule.lr_at(s) for s in range(TOTAL)]
    assert lrs[0] == 0.1 and all(a >= b for a, b in zip(lrs, lrs[1:]))
    assert lrs[TOTAL // 2] == pytest.approx((0.1 + 0.001) / 2)
    assert lrs[-1] == pytest.approx(0.001 + 0.099 * (1 + math.cos(math.pi * (TOTAL - 1) / TOTAL)) / 2)


def test_linear_warmup_in_front():
    _, schedule = _setup("cosine", {"warmup_steps": 10, "warmup_start_factor": 0.1})
    ramp = [schedule.lr_at(s) for s in range(11)]
    assert ramp[0] == pytest.approx(0.01) and ramp[5] == pytest.approx(0.055) and ramp[10] == pytest.approx(0.1)
    assert all(b > a for a, b in zip(ramp, ramp[1:]))
    assert schedule.lr_at(11) < 0.1


def test_one_cycle_shape_and_momentum():
    optimizer, schedule = _setup("onecycle", {"pct_start": 0.3})
    lrs = [schedule.lr_at(s) for s in range(TOTAL)]
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.1 / 25) and max(lrs) == pytest.approx(0.1)
    assert peak == round(0.3 * TOTAL) - 1
    assert lrs[-1] == pytest.approx(0.1 / 25 / 1e4)
    momenta = [m for *_, m in _run(optimizer, schedule, TOTAL)]
    assert momenta[0] == pytest.approx(0.95) and momenta[peak] == pytest.approx(0.85)
    assert momenta[-1] == pytest.approx(0.95)


@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_lr_at_is_what_the_optimizer_gets(name, kwargs):
    optimizer, schedule = _setup(name, kwargs)
    before = [g["lr"] for g in optimizer.param_groups]
    predicted = [schedule.lr_at(s) for s in range(TOTAL + 5)]
    assert [g["lr"] for g in optimizer.param_groups] == before  # lr_at does not touch the optimiser
    actual = [lrs[0] for lrs in _run(optimizer, schedule, TOTAL + 5)]
    assert actual == predicted
    assert actual[TOTAL:] == [actual[TOTAL - 1]] * 5  # past the end the LR holds
    assert schedule.last_step == TOTAL + 5


@pytest.mark.parametrize("order", ["optimizer, schedule", "schedule, optimizer", "optimizer before building"])
@pytest.mark.parametrize("name,kwargs", CONFIGS)
def test_resume_gives_identical_learning_rates(name, kwargs, order):
    optimizer, schedule = _setup(name, kwargs)
    uninterrupted = _run(optimizer, schedule, TOTAL)

    optimizer, schedule = _setup(name, kwargs)
    first = _run(optimizer, schedule, 23)
    saved = _weights_only_copy({"optimizer": optimizer.state_dict(), "schedule": schedule.state_dict()})
    # A fresh process rebuilds everything, then loads, in any order.
    if order == "optimizer before building":
        torch.manual_seed(0)
        optimizer = build_optimizer(nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)), "sgd", 0.1)
        optimizer.load_state_dict(saved["optimizer"])
        schedule = build_schedule(optimizer, name, TOTAL, **kwargs)
        schedule.load_state_dict(saved["schedule"])
    else:
        optimizer, schedule = _setup(name, kwargs)
        if order == "optimizer, schedule":
            optimizer.load_state_dict(saved["optimizer"])
            schedule.load_state_dict(saved["schedule"])
        else:
            schedule.load_state_dict(saved["schedule"])
            optimizer.load_state_dict(saved["optimizer"])
    assert schedule.last_step == 23
    assert first + _run(optimizer, schedule, TOTAL - 23) == uninterrupted
    assert schedule.lr_at(40) == uninterrupted[40][0]


def test_resume_with_adamw_one_cycle_restores_betas():
    optimizer, schedule = _setup("onecycle", {}, "adamw")
    _run(optimizer, schedule, 10)
    betas = optimizer.param_groups[0]["betas"]
    saved = _weights_only_copy(schedule.state_dict())
    optimizer, schedule = _setup("onecycle", {}, "adamw")
    schedule.load_state_dict(saved)
    assert optimizer.param_groups[0]["betas"] == betas and betas[0] < 0.95


def test_linear_one_cycle_is_airbench94s_triangle():
    """airbench94's shape: straight up from 0.2 of the peak (over its first 23% of the steps;
    25% here, so that the peak falls on a step), straight down to 0.07 of it, momentum fixed."""
    optimizer, schedule = _setup("onecycle", {"pct_start": 0.25, "div_factor": 5, "final_div_factor": 0.2 / 0.07,
                                              "anneal_strategy": "linear", "cycle_momentum": False})
    lrs = [schedule.lr_at(s) for s in range(TOTAL)]
    peak = lrs.index(max(lrs))
    assert lrs[0] == pytest.approx(0.02) and max(lrs) == pytest.approx(0.1) and lrs[-1] == pytest.approx(0.007)
    rises, falls = [b - a for a, b in zip(lrs[:peak + 1], lrs[1:peak + 1])], [b - a for a, b in zip(lrs[peak:], lrs[peak + 1:])]
    assert max(rises) == pytest.approx(min(rises)) and max(falls) == pytest.approx(min(falls))  # straight lines
    assert min(rises) > 0 > max(falls)
    assert {m for *_, m in _run(optimizer, schedule, TOTAL)} == {0.9}


def test_anneal_strategy_is_checked():
    with pytest.raises(CnnlabError, match="unknown anneal_strategy 'quadratic'; choose one of cos, linear"):
        _setup("onecycle", {"anneal_strategy": "quadratic"})
    with pytest.raises(CnnlabError, match="only applies to the 'onecycle' schedule"):
        _setup("cosine", {"anneal_strategy": "linear"})


def test_a_one_cycle_saved_before_anneal_strategy_resumes_as_the_cosine():
    optimizer, schedule = _setup("onecycle", {})
    _run(optimizer, schedule, 10)
    saved = schedule.state_dict()
    del saved["config"]["anneal_strategy"]  # what earlier versions wrote
    optimizer, resumed = _setup("onecycle", {})
    resumed.load_state_dict(saved)
    assert resumed.lr_at(10) == schedule.lr_at(10)
    _, linear = _setup("onecycle", {"anneal_strategy": "linear"})
    with pytest.raises(CnnlabError, match="differs from this one"):
        linear.load_state_dict(saved)


def test_loading_a_different_schedule_is_refused():
    _, schedule = _setup("cosine", {})
    _, other = _setup("cosine", {"warmup_steps": 5})
    with pytest.raises(CnnlabError, match="differs from this one"):
        other.load_state_dict(schedule.state_dict())


def test_groups_with_different_learning_rates_scale_together():
    model = nn.Linear(4, 4)
    optimizer = torch.optim.SGD([{"params": [model.weight], "lr": 0.1}, {"params": [model.bias], "lr": 0.01}])
    schedule = build_schedule(optimizer, "step", 10, milestones=[5])
    assert schedule.lr_at(5, group=0) == pytest.approx(0.01) and schedule.lr_at(5, group=1) == pytest.approx(0.001)
    with pytest.raises(CnnlabError, match=r"group must be in \[0, 1\]"):
        schedule.lr_at(0, group=2)


@pytest.mark.parametrize("name,kwargs,match", [
    ("linear", {}, "unknown schedule 'linear'"),
    ("plateau", {}, "ReduceOnPlateau"),
    ("cosine", {"warmup_steps": TOTAL}, r"warmup_steps must be in \[0, total_steps - 1\]"),
    ("cosine", {"warmup_start_factor": 0.0}, r"warmup_start_factor must be a number in \(0.0, 1.0\]"),
    ("step", {"milestones": [30, 90]}, "not epochs"),
    ("step", {"milestones": [40, 30]}, "strictly increasing"),
    ("step", {"warmup_steps": 10, "milestones": [5]}, r"\(warmup_steps, total_steps\)"),
    ("step", {"gamma": 0.0}, r"gamma must be a number in \(0.0, 1.0\]"),
    ("cosine", {"milestones": [10]}, "only apply to the 'step' schedule"),
    ("cosine", {"min_lr": 0.5}, r"min_lr must be in \[0, the optimizer's learning rate"),
    ("onecycle", {"warmup_steps": 5}, "set pct_start instead"),
    ("onecycle", {"pct_start": 1.0}, r"pct_start must be a number in \(0.0, 1.0\)"),
])
def test_invalid_schedule_settings(name, kwargs, match):
    optimizer = build_optimizer(nn.Linear(2, 2), "sgd", 0.1)
    with pytest.raises(CnnlabError, match=match):
        build_schedule(optimizer, name, TOTAL, **kwargs)
    with pytest.raises(CnnlabError, match="total_steps must be an integer >= 1"):
        build_schedule(optimizer, "cosine", 0)


def test_reduce_on_plateau_divides_by_ten_after_patience():
    optimizer = build_optimizer(nn.Linear(2, 2), "sgd", 0.1)
    plateau = ReduceOnPlateau(optimizer, mode="min", patience=2)
    losses = [1.0, 0.8, 0.8, 0.81, 0.9, 0.7, 0.7, 0.7, 0.7]
    reduced = [plateau.step(loss) for loss in losses]
    assert reduced == [False, False, False, False, True, False, False, False, True]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.001)
    assert plateau.best == 0.7


def test_reduce_on_plateau_resumes_mid_count():
    def fresh():
        optimizer = build_optimizer(nn.Linear(2, 2), "sgd", 0.1)
        return optimizer, ReduceOnPlateau(optimizer, mode="max", patience=1)

    accuracies = [50.0, 60.0, 59.0, 58.0, 61.0, 61.0, 60.0, 62.0]
    optimizer, plateau = fresh()
    uninterrupted = [(plateau.step(a), optimizer.param_groups[0]["lr"]) for a in accuracies]
    optimizer, plateau = fresh()
    first = [(plateau.step(a), optimizer.param_groups[0]["lr"]) for a in accuracies[:3]]
    saved = _weights_only_copy(plateau.state_dict())
    optimizer, plateau = fresh()
    plateau.load_state_dict(saved)
    assert plateau.num_bad_epochs == 1
    rest = [(plateau.step(torch.tensor(a)), optimizer.param_groups[0]["lr"]) for a in accuracies[3:]]
    assert first + rest == uninterrupted


@pytest.mark.parametrize("kwargs,match", [
    ({"mode": "up"}, "mode must be 'min'"),
    ({"factor": 1.0}, r"factor must be a number in \(0.0, 1.0\)"),
    ({"patience": -1}, "patience must be an integer >= 0"),
])
def test_invalid_plateau_settings(kwargs, match):
    with pytest.raises(CnnlabError, match=match):
        ReduceOnPlateau(build_optimizer(nn.Linear(2, 2), "sgd", 0.1), **kwargs)
    plateau = ReduceOnPlateau(build_optimizer(nn.Linear(2, 2), "sgd", 0.1))
    with pytest.raises(CnnlabError, match="metric must be a number"):
        plateau.step("good")
