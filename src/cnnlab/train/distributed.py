"""Data-parallel training on PyTorch's own engine: ``torch.distributed``, started by ``torchrun``.

Lecture idea (training at scale): data parallelism replicates the model on N workers, gives
each a slice of the batch and averages the gradients with an all-reduce, so distributed
training does not change gradient descent: the same loss, gradient and update as one worker
with the whole batch. :class:`DataParallel` is one process's part of that, for the
:class:`~cnnlab.train.Trainer`:

- it joins the process group ``torchrun`` set up (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``):
  gloo on CPUs, NCCL on GPUs, one GPU per process (``cuda:LOCAL_RANK``);
- it wraps the model in ``DistributedDataParallel`` (and, with ``sync_bn``, its batch norm in
  synchronised batch norm, so BN sees the global batch's statistics);
- it splits each process's share of the global batch into ``accumulate`` micro-batches and
  weights each micro-batch's mean loss by its share of the *global* batch, so the averaged
  gradient is the gradient of the global batch's mean loss, whatever the split;
- it makes the processes agree: on stopping (a signal may reach one of them), on a diverged
  loss, on the epoch's counts.

Without ``torchrun`` it is a single process and every method is the identity.
"""
from __future__ import annotations

import contextlib
import os
from datetime import timedelta
from typing import Callable, ContextManager, Iterator

import torch
from torch import nn

from ..device import resolve_device
from ..errors import CnnlabError, first_line

# How long a collective may wait for the other processes before it fails (instead of hanging
# forever when one of them died without torchrun noticing).
COLLECTIVE_TIMEOUT = timedelta(minutes=10)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, e.g. a container's or a job's share)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def launched_by_torchrun() -> bool:
    """Whether this process is one of a ``torchrun`` (or any ``env://``) launch."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def restart_count() -> int:
    """How many times torchrun has restarted this worker group (``--max-restarts``); 0 for the first start."""
    return int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0)


def check_batch_split(batch_size: int, world_size: int, accumulate: int = 1) -> None:
    """A global batch must split into ``world_size`` equal shares of ``accumulate`` equal micro-batches."""
    parts = world_size * accumulate
    if batch_size % parts:
        how = f"{world_size} processes" + (f" x {accumulate} accumulation steps" if accumulate > 1 else "")
        lower, upper = batch_size - batch_size % parts, batch_size - batch_size % parts + parts
        raise CnnlabError(f"the global batch_size {batch_size} does not split evenly into {how}; choose a batch "
                          f"size divisible by {parts}, e.g. {upper}" + (f" or {lower}" if lower else ""))


# ---------------------------------------------------------------------- synchronised batch norm on CPUs


class _AllReduceSum(torch.autograd.Function):
    """Sum a tensor over the processes, differentiably: the gradient of a sum is the sum of the gradients."""

    @staticmethod
    def forward(ctx, tensor):
        tensor = tensor.clone()
        torch.distributed.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        torch.distributed.all_reduce(grad)
        return grad


class SyncBatchNormCPU(nn.modules.batchnorm._BatchNorm):
    """Batch norm over the whole global batch, for CPU processes (gloo).

    ``torch.nn.SyncBatchNorm`` runs on GPUs only; this computes the same: the batch mean and
    variance over the images of every process (two all-reduces: the sums, then the squared
    deviations from the global mean), normalises with them, and updates the running
    statistics with the unbiased global variance, as BN does on one batch. Parameters,
    buffers and state_dict keys are those of ``BatchNorm2d``. In eval mode (running
    statistics) or in a single process it is ordinary batch norm.
    """

    def _check_input_dim(self, input):
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input):
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if not (self.training and distributed and torch.distributed.get_world_size() > 1):
            return super().forward(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([input.numel() / input.shape[1]], dtype=input.dtype, device=input.device)
        sums = _AllReduceSum.apply(torch.cat([input.sum(dims), count]))
        n = sums[-1]
        mean = sums[:-1] / n
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), factor)
                self.running_var.lerp_(var.detach() * n / (n - 1), factor)
        output = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            output = output * self.weight.view(shape) + self.bias.view(shape)
        return output


def convert_sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """``model`` with every BatchNorm layer synchronised over the processes: torch's
    ``SyncBatchNorm`` on GPUs, :class:`SyncBatchNormCPU` on CPUs (same parameters and buffers)."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    if isinstance(model, nn.modules.batchnorm._BatchNorm) and not isinstance(model, SyncBatchNormCPU):
        converted = SyncBatchNormCPU(model.num_features, model.eps, model.momentum, model.affine,
                                     model.track_running_stats)
        if model.affine:
            converted.weight, converted.bias = model.weight, model.bias
        for name in ("running_mean", "running_var", "num_batches_tracked"):
            setattr(converted, name, getattr(model, name))
        converted.train(model.training)
        return converted
    for name, child in model.named_children():
        model.add_module(name, convert_sync_batchnorm(child, device))
    return model


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


