"""``cnnlab tune``: lecture 7's coarse-to-fine hyper-parameter search, with Optuna as the engine.

The lecture's recipe, steps 4-6: a coarse search over wide ranges with short runs (1-5
epochs), then a fine search on the ranges the best coarse trials narrowed down to, with
longer runs; random sampling rather than a grid (Bergstra & Bengio 2012: with the same
budget, random search tries more values of the hyper-parameter that matters), learning
rate and weight decay on a log scale, hopeless trials stopped early (median pruning).

The study lives in an Optuna storage (SQLite in the output folder unless ``storage`` names
another database), so a killed search resumes where it stopped and several ``cnnlab
tune`` processes on the same storage share the trials; a trial whose process died is
failed by Optuna's heartbeat and its budget slot is retried. Every trial is a real
:class:`Trainer` run, scored by its best validation accuracy (never the test split).

A search space is a list of ``key=kind:low:high`` (``log``, ``float`` or ``int``) or
``key=choice:a,b,c``; by default ``lr`` and ``weight_decay``, log-uniform over a factor of
10 either side of the recipe's values.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..atomic import atomic_write_text
from ..errors import CnnlabError
from ..figures import save_figure
from ..runs import TrainConfig, field_names, to_yaml
from .callbacks import Callback
from .run import writable_folder
from .trainer import Trainer

__all__ = ["Dimension", "default_space", "parse_space", "run_search", "narrow"]

KINDS = ("log", "float", "int", "choice")


@dataclass(frozen=True)
class Dimension:
    """One hyper-parameter's range: ``kind`` log | float | int (``low``..``high``) or choice (``choices``)."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def suggest(self, trial):
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high))
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log")

    def spec(self) -> str:
        if self.kind == "choice":
            return f"{self.key}=choice:{','.join(map(str, self.choices))}"
        return f"{self.key}={self.kind}:{self.low:g}:{self.high:g}"


def parse_space(items: list[str]) -> list[Dimension]:
    """``["lr=log:1e-3:1", "dropout=float:0:0.5", "batch_size=choice:64,128"]`` -> dimensions."""
    import yaml

    dimensions = []
    keys = set(field_names())
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        kind, _, rest = text.partition(":")
        if not sep or kind not in KINDS or not rest:
            raise CnnlabError(f"a search dimension is key=log:LOW:HIGH, key=float:LOW:HIGH, key=int:LOW:HIGH or "
                              f"key=choice:A,B,...; got {item!r}")
        if key not in keys:
            raise CnnlabError(f"{key!r} in {item!r} is not a recipe key")
        if kind == "choice":
            choices = tuple(yaml.safe_load(v) for v in rest.split(","))
            if len(choices) < 2:
                raise CnnlabError(f"a choice needs at least two values: {item!r}")
            dimensions.append(Dimension(key, kind, choices=choices))
            continue
        try:
            low, high = (float(v) for v in rest.split(":"))
        except ValueError:
            raise CnnlabError(f"{item!r}: LOW and HIGH must be two numbers") from None
        if not low < high:
            raise CnnlabError(f"{item!r}: the range is empty or inverted (LOW must be below HIGH)")
        if kind == "log" and low <= 0:
            raise CnnlabError(f"{item!r}: a log range must be positive")
        dimensions.append(Dimension(key, kind, low, high))
    if len({d.key for d in dimensions}) != len(dimensions):
        raise CnnlabError("a key appears twice in the search space")
    return dimensions


def default_space(config: TrainConfig) -> list[Dimension]:
    """The lecture's default: learning rate and weight decay, log-uniform, x/10 to x10 of the recipe's."""
    decay = config.weight_decay or 5e-4
    return [Dimension("lr", "log", config.lr / 10, config.lr * 10),
            Dimension("weight_decay", "log", decay / 10, decay * 10)]


