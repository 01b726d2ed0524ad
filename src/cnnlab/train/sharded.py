"""Fully sharded data parallel: each of N processes keeps 1/N of the weights, gradients and optimiser state.

Lecture idea (training at scale, when the model does not fit one device): data parallelism
keeps a whole replica per device; fully sharded data parallelism (ZeRO-3, PyTorch's FSDP)
keeps only a 1/N shard of every parameter, of its gradient and of the optimiser's state per
device, gathers a layer's full weights just before it runs and frees them after, and
reduce-scatters the gradients so that each device updates its own shard. The step stays
that of one process with the whole batch. Here: ``torch.distributed.fsdp.fully_shard`` on
each top-level layer of a zoo model and on the model, the memory of each process counted,
and the weights after some SGD steps compared with one process's.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..data import InMemoryLoader
from ..errors import CnnlabError
from ..registry import create_model
from .check_distributed import LEARNING_RATE, TOLERANCE_FLOOR, _train
from .distributed import DataParallel


def _local_elements(tensors) -> int:
    """Elements held by this process: a sharded tensor's local shard, or the whole tensor."""
    return sum((t.to_local() if hasattr(t, "to_local") else t).numel() for t in tensors if torch.is_tensor(t))


def check_fully_sharded(model_name: str = "lenet5", steps: int = 3, batch_size: int = 32, seed: int = 0,
                        log: Callable[[str], None] = print) -> dict:
    """Under torchrun on CPUs: ``steps`` SGD steps of ``model_name`` fully sharded over the processes,
    each on its share of the global batch, against one process with the whole batch; with the
    parameters, gradients and optimiser state each process holds. Rank 0 reports."""
    from torch.distributed.fsdp import fully_shard

    parallel = DataParallel.setup("cpu")
    if not parallel.enabled:
        raise CnnlabError("the sharded check runs under torchrun: cnnlab check-distributed --fsdp --nproc 2")
    world, device = parallel.world_size, parallel.device
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (batch_size * steps, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (batch_size * steps,), generator=generator)

    def loader(shards: bool) -> InMemoryLoader:
        return InMemoryLoader(images, labels, batch_size, seed=seed, mean=0.5, std=0.25, device=device,
                              rank=parallel.rank if shards else 0, world_size=world if shards else 1)

    def fresh() -> nn.Module:
        torch.manual_seed(seed)
        return create_model(model_name, num_classes=10, in_chans=3).to(device)

    model = fresh()
    whole = sum(p.numel() for p in model.parameters())
    for child in model.children():  # each layer gathers its full weights only while it runs
        if any(True for _ in child.parameters()):
            fully_shard(child)
    fully_shard(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)
    gradients = 0
    for _, (batch, targets) in zip(range(steps), loader(shards=True).epoch_batches(0)):
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(batch), targets).backward()
        gradients = _local_elements(p.grad for p in model.parameters())
        optimizer.step()
    held = torch.tensor([_local_elements(model.parameters()), gradients,
                         _local_elements(v for state in optimizer.state.values() for v in state.values())],
                        dtype=torch.float64)
    full = {name: p.full_tensor().detach() for name, p in model.named_parameters()}  # a collective
    per_rank = [torch.zeros_like(held) for _ in range(world)]
    torch.distributed.all_gather(per_rank, held)
    result = None
    if parallel.is_main:
        reference = fresh()
        _train(reference, reference, loader(shards=False), DataParallel(device), steps)
        trained = dict(reference.named_parameters())
        difference = max(float((full[name] - trained[name].detach()).abs().max()) for name in full)
        # LeNet-5's float32 error is ~1e-8 (check-distributed); sharding adds no other change.
        result = {"model": model_name, "world_size": world, "parameters": whole, "difference": difference,
                  "passed": difference <= TOLERANCE_FLOOR,
                  "per_rank": [dict(zip(("parameters", "gradients", "optimizer_state"), map(int, row.tolist())))
                               for row in per_rank]}
    # Leave together: a process tearing its group down while rank 0 still trains the reference
    # was once seen to abort ("terminate called without an active exception") under load.
    torch.distributed.barrier()
    parallel.close()
    if result is not None:
        log(f"fully sharded: {model_name} ({whole:,} parameters) on {world} processes, {steps} SGD steps (momentum), "
            f"against one process with the whole batch: largest difference {result['difference']:.2e} "
            f"{'ok' if result['passed'] else 'FAIL'}")
        for rank, row in enumerate(result["per_rank"]):
            log(f"  rank {rank}: parameters {row['parameters']:,}, gradients {row['gradients']:,}, optimiser state "
                f"{row['optimizer_state']:,} elements ({row['parameters'] / whole:.0%} of the model's)")
    return result or {"passed": True}
