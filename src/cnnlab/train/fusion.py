"""Whether a run trains with BN+ReLU fused (``fuse_bn_relu: auto | true | false``), and doing it.

``auto`` fuses where the fused kernel is the faster path: training on the CPU in fp32 with a
channels-last model, without torch.compile (which fuses on its own), and only when the model
has BN -> ReLU chains at all (so nets without them never pay the kernel's one-off build).
``true`` insists, and says why when it cannot; ``false`` keeps eager PyTorch. The maths is
the same either way (cnnlab.layers.fused_bn_relu).
"""
from __future__ import annotations

from torch import nn

from ..device import Precision
from ..errors import CnnlabError
from ..layers.fused_bn_relu import fuse_bn_relu, kernel_status


def _why_not(device, precision: Precision, compile_mode) -> str | None:
    if device.type != "cpu":
        return f"it is a CPU kernel and the run is on {device}"
    if precision.autocast_dtype is not None:
        return f"it is an fp32 kernel and the run uses {precision.name}"
    if not precision.channels_last:
        return "it needs channels_last"
    if compile_mode:
        return "torch.compile fuses the model on its own"
    return None


def fuse_for_training(model: nn.Module, requested: bool | str, device, precision: Precision, compile_mode=None,
                      note=None) -> int:
    """Fuse ``model``'s BN -> ReLU chains as ``requested`` allows; return how many were fused.

    ``note`` receives one line for the log (the kernel's first build, and what was fused).
    """
    if requested is False:
        return 0
    why_not = _why_not(device, precision, compile_mode)
    if why_not is not None:
        if requested is True:
            raise CnnlabError(f"fuse_bn_relu: true cannot be honoured here: {why_not}; use auto or false")
        return 0
    count = fuse_bn_relu(model)
    if not count:
        if requested is True and note is not None:
            note("fuse_bn_relu: true, but this model has no BN -> ReLU chain to fuse")
        return 0
    usable, reason = kernel_status(note)
    if not usable:
        if requested is True:
            raise CnnlabError(f"fuse_bn_relu: true cannot be honoured here: {reason}; use auto or false")
        if note is not None:
            note(f"BN+ReLU stays unfused: {reason}")
        return 0  # the rewritten model falls back to eager PyTorch call by call
    if note is not None:
        note(f"{count} BN+ReLU chains fused for training (fuse_bn_relu: {str(requested).lower()})")
    return count