def narrow(space: list[Dimension], best: list[dict], margin: float = 0.25) -> list[Dimension]:
    """The fine stage's space: each range shrunk to what the best coarse trials used, widened
    by ``margin`` (on the log scale for log dimensions); choices keep the values they used."""
    narrowed = []
    for dim in space:
        values = [trial[dim.key] for trial in best if dim.key in trial]
        if not values:
            narrowed.append(dim)
        elif dim.kind == "choice":
            kept = tuple(c for c in dim.choices if c in values)
            narrowed.append(dim if len(kept) < 2 else Dimension(dim.key, "choice", choices=kept))
        else:
            scale = math.log if dim.kind == "log" else (lambda v: v)
            unscale = math.exp if dim.kind == "log" else (lambda v: v)
            lo, hi = scale(min(values)), scale(max(values))
            pad = margin * max(hi - lo, (scale(dim.high) - scale(dim.low)) * 0.1)
            low, high = max(dim.low, unscale(lo - pad)), min(dim.high, unscale(hi + pad))
            if dim.kind == "int":
                low, high = math.floor(low), math.ceil(high)
            narrowed.append(Dimension(dim.key, dim.kind, low, high) if low < high else dim)
    return narrowed


class _Report(Callback):
    """Reports each epoch's validation accuracy to Optuna and stops a trial the pruner gives up on."""

    def __init__(self, trial):
        self.trial, self.pruned = trial, False

    def on_epoch_end(self, trainer, row: dict) -> None:
        self.trial.report(row["val_top1"], trainer.epoch)
        if self.trial.should_prune():
            self.pruned = True
            raise KeyboardInterrupt


def _objective(config: TrainConfig, space: list[Dimension], out: Path, stage: str):
    import optuna

    def objective(trial) -> float:
        values = {dim.key: dim.suggest(trial) for dim in space}
        trial_config = config.updated(values, where=f"trial {trial.number}")
        folder = out / "trials" / f"{stage}-{trial.number:04d}"
        report = _Report(trial)
        trainer = Trainer(trial_config, folder, overwrite=True, quiet=True, callbacks=[report],
                          console=Console(file=io.StringIO()))
        try:
            trainer.fit()
        except KeyboardInterrupt:
            if not report.pruned:
                raise
        finally:
            for weights in folder.glob("*.safetensors"):  # a search keeps curves and configs, not weights
                weights.unlink()
            for state in folder.glob("*.state.pt"):
                state.unlink()
        if report.pruned:
            raise optuna.TrialPruned()
        return float(trainer.best["val_top1"])

    return objective


def _study(name: str, storage: str, sampler: str, seed: int):
    import optuna

    samplers = {"random": optuna.samplers.RandomSampler, "tpe": optuna.samplers.TPESampler}
    with warnings.catch_warnings():  # the heartbeat is marked experimental; it is what makes resuming safe
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        rdb = optuna.storages.RDBStorage(storage, heartbeat_interval=30, grace_period=90) \
            if storage.startswith(("sqlite", "postgresql", "mysql")) else storage
    return optuna.create_study(study_name=name, storage=rdb, direction="maximize", load_if_exists=True,
                               sampler=samplers[sampler](seed=seed),
                               pruner=optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=1))


def _run_stage(config, space, out, storage, stage, trials, sampler, seed, log) -> list:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = _study(f"{config.recipe}-{stage}", storage, sampler, seed)
    counted = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len([t for t in study.trials if t.state in counted])
    if done < trials:
        log(f"{stage} stage: {trials - done} of {trials} trials to run, {config.epochs} epoch(s) each, over "
            + "; ".join(d.spec() for d in space))
        study.optimize(_objective(config, space, out, stage), n_trials=trials - done,
                       callbacks=[optuna.study.MaxTrialsCallback(trials, states=counted)])
    else:
        log(f"{stage} stage: its {trials} trials are done (in the storage)")
    return study.trials


