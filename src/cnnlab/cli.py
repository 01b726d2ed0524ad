"""The ``cnnlab`` command line: wires the library's functions to subcommands, nothing more."""
from __future__ import annotations

import argparse
import os
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .errors import CnnlabError, first_line, is_out_of_memory


def _human(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:g}"


def _parse_input(text: str) -> tuple[int, int, int]:
    parts = text.lower().replace(",", "x").split("x")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        values = ()
    if len(values) == 2:
        values = (3, *values)
    if len(values) != 3 or min(values) < 1:
        raise CnnlabError(f"--input must look like 3x224x224 (channels x height x width), got {text!r}")
    return values  # type: ignore[return-value]


def cmd_models(args, console: Console) -> None:
    from .analysis.zoo import zoo_table

    rows = sorted(zoo_table(args.pattern), key=lambda row: (row["year"], row["family"], row["params"]))
    if not rows:
        raise CnnlabError(f"no model matches {args.pattern!r}; run `cnnlab models` to list them all")
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"cnnlab model zoo ({len(rows)} models)")
    for column, justify in (("name", "left"), ("family", "left"), ("year", "right"), ("params", "right"),
                            ("MACs", "right"), ("input", "right"), ("top-1", "right"), ("top-5", "right"),
                            ("dataset", "left")):
        table.add_column(column, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(row["name"], row["family"], str(row["year"]), _human(row["params"]), _human(row["macs"]),
                      "x".join(map(str, row["input_size"])),
                      "-" if row["reference_top1"] is None else f"{row['reference_top1']:.2f}",
                      "-" if row["reference_top5"] is None else f"{row['reference_top5']:.2f}",
                      row["dataset"])
    console.print(table)
    console.print("top-1/top-5: reference accuracy in percent, the paper's own or, where noted, torchvision's for its "
                  "released weights (`cnnlab models --json` gives the source of each); MACs at the default input, "
                  "batch size 1.")


def cmd_summary(args, console: Console) -> None:
    from .analysis.summary import ACTIVATION_RULE, field_size, summarize

    input_size = _parse_input(args.input) if args.input else None
    summary = summarize(args.model, input_size)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
        return
    shape = "x".join(map(str, summary.input_shape))
    table = Table(title=f"{summary.model_name} at {shape}")
    for column in ("layer", "type", "output", "params", "weights", "MACs", "activations", "memory", "RF"):
        table.add_column(column, justify="left" if column in ("layer", "type", "output") else "right",
                         no_wrap=True)
    table.add_row("input", "", shape, "0", "0", "0", f"{summary.input_values:,}", _bytes(summary.input_bytes), "1")
    for r in summary.layers:
        if not args.all and r.inplace and not r.params:
            continue
        rf = field_size(r.receptive_field)
        table.add_row(r.name, r.type, "x".join(map(str, r.output_shape[1:])), f"{r.params:,}", f"{r.weights:,}",
                      f"{r.macs:,}",
                      f"{r.activation_values:,}", _bytes(r.activation_bytes),
                      "-" if rf is None else (str(rf) if isinstance(rf, int) else "x".join(map(str, rf))))
    console.print(table)
    console.print(f"total params: {summary.total_params:,} ({_bytes(summary.param_bytes)})")
    console.print(f"total MACs: {summary.total_macs:,} ({_human(summary.total_macs)})")
    console.print(f"activations: {summary.activation_values:,} values, {_bytes(summary.activation_bytes)} "
                  "per image, forward only (about twice that for backward)")
    if not args.all:
        console.print("rows of in-place layers without parameters (ReLU, eval-mode dropout) are hidden; --all shows them")
    for note in summary.notes:
        console.print(f"note: {note}")
    console.print(f"counting: {ACTIVATION_RULE}", style="dim")


def _bytes(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def cmd_claims(args, console: Console) -> None:
    from .analysis.claims import check_claims, format_value

    figures = []
    if args.figures:
        from .analysis.claims import write_claim_figures

        figures = write_claim_figures(args.figures)
    results = check_claims()
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
        return
    table = Table(title="The lectures' numbers, computed", show_lines=True)
    for column in ("claim", "source", "lecture", "computed", "verdict"):
        table.add_column(column, overflow="fold")
    colours = {"agrees": "green", "differs": "yellow", "error": "red"}
    for r in results:
        colour = colours.get(r.verdict, "white")
        table.add_row(r.text, f"{r.source}\n\"{r.quote}\"", r.lecture_text, format_value(r.computed, r.unit),
                      f"[{colour}]{r.verdict}[/{colour}]\n{r.reason}")
    console.print(table)
    counts = {verdict: sum(r.verdict == verdict for r in results) for verdict in ("agrees", "differs", "error")}
    console.print(f"{len(results)} claims: {counts['agrees']} agree, {counts['differs']} differ"
                  + (f", {counts['error']} could not be computed" if counts["error"] else "")
                  + ". A claim differs when the computed value is outside the stated tolerance; the reason says why.")
    if args.figures:
        from .analysis.claims import initialization_table

        columns, rows = initialization_table()
        study = Table(title="Weight initialisation study: activation statistics per layer", show_lines=True)
        for column in columns:
            study.add_column(column, overflow="fold")
        for row in rows:
            study.add_row(*row)
        console.print(study)
        for path in figures:
            console.print(f"wrote {escape(str(path))}", highlight=False)


def cmd_data_stats(args, console: Console) -> None:
    from .data import describe_dataset

    info = describe_dataset(args.dataset, args.split, root=args.root, download=args.download,
                            val_fraction=args.val_fraction, seed=args.seed, image_size=args.image_size,
                            in_memory=False if args.stream else None)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    shape = "x".join(map(str, info["image_shape"])) if info["image_shape"] else "varies (streamed)"
    console.print(f"[bold]{escape(info['name'])}[/bold] {info['split']} split: {info['num_images']:,} images, "
                  f"{info['num_classes']} classes, {shape} (C x H x W)", highlight=False)
    console.print(f"source: {escape(str(info['source']))}", highlight=False)
    table = Table()
    for column in ("channel", "mean (0-1)", "std (0-1)"):
        table.add_column(column, justify="left" if column == "channel" else "right")
    names = {1: ("grey",), 3: ("R", "G", "B")}.get(len(info["mean"]), tuple(map(str, range(len(info["mean"])))))
    for name, mean, std in zip(names, info["mean"], info["std"]):
        table.add_row(name, f"{mean:.4f}", f"{std:.4f}")
    console.print(table)
    counts = ", ".join(f"{name} {count:,}" for name, count in info["class_counts"].items())
    console.print(f"classes: {escape(counts)}", highlight=False)
    if info["skipped_files"]:
        console.print(f"skipped {info['skipped_files']} unreadable files (see the warning above)")


def cmd_data_gallery(args, console: Console) -> None:
    from .data import load_dataset
    from .data.gallery import gallery_from_dataset

    dataset = load_dataset(args.dataset, args.split, root=args.root, val_fraction=0, image_size=args.image_size)
    rows = [spec.strip() for spec in args.rows.split(";")] if args.rows else None
    path = gallery_from_dataset(dataset, args.out, count=args.count, seed=args.seed, rows=rows)
    console.print(f"wrote {escape(str(path))}: {args.count} {escape(dataset.name)} images, then one row per "
                  "augmentation", highlight=False)


def _config_from_args(recipe: str | None, overrides: dict, console: Console):
    """The run's config: the recipe with the overrides, or, with --data and no recipe, one derived
    from the model and the data; says what it chose."""
    from .train import load_recipe
    from .train.defaults import derive_config

    if recipe is None and "data" in overrides:
        config, reasons = derive_config(overrides)
        console.print("no --recipe: a recipe derived from the model and the data (`--recipe NAME` for a "
                      "shipped one):\n" + "\n".join(f"  - {escape(r)}" for r in reasons), highlight=False)
        return config
    config = load_recipe(recipe, overrides)
    original = load_recipe(recipe)
    if "epochs" in overrides and "milestones" not in overrides and config.milestones != original.milestones:
        console.print(f"the step schedule's milestones move with --epochs: {original.milestones} of "
                      f"{original.epochs} epochs become {config.milestones} of {config.epochs}", highlight=False)
    return config


def cmd_doctor(args, console: Console) -> int:
    from .train.doctor import Doctor

    overrides = _overrides(args, ("model", "data", "batch_size", "lr", "device"))
    config = _config_from_args(args.recipe, overrides, console)
    out = Path(args.out or f"runs/doctor-{config.recipe}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise CnnlabError(f"cannot create --out {str(out)!r}: {error}") from None
    with Doctor(config) as doctor:
        checks = doctor.run(sample=args.sample, overfit_steps=args.overfit_steps, range_steps=args.range_steps,
                            plot=out / "lr_range_test.png")
    report = {"recipe": config.recipe, "model": config.model, "data": config.data,
              "passed": all(c.passed for c in checks), "checks": [c.as_dict() for c in checks]}
    (out / "doctor.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for number, check in enumerate(checks, 1):
            mark = "[bold green]pass[/bold green]" if check.passed else "[bold red]FAIL[/bold red]"
            console.print(f"{number}. {mark} {check.name}: {escape(check.summary)}", highlight=False)
            if not check.passed:
                console.print(f"   -> {escape(check.advice)}", highlight=False)
        console.print(f"report: {escape(str(out / 'doctor.json'))}; learning-rate curve: "
                      f"{escape(str(out / 'lr_range_test.png'))}", highlight=False)
    return 0 if report["passed"] else 1


def cmd_tune(args, console: Console) -> None:
    from .train.tune import parse_space, run_search

    config = _config_from_args(args.recipe, _overrides(args), console)
    out = args.out or f"runs/tune-{config.recipe}"
    summary = run_search(config, out, trials=args.trials, fine_trials=args.fine_trials, coarse_epochs=args.epochs,
                         fine_epochs=args.fine_epochs, space=parse_space(args.search) if args.search else None,
                         storage=args.storage, sampler=args.sampler, seed=args.seed,
                         log=lambda line: console.print(escape(line), highlight=False))
    keys = [spec.split("=")[0] for spec in summary["space"]]
    table = Table(title=f"the best trials of {len(summary['trials'])} (validation top-1)")
    for column in ("stage", "trial", "val top-1 %", *keys):
        table.add_column(column, justify="left" if column == "stage" else "right")
    done = sorted((r for r in summary["trials"] if r["state"] == "complete"), key=lambda r: -r["val_top1"])
    for row in done[:10]:
        table.add_row(row["stage"], str(row["trial"]), f"{row['val_top1']:.2f}",
                      *(f"{row[k]:.4g}" if isinstance(row.get(k), float) else str(row.get(k)) for k in keys))
    console.print(table)
    pruned = sum(r["state"] == "pruned" for r in summary["trials"])
    console.print(f"{pruned} trials pruned; best recipe: {escape(summary['files']['best'])} (cnnlab train --recipe "
                  f"{escape(summary['files']['best'])}); scatter plots: {escape(summary['files']['scatter'])}",
                  highlight=False)


def cmd_nas(args, console: Console) -> None:
    from .nas import make_space, retrain, run_search
    from .train import parse_set

    overrides = {**parse_set(args.set), **{k: getattr(args, k) for k in ("batch_size", "device") if getattr(args, k)}}
    out, log = args.out or f"runs/nas-{args.space}", lambda line: console.print(escape(line), highlight=False)
    if args.retrain:
        retrain(out, epochs=args.epochs or 30, data=args.data, subset=args.subset, overrides=overrides,
                filters=args.filters, cells=args.cells, baseline=args.baseline, log=log)
        return
    space = make_space(args.space, nodes=args.nodes, num_normal_cells=args.cells or 1, filters=args.filters or 16,
                       layers=args.layers)
    summary = run_search(space, args.data or "cifar10", out, budget=args.budget, epochs=args.epochs or 1,
                         searcher=args.searcher, seed=args.seed, subset=args.subset, overrides=overrides,
                         controller_lr=args.controller_lr, log=log)
    for name, row in summary["searchers"].items():
        log(f"{name}: best val {row['best_val_top1']:.2f}% at child {row['best_child'] + 1} of {row['children']} "
            f"({row['trained']} trained; mean {row['mean_val_top1']:.2f}%): {row['best']}")
    log(f"progress: {out}/progress.png; best architecture: {out}/best_cell.png, as a recipe: {out}/best.yaml; "
        f"train it longer: cnnlab nas --retrain --out {out} --epochs 30 [--baseline resnet20]")


def cmd_train(args, console: Console) -> int:
    from .train.launch import train_command

    # The named flags are shorthands for --set and win over it.
    overrides = _overrides(args, ("model", "data", "epochs", "batch_size", "lr", "seed", "device", "weights",
                                  "transfer"))
    return train_command(args, overrides, lambda values, out=console: _config_from_args(args.recipe, values, out),
                         console)


def cmd_bench(args, console: Console) -> None:
    from .train import load_recipe
    from .train.bench import bench

    config = load_recipe(args.recipe or "resnet20-cifar10", _overrides(args))
    result = bench(config, warmup=args.warmup, steps=args.steps, workers=args.workers, usual=not args.no_usual)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    console.print(f"{result['model']} on {result['data']}, batch {result['batch_size']}, {result['device']} "
                  f"({result['precision']}; {result['threads']} threads), compile {result['compile'] or 'off'}, "
                  f"BN+ReLU chains fused {result['fused_bn_relu_chains']['trainer']}: "
                  f"{result['timed_steps']} timed steps after {result['warmup_steps']} warm-up steps", highlight=False)
    table = Table()
    table.add_column("loop")
    table.add_column("images/s", justify="right")
    table.add_column("trainer / this", justify="right")
    rows = [("cnnlab trainer (in-memory tensor, batched augmentation)", result["trainer"]),
            ("synthetic: the model alone on one batch (the ceiling)", result["synthetic"])]
    if result["usual"] is not None:
        rows.append((f"usual loop: PIL images, transforms.v2, DataLoader({result['workers']} workers), fp32",
                     result["usual"]))
    for name, rate in rows:
        table.add_row(name, f"{rate:,.0f}", f"{result['trainer'] / rate:.2f}")
    console.print(table)
    console.print(f"trainer / synthetic ceiling: {result['trainer_over_synthetic']:.2f} (goal >= 0.9)"
                  + (f"; trainer / usual loop: {result['trainer_over_usual']:.2f}x (goal >= 1.5x)"
                     if result["usual"] is not None else ""), highlight=False)


def cmd_diagnose(args, console: Console) -> None:
    from .train.diagnose import diagnose_run

    rows, findings = diagnose_run(args.run_dir)
    if args.json:
        print(json.dumps({"run": str(args.run_dir), "epochs": len(rows), "healthy": not any(f.problem for f in findings),
                          "findings": [f.as_dict() for f in findings]}, indent=2))
        return
    console.print(f"{escape(str(args.run_dir))}: {len(rows)} epochs", highlight=False)
    if not findings:
        console.print("healthy: no exploding, oscillating or crawling loss, no flat start, no over- or "
                      "underfitting, and not still improving at the end", highlight=False)
    for finding in findings:
        label = "[bold red]problem[/bold red]" if finding.problem else "[bold yellow]note[/bold yellow]"
        console.print(f"{label} {finding.name}: {escape(finding.evidence)}\n    -> {escape(finding.advice)}",
                      highlight=False)


def cmd_recipes(args, console: Console) -> None:
    from .train import DEFAULT_RECIPE, list_recipes

    rows = list_recipes()
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"cnnlab training recipes ({len(rows)})")
    for column, justify in (("name", "left"), ("model", "left"), ("data", "left"), ("epochs", "right"),
                            ("description", "left")):
        table.add_column(column, justify=justify, no_wrap=column != "description")
    for row in rows:
        name = row["name"] + (" (default)" if row["name"] == DEFAULT_RECIPE else "")
        table.add_row(name, row["model"], row["data"], str(row["epochs"]), row["description"])
    console.print(table)
    console.print("run one with `cnnlab train --recipe NAME`; change any key with --set key=value "
                  "(e.g. --set epochs=5 --set lr=0.05)")


def cmd_eval(args, console: Console) -> None:
    from .eval import evaluate_run, load_run, write_eval

    if len(args.checkpoint) > 1:
        _eval_ensemble(args, console)
        return
    run = load_run(args.checkpoint[0], args.tag, device=args.device)
    result = evaluate_run(run, data=args.data, split=args.split, tta=args.tta, batch_size=args.batch_size,
                          top_losses=args.top_losses)
    files = write_eval(result, args.out or run.directory, run=run)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    top5 = f", top-5 {result['top5']:.2f}%" if result["top5"] is not None else ""
    tta = f" with {result['tta']} TTA" if result["tta"] != "none" else ""
    console.print(f"[bold]{result['model']}[/bold] ({run.tag} checkpoint of {escape(str(run.directory))}) on "
                  f"{escape(result['dataset'])} "
                  f"{result['split']}{tta}: {result['images']:,} images, top-1 {result['top1']:.2f}%{top5}, "
                  f"loss {result['loss']:.4f}", highlight=False)
    table = Table(title="per-class accuracy")
    for column in ("class", "images", "top-1 %"):
        table.add_column(column, justify="left" if column == "class" else "right")
    for name, count in zip(result["classes"], result["class_counts"]):
        accuracy = result["per_class_top1"][name]
        table.add_row(escape(name), f"{count:,}", "-" if accuracy is None else f"{accuracy:.2f}")
    console.print(table)
    if result["most_confused"]:
        pairs = ", ".join(f"{c['true']} as {c['predicted']} ({c['count']})" for c in result["most_confused"][:5])
        console.print(f"most confused (true as predicted): {escape(pairs)}", highlight=False)
    console.print(f"report:     {escape(files['report'])}\nconfusion:  {escape(files['confusion'])}", highlight=False)
    if "top_losses" in files:
        console.print(f"top losses: {escape(files['top_losses'])}", highlight=False)


def _eval_ensemble(args, console: Console) -> None:
    from .eval import load_run
    from .eval.ensemble import evaluate_ensemble, write_ensemble

    runs = [load_run(path, args.tag, device=args.device) for path in args.checkpoint]
    result = evaluate_ensemble(runs, data=args.data, split=args.split, tta=args.tta, batch_size=args.batch_size)
    path = write_ensemble(result, args.out or runs[0].directory)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    tta = f" with {result['tta']} TTA" if result["tta"] != "none" else ""
    table = Table(title=f"ensemble of {len(runs)} on {escape(str(result['dataset']))} {result['split']}{tta} "
                        f"({result['images']:,} images)")
    for column in ("member", "top-1 %", "top-5 %", "loss"):
        table.add_column(column, justify="left" if column == "member" else "right")
    rows = [(f"{m['model']} ({m['tag']} of {m['run']})", m) for m in result["members"]]
    rows.append(("[bold]ensemble (mean probability)[/bold]", result["ensemble"]))
    for name, row in rows:
        top5 = "-" if row["top5"] is None else f"{row['top5']:.2f}"
        table.add_row(name if name.startswith("[bold]") else escape(name), f"{row['top1']:.2f}", top5,
                      f"{row['loss']:.4f}")
    console.print(table)
    console.print(f"ensemble top-1 {result['ensemble']['top1']:.2f}%: {result['gain_over_mean_member']:+.2f} points "
                  f"over the mean member ({result['mean_member_top1']:.2f}%), "
                  f"{result['gain_over_best_member']:+.2f} over the best; report: {escape(str(path))}",
                  highlight=False)


def cmd_predict(args, console: Console) -> None:
    from .eval import load_run, predict_images

    run = load_run(args.checkpoint, args.tag, device=args.device)
    results = predict_images(run, args.images, top_k=args.top_k, image_size=args.image_size,
                             batch_size=args.batch_size)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for item in results:
        console.print(f"[bold]{escape(item['file'])}[/bold]", highlight=False)
        for rank, p in enumerate(item["predictions"], 1):
            console.print(f"  {rank}. {escape(format(p['class'], '<20'))} {100 * p['probability']:6.2f}%",
                          highlight=False)


def cmd_explore(args, console: Console) -> None:
    from .explore import serve

    serve(args.host, args.port, runs=args.runs, data=args.data, models=args.models,
          open_browser=not args.no_browser, announce=lambda line: console.print(escape(line), highlight=False))


def _add_recipe_options(parser: argparse.ArgumentParser, recipe_help: str) -> None:
    """The options train, bench, doctor and tune share: a recipe, and the keys that override it."""
    parser.add_argument("--recipe", help=recipe_help)
    parser.add_argument("--model", help="model name (see `cnnlab models`)")
    parser.add_argument("--data", help="data set name (cifar10, mnist, digits, ...) or a folder/.tar.gz/.zip path")
    parser.add_argument("--batch-size", dest="batch_size", type=int, help="training batch size")
    parser.add_argument("--device", help="auto (CUDA if present, default), cpu, cuda, cuda:N")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="set any recipe key, e.g. --set weight_decay=1e-4 --set milestones=[30,60] (repeatable)")


def _overrides(args, keys=("model", "data", "batch_size", "device")) -> dict:
    """``--set`` values, then the named flags given (which win over ``--set``)."""
    from .train import parse_set

    overrides = parse_set(args.set)
    overrides.update({key: getattr(args, key) for key in keys if getattr(args, key, None) is not None})
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cnnlab", description="Build, inspect, train and compare CNNs.")
    from . import __version__
    from .train.check_distributed import add_command as add_check_distributed
    from .train.launch import add_launch_options
    from .train.scale import add_command as add_scale_estimate

    parser.add_argument("--version", action="version", version=f"cnnlab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="the model zoo: params, MACs, reference accuracy")
    models.add_argument("pattern", nargs="?", help="glob pattern on model names, e.g. 'resnet*'")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(run=cmd_models)

    summary = commands.add_parser("summary", help="per-layer shapes, params, MACs, memory, receptive field")
    summary.add_argument("model", help="a registered model name (see `cnnlab models`)")
    summary.add_argument("--input", help="input size CxHxW, e.g. 3x224x224 (default: the model's)")
    summary.add_argument("--json", action="store_true", help="print JSON instead of a table")
    summary.add_argument("--all", action="store_true", help="also show in-place layers without parameters")
    summary.set_defaults(run=cmd_summary)

    claims = commands.add_parser("claims", help="the lectures' numbers, computed and checked")
    claims.add_argument("--json", action="store_true", help="print JSON instead of a table")
    claims.add_argument("--figures", metavar="DIR",
                        help="also write the claims' figures (PNG) into DIR and print the initialisation study")
    claims.set_defaults(run=cmd_claims)

    data = commands.add_parser("data", help="data sets: statistics")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    stats = data_commands.add_parser("stats", help="per-channel mean/std, image count, classes, image size")
    stats.add_argument("dataset", help="cifar10, cifar100, mnist, fashion-mnist, digits, or a folder/.tar.gz/.zip path")
    stats.add_argument("--split", default="train", choices=("train", "val", "test"),
                       help="which split (default: train, the one to normalise with)")
    stats.add_argument("--root", help="where named data sets are (default: $CNNLAB_DATA or ~/.cache/cnnlab/datasets)")
    stats.add_argument("--download", action="store_true", help="download a named data set if it is missing")
    stats.add_argument("--val-fraction", type=float, default=0.1,
                       help="part of the training set held out as validation when there is no val/ (default 0.1)")
    stats.add_argument("--seed", type=int, default=0, help="seed of the validation split (default 0)")
    stats.add_argument("--image-size", help="resize every image first, e.g. 32 or 224x224")
    stats.add_argument("--stream", action="store_true", help="read an image-folder tree file by file, not into memory")
    stats.add_argument("--json", action="store_true", help="print JSON instead of a table")
    stats.set_defaults(run=cmd_data_stats)

    gallery = data_commands.add_parser("gallery", help="a PNG grid of real images and each augmentation of them")
    gallery.add_argument("dataset", help="cifar10, mnist, digits, or a folder/.tar.gz/.zip path")
    gallery.add_argument("--out", required=True, help="PNG file to write")
    gallery.add_argument("--count", type=int, default=8, help="images per row (default 8)")
    gallery.add_argument("--split", default="train", choices=("train", "test"), help="which split (default train)")
    gallery.add_argument("--root", help="where named data sets are")
    gallery.add_argument("--image-size", help="resize every image first, e.g. 32 or 224x224")
    gallery.add_argument("--rows", help="augmentation specs separated by ';' (default: every augmentation)")
    gallery.add_argument("--seed", type=int, default=0, help="seed of the image choice and augmentations")
    gallery.set_defaults(run=cmd_data_gallery)
    train = commands.add_parser("train", help="train a model by recipe: checkpoints, resume, metrics, curves, report")
    _add_recipe_options(train, "a shipped recipe name (see `cnnlab recipes`) or a YAML file (default: with "
                               "--data, one derived from the model and data; else lenet5-digits)")
    train.add_argument("--epochs", type=int, help="number of epochs")
    train.add_argument("--lr", type=float, help="learning rate (before the linear scaling rule, if scale_lr)")
    train.add_argument("--seed", type=int, help="random seed of the run")
    train.add_argument("--weights", metavar="SOURCE",
                       help="start from pretrained weights (transfer learning): a run folder, a .safetensors or "
                            "torch file, or torchvision:NAME; the classifier is replaced for the new classes")
    train.add_argument("--transfer", choices=("linear-probe", "fine-tune-last", "fine-tune-all", "auto"),
                       help="what trains of the pretrained model (default auto: the lecture's table of data size "
                            "and similarity)")
    train.add_argument("--out", help="run directory (default: runs/<recipe>-<timestamp>)")
    train.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its last checkpoint")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    train.add_argument("--tensorboard", action="store_true", help="also log to TensorBoard (needs tensorboard)")
    train.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    add_launch_options(train)
    train.set_defaults(run=cmd_train)

    add_check_distributed(commands)
    add_scale_estimate(commands)

    bench = commands.add_parser("bench", help="training speed: the trainer against the model's synthetic ceiling "
                                              "and the usual DataLoader loop")
    _add_recipe_options(bench, "recipe whose model, data, batch and precision are timed (default: "
                               "resnet20-cifar10)")
    bench.add_argument("--steps", type=int, default=30, help="timed steps of each loop (default 30)")
    bench.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")
    bench.add_argument("--workers", type=int, default=2, help="DataLoader workers of the usual loop (default 2)")
    bench.add_argument("--no-usual", action="store_true", help="skip the usual DataLoader loop")
    bench.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    bench.set_defaults(run=cmd_bench)

    diagnose = commands.add_parser("diagnose", help="read a run's curves: exploding, oscillating or slow loss, "
                                                    "flat start, over- or underfitting, still improving")
    diagnose.add_argument("run_dir", metavar="RUN", help="a run folder (with metrics.csv)")
    diagnose.add_argument("--json", action="store_true", help="print JSON instead of text")
    diagnose.set_defaults(run=cmd_diagnose)

    doctor = commands.add_parser("doctor", help="lecture 7's first checks before training: the initial loss, "
                                                "overfitting a small sample, a learning-rate range test")
    _add_recipe_options(doctor, "recipe to check (default: with --data, one derived from the model and data; "
                                "else lenet5-digits)")
    doctor.add_argument("--lr", type=float, help="learning rate (the small sample is fitted with it)")
    doctor.add_argument("--sample", type=int, default=32, help="images in the small sample to overfit (default 32)")
    doctor.add_argument("--overfit-steps", dest="overfit_steps", type=int, default=300,
                        help="most steps to overfit the sample (default 300)")
    doctor.add_argument("--range-steps", dest="range_steps", type=int, default=100,
                        help="steps of the learning-rate range test (default 100)")
    doctor.add_argument("--out", help="folder for doctor.json and lr_range_test.png (default runs/doctor-<recipe>)")
    doctor.add_argument("--json", action="store_true", help="print the report as JSON")
    doctor.set_defaults(run=cmd_doctor)

    tune = commands.add_parser("tune", help="coarse-to-fine hyper-parameter search (Optuna): random trials, "
                                            "median pruning, scatter plots, the best recipe as YAML")
    _add_recipe_options(tune, "the recipe to tune (default: with --data, one derived from the model and data; "
                              "else lenet5-digits)")
    tune.add_argument("--search", action="append", metavar="KEY=KIND:LOW:HIGH",
                      help="a search dimension: key=log:LOW:HIGH, float:LOW:HIGH, int:LOW:HIGH or choice:A,B "
                           "(repeatable; default lr and weight_decay, log-uniform, x/10 to x10 of the recipe's)")
    tune.add_argument("--trials", type=int, default=16, help="coarse trials (default 16)")
    tune.add_argument("--epochs", type=int, default=2, help="epochs of a coarse trial (default 2)")
    tune.add_argument("--fine-trials", dest="fine_trials", type=int, default=8,
                      help="fine trials on the narrowed ranges (default 8; 0: none)")
    tune.add_argument("--fine-epochs", dest="fine_epochs", type=int,
                      help="epochs of a fine trial (default: the recipe's)")
    tune.add_argument("--sampler", default="random", choices=("random", "tpe"), help="default random")
    tune.add_argument("--seed", type=int, default=0, help="the sampler's seed")
    tune.add_argument("--storage", help="an Optuna storage URL shared by several processes (default: "
                                        "sqlite in --out)")
    tune.add_argument("--out", help="folder of the search (default runs/tune-<recipe>)")
    tune.set_defaults(run=cmd_tune)

    nas = commands.add_parser("nas", help="neural architecture search: random search and a REINFORCE controller "
                                          "over NASNet cells or per-layer choices, children trained briefly")
    nas.add_argument("--space", default="cells", choices=("cells", "macro"), help="default cells")
    nas.add_argument("--budget", type=int, default=10, help="children per searcher (default 10)")
    nas.add_argument("--epochs", type=int, help="epochs of each child (default 1; with --retrain: 30)")
    nas.add_argument("--data", help="data set the children train on (default cifar10)")
    nas.add_argument("--searcher", default="both", choices=("random", "controller", "both"), help="default both")
    nas.add_argument("--out", help="folder of the search (default runs/nas-<space>); a search there resumes")
    nas.add_argument("--seed", type=int, default=0, help="seed of the searchers, the subset and every child")
    nas.add_argument("--subset", type=int, metavar="K", help="K training and K/5 validation images from the "
                                                             "training split (default: all, 10%% held out)")
    nas.add_argument("--nodes", type=int, default=4, help="blocks per cell (default 4)")
    nas.add_argument("--layers", type=int, default=6, help="layers of a macro child (default 6)")
    nas.add_argument("--cells", type=int, help="normal cells per stage of a child (default 1)")
    nas.add_argument("--filters", type=int, help="filters of a child's first stage (default 16)")
    nas.add_argument("--controller-lr", dest="controller_lr", type=float, default=0.01, help="default 0.01")
    nas.add_argument("--retrain", action="store_true", help="train the best child in --out for --epochs")
    nas.add_argument("--baseline", metavar="MODEL", help="with --retrain: also train MODEL (e.g. resnet20); the "
                                                         "cells' width then matches its parameter count")
    nas.add_argument("--batch-size", dest="batch_size", type=int, help="the children's training batch size")
    nas.add_argument("--device", help="auto (CUDA if present, default), cpu, cuda, cuda:N")
    nas.add_argument("--set", action="append", metavar="KEY=VALUE", help="a key of the children's recipe")
    nas.set_defaults(run=cmd_nas)

    recipes = commands.add_parser("recipes", help="the shipped training recipes")
    recipes.add_argument("--json", action="store_true", help="print JSON instead of a table")
    recipes.set_defaults(run=cmd_recipes)

    evaluate = commands.add_parser("eval", help="evaluate a trained run: top-1/top-5, loss, per-class accuracy, "
                                                "confusion matrix")
    evaluate.add_argument("checkpoint", nargs="+", metavar="RUN",
                          help="a run directory (best checkpoint if present, else last) or a .safetensors file in "
                               "one; several: their ensemble (mean of the class probabilities) and each member")
    evaluate.add_argument("--tag", help="which checkpoint of the run: last, best, ... (default: best, else last)")
    evaluate.add_argument("--data", help="data set to evaluate on (default: the run's own)")
    evaluate.add_argument("--split", default="test", choices=("test", "val", "train"),
                          help="which split (default test; train: the run's training images, unaugmented)")
    evaluate.add_argument("--tta", default="none", choices=("none", "flip", "translate", "10crop", "multiscale"),
                          help="test-time augmentation (default none; translate: airbench94's flips and 1-pixel shifts; "
                               "10crop pads by the training crop padding)")
    evaluate.add_argument("--batch-size", dest="batch_size", type=int,
                          help="evaluation batch size (default: the run's eval batch size)")
    evaluate.add_argument("--top-losses", dest="top_losses", type=int, metavar="N",
                          help="draw the N images with the highest loss, the confident mistakes (default 18; 0: none)")
    evaluate.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    evaluate.add_argument("--out", help="where eval_<split>.json, confusion_<split>.png and top_losses_<split>.png "
                                        "go (an ensemble: ensemble_<split>.json; default: the (first) run)")
    evaluate.add_argument("--json", action="store_true", help="print the result as JSON")
    evaluate.set_defaults(run=cmd_eval)

    predict = commands.add_parser("predict", help="classify image files with a trained run")
    predict.add_argument("checkpoint", help="a run directory or a .safetensors file in one")
    predict.add_argument("images", nargs="+", metavar="IMAGE", help="image files (any format PIL reads)")
    predict.add_argument("--top-k", dest="top_k", type=int, default=5, help="classes shown per image (default 5)")
    predict.add_argument("--tag", help="which checkpoint of the run (default: best, else last)")
    predict.add_argument("--image-size", dest="image_size",
                         help="input size, for runs trained on a folder without image_size (default: the run's)")
    predict.add_argument("--batch-size", dest="batch_size", type=int,
                         help="images per forward pass (default: the run's eval batch size)")
    predict.add_argument("--device", default="auto", help="auto (default), cpu, cuda, cuda:N")
    predict.add_argument("--json", action="store_true", help="print JSON")
    predict.set_defaults(run=cmd_predict)

    explore = commands.add_parser("explore", help="the explorer in the browser: the zoo, augmentation, batch "
                                                  "normalization, gradient flow and runs, computed live")
    explore.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this "
                                                             "machine only)")
    explore.add_argument("--port", type=int, help="port (default 8231, or the next free one)")
    explore.add_argument("--runs", default="runs", help="folder of the run folders shown (default runs)")
    explore.add_argument("--data", help="a folder or archive of images for the augmentation panel, besides the "
                                        "digits and CIFAR-10")
    explore.add_argument("--models", help="only these zoo models, comma-separated globs, e.g. 'resnet*,vgg16' "
                                          "(default: all)")
    explore.add_argument("--no-browser", dest="no_browser", action="store_true", help="do not open a browser")
    explore.set_defaults(run=cmd_explore)
    return parser


class _Console(Console):
    """rich's console, except that a closed pipe (``cnnlab models | head -1``) ends the command
    quietly with status 0, as ``ls | head -1`` does; rich's own choice is status 1."""

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``cnnlab`` and ``python -m cnnlab``."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # what `cnnlab train --nproc` hands its processes
    # Piped output keeps whole table rows instead of folding them to 80 columns.
    console = _Console() if sys.stdout.isatty() else _Console(width=200)
    # soft_wrap: an error is one line however long (the terminal folds it), so a path in it is
    # never broken and a log can be searched for it.
    errors = Console(stderr=True, soft_wrap=True)
    try:
        status = args.run(args, console)
    except CnnlabError as error:
        errors.print(f"[bold red]error:[/bold red] {escape(str(error))}", highlight=False)
        return 2
    except BrokenPipeError:
        # `cnnlab models | head -1` closed the pipe: the reader has what it wanted, not an error.
        # Point stdout at /dev/null so that the flush at exit does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (RuntimeError, MemoryError, OSError) as error:  # after BrokenPipeError, an OSError too
        if not is_out_of_memory(error):
            raise
        # The trainer words its own; this covers evaluation and prediction.
        errors.print(f"[bold red]error:[/bold red] out of memory ({escape(first_line(error))}): try a smaller "
                     "--batch-size", highlight=False)
        return 2
    except KeyboardInterrupt:
        errors.print("interrupted")
        return 130
    return status if isinstance(status, int) else 0
