"""Random search against grid search with the same budget (Bergstra & Bengio 2012; lecture 7).

The problem: LeNet-5 on scikit-learn's digits, a few epochs per trial (``lenet5-digits``
with ``--epochs``), two hyper-parameters: the learning rate, which matters a great deal,
and the weight decay, which over so short a run hardly matters at all. Both searches get
``--budget`` trials (a square number: the grid is sqrt x sqrt) over the same log ranges:

- grid: sqrt(budget) learning rates x sqrt(budget) weight decays, so only sqrt(budget)
  distinct learning rates are ever tried;
- random: ``--budget`` independent log-uniform draws of both (``--seeds`` searches, each
  with its own sampler seed), so every trial tries a new learning rate.

A reference sweep of the learning rate alone (``--reference`` values, weight decay fixed at
the geometric middle of its range) gives the best value reachable; each search is scored by
how close its best trial gets to it. Every trial is a real ``Trainer`` run, scored by its
best validation accuracy.

    python benchmarks/random_vs_grid.py [--budget 9] [--seeds 5] [--epochs 2] [--reference 15] [--json OUT]
"""
from __future__ import annotations

import argparse
import io
import json
import math
import statistics
import sys
import tempfile
from pathlib import Path

import optuna
from rich.console import Console

from cnnlab.train import Trainer, load_recipe

LR_RANGE = (1e-3, 1.0)
DECAY_RANGE = (1e-6, 1e-3)


def score(config, scratch: Path, lr: float, weight_decay: float) -> float:
    trainer = Trainer(config.updated({"lr": lr, "weight_decay": weight_decay}), scratch / "trial", overwrite=True,
                      quiet=True, console=Console(file=io.StringIO()))
    trainer.fit()
    return float(trainer.best["val_top1"])


def search(config, scratch: Path, sampler, budget: int) -> list[tuple[float, float, float]]:
    study = optuna.create_study(direction="maximize", sampler=sampler)
    trials = []

    def objective(trial):
        lr = trial.suggest_float("lr", *LR_RANGE, log=True)
        decay = trial.suggest_float("weight_decay", *DECAY_RANGE, log=True)
        value = score(config, scratch, lr, decay)
        trials.append((lr, decay, value))
        return value

    study.optimize(objective, n_trials=budget)
    return trials


def log_grid(low: float, high: float, count: int) -> list[float]:
    inner = [math.exp(math.log(low) + (math.log(high) - math.log(low)) * i / (count - 1)) for i in range(1, count - 1)]
    return [low, *inner, high]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=int, default=9)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--reference", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    side = math.isqrt(args.budget)
    if side * side != args.budget or side < 2:
        parser.error("--budget must be a square number of at least 4")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = load_recipe("lenet5-digits", device="cpu", epochs=args.epochs, cpu_threads=1)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        middle_decay = math.sqrt(DECAY_RANGE[0] * DECAY_RANGE[1])
        reference = [(lr, score(config, scratch, lr, middle_decay)) for lr in log_grid(*LR_RANGE, args.reference)]
        best_reference = max(value for _, value in reference)
        grid_space = {"lr": log_grid(*LR_RANGE, side), "weight_decay": log_grid(*DECAY_RANGE, side)}
        grid = search(config, scratch, optuna.samplers.GridSampler(grid_space), args.budget)
        randoms = [search(config, scratch, optuna.samplers.RandomSampler(seed=seed), args.budget)
                   for seed in range(args.seeds)]

    def best(trials):
        return max(trials, key=lambda t: t[2])

    print(f"LeNet-5 on the digits, {args.epochs} epochs a trial; lr in {LR_RANGE} and weight decay in {DECAY_RANGE}, "
          f"both log-uniform; budget {args.budget} trials")
    print(f"reference: {args.reference} learning rates alone, weight decay {middle_decay:.2g}: best validation "
          f"top-1 {best_reference:.2f}% at lr {max(reference, key=lambda r: r[1])[0]:.3g}")
    g = best(grid)
    print(f"grid ({side} x {side}: {side} distinct learning rates): best {g[2]:.2f}% at lr {g[0]:.3g}, weight decay "
          f"{g[1]:.2g}; {best_reference - g[2]:.2f} points below the reference")
    random_best = [best(trials) for trials in randoms]
    gaps = [best_reference - b[2] for b in random_best]
    print(f"random ({args.budget} distinct learning rates), {args.seeds} seeds: best "
          + ", ".join(f"{b[2]:.2f}%" for b in random_best)
          + f"; median {statistics.median(b[2] for b in random_best):.2f}%, median gap to the reference "
            f"{statistics.median(gaps):.2f} points")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "budget": args.budget, "epochs": args.epochs, "reference": reference, "grid": grid, "random": randoms,
            "best_reference": best_reference, "grid_best": g[2], "random_best": [b[2] for b in random_best]},
            indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
