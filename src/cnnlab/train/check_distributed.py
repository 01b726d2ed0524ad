"""``cnnlab check-distributed``: data parallelism does not change gradient descent, checked where it runs.

Lecture idea (training at scale): N workers with B/N images each, their gradients averaged by
an all-reduce, take the step one worker takes with all B images. Here that is checked with
the pieces the trainer uses (the sharded in-memory loader with its augmentation, DDP,
synchronised BN, micro-batches): K SGD steps of N processes against one process with the
whole batch, and gradient accumulation against the whole batch, on a network without BN
(LeNet-5) and one with BN (ResNet-20 with synchronised BN). The weights agree up to float32
rounding: the same numbers are summed in another order (per process, then across them), so
the last bits differ and the difference grows with every step. In float64 they agree to
1e-14; in float32 the tolerance is the single process's own float32 error, measured (see
:data:`TOLERANCE_FACTOR`). As a control, ResNet-20 with each process's BN on its own share
differs by far more: without synchronised BN, data parallelism *is* a different algorithm
for BN networks.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..atomic import atomic_write_text
from ..data import InMemoryLoader
from ..errors import CnnlabError
from ..registry import create_model
from .distributed import DataParallel, check_batch_split, has_batchnorm

# The two ways may differ by float32 rounding: the same sums taken in another order. How much
# that is depends on the network: BN's backward pass subtracts nearly equal numbers, so a
# rounding difference of 1e-7 grows to 1e-6 in one step of ResNet-20 and to 1e-3 in four, in a
# single process too (its float32 weights against the same steps in float64). The tolerance is
# that error of the single process itself, measured, times TOLERANCE_FACTOR, and at least
# TOLERANCE_FLOOR (float32's resolution at weights of order 1).
TOLERANCE_FACTOR = 2.0
TOLERANCE_FLOOR = 1e-7
AUGMENT = "flip, crop(pad=4)"  # the per-image random draws must follow the images to their process
LEARNING_RATE = 0.05


def _train(model: nn.Module, forward: nn.Module, loader: InMemoryLoader, parallel: DataParallel, steps: int,
           accumulate: int = 1) -> nn.Module:
    """``steps`` SGD steps with momentum, as the trainer takes them (micro-batches weighted by their
    share of the global batch; DDP's average over the processes)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)
    model.train()
    for _, (images, targets) in zip(range(steps), loader.epoch_batches(0)):
        optimizer.zero_grad(set_to_none=True)
        for chunk, chunk_targets, weight, context in parallel.micro_batches(images, targets, loader.batch_size,
                                                                            accumulate):
            with context:
                (F.cross_entropy(forward(chunk), chunk_targets) * weight).backward()
        optimizer.step()
    return model


def _largest_difference(a: nn.Module, b: nn.Module) -> float:
    """The largest absolute difference between two models' weights and BN statistics."""
    second = b.state_dict()
    return max(float((tensor - second[name]).abs().max()) for name, tensor in a.state_dict().items()
               if tensor.is_floating_point())


def _replica_spread(model: nn.Module, parallel: DataParallel) -> float:
    """The largest difference between this process's parameters and rank 0's, over all processes
    (BN statistics of unsynchronised BN differ by design: each process keeps its own share's)."""
    flat = torch.cat([p.detach().flatten().float() for p in model.parameters()])
    reference = flat.clone()
    torch.distributed.broadcast(reference, src=0)
    spread = (flat - reference).abs().max().reshape(1)
    torch.distributed.all_reduce(spread, op=torch.distributed.ReduceOp.MAX)
    return float(spread)


def check_distributed(steps: int = 5, batch_size: int = 64, device: str = "auto", seed: int = 0,
                      log: Callable[[str], None] = print) -> dict:
    """Run the check in this process, one of a ``torchrun`` launch (rank 0 reports); return the
    results: ``{"cases": [{"name", "difference", "tolerance", "passed", ...}], "passed": bool, ...}``."""
    parallel = DataParallel.setup(device)
    if not parallel.enabled:
        raise CnnlabError("check-distributed runs under torchrun: cnnlab check-distributed --nproc 2 (or "
                          "torchrun --nproc-per-node 2 -m cnnlab check-distributed)")
    check_batch_split(batch_size, parallel.world_size, 2)  # shares of the batch, and the accumulation's halves
    world, share = parallel.world_size, batch_size // parallel.world_size
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size * steps, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (batch_size * steps,), generator=generator)

    def loader(shards: bool = False, dtype: torch.dtype = torch.float32) -> InMemoryLoader:
        return InMemoryLoader(images, labels, batch_size, augment=AUGMENT, device=parallel.device, seed=seed,
                              mean=0.5, std=0.25, dtype=dtype, rank=parallel.rank if shards else 0,
                              world_size=world if shards else 1)

    def fresh(name: str, dtype: torch.dtype = torch.float32) -> nn.Module:
        torch.manual_seed(seed)
        return create_model(name, num_classes=10, in_chans=3).to(parallel.device, dtype)

    single = DataParallel(parallel.device)

    def one_process(name: str, dtype: torch.dtype = torch.float32, accumulate: int = 1) -> nn.Module:
        model = fresh(name, dtype)
        return _train(model, model, loader(dtype=dtype), single, steps, accumulate)

    cases, references, tolerances = [], {}, {}
    runs = [("lenet5", False, f"{world} processes x batch {share} against 1 x {batch_size}, LeNet-5 (no BN)"),
            ("resnet20", True, f"{world} processes x batch {share} against 1 x {batch_size}, ResNet-20 with "
                               "synchronised BN"),
            ("resnet20", False, f"control: ResNet-20 with each process's own BN (statistics of {share} images, "
                                f"not {batch_size})")]
    for name, sync_bn, title in runs:
        model = parallel.prepare(fresh(name), sync_bn, note=lambda line: None)
        _train(model, parallel.wrap(model, model, None), loader(shards=True), parallel, steps)
        spread = _replica_spread(model, parallel)
        if not parallel.is_main:
            continue
        if name not in references:
            references[name] = one_process(name)
            # float32's own rounding error here: the single process against the same steps in float64.
            error = _largest_difference(references[name], one_process(name, torch.float64))
            tolerances[name] = max(TOLERANCE_FLOOR, TOLERANCE_FACTOR * error)
        difference, tolerance = _largest_difference(model, references[name]), tolerances[name]
        control = not sync_bn and has_batchnorm(model)
        cases.append({"name": title, "difference": difference, "tolerance": tolerance, "control": control,
                      # every process must hold the same parameters after every step
                      "passed": spread == 0.0 and (difference > tolerance if control else difference <= tolerance),
                      "note": f"the {world} replicas' parameters differ by {spread:.1e}"})
        if name == "lenet5":
            accumulated = one_process(name, accumulate=2)
            difference = _largest_difference(accumulated, references[name])
            cases.append({"name": f"gradient accumulation, 2 x {batch_size // 2} against 1 x {batch_size}, LeNet-5",
                          "difference": difference, "tolerance": tolerance, "control": False,
                          "passed": difference <= tolerance, "note": ""})
    result = {"steps": steps, "batch_size": batch_size, "world_size": world, "backend": torch.distributed.get_backend(),
              "device": str(parallel.device), "cases": cases, "passed": all(case["passed"] for case in cases)}
    parallel.close()
    if parallel.is_main:
        log(f"{steps} SGD steps (lr {LEARNING_RATE}, momentum 0.9), augmentation {AUGMENT!r}, {world} processes "
            f"({result['backend']} on {result['device']}): the largest difference of any weight or BN statistic, "
            f"against a tolerance of {TOLERANCE_FACTOR:g} x the single process's own float32 error (its distance "
            f"from the same steps in float64), at least {TOLERANCE_FLOOR:g}:")
        for case in cases:
            if case["control"]:
                verdict = "differs, as it should" if case["passed"] else "FAIL: should differ"
            else:
                verdict = "ok" if case["passed"] else "FAIL"
            extra = f"; {case['note']}" if case["note"] else ""
            log(f"  {case['difference']:9.2e} (tolerance {case['tolerance']:.1e})  {verdict:<22} {case['name']}{extra}")
        log("data-parallel training here is the same algorithm as one process with the whole batch" if result["passed"]
            else "FAILED: data-parallel training here does not reproduce the single-process steps")
    return result


