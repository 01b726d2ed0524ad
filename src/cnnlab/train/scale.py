"""``cnnlab scale-estimate``: data-parallel training past one machine, estimated on paper.

Lecture idea (training at scale): data parallelism adds one all-reduce of the gradients to
every step, and the linear scaling rule with a warm-up keeps the large global batch as
accurate as the small one (Goyal et al. 2017: ResNet-50 on ImageNet in one hour on 256 GPUs,
global batch 8k, about 90% scaling efficiency). The estimate, with its assumptions:

- the all-reduced bytes are the model's trainable parameters in fp32 (DDP reduces the
  gradients in their own dtype; fp32 master gradients under mixed precision);
- a ring all-reduce moves ``2 (N-1)/N x bytes`` through each link: at ``bandwidth`` it takes
  ``2 (N-1)/N x bytes / bandwidth``, plus ``2 (N-1)`` message latencies per bucket;
- DDP all-reduces the gradients in buckets (25 MB) as they become ready during the backward
  pass (taken as 2/3 of a step's compute, at an even pace), one bucket after another, so
  only the communication that does not fit under the rest of the backward pass is exposed,
  and at least the last bucket's;
- weak scaling: every GPU keeps its batch, so the global batch is ``N x batch``, a step takes
  compute + exposed communication, and the scaling efficiency is compute / step;
- the learning rate follows the linear scaling rule ``lr x global batch / reference batch``,
  with Goyal et al.'s 5-epoch linear warm-up once it is scaled above the base rate.
"""
from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..device import resolve_device
from ..errors import CnnlabError
from ..registry import create_model, model_info
from .optim import scaled_lr

BUCKET_BYTES = 25 * 2**20  # DistributedDataParallel's default bucket_cap_mb
BACKWARD_SHARE = 2 / 3  # of a step's compute: the backward pass costs about twice the forward
WARMUP_EPOCHS = 5  # Goyal et al.'s gradual warm-up
MAX_GPUS = 1024


@dataclass(frozen=True)
class ScalePoint:
    """The estimate for ``gpus`` processes (one per GPU)."""

    gpus: int
    global_batch: int
    lr: float
    warmup_epochs: int
    allreduce_seconds: float
    exposed_seconds: float
    step_seconds: float
    images_per_second: float
    efficiency: float


def ring_allreduce_seconds(nbytes: float, gpus: int, bandwidth: float, latency: float, buckets: int = 1) -> float:
    """A ring all-reduce of ``nbytes`` over ``gpus`` processes: ``2 (N-1)/N x bytes / bandwidth``
    (bytes/s) plus ``2 (N-1)`` latencies for each of ``buckets`` messages; 0 for one process."""
    if gpus == 1:
        return 0.0
    return 2 * (gpus - 1) / gpus * nbytes / bandwidth + 2 * (gpus - 1) * latency * buckets


def exposed_seconds(allreduce: float, backward: float, buckets: int) -> float:
    """Communication left after the backward pass when ``buckets`` equal buckets, ready at an even
    pace during ``backward`` seconds, are all-reduced one after another: the serial chain
    finishes ``max(allreduce - backward x (1 - 1/buckets), allreduce / buckets)`` after it."""
    if allreduce == 0.0:
        return 0.0
    return max(allreduce - backward * (1 - 1 / buckets), allreduce / buckets)


