"""The gradient-flow panel: per-layer gradients of plain and residual nets of one depth.

The degradation experiment of the ResNet paper (section 4.2) and the lecture's reason
for it: a residual unit computes ``y = relu(F(x) + x)``, so by the chain rule
``dL/dx = dL/ds * dF/dx + dL/ds * 1`` (``s`` the sum before the ReLU). The ``1`` is the
identity path: however small ``dF/dx`` becomes, the gradient reaches the early layers.
A plain net has only the first term, a product of one Jacobian per layer, which shrinks
or grows with depth.

:func:`gradient_flow` builds the CIFAR net of ``models/resnet_cifar.py`` (the same
weights, drawn from one seed, with or without its shortcuts), runs one real forward and
backward pass on a real batch in training mode, and reads each weight's gradient norm and,
per block, the gradient arriving at its output, the part through the identity and the
part through the branch ``F``.
"""
from __future__ import annotations

import threading
from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..layers.residual import ResidualBlock
from ..models.resnet_cifar import CifarResNet
from .images import ImageSources, to_network_input
from .runs import finite

MAX_DEPTH = 110
MAX_BATCH = 32
# The work of one request, depth x batch x pixels: the deepest net on a batch of 16
# images of 16x16. A larger batch or image is allowed for a shallower net.
MAX_WORK = MAX_DEPTH * 16 * 16 * 16


def check_work(depth: int, batch_size: int, image_size: int) -> None:
    """Refuse settings whose backward pass would keep the panel waiting (see ``MAX_WORK``)."""
    work = depth * batch_size * image_size * image_size
    if work > MAX_WORK:
        raise ValueError(f"depth x batch x image side^2 = {depth} x {batch_size} x {image_size}^2 = {work:,} is above "
                         f"the explorer's {MAX_WORK:,} (depth 110 with 16 images of 16x16); lower one of them")


def _norm(tensor: torch.Tensor | None) -> float | None:
    return None if tensor is None else float(tensor.detach().double().norm())


class GradientFlow:
    """Computes and keeps (for the last few settings) the gradient flow of one configuration."""

    def __init__(self, images: ImageSources):
        self.images = images
        self._results: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def compute(self, depth: int, shortcut: bool, batch_size: int, image_size: int, seed: int) -> dict:
        key = (depth, shortcut, batch_size, image_size, seed)
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key]
        result = gradient_flow(self.images, depth, shortcut, batch_size, image_size, seed)
        with self._lock:
            self._results[key] = result
            while len(self._results) > 32:
                self._results.popitem(last=False)
        return result


def gradient_flow(images: ImageSources, depth: int, shortcut: bool, batch_size: int = 8, image_size: int = 16,
                  seed: int = 0) -> dict:
    """One backward pass through a CIFAR ResNet (``shortcut=True``) or its plain twin.

    ``depth`` is ``6n + 2`` (20, 32, 44, 56, 110); the batch is ``batch_size`` real images
    of the explorer's default source at ``image_size`` pixels (a smaller input keeps the
    pass fast; the layer structure is the same). Returns per weight layer the gradient norm
    ``||dL/dW||``, and per block the norms of the gradient at its output, at the sum before
    its ReLU, through the identity, through the branch and at its input.
    """
    if depth < 8 or (depth - 2) % 6 or depth > MAX_DEPTH:
        raise CnnlabError(f"depth must be 6n+2 between 8 and {MAX_DEPTH} (20, 32, 44, 56, 110), got {depth}")
    try:
        check_work(depth, batch_size, image_size)
    except ValueError as error:
        raise CnnlabError(str(error)) from None
    source = images.get("cifar10" if "cifar10" in images.names() else images.default())
    pixels, labels, _ = source.pick(batch_size, seed)
    x = to_network_input(pixels, 3, image_size)
    x = (x - x.mean(dim=(0, 2, 3), keepdim=True)) / x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
    torch.manual_seed(seed)  # the plain and the residual net get the same weights: option A adds none
    model = CifarResNet(depth, num_classes=len(source.classes), shortcut=shortcut)
    for module in model.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False  # the hooks read tensors that an in-place ReLU would overwrite
    model.train()  # batch statistics, as in a training step

    blocks = [(name, m) for name, m in model.named_modules() if isinstance(m, ResidualBlock)]
    seen: dict[str, dict] = {name: {} for name, _ in blocks}
    handles = []

    def watch(record: dict, key: str, tensor: torch.Tensor) -> None:
        def store(grad):
            record[key] = grad.detach()
        tensor.register_hook(store)

    for name, block in blocks:
        record = seen[name]

        def on_block(module, inputs, output, record=record):
            record["x"] = inputs[0].detach()
            watch(record, "grad_in", inputs[0])
            watch(record, "grad_out", output)

        def on_branch(module, inputs, output, record=record):
            watch(record, "grad_sum", output)  # the branch's last BN: dL/d(its output) = dL/ds

        handles.append(block.register_forward_hook(on_block))
        handles.append(block.get_submodule(block.last_layer).register_forward_hook(on_branch))
    try:
        logits = model(x)
        loss = F.cross_entropy(logits, labels)
        loss.backward()
    finally:
        for handle in handles:
            handle.remove()

    layers = []
    for name, parameter in model.named_parameters():
        if parameter.dim() < 2:
            continue  # BN scales and shifts: the weight layers are what the figure compares
        layers.append({"name": name.removesuffix(".weight"), "grad_norm": _norm(parameter.grad),
                       "weight_norm": _norm(parameter),
                       "ratio": _norm(parameter.grad) / max(_norm(parameter), 1e-12)})
    rows = []
    for name, block in blocks:
        record = seen[name]
        grad_sum = record.get("grad_sum")
        identity = None
        if block.has_shortcut and grad_sum is not None:
            if block.downsample is None:
                identity = grad_sum
            else:  # option A: the gradient of the subsampled, zero-padded identity
                source_x = record["x"].clone().requires_grad_(True)
                identity, = torch.autograd.grad(block.downsample(source_x), source_x, grad_sum)
        grad_in = record.get("grad_in")
        branch = grad_in if identity is None else grad_in - identity
        rows.append({
            "name": name,
            "out_norm": _norm(record.get("grad_out")),
            "sum_norm": _norm(grad_sum),
            "identity_norm": _norm(identity),
            "branch_norm": _norm(branch),
            "in_norm": _norm(grad_in),
            "gain": _norm(grad_in) / max(_norm(record.get("grad_out")), 1e-30),
        })
    first, last = layers[0]["grad_norm"], layers[-2]["grad_norm"]  # the first conv and the last conv
    return finite({
        "depth": depth,
        "shortcut": shortcut,
        "network": f"{'resnet' if shortcut else 'plain'}{depth}",
        "batch_size": int(x.shape[0]),
        "image_size": image_size,
        "seed": seed,
        "images": f"{x.shape[0]} {source.description} images at {image_size}x{image_size}",
        "loss": float(loss.detach()),
        "layers": layers,
        "blocks": rows,
        "first_over_last": first / max(last, 1e-30),
    })