# ---------------------------------------------------------------------- one process of N


def _process_device(name: str, local_rank: int, world_size: int) -> torch.device:
    """The device of the process with ``local_rank``: ``cuda:LOCAL_RANK`` for ``auto``/``cuda`` on GPUs."""
    if name in ("auto", "cuda") and torch.cuda.is_available():
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise CnnlabError(f"process with LOCAL_RANK {local_rank} has no GPU of its own: this machine has {count}; "
                              f"start at most {count} processes per node (--nproc {count})")
        return torch.device("cuda", local_rank)
    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None and world_size > 1:
        raise CnnlabError(f"device {name!r}: under torchrun each process takes the GPU of its LOCAL_RANK; "
                          "set device to cuda or auto")
    if device.type == "mps":
        raise CnnlabError("torch.distributed has no backend for Apple's MPS; train on cpu or cuda")
    return device


def _restart_store(rank: int, world_size: int):
    """After torchrun restarted the workers, the store the new process group meets in, with keys of
    its own; ``None`` (torchrun's ``env://`` store as it is) on the first start.

    torchrun's agent keeps serving one store across restarts, and the new workers would read the
    dead group's keys as their own (gloo then connects to the addresses of the killed processes
    and fails), so each restart gets a prefix of its own."""
    if restart_count() == 0 or os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True":
        return None
    dist = torch.distributed
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world_size, is_master=False,
                          timeout=COLLECTIVE_TIMEOUT)
    return dist.PrefixStore(f"cnnlab/restart_{restart_count()}", store)


