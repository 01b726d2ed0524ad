"""``cnnlab nas``: neural architecture search, small but real (Zoph & Le 2017; Zoph et al. 2018).

Two searchers share one search space and one budget of children: random search (every
token drawn uniformly; a strong baseline, as the later NAS literature found) and the
REINFORCE controller of :mod:`cnnlab.nas.controller`. Every child is a model of the zoo
(``nasnet_cifar`` or ``nas_macro`` with the child's ``model_args``) trained by the
project's :class:`~cnnlab.train.Trainer` with one recipe, derived from the data as
``cnnlab train --data`` derives it, the same epochs and the same seed for every child;
its best validation accuracy is its reward (the test split is never used).

Everything is persisted as it happens, so a killed search resumes where it stopped:
``results.jsonl`` gets one line per finished child (its tokens, architecture, accuracy);
``controller.pt`` holds the controller, its optimiser, baseline, random generator and the
architecture it is waiting on; a child interrupted mid-training resumes from its ``last``
checkpoint. At the end: ``results.csv``, ``progress.png`` (best accuracy against the number
of children, per searcher), ``best_cell.png`` (the best architecture drawn),
``best.yaml`` (the best child as a recipe) and ``nas.json``. :func:`retrain` trains the
best child longer, optionally beside a baseline model of similar size.
"""
from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import torch
from rich.console import Console

from ..atomic import atomic_write, atomic_write_text
from ..errors import CnnlabError
from ..registry import create_model
from ..runs import LAST, RUNTIME_KEYS, TrainConfig, checkpoint_tags, to_yaml
from ..train import Trainer
from ..train.defaults import derive_config
from ..train.run import writable_folder
from .controller import Controller, Reinforce
from .data import prepare_subset
from .plots import plot_architecture, plot_progress
from .space import SearchSpace

__all__ = ["SEARCHERS", "child_config", "read_results", "retrain", "run_search"]

SEARCHERS = ("random", "controller")
RESULTS, SETTINGS, CONTROLLER_STATE, SUMMARY = "results.jsonl", "search.json", "controller.pt", "nas.json"
# Settings a resumed search may change: how many children, which searchers run, where it computes.
_RESUMABLE = ("budget", "searcher")


def child_config(model: str, data: str, train_data: str, epochs: int, seed: int, overrides: dict) -> TrainConfig:
    """The recipe every child (and a retrained architecture) trains with: derived from ``data``
    as ``cnnlab train --data`` derives one (augmentation, SGD with momentum, cosine schedule),
    with ``overrides``, then pointed at ``train_data`` (the subset, when there is one)."""
    _check_overrides(overrides)
    config, _ = derive_config({"data": data, "model": model, "epochs": epochs, "seed": seed, **overrides})
    return dataclasses.replace(config, data=train_data, recipe="nas-child",
                               description=f"a child of cnnlab nas on {data}")


def _check_overrides(overrides: dict) -> None:
    taken = [key for key in ("model", "model_args", "data", "epochs", "seed") if key in overrides]
    if taken:
        raise CnnlabError(f"the search sets {', '.join(taken)} itself; use --space, --data, --epochs and --seed")


def read_results(path: Path) -> dict[tuple[str, int], dict]:
    """The finished children, by ``(searcher, index)``; a last line cut short by a kill is ignored."""
    records = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when the search was killed
            records[record["searcher"], int(record["child"])] = record
    return records


def _drop_cut_line(path: Path) -> None:
    """Remove a last line that a kill cut short, so the next record starts on a line of its own."""
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        if text and not text.endswith("\n"):
            atomic_write_text(path, text[: text.rfind("\n") + 1])


def _append(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
        handle.flush()
        os.fsync(handle.fileno())  # a finished child is on disk before the controller learns from it


def _quiet() -> Console:
    return Console(file=io.StringIO())


def _drop_weights(folder: Path) -> None:
    # A search keeps each child's curves, config and report, not its weights.
    for pattern in ("*.safetensors", "*.state.pt"):
        for path in folder.glob(pattern):
            path.unlink()


def train_child(config: TrainConfig, folder: Path, keep_weights: bool = False) -> dict:
    """Train ``config`` in ``folder`` with the Trainer: a finished run is read back, an interrupted one
    resumed from its ``last`` checkpoint. Returns the run's report."""
    report_path = folder / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text(encoding="utf-8"))
    else:
        if LAST in checkpoint_tags(folder):
            trainer = Trainer.resume(folder, quiet=True, console=_quiet())
        else:
            trainer = Trainer(config, folder, overwrite=True, quiet=True, console=_quiet())
        report = trainer.fit()
    if not keep_weights:
        _drop_weights(folder)
    return report


