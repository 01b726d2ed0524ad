"""Data parallelism on this machine: N processes x 1 thread against 1 process x N threads, same global batch.

Both train the same model with SGD on the same global batch of CIFAR-sized images
(synthetic: the data path is not what is measured here). The N processes are started by
torchrun's machinery (``python -m torch.distributed.run --standalone``); DDP all-reduces the
gradients with gloo, in its default 25 MB buckets, overlapped with the backward pass.
Printed, as medians over the timed steps: images/s of each way and their ratio, and the
all-reduce's share of a DDP step (a step timed as trained, and again under DDP's
``no_sync()``, which skips the all-reduce: share = 1 - no_sync / synced); and, as a check of
``cnnlab scale-estimate``, its step time predicted from the step without the all-reduce and
the link's bandwidth and latency measured by lone all-reduces, against the DDP step measured.

With ``--gpu`` (on a CUDA machine) it measures instead DDP's overhead on one GPU:
``torchrun --nproc-per-node 1`` (NCCL) against plain training on the same GPU.

    python benchmarks/bench_distributed.py [--model resnet20] [--batch-size 128] [--nproc 2] [--steps 30]
    python benchmarks/bench_distributed.py --gpu [--model resnet50 --image-size 224 --batch-size 64]

The two ways share the machine's cores: run it on a quiet machine, and quote the ratio.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext

import torch
import torch.nn.functional as F

import cnnlab
from cnnlab import create_model
from cnnlab.train.scale import estimate


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(model, forward, batch_size, image_size, device, warmup, steps, context=nullcontext):
    """Median seconds of an SGD step (forward, backward, update) on a fixed random batch."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(batch_size, 3, image_size, image_size, generator=generator).to(device)
    labels = torch.randint(0, 10, (batch_size,), generator=generator).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    times = []
    for step in range(warmup + steps):
        synchronize(device)
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        with context():
            F.cross_entropy(forward(images), labels).backward()
        optimizer.step()
        synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def time_allreduce(tensor, device, warmup, steps):
    """Median seconds of one all-reduce of ``tensor`` among the processes."""
    times = []
    for step in range(warmup + steps):
        torch.distributed.barrier()
        synchronize(device)
        started = time.perf_counter()
        torch.distributed.all_reduce(tensor)
        synchronize(device)
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def predicted_step(ddp: dict) -> tuple[float, float, float]:
    """``cnnlab scale-estimate``'s DDP step for the measured compute (the ``no_sync`` step) and the
    link measured by the lone all-reduces: latency from one number's, bandwidth from the rest."""
    world, nbytes = ddp["world_size"], ddp["gradient_bytes"]
    latency = ddp["allreduce_one_number"] / (2 * (world - 1))
    bandwidth = 2 * (world - 1) / world * nbytes / max(ddp["allreduce"] - ddp["allreduce_one_number"], 1e-9)
    point = estimate(nbytes, ddp["no_sync_step"], ddp["batch_per_process"], world, bandwidth=bandwidth,
                     latency=latency)
    return point.step_seconds, bandwidth, latency


def worker(args) -> None:
    """One process of the torchrun launch: DDP steps, then the same steps without the all-reduce."""
    from torch.nn.parallel import DistributedDataParallel

    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if args.gpu else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl" if args.gpu else "gloo")
    world = torch.distributed.get_world_size()
    if not args.gpu:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, in_chans=3).to(device)
    ddp = DistributedDataParallel(model, device_ids=[device.index] if args.gpu else None)
    share = args.batch_size // world
    synced = time_steps(model, ddp, share, args.image_size, device, args.warmup, args.steps)
    unsynced = time_steps(model, ddp, share, args.image_size, device, args.warmup, args.steps, ddp.no_sync)
    nbytes = sum(p.numel() * p.element_size() for p in model.parameters())
    # The all-reduce alone, for scale-estimate's inputs: one message of the gradients' size, and
    # one of a single number (the latency).
    whole, tiny = (time_allreduce(torch.zeros(n, device=device), device, args.warmup, args.steps)
                   for n in (nbytes // 4, 1))
    if torch.distributed.get_rank() == 0:
        with open(args.result, "w") as handle:
            json.dump({"step": synced, "no_sync_step": unsynced, "world_size": world, "gradient_bytes": nbytes,
                       "allreduce": whole, "allreduce_one_number": tiny, "batch_per_process": share}, handle)
    torch.distributed.destroy_process_group()


def launch(args, nproc: int, threads: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        result = os.path.join(folder, "result.json")
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                   __file__, "--worker", "--result", result, "--model", args.model, "--batch-size",
                   str(args.batch_size), "--image-size", str(args.image_size), "--steps", str(args.steps),
                   "--warmup", str(args.warmup), "--threads", str(threads)] + (["--gpu"] if args.gpu else [])
        subprocess.run(command, check=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        with open(result) as handle:
            return json.load(handle)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--batch-size", type=int, default=128, help="the global batch (default 128)")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--nproc", type=int, default=2, help="processes, against one process with as many threads")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--gpu", action="store_true", help="DDP on one GPU against plain training on it")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs; {args.model}, global batch {args.batch_size} of 3x{args.image_size}x"
          f"{args.image_size}, {args.steps} timed steps after {args.warmup}")
    if args.gpu:
        device = torch.device("cuda")
        torch.manual_seed(0)
        model = create_model(args.model, num_classes=10, in_chans=3).to(device)
        plain = time_steps(model, model, args.batch_size, args.image_size, device, args.warmup, args.steps)
        ddp = launch(args, 1, 1)
        print(f"plain training on {torch.cuda.get_device_name()}: {args.batch_size / plain:,.0f} images/s")
        print(f"DDP, 1 process (NCCL): {args.batch_size / ddp['step']:,.0f} images/s; overhead "
              f"{ddp['step'] / plain - 1:+.1%}; all-reduce share of a step {1 - ddp['no_sync_step'] / ddp['step']:.1%}")
        return
    torch.set_num_threads(args.nproc)
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, in_chans=3)
    single = time_steps(model, model, args.batch_size, args.image_size, torch.device("cpu"), args.warmup, args.steps)
    ddp = launch(args, args.nproc, 1)
    print(f"1 process x {args.nproc} threads:   {args.batch_size / single:8,.0f} images/s ({single * 1e3:.1f} ms/step)")
    print(f"{args.nproc} processes x 1 thread:   {args.batch_size / ddp['step']:8,.0f} images/s "
          f"({ddp['step'] * 1e3:.1f} ms/step; gloo all-reduce of {ddp['gradient_bytes'] / 1e6:.1f} MB of gradients)")
    print(f"processes / threads: {single / ddp['step']:.2f}x; all-reduce share of a DDP step: "
          f"{1 - ddp['no_sync_step'] / ddp['step']:.1%} (step without it: {ddp['no_sync_step'] * 1e3:.1f} ms)")
    step, bandwidth, latency = predicted_step(ddp)
    print(f"scale-estimate from the step without the all-reduce and a lone all-reduce of the gradients "
          f"({ddp['allreduce'] * 1e3:.1f} ms; {bandwidth / 1e9:.2f} GB/s, {latency * 1e6:.0f} us latency): "
          f"{step * 1e3:.1f} ms per DDP step against {ddp['step'] * 1e3:.1f} ms measured "
          f"({step / ddp['step'] - 1:+.1%})")


if __name__ == "__main__":
    main()