def run_search(config: TrainConfig, out: str | Path, *, trials: int = 16, fine_trials: int = 8,
               coarse_epochs: int = 2, fine_epochs: int | None = None, space: list[Dimension] | None = None,
               storage: str | None = None, sampler: str = "random", seed: int = 0, log=print) -> dict:
    """The coarse and the fine stage; writes ``results.csv``, ``tune.json``, ``scatter.png`` and
    ``best.yaml`` (a recipe) into ``out``; returns the summary."""
    if config.val_fraction <= 0:
        raise CnnlabError("tuning scores trials on the validation split, and this recipe holds none out: "
                          "set val_fraction (e.g. --set val_fraction=0.1); the test split is never used")
    if trials < 1 or fine_trials < 0 or coarse_epochs < 1:
        raise CnnlabError("trials and coarse epochs must be at least 1, fine trials 0 or more")
    if sampler not in ("random", "tpe"):
        raise CnnlabError(f"sampler must be random or tpe, got {sampler!r}")
    space = space or default_space(config)
    out = writable_folder(out, "the search")
    storage = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    try:
        coarse = _run_stage(dataclasses.replace(config, epochs=coarse_epochs, milestones=[]), space, out, storage,
                            "coarse", trials, sampler, seed, log)
    except Exception as error:  # a storage that cannot be opened or written: one line
        if type(error).__module__.split(".")[0] in ("optuna", "sqlalchemy"):
            raise CnnlabError(f"the study storage {storage!r} cannot be used: {str(error).splitlines()[0]}") from None
        raise
    complete = sorted(_finished_of(coarse), key=lambda t: -t.value)
    if not complete:
        raise CnnlabError("no coarse trial finished: nothing to narrow down")
    best_coarse = [t.params for t in complete[: max(2, len(complete) // 4)]]
    fine_space = narrow(space, best_coarse)
    fine = []
    if fine_trials:
        fine_config = dataclasses.replace(config, epochs=fine_epochs or config.epochs, milestones=[])
        fine = _run_stage(fine_config, fine_space, out, storage, "fine", fine_trials, sampler, seed + 1, log)
    # A pruned trial's score is its last reported validation accuracy (drawn apart in the plots).
    rows = [{"stage": stage, "trial": t.number, "state": t.state.name.lower(),
             "val_top1": t.value if t.value is not None else
             (t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else None), **t.params}
            for stage, trials_of in (("coarse", coarse), ("fine", fine)) for t in trials_of]
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: r["val_top1"])
    best_config = config.updated({d.key: best[d.key] for d in space if d.key in best}, where="best trial")
    best_config = dataclasses.replace(best_config, recipe=f"{config.recipe}-tuned",
                                      description=f"{config.recipe} with the best of {len(rows)} tuning trials "
                                                  f"(val top-1 {best['val_top1']:.2f}%)")
    atomic_write_text(out / "best.yaml", to_yaml(best_config))
    _write_csv(out / "results.csv", rows, [d.key for d in space])
    _plot(out / "scatter.png", rows, space)
    summary = {"recipe": config.recipe, "storage": storage, "space": [d.spec() for d in space],
               "fine_space": [d.spec() for d in fine_space], "best": best, "trials": rows,
               "files": {"best": str(out / "best.yaml"), "results": str(out / "results.csv"),
                         "scatter": str(out / "scatter.png")}}
    atomic_write_text(out / "tune.json", json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def _finished_of(trials) -> list:
    return [t for t in trials if t.state.name == "COMPLETE"]


def _write_csv(path: Path, rows: list[dict], keys: list[str]) -> None:
    import csv

    columns = ["stage", "trial", "state", "val_top1", *keys]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _plot(path: Path, rows: list[dict], space: list[Dimension]) -> None:
    """The lecture's scatter plots: validation accuracy against each hyper-parameter."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    numeric = [d for d in space if d.kind != "choice"] or space[:1]
    figure = Figure(figsize=(4.5 * len(numeric), 3.8), dpi=100)
    FigureCanvasAgg(figure)
    for index, dim in enumerate(numeric, 1):
        axes = figure.add_subplot(1, len(numeric), index)
        for stage, colour in (("coarse", "tab:blue"), ("fine", "tab:orange")):
            for state, marker, label in (("complete", "o", stage), ("pruned", "x", f"{stage}, pruned")):
                points = [(r[dim.key], r["val_top1"]) for r in rows if r["stage"] == stage and r["state"] == state
                          and dim.key in r and r["val_top1"] is not None]
                if points:
                    axes.scatter(*zip(*points), s=18, color=colour, marker=marker, label=label,
                                 alpha=1.0 if state == "complete" else 0.5)
        if dim.kind == "log":
            axes.set_xscale("log")
        axes.set_xlabel(dim.key)
        axes.set_ylabel("validation top-1 (%)")  # pruned: the last reported
        axes.legend()
    figure.tight_layout()
    save_figure(figure, path)

