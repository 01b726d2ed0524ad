"""Learning-rate schedules of the lectures: step decay, cosine, one-cycle, warm-up, reduce-on-plateau.

The per-iteration schedules are torch's own schedulers (``MultiStepLR``,
``CosineAnnealingLR``, ``OneCycleLR``, ``LinearLR`` in a ``SequentialLR``) behind one
small class, :class:`LRSchedule`, which adds what a trainer needs around them: the
learning rate at any step without touching the optimiser (for plots and logs), a
clear error for settings that make no sense, and a state dict that restores the exact
learning rates on resume whatever order the optimiser and the schedule are loaded in.
"""
from __future__ import annotations

import copy
import math
import numbers
from array import array
from collections.abc import Sequence

import torch
from torch.optim import lr_scheduler

from ..errors import CnnlabError
from ..runs.config import ANNEAL_STRATEGIES

SCHEDULE_NAMES = ("constant", "step", "cosine", "onecycle")

# Param-group entries that torch's schedulers read or write: restoring them with the
# schedule makes a resume independent of the order the optimiser and schedule are loaded in.
_GROUP_KEYS = ("lr", "initial_lr")
_ONECYCLE_GROUP_KEYS = ("max_lr", "min_lr")
_MOMENTUM_GROUP_KEYS = ("base_momentum", "max_momentum", "momentum", "betas")


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise CnnlabError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)


def _check_float(name: str, value, low: float, high: float, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open or math.isinf(high) else ']'}"
        raise CnnlabError(f"{name} must be a number in {interval}, got {value!r}")
    return float(value)