class ControllerSearch:
    """The controller's side of a search, persisted after every change in ``controller.pt``.

    Child ``k`` is sampled once (and saved as ``pending`` before it trains, so a kill
    retrains the same architecture), then learned from once, after its result is in
    ``results.jsonl``. A search killed between the two learns on resume from the logged
    result, without training the child again.
    """

    def __init__(self, space: SearchSpace, path: Path, seed: int, lr: float):
        self.path = path
        self.controller = Controller(space.sizes, generator=torch.Generator().manual_seed(seed))
        self.reinforce = Reinforce(self.controller, lr=lr)
        self.generator = torch.Generator().manual_seed(seed)
        self.step, self.pending, self.updates = 0, None, []
        if path.is_file():
            state = torch.load(path, weights_only=True)
            if state["sizes"] != space.sizes:
                raise CnnlabError(f"{path} holds a controller for another search space; use another --out")
            self.reinforce.load_state_dict(state["reinforce"])
            self.generator.set_state(state["generator"])
            self.step, self.pending, self.updates = state["step"], state["pending"], state["updates"]

    def _save(self) -> None:
        state = {"sizes": self.controller.sizes, "reinforce": self.reinforce.state_dict(),
                 "generator": self.generator.get_state(), "step": self.step, "pending": self.pending,
                 "updates": self.updates}
        atomic_write(self.path, lambda temporary: torch.save(state, temporary))

    def propose(self, index: int) -> list[int]:
        if index != self.step:
            raise CnnlabError(f"{self.path} has learned from {self.step} children but results.jsonl says child "
                              f"{index} is next; the two files do not belong together (use another --out)")
        if self.pending is None:
            self.pending = self.controller.sample(self.generator)
            self._save()
        return list(self.pending)

    def learn(self, index: int, tokens: list[int], reward: float) -> None:
        if list(tokens) != list(self.pending):
            raise CnnlabError(f"results.jsonl holds controller child {index} with other tokens than {self.path} "
                              "sampled; the two files do not belong together (use another --out)")
        info = self.reinforce.update(tokens, reward)
        self.updates.append({"child": index, "reward": reward, **info})
        self.step, self.pending = index + 1, None
        self._save()

    def log_prob(self, tokens: list[int]) -> float:
        """How likely the policy found the architecture when it sampled it (log-probability)."""
        with torch.no_grad():
            return float(self.controller.log_prob(tokens))


