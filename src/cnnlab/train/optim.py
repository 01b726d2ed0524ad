"""Optimisers of the lectures: SGD with (Nesterov) momentum and AdamW, with weight decay where it belongs."""
from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError

OPTIMIZER_NAMES = ("sgd", "adamw")

# Default weight decay per optimiser: 5e-4 is AlexNet's and VGG's (and the CIFAR recipe's)
# L2 for SGD; 0.05 is the decoupled decay of the ConvNeXt/DeiT AdamW recipes.
_DEFAULT_WEIGHT_DECAY = {"sgd": 5e-4, "adamw": 0.05}
# 0.1 for batch 256 is the ResNet paper's SGD rate; 1e-3 is Adam's paper default.
_DEFAULT_LR = {"sgd": 0.1, "adamw": 1e-3}

# Modules whose parameters are scales and shifts of a normalisation: decaying them
# towards zero fights the normalisation instead of regularising the function.
_NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm1d/2d/3d, SyncBatchNorm, InstanceNorm*
    nn.LayerNorm,  # includes cnnlab.layers.LayerNorm2d
    nn.GroupNorm,
    nn.LocalResponseNorm,
)
if hasattr(nn, "RMSNorm"):
    _NORM_TYPES = (*_NORM_TYPES, nn.RMSNorm)