def command(args, console) -> int:
    """``cnnlab check-distributed``: start ``--nproc`` processes through torchrun, or be one of them;
    exit status 0 when every case passes, 1 otherwise."""
    from rich.markup import escape

    from .distributed import launched_by_torchrun
    from .launch import check_nproc, launch
    from .logger import is_main_process

    if args.steps < 1:
        raise CnnlabError(f"--steps must be at least 1, got {args.steps}")
    if not launched_by_torchrun():
        if args.towers and args.nproc != 2:
            raise CnnlabError(f"AlexNet's split has two towers, one per process: use --nproc 2, not {args.nproc}")
        check_nproc(args.nproc, args.device)
        return launch(list(args.argv), args.nproc)
    log = lambda line: console.print(escape(line), highlight=False)  # noqa: E731
    if args.batch_size is None:  # AlexNet at 227x227 in float64 is slow at 64 images a step
        args.batch_size = 4 if args.towers else 64
    if args.towers:
        from .towers import check_towers

        result = check_towers(steps=args.steps, batch_size=args.batch_size, image_size=args.image_size, log=log)
    elif args.fsdp:
        from .sharded import check_fully_sharded

        result = check_fully_sharded(steps=args.steps, batch_size=args.batch_size, log=log)
    elif args.pipeline:
        from .pipeline import check_pipeline

        cases = check_pipeline(micro_batches=args.micro_batches, steps=args.steps, batch_size=args.batch_size, log=log)
        result = {"pipeline": cases, "passed": all(case["passed"] for case in cases)}
    else:
        result = check_distributed(steps=args.steps, batch_size=args.batch_size, device=args.device, log=log)
    if not is_main_process():
        return 0
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(result, indent=2) + "\n")
    return 0 if result["passed"] else 1


