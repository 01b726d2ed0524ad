"""Model parallelism: a zoo model in two stages on two processes, with ``torch.distributed.pipelining``.

Lecture idea (model parallelism): when a model does not fit one device, its layers are split
across devices; the forward pass hands activations on, the backward pass hands their
gradients back. With the whole batch at once only one device works at a time, so the batch
is cut into M micro-batches that follow each other through the S stages: GPipe runs every
forward, then every backward; 1F1B alternates one forward and one backward once the
pipeline is full, so fewer activations wait in memory. A device still idles while the
pipeline fills and drains, the "bubble": (S-1)/(M+S-1) of a step when the stages take
equal time. Each micro-batch's mean loss counts 1/M, so a step is exactly the step of one
process accumulating the M micro-batches.

The split here is the one every zoo model has: ``forward_features`` on the first process,
``forward_head`` on the second (each process builds the model from the same seed and trains
only its stage's layers).
"""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import InMemoryLoader
from ..errors import CnnlabError
from ..registry import create_model
from .check_distributed import LEARNING_RATE, TOLERANCE_FLOOR, _train
from .distributed import DataParallel

SCHEDULES = ("gpipe", "1f1b")


class _Features(nn.Module):
    """Stage 0: the model's ``forward_features``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_features(x)


class _Head(nn.Module):
    """Stage 1: the model's ``forward_head``."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model.forward_head(x)


def bubble_fraction(stages: int, micro_batches: int) -> float:
    """The idle share of a pipelined step with equal stages: (S-1)/(M+S-1)."""
    return (stages - 1) / (micro_batches + stages - 1)


def _busy_seconds(module: nn.Module, example: torch.Tensor, labels: torch.Tensor | None, micro_batches: int) -> float:
    """The compute of this stage in one step, timed alone: M forwards and backwards of a micro-batch."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(micro_batches):
            output = module(example)
            loss = F.cross_entropy(output, labels) if labels is not None else output.sum()
            loss.backward()
        times.append(time.perf_counter() - started)
    module.zero_grad(set_to_none=True)
    return statistics.median(times)


def check_pipeline(model_name: str = "lenet5", micro_batches: int = 4, steps: int = 3, batch_size: int = 32,
                   seed: int = 0, log: Callable[[str], None] = print) -> list[dict]:
    """Under torchrun with 2 CPU processes: ``steps`` SGD steps of ``model_name`` in two stages with a GPipe
    and a 1F1B schedule, each against one process accumulating the same micro-batches, and the
    measured bubble against (S-1)/(M+S-1); rank 0 reports. Returns one result per schedule."""
    from torch.distributed.pipelining import PipelineStage, Schedule1F1B, ScheduleGPipe

    parallel = DataParallel.setup("cpu")
    if not parallel.enabled or parallel.world_size != 2:
        raise CnnlabError("the pipeline check runs in 2 processes: cnnlab check-distributed --pipeline --nproc 2")
    if batch_size % micro_batches or micro_batches < 1:
        raise CnnlabError(f"the batch of {batch_size} does not split into {micro_batches} equal micro-batches")
    rank, device, micro = parallel.rank, parallel.device, batch_size // micro_batches
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size * steps, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (batch_size * steps,), generator=generator)
    loader = InMemoryLoader(images, labels, batch_size, seed=seed, mean=0.5, std=0.25, device=device)

    def fresh() -> nn.Module:
        torch.manual_seed(seed)
        return create_model(model_name, num_classes=10, in_chans=3).to(device)

    results = []
    for name, schedule_class in zip(SCHEDULES, (ScheduleGPipe, Schedule1F1B)):
        model = fresh()
        example = torch.zeros(micro, 3, 32, 32, device=device)
        with torch.no_grad():
            features = model.forward_features(example)
            logits = model.forward_head(features)
        # The second stage receives activations that need their gradient sent back.
        features.requires_grad_(True)
        module = _Features(model) if rank == 0 else _Head(model)
        stage = PipelineStage(module, rank, 2, device, input_args=(example if rank == 0 else features,),
                              output_args=(features if rank == 0 else logits,))
        pipe = schedule_class(stage, n_microbatches=micro_batches, loss_fn=F.cross_entropy)
        busy = _busy_seconds(module, example if rank == 0 else features, None if rank == 0 else labels[:micro],
                             micro_batches)
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)
        walls = []
        for batch, targets in loader.epoch_batches(0):
            optimizer.zero_grad(set_to_none=True)
            torch.distributed.barrier()
            started = time.perf_counter()
            if rank == 0:
                pipe.step(batch)
            else:
                pipe.step(target=targets, losses=[])
            walls.append(time.perf_counter() - started)
            optimizer.step()
        reference = fresh()
        _train(reference, reference, loader, DataParallel(device), steps, accumulate=micro_batches)
        trained = dict(reference.named_parameters())
        # Each process compares the layers its stage trained (those with gradients).
        difference = torch.tensor([max(float((p.detach() - trained[n].detach()).abs().max())
                                       for n, p in model.named_parameters() if p.grad is not None)])
        wall = torch.tensor([statistics.median(walls), busy])
        torch.distributed.all_reduce(difference, op=torch.distributed.ReduceOp.MAX)
        gathered = [torch.zeros(2) for _ in range(2)]
        torch.distributed.all_gather(gathered, wall)
        step, slowest = max(float(g[0]) for g in gathered), max(float(g[1]) for g in gathered)
        results.append({"schedule": name, "difference": float(difference), "passed": float(difference) <= TOLERANCE_FLOOR,
                        "step_seconds": step, "busiest_stage_seconds": slowest,
                        "bubble": max(0.0, 1 - slowest / step), "bubble_formula": bubble_fraction(2, micro_batches)})
    parallel.close()
    if parallel.is_main:
        log(f"pipeline: {model_name} in 2 stages (forward_features | forward_head) on 2 processes, {micro_batches} "
            f"micro-batches of {micro}, {steps} SGD steps, against one process accumulating the same micro-batches:")
        for result in results:
            log(f"  {result['schedule']:<5} largest difference {result['difference']:.2e} "
                f"{'ok' if result['passed'] else 'FAIL'}; idle share of the busiest stage {result['bubble']:.0%} "
                f"({result['busiest_stage_seconds'] * 1e3:.1f} of {result['step_seconds'] * 1e3:.1f} ms per step; "
                f"(S-1)/(M+S-1) = {result['bubble_formula']:.0%} for equal stages)")
    return results