def gradient_bytes(model_name: str) -> int:
    """The bytes DDP all-reduces per step for ``model_name``: its trainable parameters in fp32."""
    model = create_model(model_name)
    return 4 * sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure_step_seconds(model_name: str, batch: int, device: str = "auto", steps: int = 5) -> float:
    """The median time of a forward, backward and SGD step of ``batch`` images at the model's
    input size on ``device``, after one warm-up step (what ``--measure`` uses)."""
    device = resolve_device(device)
    info = model_info(model_name)
    model = create_model(model_name).to(device)
    images = torch.randn(batch, *info.input_size, device=device)
    labels = torch.randint(0, info.num_classes, (batch,), device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    times = []
    for step in range(steps + 1):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        outputs = model(images)
        logits = outputs[0] if isinstance(outputs, (tuple, list)) else outputs
        F.cross_entropy(logits, labels).backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if step:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def estimate(nbytes: int, step_seconds: float, batch: int, gpus: int, *, bandwidth: float, latency: float = 10e-6,
             lr: float = 0.1, reference_batch: int = 256) -> ScalePoint:
    """The estimate for ``gpus`` processes, each computing a step of ``batch`` images in ``step_seconds``."""
    buckets = max(1, math.ceil(nbytes / BUCKET_BYTES))
    allreduce = ring_allreduce_seconds(nbytes, gpus, bandwidth, latency, buckets)
    exposed = exposed_seconds(allreduce, BACKWARD_SHARE * step_seconds, buckets)
    step = step_seconds + exposed
    global_batch = gpus * batch
    scaled = scaled_lr(lr, global_batch, reference_batch)
    return ScalePoint(gpus, global_batch, scaled, WARMUP_EPOCHS if scaled > lr else 0, allreduce, exposed, step,
                      global_batch / step, step_seconds / step)


def scale_table(nbytes: int, step_seconds: float, batch: int, gpus: int, **kwargs) -> list[ScalePoint]:
    """The estimates for 1, 2, 4, ... 1024 processes, and for ``gpus`` among them."""
    if not 1 <= gpus <= MAX_GPUS:
        raise CnnlabError(f"--gpus must lie in 1..{MAX_GPUS}, got {gpus}")
    if batch < 1:
        raise CnnlabError(f"--batch must be at least 1, got {batch}")
    if not step_seconds > 0:
        raise CnnlabError(f"--step-time must be a positive number of seconds, got {step_seconds}")
    if not kwargs.get("bandwidth", 1) > 0:
        raise CnnlabError(f"--bandwidth must be positive (GB/s), got {kwargs['bandwidth'] / 1e9:g}")
    counts = sorted({2**k for k in range(11)} | {gpus})
    return [estimate(nbytes, step_seconds, batch, n, **kwargs) for n in counts]


def assumptions(bandwidth: float, latency: float) -> list[str]:
    """The assumptions of :func:`estimate`, in words, for the output."""
    return [f"ring all-reduce of the fp32 gradients: 2(N-1)/N x bytes / {bandwidth / 1e9:g} GB/s per link, plus "
            f"2(N-1) x {latency * 1e6:g} us latency per {BUCKET_BYTES // 2**20} MB bucket",
            f"buckets all-reduced one after another as the backward pass ({BACKWARD_SHARE:.0%} of the compute) "
            "makes them ready; only what does not fit under it is added to the step (at least the last bucket)",
            "weak scaling: each GPU keeps its batch; efficiency = compute / (compute + exposed all-reduce); data "
            "loading, stragglers and hierarchical (in-node, then between nodes) reduction are left out",
            f"linear scaling rule for the learning rate, with a {WARMUP_EPOCHS}-epoch linear warm-up once it is "
            "scaled up (Goyal et al. 2017)"]


def command(args, console) -> None:
    """``cnnlab scale-estimate``: the table for N = 1 ... 1024, the chosen N, and the assumptions."""
    import json

    from rich.markup import escape
    from rich.table import Table

    if (args.step_time is None) == (not args.measure):
        raise CnnlabError("give the compute time of one step: --step-time SECONDS, or --measure to time it here")
    nbytes = gradient_bytes(args.model)
    step = args.step_time if args.step_time is not None else measure_step_seconds(args.model, args.batch, args.device)
    rows = scale_table(nbytes, step, args.batch, args.gpus, bandwidth=args.bandwidth * 1e9, latency=args.latency * 1e-6,
                       lr=args.lr, reference_batch=args.reference_batch)
    if args.json:
        print(json.dumps({"model": args.model, "gradient_bytes": nbytes, "step_seconds": step, "batch": args.batch,
                          "rows": [row.__dict__ for row in rows]}, indent=2))
        return
    source = "measured here" if args.measure else "given"
    table = Table(title=f"{args.model}: {nbytes / 1e6:.1f} MB of fp32 gradients, {step * 1e3:.1f} ms of compute per "
                        f"step of {args.batch} images per GPU ({source})")
    for column in ("GPUs", "global batch", "lr", "warm-up", "all-reduce ms", "exposed ms", "step ms", "images/s",
                   "efficiency"):
        table.add_column(column, justify="right")
    for row in rows:
        table.add_row(str(row.gpus), f"{row.global_batch:,}", f"{row.lr:.4g}",
                      f"{row.warmup_epochs} epochs" if row.warmup_epochs else "-", f"{row.allreduce_seconds * 1e3:.1f}",
                      f"{row.exposed_seconds * 1e3:.1f}", f"{row.step_seconds * 1e3:.1f}",
                      f"{row.images_per_second:,.0f}", f"{row.efficiency:.1%}",
                      style="bold" if row.gpus == args.gpus else None)
    console.print(table)
    chosen = next(row for row in rows if row.gpus == args.gpus)
    console.print(f"on {chosen.gpus} GPUs: {chosen.step_seconds * 1e3:.1f} ms per step, scaling efficiency "
                  f"{chosen.efficiency:.1%}, global batch {chosen.global_batch:,} at lr {chosen.lr:.4g}"
                  + (f" after a {chosen.warmup_epochs}-epoch warm-up" if chosen.warmup_epochs else ""), highlight=False)
    console.print("assumptions:\n" + "\n".join(f"  - {escape(line)}" for line in
                                               assumptions(args.bandwidth * 1e9, args.latency * 1e-6)), highlight=False)


def add_command(commands) -> None:
    """The ``scale-estimate`` subcommand, for the command line's parser."""
    scale = commands.add_parser("scale-estimate", help="data-parallel training on N GPUs, estimated: all-reduce time, "
                                                       "step time, scaling efficiency, the scaled learning rate")
    scale.add_argument("model", help="a registered model name (see `cnnlab models`)")
    scale.add_argument("--gpus", type=int, required=True, help="the number of GPUs (processes) to plan for")
    scale.add_argument("--bandwidth", type=float, default=12.5,
                       help="all-reduce bandwidth per link in GB/s (default 12.5: 100 Gbit/s)")
    scale.add_argument("--latency", type=float, default=10.0,
                       help="latency of one message in microseconds (default 10)")
    scale.add_argument("--step-time", dest="step_time", type=float, metavar="SECONDS",
                       help="compute time of one step (forward, backward, update) of --batch images on one GPU")
    scale.add_argument("--measure", action="store_true", help="time that step here instead (on --device)")
    scale.add_argument("--batch", type=int, default=32, help="images per GPU per step (default 32, as Goyal et al.)")
    scale.add_argument("--lr", type=float, default=0.1, help="learning rate at the reference batch (default 0.1)")
    scale.add_argument("--reference-batch", dest="reference_batch", type=int, default=256,
                       help="the batch --lr is for (default 256)")
    scale.add_argument("--device", default="auto", help="device --measure times on (default auto)")
    scale.add_argument("--json", action="store_true", help="print JSON instead of a table")
    scale.set_defaults(run=command)
