"""airbench94's own script and ``cnnlab train --recipe fast-cifar10``, one after the other on one GPU.

The question of issue "airbench94's 94%, and fast": how long cnnlab takes to 94% against
the program it learned its method from, on the same machine, in the same sitting. Nothing
else runs meanwhile (each is timed alone):

1. ``airbench94.py`` (Jordan 2024, github.com/KellerJordan/cifar10-airbench; give its path:
   it is not part of cnnlab), unmodified: its own 25 runs, started in ``OUT``, where it finds
   its ``cifar10/train.pt`` and ``test.pt`` already made from the same lossless data cnnlab
   reads, so it downloads nothing. It times itself (the whitening init, the training epochs
   and its TTA evaluation; not the per-epoch evaluation, not the start-up); the process's
   wall time is recorded too.
2. cnnlab's ``fast-cifar10`` recipe for each ``--seeds`` seed, and with ``--e10`` the
   ``airbench94-cifar10`` recipe (airbench's own settings in 10 epochs); wall time from the
   command starting to its report.
3. ``cnnlab bench`` on the recipe, eager and ``compile=reduce-overhead`` (CUDA graphs): the
   trainer against the synthetic ceiling and the usual loop.

Results go to ``OUT/times.csv`` (every command's wall time and exit status), ``OUT/*.log``,
each cnnlab run's folder under ``OUT/runs`` (its report and per-epoch CSV; checkpoints are
deleted at the end) and ``OUT/summary.json``.

    python benchmarks/side_by_side_airbench.py --airbench PATH/airbench94.py --out runs/side-by-side \\
        [--seeds 0 1 2] [--e10] [--time-limit 300]
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def run_timed(name: str, command: list[str], out: Path, time_limit: float, cwd: Path | None = None) -> dict:
    """Run ``command`` with its output in ``out/name.log``; its wall time and exit status (or
    "timeout": killed after ``time_limit`` seconds), appended to times.csv."""
    started = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        try:
            status = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd,
                                    timeout=time_limit).returncode
        except subprocess.TimeoutExpired:
            status = "timeout"
    row = {"name": name, "status": status, "wall_seconds": round(time.perf_counter() - started, 2)}
    new_file = not (out / "times.csv").exists()
    with open(out / "times.csv", "a", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(row))
        if new_file:
            writer.writeheader()
        writer.writerow(row)
    print(row, flush=True)
    return row


def airbench_data(folder: Path) -> None:
    """airbench's own data files (N x H x W x C uint8 tensors, in the folder ``cifar10`` that it
    reads from its working directory) from the CIFAR-10 cnnlab reads."""
    import torch

    from cnnlab.data import load_dataset

    folder.mkdir(parents=True, exist_ok=True)
    for split, file in (("train", "train.pt"), ("test", "test.pt")):
        data = load_dataset("cifar10", split, val_fraction=0)
        torch.save({"images": data.images.permute(0, 2, 3, 1).contiguous(), "labels": data.labels,
                    "classes": list(data.classes)}, folder / file)


def airbench_runs(log: Path) -> list[dict]:
    """Each run's TTA test accuracy and airbench's own time for it: the last two columns of its 'eval' rows."""
    rows = [line.split("|") for line in log.read_text().splitlines() if re.search(r"\|\s+eval\s+\|", line)]
    return [{"tta_accuracy": float(row[-3]), "seconds": float(row[-2])} for row in rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--airbench", type=Path, help="path of airbench94.py (skipped when not given)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--e10", action="store_true", help="also the airbench94-cifar10 recipe (10 epochs)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--time-limit", type=float, default=300.0, help="seconds allowed to each command")
    parser.add_argument("--no-bench", action="store_true", help="skip cnnlab bench")
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONUNBUFFERED"] = "1"  # the children's logs as they go
    if "CNNLAB_DATA" not in os.environ and SHARED_DATA.is_dir():
        os.environ["CNNLAB_DATA"] = str(SHARED_DATA)  # this process's data and the children's
    cnnlab = [sys.executable, "-m", "cnnlab"]
    summary: dict = {"airbench": None, "cnnlab": {}}

    if args.airbench is not None:
        airbench_data(out / "cifar10")
        row = run_timed("airbench94", [sys.executable, str(args.airbench.resolve())], out, args.time_limit, cwd=out)
        summary["airbench"] = {**row, "runs": airbench_runs(out / "airbench94.log")}

    recipes = ["fast-cifar10"] + (["airbench94-cifar10"] if args.e10 else [])
    for recipe in recipes:
        for seed in args.seeds:
            name = f"{recipe}-s{seed}"
            row = run_timed(name, [*cnnlab, "train", "--recipe", recipe, "--device", args.device, "--set", f"seed={seed}",
                                   "--out", str(out / "runs" / name)], out, args.time_limit)
            report = out / "runs" / name / "report.json"
            if report.is_file():
                row["test_top1"] = json.loads(report.read_text())["test_top1"]
            summary["cnnlab"][name] = row

    if not args.no_bench:
        for mode in ("eager", "reduce-overhead"):
            extra = [] if mode == "eager" else ["--set", f"compile={mode}"]
            run_timed(f"bench-fast-cifar10-{mode}", [*cnnlab, "bench", "--recipe", "fast-cifar10", "--device",
                                                    args.device, *extra, "--steps", "70", "--warmup", "20",
                                                    "--workers", "8", "--json", str(out / f"bench-{mode}.json")],
                      out, args.time_limit)

    for weights in (*out.glob("runs/**/*.safetensors"), *out.glob("runs/**/*.pt")):
        weights.unlink()  # results are kept, weights never
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