class LRSchedule:
    """A per-iteration learning-rate schedule: call :meth:`step` after every ``optimizer.step()``.

    Lecture idea: the learning rate is the most important hyper-parameter, and it should
    change during training (step decay in AlexNet/VGG/ResNet, cosine and one-cycle in
    later recipes, a linear warm-up first for large batches). Build it with
    :func:`build_schedule`. After ``k`` calls of :meth:`step` the optimiser's learning
    rates are ``lr_at(k)``; past ``total_steps`` they stay at the last value,
    ``lr_at(total_steps - 1)``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        name: str,
        total_steps: int,
        *,
        warmup_steps: int = 0,
        warmup_start_factor: float = 0.1,
        milestones: Sequence[int] | None = None,
        gamma: float = 0.1,
        min_lr: float = 0.0,
        max_lr: float | None = None,
        pct_start: float = 0.3,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        cycle_momentum: bool = True,
        anneal_strategy: str = "cos",
    ):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise CnnlabError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        key = str(name).lower().replace("-", "").replace("_", "")
        key = {"multistep": "step", "cos": "cosine", "1cycle": "onecycle"}.get(key, key)
        if key not in SCHEDULE_NAMES:
            raise CnnlabError(
                f"unknown schedule {name!r}; choose one of {', '.join(SCHEDULE_NAMES)} "
                "(for 'reduce on plateau' use ReduceOnPlateau, stepped once per epoch)"
            )
        total_steps = _check_int("total_steps", total_steps, 1)
        warmup_steps = _check_int("warmup_steps", warmup_steps, 0)
        if warmup_steps >= total_steps:
            raise CnnlabError(
                f"warmup_steps must be in [0, total_steps - 1] = [0, {total_steps - 1}], got {warmup_steps}"
            )
        warmup_start_factor = _check_float("warmup_start_factor", warmup_start_factor, 0.0, 1.0, low_open=True)
        gamma = _check_float("gamma", gamma, 0.0, 1.0, low_open=True)
        min_lr = _check_float("min_lr", min_lr, 0.0, math.inf)
        if max_lr is not None:
            max_lr = _check_float("max_lr", max_lr, 0.0, math.inf, low_open=True)
        pct_start = _check_float("pct_start", pct_start, 0.0, 1.0, low_open=True, high_open=True)
        div_factor = _check_float("div_factor", div_factor, 1.0, math.inf)
        final_div_factor = _check_float("final_div_factor", final_div_factor, 1.0, math.inf)

        if key == "step":
            if milestones is None:
                # The CIFAR ResNets (He et al. 2015, section 4.2): divide by 10 at 32k and 48k
                # of 64k iterations, i.e. at 50% and 75% of training.
                halves = sorted({total_steps // 2, total_steps * 3 // 4})
                milestones = [m for m in halves if warmup_steps < m < total_steps]
            milestones = [_check_int("milestones[]", m, 1) for m in milestones]
            if list(milestones) != sorted(set(milestones)):
                raise CnnlabError(f"milestones must be strictly increasing, got {milestones}")
            bad = [m for m in milestones if not warmup_steps < m < total_steps]
            if bad:
                raise CnnlabError(
                    f"milestones must lie in (warmup_steps, total_steps) = ({warmup_steps}, {total_steps}), got {bad}; "
                    "milestones count optimiser steps, not epochs (multiply epochs by the steps per epoch)"
                )
        elif milestones is not None and len(milestones):
            raise CnnlabError(f"milestones only apply to the 'step' schedule, not to {key!r}")
        if anneal_strategy not in ANNEAL_STRATEGIES:
            raise CnnlabError(f"unknown anneal_strategy {anneal_strategy!r}; choose one of {', '.join(ANNEAL_STRATEGIES)}")
        if anneal_strategy != "cos" and key != "onecycle":
            raise CnnlabError(f"anneal_strategy only applies to the 'onecycle' schedule, not to {key!r}")
        if key == "onecycle" and warmup_steps:
            raise CnnlabError(
                "the one-cycle schedule has its own warm-up (its first pct_start of the steps); "
                "set pct_start instead of warmup_steps"
            )
        # The learning rates the schedule is relative to (torch's "initial_lr" when an
        # earlier scheduler or a loaded optimiser state has already moved "lr").
        base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        if key == "cosine" and min_lr > min(base_lrs):
            raise CnnlabError(f"min_lr must be in [0, the optimizer's learning rate {min(base_lrs)}], got {min_lr}")

        self.optimizer = optimizer
        self.name = key
        self.total_steps = total_steps
        self.config = {
            "warmup_steps": warmup_steps, "warmup_start_factor": warmup_start_factor,
            "milestones": list(milestones) if key == "step" else [], "gamma": gamma, "min_lr": min_lr,
            "max_lr": max_lr, "pct_start": pct_start, "div_factor": div_factor,
            "final_div_factor": final_div_factor, "cycle_momentum": bool(cycle_momentum),
            "anneal_strategy": anneal_strategy,
        }
        self.base_lrs = base_lrs
        self.last_step = 0
        self._scheduler = self._build(optimizer)
        self._curve: list[array] = []  # one array of learning rates per group
        self._shadow: tuple[torch.optim.Optimizer, lr_scheduler.LRScheduler] | None = None

    def _build(self, optimizer: torch.optim.Optimizer) -> lr_scheduler.LRScheduler:
        c = self.config
        main_steps = self.total_steps - c["warmup_steps"]
        if self.name == "onecycle":
            # Smith & Topor 2017: up from max_lr/div_factor to max_lr over pct_start of the
            # steps, then down to max_lr/(div_factor*final_div_factor); momentum cycles inversely.
            # Both phases follow a half cosine, or a straight line (airbench94's triangle).
            max_lr = c["max_lr"] if c["max_lr"] is not None else list(self.base_lrs)
            return lr_scheduler.OneCycleLR(
                optimizer, max_lr=max_lr, total_steps=self.total_steps, pct_start=c["pct_start"],
                div_factor=c["div_factor"], final_div_factor=c["final_div_factor"],
                cycle_momentum=c["cycle_momentum"], anneal_strategy=c["anneal_strategy"],
            )
        warmup = c["warmup_steps"]
        if self.name == "constant":
            if warmup:  # LinearLR holds the learning rate once its ramp is over
                return lr_scheduler.LinearLR(optimizer, c["warmup_start_factor"], 1.0, total_iters=warmup)
            return lr_scheduler.ConstantLR(optimizer, factor=1.0, total_iters=0)
        if self.name == "step":
            main = lr_scheduler.MultiStepLR(optimizer, [m - warmup for m in c["milestones"]], gamma=c["gamma"])
        else:
            main = lr_scheduler.CosineAnnealingLR(optimizer, T_max=main_steps, eta_min=c["min_lr"])
        if not warmup:
            return main
        ramp = lr_scheduler.LinearLR(optimizer, c["warmup_start_factor"], 1.0, total_iters=warmup)
        return lr_scheduler.SequentialLR(optimizer, [ramp, main], milestones=[warmup])

    def step(self) -> None:
        """Advance one optimiser step (call it after ``optimizer.step()``)."""
        self.last_step += 1
        if self.last_step < self.total_steps:
            self._scheduler.step()

    def get_last_lr(self) -> list[float]:
        """The current learning rate of every parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    @property
    def lr(self) -> float:
        """The current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    def lr_at(self, step: int, group: int = 0) -> float:
        """The learning rate of parameter group ``group`` for optimiser step ``step`` (0-based).

        Computed by running the same torch scheduler on a throw-away optimiser, so it is
        exactly what the real optimiser gets; the optimiser itself is not touched.
        """
        step = _check_int("step", step, 0)
        if not 0 <= group < len(self.base_lrs):
            raise CnnlabError(f"group must be in [0, {len(self.base_lrs) - 1}], got {group}")
        step = min(step, self.total_steps - 1)
        if self._shadow is None:
            params = [torch.zeros(1, requires_grad=True) for _ in self.base_lrs]
            shadow_optimizer = torch.optim.SGD(
                [{"params": [p], "lr": lr} for p, lr in zip(params, self.base_lrs)], lr=self.base_lrs[0], momentum=0.9
            )
            self._shadow = (shadow_optimizer, self._build(shadow_optimizer))
            shadow_optimizer.step()  # no gradients: changes nothing, but tells torch the order is right
            self._curve = [array("d", [float(g["lr"])]) for g in shadow_optimizer.param_groups]
        shadow_optimizer, shadow = self._shadow
        while len(self._curve[0]) <= step:
            shadow.step()
            for values, g in zip(self._curve, shadow_optimizer.param_groups):
                values.append(float(g["lr"]))
        return self._curve[group][step]

    def state_dict(self) -> dict:
        """Everything needed to continue the schedule exactly (plain values, ``weights_only``-loadable)."""
        return {
            "name": self.name,
            "total_steps": self.total_steps,
            "config": dict(self.config),
            "base_lrs": list(self.base_lrs),
            "last_step": self.last_step,
            "scheduler": self._scheduler.state_dict(),
            "param_groups": [{k: g[k] for k in self._group_keys() if k in g} for g in self.optimizer.param_groups],
        }

    def _group_keys(self) -> tuple[str, ...]:
        keys = _GROUP_KEYS
        if self.name == "onecycle":
            keys += _ONECYCLE_GROUP_KEYS + (_MOMENTUM_GROUP_KEYS if self.config["cycle_momentum"] else ())
        return keys

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict`: restores the step and the optimiser's learning rates.

        The schedule must have been built with the same settings; otherwise the learning
        rates after the resume would follow a different curve, so this raises.
        """
        if not isinstance(state, dict) or not {"scheduler", "param_groups", "base_lrs", "last_step"} <= set(state):
            raise CnnlabError("not a schedule state: pass what LRSchedule.state_dict() returned")
        mine = {"name": self.name, "total_steps": self.total_steps, "config": self.config}
        theirs = {k: state.get(k) for k in mine}
        if isinstance(theirs["config"], dict):  # saved before anneal_strategy existed: the cosine
            theirs["config"] = {"anneal_strategy": "cos", **theirs["config"]}
        if mine != theirs:
            raise CnnlabError(
                f"the saved schedule {theirs} differs from this one {mine}; "
                "build the schedule with the saved settings to resume"
            )
        if len(state["param_groups"]) != len(self.optimizer.param_groups):
            raise CnnlabError(
                f"the saved schedule drove {len(state['param_groups'])} parameter groups, "
                f"this optimizer has {len(self.optimizer.param_groups)}"
            )
        state = copy.deepcopy(state)  # torch's load_state_dict keeps references to what it is given
        self._scheduler.load_state_dict(state["scheduler"])
        for group, saved in zip(self.optimizer.param_groups, state["param_groups"]):
            group.update({k: tuple(v) if k == "betas" else v for k, v in saved.items()})
        self.base_lrs = [float(lr) for lr in state["base_lrs"]]
        self.last_step = int(state["last_step"])
        self._shadow, self._curve = None, []

    def __repr__(self) -> str:
        settings = ", ".join(f"{k}={v}" for k, v in self.config.items() if v not in (None, [], 0) or k == "min_lr")
        return f"LRSchedule({self.name}, total_steps={self.total_steps}, {settings})"