class DataParallel:
    """One process's part in data-parallel training (the whole of it without ``torchrun``).

    :meth:`setup` joins the process group when ``torchrun`` started the process. ``rank`` and
    ``world_size`` shard the training data (:func:`cnnlab.data.build_loader`); ``device`` is
    the process's device; :meth:`wrap` gives the module to train (DDP);
    :meth:`micro_batches` splits a step; :meth:`agree`, :meth:`sum` and
    :meth:`from_rank_zero` keep the processes' decisions the same.
    """

    def __init__(self, device: torch.device, rank: int = 0, world_size: int = 1, local_rank: int = 0,
                 local_world_size: int = 1, *, distributed: bool = False, owns_group: bool = False):
        self.device, self.rank, self.world_size = device, rank, world_size
        self.local_rank, self.local_world_size = local_rank, local_world_size
        self.enabled = distributed  # in a process group (even of one process: DDP then runs, for comparison)
        self.owns_group = owns_group
        self.ddp: nn.Module | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def setup(cls, device_name: str) -> "DataParallel":
        """Join the process group of a ``torchrun`` launch (gloo on CPUs, NCCL on GPUs), or use the
        one a script already set up; without either, a single process on ``device_name``."""
        dist = torch.distributed
        environment = {key: int(os.environ[key]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
                       if os.environ.get(key, "").isdigit()}
        if dist.is_available() and dist.is_initialized():
            rank, world = dist.get_rank(), dist.get_world_size()
            local_rank = environment.get("LOCAL_RANK", rank)
            device = _process_device(device_name, local_rank, world)
            return cls(device, rank, world, local_rank, environment.get("LOCAL_WORLD_SIZE", world), distributed=True)
        if not launched_by_torchrun():
            return cls(resolve_device(device_name))
        if not dist.is_available():
            raise CnnlabError("this PyTorch build has no torch.distributed; train in a single process")
        rank, world = environment["RANK"], environment["WORLD_SIZE"]
        local_rank = environment.get("LOCAL_RANK", 0)
        device = _process_device(device_name, local_rank, world)
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        try:
            dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT, store=_restart_store(rank, world),
                                    rank=rank, world_size=world, device_id=device if device.type == "cuda" else None)
        except (RuntimeError, ValueError) as error:
            where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
            raise CnnlabError(f"process {rank} of {world} could not join the process group at {where} "
                              f"({backend}): {first_line(error)}") from None
        return cls(device, rank, world, local_rank, environment.get("LOCAL_WORLD_SIZE", world), distributed=True,
                   owns_group=True)

    def close(self) -> None:
        """Leave the process group if this object joined it."""
        if self.owns_group and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.owns_group = False

    def threads(self, configured: int | None) -> int | None:
        """The CPU threads of this process: ``configured``; else, for CPU processes under torchrun, the
        cores shared out between the processes of this node (torchrun itself sets 1 per process)."""
        if configured is not None:
            return configured
        if self.enabled and self.device.type == "cpu":
            return max(1, usable_cores() // self.local_world_size)
        return None

    def prepare(self, model: nn.Module, sync_bn: bool, note: Callable[[str], None]) -> nn.Module:
        """``model`` with synchronised batch norm when ``sync_bn`` asks for it and there are several processes."""
        if not sync_bn:
            return model
        if self.world_size == 1:
            note("note: sync_bn has nothing to synchronise in a single process (its BN already sees the whole "
                 "batch); the BN layers stay as they are")
            return model
        if not has_batchnorm(model):
            note("note: sync_bn: this model has no batch norm layers; nothing to synchronise")
            return model
        return convert_sync_batchnorm(model, self.device)

    def wrap(self, model: nn.Module, forward: nn.Module, compile_mode: str | None) -> nn.Module:
        """The module that trains: ``forward`` in a single process; ``DistributedDataParallel(model)``
        (compiled as a whole when ``compile_mode``, as torch recommends) under torchrun."""
        if not self.enabled:
            return forward
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        self.ddp = DistributedDataParallel(model, device_ids=device_ids)
        return torch.compile(self.ddp, mode=compile_mode) if compile_mode else self.ddp

    def micro_batches(self, images: torch.Tensor, targets: torch.Tensor, global_count: int,
                      accumulate: int) -> Iterator[tuple[torch.Tensor, torch.Tensor, float, ContextManager]]:
        """This process's share of a global batch of ``global_count`` images as ``accumulate``
        micro-batches: ``(images, targets, weight, context)``. The micro-batch's mean loss times
        ``weight`` (``world_size x its images / global_count``), back-propagated in ``context``,
        adds its part of the global batch's mean-loss gradient; DDP's average over the processes
        does the rest. Only the last micro-batch's backward all-reduces (DDP's ``no_sync``).

        Every process makes the same number of micro-batches (synchronised BN runs a collective
        in each forward), fewer than ``accumulate`` only in a last batch too small for them."""
        pieces = min(accumulate, global_count // self.world_size)
        chunks = list(zip(images.tensor_split(pieces), targets.tensor_split(pieces)))
        for index, (chunk, chunk_targets) in enumerate(chunks):
            weight = self.world_size * chunk.shape[0] / global_count
            last = index == len(chunks) - 1
            context = self.ddp.no_sync() if self.ddp is not None and not last else contextlib.nullcontext()
            yield chunk, chunk_targets, weight, context

    @staticmethod
    def joined(parts: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean loss and the logits of a step's micro-batches ``[(loss, logits), ...]``, as one batch."""
        if len(parts) == 1:
            return parts[0]
        counts = [logits.shape[0] for _, logits in parts]
        loss = sum(loss.detach() * count for (loss, _), count in zip(parts, counts)) / sum(counts)
        return loss, torch.cat([logits.detach() for _, logits in parts])

    def agree(self, loss_sum: torch.Tensor, stop: bool) -> tuple[bool, bool]:
        """Whether every process's losses so far are finite, and whether any process was asked to stop:
        one small all-reduce, so all take the same decision at the same step (a stop or an error
        on one process alone would leave the others waiting in the next all-reduce)."""
        if not self.enabled:
            return bool(torch.isfinite(loss_sum)), stop
        flags = torch.stack([loss_sum.detach().float(), torch.tensor(float(stop), device=loss_sum.device)])
        torch.distributed.all_reduce(flags)
        return bool(torch.isfinite(flags[0])), bool(flags[1] > 0)

    def sum(self, values: list[float]) -> list[float]:
        """``values`` summed over the processes (the epoch's loss, correct and image counts)."""
        if not self.enabled:
            return values
        totals = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(totals)
        return totals.tolist()

    def from_rank_zero(self, value):
        """Rank 0's ``value`` on every process (e.g. the validation loss only rank 0 computed)."""
        if not self.enabled:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]