def add_command(commands) -> None:
    """The ``check-distributed`` subcommand, for the command line's parser."""
    check = commands.add_parser("check-distributed", help="data-parallel training against one process with the whole "
                                                          "batch: the largest weight difference after K steps")
    check.add_argument("--nproc", type=int, default=2, help="processes, started by torchrun (default 2)")
    check.add_argument("--steps", type=int, default=5, help="SGD steps compared (default 5)")
    check.add_argument("--batch-size", dest="batch_size", type=int,
                       help="the global batch (default 64; 4 with --towers)")
    check.add_argument("--device", default="cpu", help="cpu (gloo; default) or cuda (NCCL, one GPU per process)")
    check.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    check.add_argument("--pipeline", action="store_true",
                       help="model parallelism instead: LeNet-5 in two stages (GPipe and 1F1B) against one process, "
                            "and the pipeline's idle share against (S-1)/(M+S-1); 2 CPU processes")
    check.add_argument("--micro-batches", dest="micro_batches", type=int, default=4,
                       help="micro-batches of the pipeline (default 4)")
    check.add_argument("--fsdp", action="store_true",
                       help="fully sharded data parallel instead (fully_shard): the weights, gradients and optimiser "
                            "state each CPU process holds, and the weights against one process")
    check.add_argument("--towers", action="store_true",
                       help="AlexNet's two-GPU split instead: one tower per CPU process against alexnet_paper's grouped "
                            "convolutions in one (float64), forward and after --steps SGD steps; 2 processes")
    check.add_argument("--image-size", dest="image_size", type=int, default=227,
                       help="input size for --towers (default 227, the paper's)")
    check.set_defaults(run=command)
