"""Training-step throughput of a zoo model in channels-first and channels-last memory, side by side.

    python benchmarks/bench_memory_format.py --model airbench94 --batch-size 512

Synthetic batches at the model's default input size, SGD with Nesterov momentum, fp32 (or
``--precision bf16``); the two layouts alternate step by step after a warm-up, so that
machine noise hits both alike. Prints images/s (median over the timed steps) for each
layout and their ratio. Useful on CPUs, where whether channels-last pays depends on the
model, its input size and the CPU: ``channels_last: auto`` turns it on for CPUs where it was
measured faster (``cnnlab.device``; BENCHMARKS.md has the tables).
"""
from __future__ import annotations

import argparse

import torch

from cnnlab import create_model
from cnnlab.errors import CnnlabError
from cnnlab.train.bench import alternating_rates, fixed_batch_step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="airbench94")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per layout")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    runs = {}
    for layout in ("channels_first", "channels_last"):
        model = create_model(args.model)
        images = torch.randn(args.batch_size, *model.pretrained_cfg.input_size)
        if layout == "channels_last":
            model = model.to(memory_format=torch.channels_last)
            images = images.contiguous(memory_format=torch.channels_last)
        labels = torch.randint(0, model.num_classes, (args.batch_size,))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        runs[layout] = (model, images, labels, optimizer)

    bf16 = args.precision == "bf16"
    steps = {layout: fixed_batch_step(*run, bf16=bf16) for layout, run in runs.items()}
    speed = alternating_rates(steps, args.batch_size, args.warmup, args.steps)
    print(f"{args.model}, batch {args.batch_size}, {args.precision}, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps:")
    for layout, value in speed.items():
        print(f"  {layout:15s} {value:8.1f} images/s")
    print(f"  channels_last / channels_first: {speed['channels_last'] / speed['channels_first']:.2f}x")


if __name__ == "__main__":
    try:
        main()
    except CnnlabError as error:  # an unknown model, say: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
