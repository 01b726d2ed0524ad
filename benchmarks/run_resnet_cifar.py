"""The ResNet paper's CIFAR-10 experiments: ResNet-20/56 and plain-20/56, trained with the paper's recipe.

Runs the shipped recipes (``resnet20-cifar10``, ``resnet56-cifar10``, ``plain20-cifar10``,
``plain56-cifar10``: SGD 0.1, momentum 0.9, weight decay 1e-4, batch 128, lr /10 at 32k
and 48k iterations, 64k iterations, flip + 4-pixel pad-crop, 45k/5k train/val split) on
CIFAR-10 (by default the official python archive, found in ``$CNNLAB_DATA`` or else in
``../shared/data`` beside the repository; ``--data`` takes another data set name or path,
e.g. the JPEG q75 copy ``../shared/data/cifar10-jpg.tar.gz``), each in ``OUT/<recipe>``, as parallel processes
(``--parallel``, default all of them: on a GPU the small CIFAR nets leave the device
mostly idle, so several runs share it well; on a 2-core CPU use ``--parallel 1``).

A run longer than the time one sitting allows is done in pieces: ``--time-limit S``
sends each run Ctrl-C (SIGINT) after S seconds, which makes the trainer finish its step
and save a resumable checkpoint; running the same command again resumes every
unfinished run from its ``last`` checkpoint and skips the finished ones. On a GPU,
``--set compile=reduce-overhead`` replays each step as CUDA graphs, which makes the small
CIFAR nets several times faster than launching their kernels one by one. Wall time and
accuracy of each run are in its ``report.json``; ``plot_degradation.py`` draws the
training-error curves of the four.

    python benchmarks/run_resnet_cifar.py --out runs/resnet-cifar [--time-limit 540] \\
        [--recipes resnet20-cifar10 ...] [--device auto] [--parallel 4]
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RECIPES = ("resnet20-cifar10", "resnet56-cifar10", "plain20-cifar10", "plain56-cifar10")
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_environment() -> dict[str, str]:
    """The children's environment: ``CNNLAB_DATA`` as set, else the shared data folder beside the repository.

    The recipes name the data set (``data: cifar10``), not a path, so each run folder's
    config.yaml holds on any machine whose data root has the archive.
    """
    env = dict(os.environ)
    if not env.get("CNNLAB_DATA") and SHARED_DATA.is_dir():
        env["CNNLAB_DATA"] = str(SHARED_DATA)
    return env


def run_state(run_dir: Path) -> str:
    """``done`` (report.json written), ``partial`` (a last checkpoint to resume) or ``new``."""
    if (run_dir / "report.json").is_file():
        return "done"
    if any(run_dir.glob("last*")):
        return "partial"
    return "new"


def command_for(recipe: str, run_dir: Path, data: str | None, device: str, extra: list[str]) -> list[str]:
    base = [sys.executable, "-m", "cnnlab", "train", "--quiet"]
    if run_state(run_dir) == "partial":
        return base + ["--resume", str(run_dir), "--device", device, *extra]
    data_args = [] if data is None else ["--data", data]
    return base + ["--recipe", recipe, *data_args, "--device", device, "--out", str(run_dir), "--overwrite", *extra]


def summary_line(recipe: str, run_dir: Path) -> str:
    state = run_state(run_dir)
    if state == "done":
        report = json.loads((run_dir / "report.json").read_text())
        return (f"{recipe:18s} done: test top-1 {report['test_top1']:.2f}%, train top-1 {report['train_top1']:.2f}%, "
                f"{report['wall_seconds'] / 60:.1f} min of training, {report['images_per_second']:.0f} img/s")
    metrics = run_dir / "metrics.csv"
    epochs = max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0
    return f"{recipe:18s} {state}: {epochs} epochs completed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/resnet-cifar", help="folder holding one run folder per recipe")
    parser.add_argument("--data", default=None,
                        help="data set name or path (default: the recipes' own, cifar10 from the data root)")
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES))
    parser.add_argument("--device", default="auto")
    parser.add_argument("--parallel", type=int, default=len(RECIPES), help="runs at the same time")
    parser.add_argument("--time-limit", type=float, default=None,
                        help="seconds after which every run is interrupted and saved, to resume later")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to every run's `cnnlab train --set` (resumed runs accept only the runtime "
                             "keys, e.g. compile=reduce-overhead)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    env = data_environment()
    os.environ.update(env)
    # Read (or decode) the data once here, so that the parallel runs all find it cached, and
    # a missing archive is one clear line before any run starts.
    from cnnlab.data import load_dataset
    from cnnlab.errors import CnnlabError

    try:
        for split in ("train", "test"):
            load_dataset(args.data or "cifar10", split)
    except CnnlabError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    extra = [token for item in args.set for token in ("--set", item)]

    pending = [r for r in args.recipes if run_state(out / r) != "done"]
    running: dict[str, tuple[subprocess.Popen, object]] = {}
    started = time.monotonic()
    deadline = None if args.time_limit is None else started + args.time_limit
    interrupted = False
    while pending or running:
        while pending and len(running) < max(1, args.parallel) and not interrupted:
            recipe = pending.pop(0)
            run_dir = out / recipe
            cmd = command_for(recipe, run_dir, args.data, args.device, extra)
            run_dir.mkdir(parents=True, exist_ok=True)
            log = open(out / f"{recipe}.log", "a")
            print(f"start {recipe}: {' '.join(cmd[1:])}", flush=True)
            # Each child gets the default SIGINT handler even when this script runs in the
            # background (where SIGINT starts out ignored), so the trainer can catch it.
            running[recipe] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)),
                               log)
        if deadline is not None and not interrupted and time.monotonic() > deadline:
            interrupted = True
            pending.clear()
            for proc, _ in running.values():
                proc.send_signal(signal.SIGINT)
            print(f"time limit reached after {time.monotonic() - started:.0f} s: runs interrupted to resume later",
                  flush=True)
        for recipe, (proc, log) in list(running.items()):
            if proc.poll() is not None:
                log.close()
                del running[recipe]
                print(f"end {recipe} (exit {proc.returncode}) after {time.monotonic() - started:.0f} s", flush=True)
        time.sleep(1.0)
    for recipe in args.recipes:
        print(summary_line(recipe, out / recipe))
    return 0


if __name__ == "__main__":
    sys.exit(main())