def build_schedule(optimizer: torch.optim.Optimizer, name: str, total_steps: int, **settings) -> LRSchedule:
    """Build a per-iteration learning-rate schedule over ``total_steps`` optimiser steps.

    Lecture idea: learning-rate decay. ``name`` is one of

    - ``"step"``: multiply by ``gamma`` (divide by 10) at each of ``milestones``
      (optimiser steps; default 50% and 75% of training, the CIFAR ResNets' 32k/48k of
      64k iterations), as in AlexNet, VGG and ResNet;
    - ``"cosine"``: half a cosine from the optimiser's learning rate down to ``min_lr``
      (Loshchilov & Hutter 2017, SGDR without restarts);
    - ``"onecycle"``: Smith's one-cycle policy: up from ``max_lr / div_factor`` to
      ``max_lr`` (default: the optimiser's learning rate) over ``pct_start`` of the steps,
      then down to ``max_lr / (div_factor * final_div_factor)``, with momentum (or Adam's
      beta1) cycling 0.95 -> 0.85 -> 0.95 unless ``cycle_momentum=False``; both phases
      are half cosines, or straight lines with ``anneal_strategy="linear"`` (airbench94's
      triangle);
    - ``"constant"``: the optimiser's learning rate throughout.

    ``warmup_steps > 0`` puts a linear warm-up from ``warmup_start_factor`` x LR to the LR
    in front of the step, cosine and constant schedules (Goyal et al. 2017 for large
    batches; the ResNet paper warms ResNet-110 up at 0.01 before 0.1, i.e. factor 0.1).
    ``settings`` are :class:`LRSchedule`'s keyword arguments (``warmup_steps``,
    ``warmup_start_factor``, ``milestones``, ``gamma``, ``min_lr``, ``max_lr``,
    ``pct_start``, ``div_factor``, ``final_div_factor``, ``cycle_momentum``,
    ``anneal_strategy``). Invalid
    settings raise :class:`~cnnlab.errors.CnnlabError`.
    """
    return LRSchedule(optimizer, name, total_steps, **settings)


