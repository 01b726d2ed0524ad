"""Where a recipe's training time goes: convolutions forward and backward, BN, the rest of the step,
the data path, evaluation and the data-dependent initialisation.

Builds the recipe's :class:`~cnnlab.train.Trainer` (data loading, model, whitening
initialisation) and measures, on the machine it runs on:

- the data-dependent initialisation (airbench94's patch whitening), timed again alone;
- the data path alone: one whole epoch of the training loader (index, augment, normalise,
  memory format), no model;
- the training steps: ``--steps`` steps of the trainer itself, timed, and profiled with
  ``torch.profiler`` whose operators are grouped into convolution forward, convolution
  backward, BN forward, BN backward (or the fused BN+ReLU's) and everything else of the step (activations,
  pooling, loss, optimiser, autocast casts);
- evaluation: the test split with the recipe's test-time augmentation.

It then scales the per-step and per-epoch figures to the recipe's whole run, so the
breakdown can be laid beside the run's measured wall time. The profiler's operator
times are self times, summed over both threads' work as the profiler sees it on the
calling thread; they are shares of the step, not exact seconds.

    python benchmarks/profile_training.py [--recipe fast-cifar10] [--steps 20] [--set KEY=VALUE ...]

with ``CNNLAB_DATA`` (or the recipe's data root) holding CIFAR-10.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from torch.profiler import ProfilerActivity, profile, record_function

from cnnlab.data import init_sample
from cnnlab.train import Callback, Trainer, load_recipe, parse_set

# Operator name -> category; matched in this order on the profiler's operator names.
CATEGORIES = (
    ("convolution backward", ("convolution_backward",)),
    ("convolution forward", ("mkldnn_convolution", "cudnn_convolution", "_convolution", "conv2d", "convolution")),
    # The fused BN+ReLU kernel (fuse_bn_relu; cnnlab.layers.fused_bn_relu) carries BN and the ReLU after it.
    ("fused BN+ReLU backward", ("_BNReLUFunctionBackward",)),
    ("fused BN+ReLU forward", ("_BNReLUFunction",)),
    ("BN backward", ("batch_norm_backward",)),
    ("BN forward", ("native_batch_norm", "batch_norm")),
)


def category(name: str) -> str:
    for label, fragments in CATEGORIES:
        if any(fragment in name for fragment in fragments):
            return label
    return "rest of the step"


DATA_LABEL = "cnnlab data path"


class LabelledLoader:
    """The trainer's loader, each batch made inside a profiler label, so that the data path's
    operators can be taken out of the step's breakdown (it is measured on its own)."""

    def __init__(self, loader):
        self.loader = loader

    def __len__(self) -> int:
        return len(self.loader)

    def epoch_batches(self, epoch: int, skip: int = 0):
        batches = self.loader.epoch_batches(epoch, skip)
        while True:
            with record_function(DATA_LABEL):
                batch = next(batches, None)
            if batch is None:
                return
            yield batch


class ProfileSteps(Callback):
    """Profiles and times steps ``warmup + 1 .. warmup + steps`` of the trainer, then stops it."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.seconds, self.profiler = warmup, steps, None, None

    def on_step_end(self, trainer) -> None:
        if trainer.step == self.warmup:
            self.profiler = profile(activities=[ProfilerActivity.CPU])
            self.profiler.__enter__()
            self.start = time.perf_counter()
        elif trainer.step == self.warmup + self.steps:
            self.seconds = time.perf_counter() - self.start
            self.profiler.__exit__(None, None, None)
            raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fast-cifar10")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", help="also write the breakdown as JSON")
    args = parser.parse_args(argv)
    config = load_recipe(args.recipe, parse_set(args.set))

    with tempfile.TemporaryDirectory(prefix="cnnlab-profile-") as scratch:
        started = time.perf_counter()
        timer = ProfileSteps(args.warmup, args.steps)
        trainer = Trainer(config, Path(scratch) / "run", quiet=True, callbacks=[timer],
                          console=Console(file=io.StringIO()))
        setup_seconds = time.perf_counter() - started
        init_seconds = 0.0
        if hasattr(trainer.model, "init_from_data"):
            sample = init_sample(trainer.train_set, trainer.config.mean, trainer.config.std)
            start = time.perf_counter()
            trainer.model.init_from_data(sample.to(trainer.device))
            init_seconds = time.perf_counter() - start

        start = time.perf_counter()
        for _ in trainer.train_loader.epoch_batches(0):
            pass
        data_epoch_seconds = time.perf_counter() - start

        trainer.train_loader = LabelledLoader(trainer.train_loader)
        with contextlib.suppress(KeyboardInterrupt):
            trainer.fit()
        step_seconds = timer.seconds / args.steps
        shares: dict[str, float] = {}
        data_in_steps = 0.0
        for event in timer.profiler.key_averages():
            if event.key == DATA_LABEL:
                data_in_steps = event.cpu_time_total  # its operators' self times are in "rest of the step"
                continue
            label = category(event.key)
            shares[label] = shares.get(label, 0.0) + event.self_cpu_time_total
        shares["rest of the step"] = max(shares.get("rest of the step", 0.0) - data_in_steps, 0.0)
        total = sum(shares.values())
        shares = {label: value / total for label, value in shares.items()}

        start = time.perf_counter()
        test = trainer.evaluate("test")
        eval_seconds = time.perf_counter() - start

    epochs, steps_per_epoch = config.epochs, trainer.steps_per_epoch
    # The data path runs inside the step; its per-step cost is split out of the step's time.
    data_per_step = data_epoch_seconds / steps_per_epoch
    compute_per_step = max(step_seconds - data_per_step, 0.0)
    whole = {label: share * compute_per_step * steps_per_epoch * epochs for label, share in shares.items()}
    whole["data path (index, augment, normalise)"] = data_epoch_seconds * epochs
    evaluations = epochs if trainer.val_loader is not None else 0
    whole["evaluation (test split, recipe's TTA; per-epoch validation too)"] = eval_seconds * (1 + evaluations)
    whole["set-up (data load, model, whitening init)"] = setup_seconds
    total_seconds = sum(whole.values())
    print(f"{config.model} ({args.recipe}), {trainer.precision.reason}, {torch.get_num_threads()} threads; "
          f"{steps_per_epoch} steps/epoch x {epochs} epochs; {args.steps} steps profiled after {args.warmup}")
    print(f"step {step_seconds * 1000:.1f} ms ({config.batch_size / step_seconds:,.0f} img/s), of which data "
          f"{data_per_step * 1000:.1f} ms; whitening init alone {init_seconds:.2f} s; test evaluation "
          f"{eval_seconds:.1f} s (top-1 {test['top1']:.2f}% after {args.warmup + args.steps} steps)")
    print(f"{'part':64s} {'seconds':>9s} {'share':>7s}")
    for label, seconds in sorted(whole.items(), key=lambda item: -item[1]):
        print(f"{label:64s} {seconds:9.1f} {seconds / total_seconds:7.1%}")
    print(f"{'estimated whole run':64s} {total_seconds:9.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "recipe": args.recipe, "model": config.model, "precision": trainer.precision.reason,
            "threads": torch.get_num_threads(), "step_seconds": step_seconds, "data_epoch_seconds": data_epoch_seconds,
            "init_seconds": init_seconds, "eval_seconds": eval_seconds, "setup_seconds": setup_seconds,
            "step_shares": shares, "whole_run_seconds": whole}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
