"""AlexNet's two-GPU split run on two processes, against the grouped convolutions that compute it.

Lecture idea (model parallelism; Krizhevsky et al. 2012, section 3.2): AlexNet did not fit
one 3 GB GTX 580, so half of every layer's kernels lived on each of two GPUs, and the GPUs
communicated only in certain layers: CONV2, CONV4 and CONV5 see only the maps on their own
GPU, CONV3 and the fully-connected layers see all of them. Here one process plays one GPU:
it holds half of every layer (a *tower*), and the two exchange activations where the
paper's GPUs did, before CONV3, FC6, FC7 and FC8 (an all-gather, whose backward pass sends
the gradients back). The zoo's ``alexnet_paper`` writes the same network in one process with
grouped convolutions (``groups=2`` on CONV2/4/5). The check: the towers, cut from the grouped
model's weights, give its logits, and some SGD steps of both leave the same weights.

Local response normalisation sums over the 5 neighbouring maps of the layer's 96 (or 256),
as the paper's formula reads, so the 2 maps on either side of the tower boundary need their
neighbours from the other process: each LRN first swaps a halo of 2 maps.

The comparison runs in float64, where the two ways differ only in the order of their sums
(about 1e-16 relative); dropout is off, because the two ways would draw different masks.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..registry import create_model
from .check_distributed import _largest_difference
from .distributed import DataParallel

TOWERS = 2
TOLERANCE = 1e-12  # float64: the two ways differ by the order of their sums only (~1e-17 here)
LEARNING_RATE = 0.01


def _half_conv(conv: nn.Conv2d, tower: int) -> nn.Conv2d:
    """This tower's half of ``conv``'s kernels: with ``groups=2`` it sees only its own tower's
    input maps, with ``groups=1`` all of them."""
    out = conv.out_channels // TOWERS
    half = nn.Conv2d(conv.in_channels // conv.groups, out, conv.kernel_size, conv.stride, conv.padding,
                     dtype=conv.weight.dtype)
    with torch.no_grad():
        half.weight.copy_(conv.weight[tower * out:(tower + 1) * out])
        half.bias.copy_(conv.bias[tower * out:(tower + 1) * out])
    return half


def _half_linear(linear: nn.Linear, tower: int) -> nn.Linear:
    """This tower's half of ``linear``'s neurons, each connected to all of the previous layer."""
    out = linear.out_features // TOWERS
    half = nn.Linear(linear.in_features, out, dtype=linear.weight.dtype)
    with torch.no_grad():
        half.weight.copy_(linear.weight[tower * out:(tower + 1) * out])
        half.bias.copy_(linear.bias[tower * out:(tower + 1) * out])
    return half


class _GatherTowers(torch.autograd.Function):
    """All-gather along the channels (dim 1); backward: the sum of both processes' gradients for
    this process's part (an all-reduce, then this tower's slice)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, tower: int) -> torch.Tensor:
        parts = [torch.empty_like(x) for _ in range(TOWERS)]
        torch.distributed.all_gather(parts, x)
        ctx.tower, ctx.width = tower, x.shape[1]
        return torch.cat(parts, dim=1)

    @staticmethod
    def backward(ctx, gradient: torch.Tensor):
        gradient = gradient.contiguous().clone()
        torch.distributed.all_reduce(gradient)
        return gradient.narrow(1, ctx.tower * ctx.width, ctx.width), None


class AlexNetTower(nn.Module):
    """One of AlexNet's two towers, cut from a grouped ``alexnet_paper``; run beside the other
    tower's process in a process group of two. ``forward`` returns the logits of all classes
    (each tower computes half of them), and counts the activations this process sends."""

    def __init__(self, grouped: nn.Module, tower: int, halo: bool = True):
        super().__init__()
        self.halo = halo  # False: each tower normalises its own maps only (a control: not the grouped model)
        features, classifier = grouped.features, grouped.classifier
        self.tower = tower
        self.conv1, self.norm1 = _half_conv(features[0], tower), features[3]
        self.conv2, self.norm2 = _half_conv(features[4], tower), features[7]
        self.conv3, self.conv4, self.conv5 = (_half_conv(features[i], tower) for i in (8, 10, 12))
        self.pool, self.avgpool = features[2], grouped.avgpool
        self.fc6, self.fc7, self.fc8 = (_half_linear(classifier[i], tower) for i in (0, 3, 6))
        self.elements_sent = 0

    def _gather(self, x: torch.Tensor) -> torch.Tensor:
        """Both towers' maps (or neurons), in the grouped model's order: where the paper's GPUs talked."""
        self.elements_sent += x.numel()
        return _GatherTowers.apply(x.contiguous(), self.tower)

    def _normalise(self, x: torch.Tensor, norm: nn.LocalResponseNorm) -> torch.Tensor:
        """LRN across the tower boundary: borrow the other tower's ``size // 2`` nearest maps."""
        if not self.halo:
            return norm(x)
        halo = norm.size // 2
        edge = x[:, -halo:] if self.tower == 0 else x[:, :halo]  # what the other tower needs of ours
        self.elements_sent += edge.numel()
        both = _GatherTowers.apply(edge.contiguous(), self.tower)
        if self.tower == 0:
            return norm(torch.cat([x, both[:, halo:]], dim=1))[:, :-halo]
        return norm(torch.cat([both[:, :halo], x], dim=1))[:, halo:]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self._normalise(self.pool(F.relu(self.conv1(images))), self.norm1)  # own 48 maps
        x = self._normalise(self.pool(F.relu(self.conv2(x))), self.norm2)  # own 128, from own 48
        x = F.relu(self.conv3(self._gather(x)))  # 192 from all 256
        x = self.pool(F.relu(self.conv5(F.relu(self.conv4(x)))))  # own 192 -> own 128
        x = F.relu(self.fc6(self._gather(torch.flatten(self.avgpool(x), 1))))
        x = F.relu(self.fc7(self._gather(x)))
        return self._gather(self.fc8(self._gather(x)))