class ReduceOnPlateau:
    """Divide the learning rate by 10 when a validation metric stops improving (call once per epoch).

    Lecture idea: AlexNet "divided the learning rate by 10 when the validation error rate
    stopped improving", and the ResNet paper did the same when the error plateaued. A thin
    wrapper over ``torch.optim.lr_scheduler.ReduceLROnPlateau``: with ``mode="min"`` (a
    loss or error rate; ``"max"`` for accuracy), an epoch counts as an improvement when the
    metric beats the best so far by more than ``threshold`` (relative, or absolute with
    ``threshold_mode="abs"``); after more than ``patience`` epochs in a row without one
    (i.e. on the ``patience + 1``-th), every group's learning rate is multiplied by
    ``factor`` (not below ``min_lr``), then ``cooldown`` epochs pass before counting again.
    A NaN metric counts as no improvement.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float = 0.0,
    ):
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise CnnlabError(f"optimizer must be a torch.optim.Optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise CnnlabError(f"mode must be 'min' (loss, error) or 'max' (accuracy), got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise CnnlabError(f"threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        self.optimizer = optimizer
        self._scheduler = lr_scheduler.ReduceLROnPlateau(
            optimizer,
            mode=mode,
            factor=_check_float("factor", factor, 0.0, 1.0, low_open=True, high_open=True),
            patience=_check_int("patience", patience, 0),
            threshold=_check_float("threshold", threshold, 0.0, math.inf),
            threshold_mode=threshold_mode,
            cooldown=_check_int("cooldown", cooldown, 0),
            min_lr=_check_float("min_lr", min_lr, 0.0, math.inf),
        )

    def step(self, metric: float) -> bool:
        """Record one epoch's validation ``metric``; return whether the learning rate was reduced."""
        try:
            value = float(metric)
        except (TypeError, ValueError):
            raise CnnlabError(f"metric must be a number (or a 0-d tensor), got {metric!r}") from None
        before = self.get_last_lr()
        self._scheduler.step(value)
        return self.get_last_lr() != before

    @property
    def best(self) -> float:
        """The best metric seen so far (``inf``/``-inf`` before the first epoch)."""
        return float(self._scheduler.best)

    @property
    def num_bad_epochs(self) -> int:
        """Epochs in a row without improvement."""
        return int(self._scheduler.num_bad_epochs)

    def get_last_lr(self) -> list[float]:
        """The current learning rate of every parameter group."""
        return [float(g["lr"]) for g in self.optimizer.param_groups]

    def state_dict(self) -> dict:
        """The scheduler's state and the learning rates (plain values, ``weights_only``-loadable)."""
        return {"scheduler": self._scheduler.state_dict(), "lrs": self.get_last_lr()}

    def load_state_dict(self, state: dict) -> None:
        """Continue from :meth:`state_dict` (also restores the optimiser's learning rates)."""
        if not isinstance(state, dict) or not {"scheduler", "lrs"} <= set(state):
            raise CnnlabError("not a plateau schedule state: pass what ReduceOnPlateau.state_dict() returned")
        if len(state["lrs"]) != len(self.optimizer.param_groups):
            raise CnnlabError(
                f"the saved plateau schedule drove {len(state['lrs'])} parameter groups, "
                f"this optimizer has {len(self.optimizer.param_groups)}"
            )
        self._scheduler.load_state_dict(copy.deepcopy(state["scheduler"]))
        for group, lr in zip(self.optimizer.param_groups, state["lrs"]):
            group["lr"] = lr


