"""What batch normalisation costs in a training step: the model against itself without BN.

    python benchmarks/bench_norm_share.py --model resnet20 --batch-size 128 --steps 20

Lecture idea (hardware efficiency): a CNN's step is not all convolution. BN reads and
writes every activation several times (statistics, normalisation, and twice as many passes
backward) and does little arithmetic, so on a CPU it is bound by memory bandwidth. This
times training steps of the zoo model as built and of a copy whose every ``BatchNorm2d`` is
an identity (not a net anyone would train: a bound on what the fastest possible BN, fused
into its neighbours, could save). The two alternate step by step after a warm-up, so that
machine noise hits both alike; synthetic batches, SGD with momentum, fp32 unless
``--precision bf16``, channels-last unless ``--channels-first``.

``--fused`` adds a third variant: the model with its BN -> ReLU chains run as one kernel
(cnnlab.layers.fused_bn_relu, what the trainer's ``fuse_bn_relu: auto`` does in a CPU fp32
channels-last run), so the saving the fused kernel actually gets sits beside the bound.
"""
from __future__ import annotations

import argparse

import torch
import torch.nn as nn

from cnnlab import create_model
from cnnlab.errors import CnnlabError
from cnnlab.layers.fused_bn_relu import fuse_bn_relu, kernel_status
from cnnlab.train.bench import alternating_rates, fixed_batch_step


def without_batch_norm(model: nn.Module) -> int:
    """Replace every ``BatchNorm2d`` of ``model`` by ``nn.Identity`` in place; returns how many."""
    replaced = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.BatchNorm2d):
                setattr(parent, name, nn.Identity())
                replaced += 1
    return replaced


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--channels-first", action="store_true", help="keep the default NCHW memory format")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--fused", action="store_true", help="also time the model with BN+ReLU fused")
    args = parser.parse_args(argv)
    if args.fused and not kernel_status(print)[0]:
        raise SystemExit(f"error: {kernel_status()[1]}")
    if args.threads:
        torch.set_num_threads(args.threads)
    memory_format = torch.contiguous_format if args.channels_first else torch.channels_last
    torch.manual_seed(0)

    runs = {}
    for variant in ("with BN", "fused BN+ReLU", "without BN") if args.fused else ("with BN", "without BN"):
        model = create_model(args.model)
        if variant == "without BN" and without_batch_norm(model) == 0:
            raise SystemExit(f"{args.model} has no BatchNorm2d to take out")
        if variant == "fused BN+ReLU" and fuse_bn_relu(model) == 0:
            raise SystemExit(f"{args.model} has no BN -> ReLU chain to fuse")
        model = model.to(memory_format=memory_format)
        images = torch.randn(args.batch_size, *model.pretrained_cfg.input_size).contiguous(memory_format=memory_format)
        labels = torch.randint(0, model.num_classes, (args.batch_size,))
        # A small learning rate keeps the BN-free copy from diverging during the timed steps.
        optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        runs[variant] = (model, images, labels, optimizer)

    bf16 = args.precision == "bf16"
    steps = {variant: fixed_batch_step(*run, bf16=bf16) for variant, run in runs.items()}
    speed = alternating_rates(steps, args.batch_size, args.warmup, args.steps)
    layout = "channels_first" if args.channels_first else "channels_last"
    print(f"{args.model}, batch {args.batch_size}, {args.precision}, {layout}, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps:")
    for variant, value in speed.items():
        print(f"  {variant:13s} {value:8.1f} images/s")
    share = 1 - speed["with BN"] / speed["without BN"]
    print(f"  BN's share of the step: {share:.1%} (without / with: {speed['without BN'] / speed['with BN']:.2f}x)")
    if args.fused:
        print(f"  fused / with: {speed['fused BN+ReLU'] / speed['with BN']:.3f}x")
    return speed


if __name__ == "__main__":
    try:
        main()
    except CnnlabError as error:  # an unknown model, say: one line, not a traceback
        raise SystemExit(f"error: {error}") from None