def check_towers(steps: int = 2, batch_size: int = 4, image_size: int = 227, num_classes: int = 10, seed: int = 0,
                 log: Callable[[str], None] = print) -> dict:
    """Under torchrun with 2 CPU processes: AlexNet's towers against the grouped model, forward and
    after ``steps`` SGD steps (momentum, weight decay). Rank 0 reports; returns the results."""
    parallel = DataParallel.setup("cpu")
    if not parallel.enabled or parallel.world_size != TOWERS:
        raise CnnlabError("AlexNet's split has two towers, one per process: cnnlab check-distributed --towers --nproc 2")
    if num_classes % TOWERS:
        raise CnnlabError(f"the towers split FC8's neurons in two: the class count must be even, got {num_classes}")
    torch.manual_seed(seed)
    grouped = create_model("alexnet_paper", num_classes=num_classes, dropout=0.0).double()
    tower = AlexNetTower(grouped, parallel.rank)
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(steps, batch_size, 3, image_size, image_size, generator=generator, dtype=torch.float64)
    labels = torch.randint(0, num_classes, (steps, batch_size), generator=generator)

    grouped.train()
    tower.train()
    with torch.no_grad():
        logits = grouped(images[0])
        forward = float((tower(images[0]) - logits).abs().max())
        sent_forward = 4 * tower.elements_sent / batch_size  # bytes per image in float32, as AlexNet trained
        control = float((AlexNetTower(grouped, parallel.rank, halo=False)(images[0]) - logits).abs().max())
    initial = {name: tensor.clone() for name, tensor in tower.state_dict().items()}
    optimizers = [torch.optim.SGD(m.parameters(), lr=LEARNING_RATE, momentum=0.9, weight_decay=5e-4)
                  for m in (grouped, tower)]
    for step in range(steps):
        for optimizer in optimizers:
            optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(grouped(images[step]), labels[step]).backward()
        # Both processes compute the same loss from the gathered logits; the all-gathers' backward
        # sums the two processes' gradients, so each takes half.
        (F.cross_entropy(tower(images[step]), labels[step]) / TOWERS).backward()
        for optimizer in optimizers:
            optimizer.step()
    # Each process trained the same grouped model (same seed, same data): compare its half.
    moved = max(float((tensor - initial[name]).abs().max()) for name, tensor in tower.state_dict().items())
    measured = torch.tensor([forward, _largest_difference(tower, AlexNetTower(grouped, parallel.rank)), control, moved],
                            dtype=torch.float64)
    torch.distributed.all_reduce(measured, op=torch.distributed.ReduceOp.MAX)
    held = torch.tensor([sum(p.numel() for p in tower.parameters())], dtype=torch.float64)
    per_rank = [torch.zeros_like(held) for _ in range(TOWERS)]
    torch.distributed.all_gather(per_rank, held)
    parallel.close()
    forward, trained, control, moved = measured.tolist()
    whole = sum(p.numel() for p in grouped.parameters())
    result = {"model": "alexnet_paper", "image_size": image_size, "batch_size": batch_size, "steps": steps,
              "forward_difference": forward, "weight_difference": trained, "tolerance": TOLERANCE,
              "largest_weight_change": moved, "control_without_halo": control,
              "parameters": whole, "per_rank_parameters": [int(row) for row in per_rank],
              "bytes_sent_per_image_forward": sent_forward,
              "passed": forward <= TOLERANCE and trained <= TOLERANCE and control > TOLERANCE}
    if parallel.is_main:
        verdict = "ok" if result["passed"] else "FAIL"
        log(f"AlexNet's two towers on {TOWERS} processes (gloo, float64, dropout off) against alexnet_paper's grouped "
            f"convolutions in one, {batch_size} images of {image_size}x{image_size}:")
        log(f"  logits: largest difference {forward:.2e}; weights after {steps} SGD steps: {trained:.2e} "
            f"(tolerance {TOLERANCE:g}; the steps moved weights by up to {moved:.1e})  {verdict}")
        log(f"  control: towers whose LRN sees only their own maps (no halo) give logits {control:.1e} away "
            f"({'differs, as it should' if control > TOLERANCE else 'FAIL: should differ'})")
        log(f"  each process holds {result['per_rank_parameters'][0]:,} and {result['per_rank_parameters'][1]:,} of "
            f"the {whole:,} parameters; each sends {sent_forward / 1e3:,.1f} kB per image (float32) in the forward "
            "pass (LRN halos, and the gathers before CONV3, FC6, FC7, FC8), as much again back in the backward")
    return result