def schedule_from_config(optimizer: torch.optim.Optimizer, config, steps_per_epoch: int
                         ) -> tuple[LRSchedule, ReduceOnPlateau | None]:
    """The per-step schedule (and the per-epoch plateau decay, or ``None``) that a
    :class:`~cnnlab.train.TrainConfig` asks for, with its epochs turned into steps."""
    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    if config.schedule == "plateau":
        # Per-epoch plateau decay on the val loss, behind an optional per-step warm-up.
        schedule = build_schedule(optimizer, "constant", total, warmup_steps=warmup,
                                  warmup_start_factor=config.warmup_start_factor)
        plateau = ReduceOnPlateau(optimizer, mode="min", factor=config.gamma, patience=config.plateau_patience,
                                  threshold=config.plateau_threshold, min_lr=config.min_lr)
        return schedule, plateau
    milestones = [int(round(m * steps_per_epoch)) for m in config.milestones] if config.schedule == "step" else None
    schedule = build_schedule(
        optimizer, config.schedule, total, warmup_steps=warmup, warmup_start_factor=config.warmup_start_factor,
        milestones=milestones or None, gamma=config.gamma, min_lr=config.min_lr, pct_start=config.pct_start,
        div_factor=config.div_factor, final_div_factor=config.final_div_factor, cycle_momentum=config.cycle_momentum,
        anneal_strategy=config.anneal_strategy)
    return schedule, None