def _check_number(name: str, value, low: float, high: float = math.inf, *, low_inclusive: bool = True,
                  high_inclusive: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value >= low if low_inclusive else value > low) and (value <= high if high_inclusive else value < high)
    if not ok:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive and math.isfinite(high) else ")"
        raise CnnlabError(f"{name} must be a number in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


def _norm_bias_names(model: nn.Module) -> set[str]:
    """The shifts (``bias``) of the normalisation layers of ``model``."""
    return {f"{module_name}.bias" if module_name else "bias" for module_name, module in model.named_modules()
            if isinstance(module, _NORM_TYPES) and getattr(module, "bias", None) is not None}


def _no_decay_names(model: nn.Module) -> set[str]:
    names = set()
    for module_name, module in model.named_modules():
        if isinstance(module, _NORM_TYPES):
            for param_name, _ in module.named_parameters(recurse=False):
                names.add(f"{module_name}.{param_name}" if module_name else param_name)
    return names


def param_groups(model: nn.Module, weight_decay: float, no_decay_norm_and_bias: bool = True, *,
                 norm_bias_lr: float | None = None, norm_bias_weight_decay: float | None = None,
                 head: Sequence[str] = (), backbone_lr: float | None = None) -> list[dict]:
    """Split the trainable parameters of ``model`` into a decayed and a non-decayed group.

    Lecture idea: weight decay (L2 regularisation) is meant to shrink the weights of
    convolutions and fully connected layers; the scales and shifts of normalisation layers
    (BatchNorm, LayerNorm, GroupNorm, InstanceNorm) and the biases only set offsets and
    ranges, so decaying them hurts accuracy without regularising (Goyal et al. 2017, "no
    bias decay"). With ``no_decay_norm_and_bias=True`` every parameter of a normalisation
    layer and every parameter with at most one dimension (biases, per-channel scales) goes
    into a group with ``weight_decay=0``; otherwise all parameters get ``weight_decay``.

    Frozen parameters (``requires_grad=False``) are left out; shared parameters appear
    once; empty groups are dropped (the decayed group comes first). Parameters are given
    as ``(name, parameter)`` pairs, so a torch optimiser records their names in each
    group's ``"param_names"`` and checks them when a checkpoint is loaded.

    ``norm_bias_lr`` puts the shifts of the normalisation layers into a last group of their
    own with that learning rate (airbench94 trains BN shifts 64 times faster than the rest).
    They are decayed only with ``no_decay_norm_and_bias=False``, and then with
    ``norm_bias_weight_decay`` (default ``weight_decay``): :func:`build_optimizer` gives it
    ``weight_decay`` divided by the learning-rate scale, so that the shrinkage of each step
    (learning rate x decay) is the same for every parameter, as airbench94 does.

    ``backbone_lr`` (transfer learning's fine-tuning, lecture 7: pretrained layers learn at
    a tenth of the new head's rate) gives every parameter outside the modules named in
    ``head`` that learning rate, in groups of their own after the others.
    """
    weight_decay = _check_number("weight_decay", weight_decay, 0.0)
    no_decay_modules = _no_decay_names(model) if no_decay_norm_and_bias else set()
    norm_biases = _norm_bias_names(model) if norm_bias_lr is not None else set()
    decay, no_decay, fast = [], [], []
    for name, parameter in model.named_parameters():  # deduplicates shared parameters
        if not parameter.requires_grad:
            continue
        if name in norm_biases:
            fast.append((name, parameter))
        elif no_decay_norm_and_bias and (parameter.ndim <= 1 or name in no_decay_modules):
            no_decay.append((name, parameter))
        else:
            decay.append((name, parameter))
    groups = []
    slow: list[dict] = []
    for pairs, decay_of_group in ((decay, weight_decay), (no_decay, 0.0)):
        if backbone_lr is not None:
            head_names = {n for n, _ in pairs if any(n == h or n.startswith(h + ".") for h in head)}
            in_head = [(n, p) for n, p in pairs if n in head_names]
            backbone = [(n, p) for n, p in pairs if n not in head_names]
            if backbone:
                slow.append({"params": backbone, "weight_decay": decay_of_group,
                             "lr": _check_number("backbone_lr", backbone_lr, 0.0, low_inclusive=False)})
            pairs = in_head
        if pairs:
            groups.append({"params": pairs, "weight_decay": decay_of_group})
    if fast:
        fast_decay = weight_decay if norm_bias_weight_decay is None else _check_number(
            "norm_bias_weight_decay", norm_bias_weight_decay, 0.0)
        groups.append({"params": fast, "weight_decay": 0.0 if no_decay_norm_and_bias else fast_decay,
                       "lr": _check_number("norm_bias_lr", norm_bias_lr, 0.0, low_inclusive=False)})
    groups += slow
    if not groups:
        raise CnnlabError("the model has no trainable parameters (all have requires_grad=False)")
    return groups


def build_optimizer(
    model: nn.Module,
    name: str = "sgd",
    lr: float | None = None,
    *,
    momentum: float = 0.9,
    nesterov: bool = False,
    weight_decay: float | None = None,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    no_decay_norm_and_bias: bool = True,
    norm_bias_lr_scale: float = 1.0,
    head: Sequence[str] = (),
    backbone_lr_scale: float | None = None,
) -> torch.optim.Optimizer:
    """Build the optimiser of a lecture recipe by name: ``"sgd"`` or ``"adamw"``.

    ``"sgd"``: stochastic gradient descent with momentum (0.9 in AlexNet, VGG and ResNet)
    and optional Nesterov momentum (Sutskever et al. 2013), weight decay as L2 in the
    gradient. ``"adamw"``: Adam with decoupled weight decay (Loshchilov & Hutter 2019).
    Defaults when ``None``: ``lr`` 0.1 for SGD (the ResNet paper at batch 256; see
    :func:`scaled_lr`) and 1e-3 for AdamW; ``weight_decay`` 5e-4 for SGD (AlexNet/VGG)
    and 0.05 for AdamW. Parameter groups come from :func:`param_groups`, so normalisation
    parameters and biases are not decayed unless ``no_decay_norm_and_bias=False``.
    ``norm_bias_lr_scale`` multiplies the learning rate of normalisation shifts (airbench94: 64);
    if they are decayed, their weight decay is divided by it, so that each step shrinks them
    as much as any other weight (airbench94's decay of BN shifts).
    ``backbone_lr_scale`` multiplies the learning rate of everything outside the ``head``
    modules (fine-tuning pretrained layers; see :func:`param_groups`).
    """
    key = str(name).lower()
    if key not in OPTIMIZER_NAMES:
        raise CnnlabError(f"unknown optimizer {name!r}; choose one of {', '.join(OPTIMIZER_NAMES)}")
    lr = _DEFAULT_LR[key] if lr is None else _check_number("lr", lr, 0.0, low_inclusive=False)
    weight_decay = _DEFAULT_WEIGHT_DECAY[key] if weight_decay is None else weight_decay
    weight_decay = _check_number("weight_decay", weight_decay, 0.0)  # before it is divided below
    norm_bias_lr_scale = _check_number("norm_bias_lr_scale", norm_bias_lr_scale, 0.0, low_inclusive=False)
    groups = param_groups(model, weight_decay, no_decay_norm_and_bias,
                          norm_bias_lr=lr * norm_bias_lr_scale if norm_bias_lr_scale != 1.0 else None,
                          norm_bias_weight_decay=weight_decay / norm_bias_lr_scale,
                          head=head, backbone_lr=lr * backbone_lr_scale if backbone_lr_scale is not None else None)
    if key == "sgd":
        momentum = _check_number("momentum", momentum, 0.0, 1.0, high_inclusive=False)
        if nesterov and momentum == 0.0:
            raise CnnlabError("nesterov=True needs momentum in (0, 1), got momentum=0")
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=bool(nesterov))
    betas = tuple(betas)
    if len(betas) != 2:
        raise CnnlabError(f"betas must be two numbers (beta1, beta2) in [0, 1), got {betas!r}")
    for index, beta in enumerate(betas, 1):
        _check_number(f"betas[{index - 1}] (beta{index})", beta, 0.0, 1.0, high_inclusive=False)
    eps = _check_number("eps", eps, 0.0, low_inclusive=False)
    return torch.optim.AdamW(groups, lr=lr, betas=(float(betas[0]), float(betas[1])), eps=eps)


def scaled_lr(base_lr: float, batch_size: int, reference_batch: int = 256) -> float:
    """The linear scaling rule: multiply the learning rate by ``batch_size / reference_batch``.

    Goyal et al. 2017 ("Accurate, Large Minibatch SGD"): when the minibatch grows k
    times, grow the learning rate k times (0.1 x batch/256 for ResNet-50), usually with a
    warm-up at the start (see ``build_schedule(..., warmup_steps=...)``).
    """
    base_lr = _check_number("base_lr", base_lr, 0.0, low_inclusive=False)
    for label, value in (("batch_size", batch_size), ("reference_batch", reference_batch)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise CnnlabError(f"{label} must be an integer >= 1, got {value!r}")
    return float(base_lr * int(batch_size) / int(reference_batch))