def _check_settings(out: Path, settings: dict) -> None:
    """A search folder holds one search: resuming it with other settings (space, data, epochs,
    seed, recipe) would mix children trained differently, so it is refused."""
    path = out / SETTINGS
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        changed = [key for key in settings if key not in _RESUMABLE and saved.get(key) != settings[key]]
        if changed:
            raise CnnlabError(f"{out} holds a search with other settings ({', '.join(changed)}: "
                              + "; ".join(f"{saved.get(k)!r} there, {settings[k]!r} now" for k in changed)
                              + "); resume it with the same ones, or use another --out")
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def run_search(space: SearchSpace, data: str, out: str | Path, *, budget: int, epochs: int = 1,
               searcher: str = "both", seed: int = 0, subset: int | None = None, overrides: dict | None = None,
               controller_lr: float = 0.01, log=print) -> dict:
    """Run (or resume) a search of ``budget`` children per searcher; returns the summary (``nas.json``)."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise CnnlabError(f"--budget is a number of children per searcher, at least 1, got {budget!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise CnnlabError(f"--epochs must be at least 1, got {epochs!r}")
    if searcher not in (*SEARCHERS, "both"):
        raise CnnlabError(f"--searcher must be random, controller or both, got {searcher!r}")
    overrides = dict(overrides or {})
    _check_overrides(overrides)
    out = Path(out)
    writable_folder(out, "the search")
    # Runtime keys (device, threads...) say where the children compute, not what: a resumed
    # search may change them.
    recipe = {key: value for key, value in overrides.items() if key not in RUNTIME_KEYS}
    settings = {"space": space.spec(), "data": str(data), "subset": subset, "epochs": epochs, "seed": seed,
                "overrides": recipe, "controller_lr": controller_lr, "budget": budget, "searcher": searcher}
    _check_settings(out, settings)
    train_data = prepare_subset(data, subset, seed, out / "data")
    base = child_config(space.model, str(data), train_data, epochs, seed, overrides)
    if base.val_fraction <= 0 and subset is None:
        raise CnnlabError("the reward is the validation accuracy, and this recipe holds no validation split out: "
                          "drop val_fraction=0 or use --subset; the test split is never used")
    searchers = SEARCHERS if searcher == "both" else (searcher,)
    _drop_cut_line(out / RESULTS)
    records = read_results(out / RESULTS)
    controller = ControllerSearch(space, out / CONTROLLER_STATE, seed, controller_lr) \
        if "controller" in searchers else None
    by_architecture = {json.dumps(r["model_args"], sort_keys=True): r for r in records.values()}
    log(f"searching the {space.name} space ({space.size():.3g} architectures) with {' and '.join(searchers)}: "
        f"{budget} children each, {epochs} epoch(s) on {train_data}; writing {out}")
    for index in range(budget):
        for name in searchers:
            if name == "controller" and controller.step > index:
                continue
            if name == "random" and (name, index) in records:
                continue
            if name == "random":
                tokens = space.sample(np.random.default_rng([seed, index]))
            else:
                tokens = controller.propose(index)
            record = records.get((name, index))
            if record is None:
                record = _run_child(space, base, out, name, index, tokens, by_architecture,
                                    controller.log_prob(tokens) if name == "controller" else None)
                _append(out / RESULTS, record)
                records[name, index] = record
                by_architecture.setdefault(json.dumps(record["model_args"], sort_keys=True), record)
                best = max(r["val_top1"] for (s, _), r in records.items() if s == name)
                reused = f" (the same as {record['reused']}: not trained again)" if record["reused"] else ""
                log(f"{name} {index + 1}/{budget}: val {record['val_top1']:.2f}% (best {best:.2f}%), "
                    f"{record['params']:,} params, {record['seconds']:.0f} s{reused}: {record['description']}")
            if name == "controller":
                controller.learn(index, record["tokens"], record["val_top1"] / 100)
    return summarize(space, out, records, settings, base, controller)


def _run_child(space, base, out, name, index, tokens, by_architecture, log_prob) -> dict:
    model_args = space.model_args(tokens)
    key = json.dumps(model_args, sort_keys=True)
    folder = f"children/{name}-{index:04d}"
    record = {"searcher": name, "child": index, "tokens": tokens, "model_args": model_args,
              "description": space.describe(tokens), "folder": folder, "reused": None,
              "policy_log_prob": log_prob}
    earlier = by_architecture.get(key)
    if earlier is not None:
        # The same architecture trained with the same recipe and seed: the same result. It still
        # counts as a child (the searcher spent a sample on it) but costs no training.
        record.update(val_top1=earlier["val_top1"], params=earlier["params"], seconds=0.0,
                      folder=earlier["folder"], reused=f"{earlier['searcher']}-{earlier['child']:04d}")
        return record
    config = base.updated({"model_args": model_args}, where=f"child {name}-{index}")
    report = train_child(config, out / folder)
    if report["best_val_top1"] is None:
        raise CnnlabError(f"child {folder} has no validation accuracy; the data set needs a validation split")
    record.update(val_top1=float(report["best_val_top1"]), params=int(report["parameters"]),
                  seconds=float(report["wall_seconds"]))
    return record


def summarize(space: SearchSpace, out: Path, records: dict, settings: dict, base: TrainConfig,
              controller: ControllerSearch | None) -> dict:
    """Write ``results.csv``, ``progress.png``, ``best_cell.png``, ``best.yaml`` and ``nas.json``."""
    import csv

    # The children within the budget asked for now: a search resumed with a smaller budget than
    # it once ran is summarised at that budget, so both searchers compare at the same count.
    rows = sorted((r for r in records.values() if r["child"] < settings["budget"]),
                  key=lambda r: (r["searcher"], r["child"]))
    if not rows:
        raise CnnlabError("no child has finished yet")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["searcher", "child", "val_top1", "params", "seconds", "reused",
                                                "policy_log_prob", "description"], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "results.csv", buffer.getvalue())
    best = max(rows, key=lambda r: (r["val_top1"], -r["params"]))
    per_searcher = {}
    for name in SEARCHERS:
        mine = [r for r in rows if r["searcher"] == name]
        if mine:
            top = max(mine, key=lambda r: (r["val_top1"], -r["params"]))
            per_searcher[name] = {"children": len(mine), "best_val_top1": top["val_top1"], "best_child": top["child"],
                                  "mean_val_top1": sum(r["val_top1"] for r in mine) / len(mine),
                                  "trained": sum(r["reused"] is None for r in mine), "best": top["description"]}
    plot_progress(rows, out / "progress.png", title=f"{space.name} space, {settings['epochs']} epoch(s) per child")
    plot_architecture(space.name, best["model_args"], out / "best_cell.png",
                      title=f"best child: {best['searcher']} child {best['child'] + 1} ({best['folder']}), "
                            f"val {best['val_top1']:.2f}%")
    recipe = dataclasses.replace(base.updated({"model_args": best["model_args"]}, where="best child"),
                                 recipe="nas-best", description=f"the best child of cnnlab nas in {out} "
                                                                f"(val top-1 {best['val_top1']:.2f}%)")
    atomic_write_text(out / "best.yaml", to_yaml(recipe))
    summary = {"settings": settings, "model": space.model, "space_size": space.size(), "best": best,
               "searchers": per_searcher,
               "controller_updates": controller.updates if controller is not None else None,
               "files": {name: str(out / name) for name in ("results.csv", "progress.png", "best_cell.png",
                                                             "best.yaml", RESULTS)}}
    atomic_write_text(out / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary


def _params(model: str, model_args: dict) -> int:
    with torch.device("meta"):
        return sum(p.numel() for p in create_model(model, **model_args).parameters())


def matching_filters(model_args: dict, target: int) -> int:
    """The first-stage width F at which a cell network has the parameter count closest to ``target``."""
    return min(range(4, 129, 2), key=lambda f: abs(_params("nasnet_cifar", {**model_args, "filters": f}) - target))


def retrain(out: str | Path, *, epochs: int, data: str | None = None, subset: int | None = None,
            overrides: dict | None = None, filters: int | None = None, cells: int | None = None,
            baseline: str | None = None, log=print) -> dict:
    """Train the best child of the search in ``out`` for ``epochs`` (by default on the search's data
    set, all of its training split), keeping its weights; with ``baseline`` (a model name, e.g.
    resnet20) also train that model with the same recipe, the cell network's width then chosen to
    match the baseline's parameter count unless ``filters`` is given. Returns both reports."""
    out = Path(out)
    if not (out / SUMMARY).is_file():
        raise CnnlabError(f"{out} holds no finished search ({SUMMARY}); run `cnnlab nas --out {out}` first")
    summary = json.loads((out / SUMMARY).read_text(encoding="utf-8"))
    settings, best = summary["settings"], summary["best"]
    model, model_args = summary["model"], dict(best["model_args"])
    data = data or settings["data"]
    seed, overrides = settings["seed"], {**settings["overrides"], **(overrides or {})}
    if model == "nasnet_cifar":
        if cells is not None:
            model_args["num_normal_cells"] = cells
        if filters is not None:
            model_args["filters"] = filters
        elif baseline is not None:
            model_args["filters"] = matching_filters(model_args, _params(baseline, {}))
    elif filters is not None or cells is not None:
        raise CnnlabError("--filters and --cells size the cell network; a macro child's widths are its own")
    train_data = prepare_subset(data, subset, seed, out / "data")
    tag = f"retrain-e{epochs}" + (f"-sub{subset}" if subset else "")
    if model == "nasnet_cifar":
        tag += f"-n{model_args['num_normal_cells']}-f{model_args['filters']}"
    runs = [(model, model_args, out / tag)]
    if baseline is not None:
        runs.append((baseline, {}, out / f"{tag}-{baseline}"))
    reports = {}
    for name, args, folder in runs:
        config = child_config(name, data, train_data, epochs, seed, overrides)
        config = dataclasses.replace(config.updated({"model_args": args}, where="retrain"), recipe="nas-retrain")
        _check_same_run(folder, config)
        log(f"training {name} ({_params(name, args):,} params) for {epochs} epochs on {train_data}: {folder}")
        report = train_child(config, folder, keep_weights=True)
        reports[name] = {"folder": str(folder), "params": report["parameters"], "test_top1": report["test_top1"],
                         "test_split": report["test_split"], "best_val_top1": report["best_val_top1"],
                         "wall_seconds": report["wall_seconds"], "model_args": args}
        log(f"{name}: test top-1 {report['test_top1']:.2f}% ({report['test_split']}), best val "
            f"{report['best_val_top1']:.2f}%, {report['parameters']:,} params, {report['wall_seconds']:.0f} s")
    result = {"search": str(out), "epochs": epochs, "data": train_data, "best_child": best, "runs": reports}
    atomic_write_text(out / f"{tag}.json", json.dumps(result, indent=2) + "\n")
    return result


def _check_same_run(folder: Path, config: TrainConfig) -> None:
    """A retraining folder that holds a run of other settings is not silently reused."""
    saved_path = folder / "config.yaml"
    if not saved_path.is_file():
        return
    import yaml

    saved = yaml.safe_load(saved_path.read_text(encoding="utf-8")) or {}
    mine = config.to_dict()
    ignored = {"mean", "std", *RUNTIME_KEYS}
    changed = [k for k in mine if k not in ignored and saved.get(k) != mine[k]]
    if changed:
        raise CnnlabError(f"{folder} holds a run with other settings ({', '.join(changed)}); remove it to retrain")

