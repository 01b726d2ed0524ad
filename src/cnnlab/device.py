"""Where a run computes and in what precision: the device, mixed precision and memory format, and why.

Both the trainer and the evaluation of a saved run choose through this one module, so a run
is evaluated with the same precision and layout rules it was trained with.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass

import torch

from .errors import CnnlabError, canonical_name

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def resolve_device(name: str) -> torch.device:
    """``"auto"``: CUDA when present, else the CPU; otherwise the named device, checked."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise CnnlabError(f"device must be auto, cpu, cuda, cuda:N or mps, got {name!r}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"device {name!r} asked for, but CUDA is not available on this machine; use cpu or auto")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CnnlabError("device 'mps' asked for, but Apple's MPS is not available here; use cpu or auto")
    return device
_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
_ALIASES = {"float32": "fp32", "32": "fp32", "bfloat16": "bf16", "float16": "fp16", "half": "fp16", "16": "fp16"}
# x86 flags of CPUs with bfloat16 arithmetic in hardware (Cooper Lake's AVX512-BF16,
# Sapphire Rapids' AMX, AMD Zen 4's AVX512-BF16); without them bf16 on a CPU is emulated and
# slower than fp32. With them it pays: on a 2-core AMD EPYC with AVX512-BF16, bf16 autocast
# trained ResNet-20 1.38x and airbench94 1.90x faster than fp32, both channels-last
# (benchmarks/bench_memory_format.py --precision bf16).
_CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
# oneDNN's NHWC convolutions run faster than NCHW in fp32 on AVX-512 and on AVX2-only CPUs
# alike (benchmarks/bench_memory_format.py): on a 2-core AVX-512 Xeon without bf16,
# channels-last trained ResNet-20 1.18x, ResNet-56 1.14x, ResNet-18 1.21x and airbench94
# 1.34x faster; on a 2-core AVX2-only AMD EPYC (Zen 2), LeNet-5 1.42x, ResNet-20 1.20x,
# ResNet-56 1.22x and airbench94 1.21x, ResNet-18 at 224x224 1.05x, VGG-11 at 224x224 0.91x
# (the one net measured slower: force it off there with channels_last: false).
_CPU_NHWC_FLAGS = ("avx512f", "avx2")


@dataclass(frozen=True)
class Precision:
    """How a run computes: the autocast dtype (``None`` = plain fp32), loss scaling, memory format.

    ``reason`` says in words why, for the run report.
    """

    name: str
    autocast_dtype: torch.dtype | None
    use_grad_scaler: bool
    channels_last: bool
    device_type: str
    reason: str

    def as_dict(self) -> dict:
        """Plain JSON-serialisable view (the dtype as a string)."""
        data = dataclasses.asdict(self)
        data["autocast_dtype"] = None if self.autocast_dtype is None else str(self.autocast_dtype).replace("torch.", "")
        return data


def _device_type(device) -> str:
    try:
        return torch.device(device).type
    except (RuntimeError, TypeError):
        raise CnnlabError(f"device must be a torch device such as 'cpu', 'cuda' or 'cuda:1', got {device!r}") from None


def _cpuinfo_text() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except OSError:
        return None  # not Linux (macOS, Windows) or no procfs


def _cpu_flags() -> set[str] | None:
    """The x86 feature flags of ``/proc/cpuinfo``; ``None`` where there is none (not Linux)."""
    text = _cpuinfo_text()
    if text is None:
        return None
    flags: set[str] = set()
    for line in text.splitlines():
        label, _, value = line.partition(":")
        if label.strip() == "flags":
            flags.update(value.split())
    return flags


def _onednn_isa_cap() -> str | None:
    """The instruction set oneDNN (torch's CPU convolutions) is held to, when the user holds
    it with ``ONEDNN_MAX_CPU_ISA`` (or its older name ``DNNL_MAX_CPU_ISA``); ``None`` if not."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    value = (value or "").strip().upper()
    return None if value in ("", "ALL", "DEFAULT") else value


def _usable_cpu_flags() -> tuple[set[str] | None, str]:
    """The CPU's flags less the ones the convolutions may not use, and a note saying why.

    ``ONEDNN_MAX_CPU_ISA=AVX2`` makes oneDNN run an AVX-512 CPU's convolutions as an
    AVX2-only CPU would (with ``ATEN_CPU_CAPABILITY=avx2`` for torch's other kernels): the
    automatic choices then follow, fp32 and the AVX2 memory format, instead of a bf16 that
    oneDNN would now emulate. A cap below AVX2 (``SSE41``, ``AVX``) drops AVX2 as well.
    """
    flags = _cpu_flags()
    cap = _onednn_isa_cap()
    if flags is None or cap is None or cap.startswith(("AVX512_CORE_AMX", "AVX10")):
        return flags, ""
    if cap.startswith(("AVX512_CORE_BF16", "AVX512_CORE_FP16")):
        dropped = {f for f in flags if f.startswith("amx")}
    elif cap.startswith("AVX512"):
        dropped = {f for f in flags if f.startswith("amx") or f == "avx512_bf16"}
    elif cap.startswith("AVX2"):  # AVX2, AVX2_VNNI, AVX2_VNNI_2: no AVX-512 at all
        dropped = {f for f in flags if f.startswith(("amx", "avx512"))}
    else:  # SSE41, AVX: not even AVX2
        dropped = {f for f in flags if f.startswith(("amx", "avx512", "avx2"))}
    return flags - dropped, f"; oneDNN held to {cap} by ONEDNN_MAX_CPU_ISA" if dropped else ""


def cpu_native_bf16() -> tuple[bool, str]:
    """Whether this CPU computes bfloat16 in hardware, and how that was decided.

    Reads the ``flags`` of ``/proc/cpuinfo`` (Linux) for AVX512-BF16 or AMX, less those
    that ``ONEDNN_MAX_CPU_ISA`` forbids the convolutions; elsewhere the answer is ``False``
    (bf16 would be emulated, slower than fp32).
    """
    flags, note = _usable_cpu_flags()
    if flags is None:
        return False, "CPU flags unavailable (no /proc/cpuinfo)"
    found = [flag for flag in _CPU_BF16_FLAGS if flag in flags]
    if found:
        return True, f"CPU has native bf16 ({', '.join(found)}){note}"
    return False, f"CPU lacks native bf16 (no avx512_bf16/amx_bf16){note}"


def _cuda_bf16_supported() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def resolve_channels_last(device, requested: bool | str = "auto") -> bool:
    """Whether to store images and conv weights channels-last (NHWC).

    Lecture idea (hardware efficiency): tensor cores and oneDNN's CPU convolutions work in
    NHWC, so ``"auto"`` turns it on for CUDA, for CPUs with native bf16 (the ones that run
    mixed precision) and for other AVX-512 and AVX2 x86 CPUs, where it was measured faster in
    fp32 for the conv nets tried (CIFAR-sized nets 1.18x to 1.42x; on AVX2, VGG-11 at 224x224
    was the exception, 0.91x); it stays off on CPUs where it has not been measured (ARM, no
    ``/proc/cpuinfo``), and where ``ONEDNN_MAX_CPU_ISA`` holds the convolutions below AVX2.
    ``True``/``False`` force it.
    """
    if isinstance(requested, bool):
        return requested
    if requested != "auto":
        raise CnnlabError(f"channels_last must be 'auto', True or False, got {requested!r}")
    kind = _device_type(device)
    if kind == "cuda":
        return True
    if kind == "cpu":
        flags = _usable_cpu_flags()[0] or set()
        return any(flag in flags for flag in _CPU_BF16_FLAGS + _CPU_NHWC_FLAGS)
    return False


def precision_name(requested: str) -> str:
    """``requested`` as one of :data:`PRECISIONS` (aliases such as ``float16`` accepted); raises otherwise."""
    return canonical_name("precision", requested, PRECISIONS, _ALIASES)


def resolve_precision(device, requested: str = "auto", channels_last: bool | str = "auto") -> Precision:
    """Decide the training precision for ``device``: ``"auto"``, ``"fp32"``, ``"bf16"`` or ``"fp16"``.

    Lecture idea (hardware, mixed precision): compute convolutions and matrix products in
    16 bits where the hardware does so natively, keep the weights in fp32. ``"auto"``:
    on CUDA bf16 if the GPU supports it (Ampere and later), else fp16 with a gradient
    scaler (fp16's small range would underflow small gradients; Micikevicius et al.
    2018); on a CPU bf16 only if it has native bf16 (AVX512-BF16/AMX), else fp32; fp32
    on other devices. An explicit request is honoured where torch can run it (bf16 on a
    GPU without bf16 raises). ``channels_last`` goes through :func:`resolve_channels_last`.
    """
    key = precision_name(requested)
    kind = _device_type(device)
    if kind == "cuda" and not torch.cuda.is_available():
        raise CnnlabError(f"device {device!r} asked for, but CUDA is not available on this machine; use 'cpu'")

    if key == "auto":
        if kind == "cuda":
            if _cuda_bf16_supported():
                key, why = "bf16", "auto: CUDA GPU with bf16 support"
            else:
                key, why = "fp16", "auto: CUDA GPU without bf16, fp16 with loss scaling"
        elif kind == "cpu":
            native, detail = cpu_native_bf16()
            key, why = ("bf16" if native else "fp32"), f"auto: {detail}"
        else:
            key, why = "fp32", f"auto: fp32 on {kind}"
    else:
        why = f"requested {key}"
        if key == "bf16" and kind == "cuda" and not _cuda_bf16_supported():
            raise CnnlabError("precision 'bf16' needs a GPU with bf16 support (Ampere or later); use 'fp16' or 'auto'")
        if key != "fp32" and kind == "cpu" and not (key == "bf16" and cpu_native_bf16()[0]):
            why += " (emulated on this CPU: expect it to be slower than fp32)"

    use_channels_last = resolve_channels_last(device, channels_last)
    layout = "channels_last" if use_channels_last else "channels_first"
    if channels_last == "auto":
        layout += " (auto)"
    return Precision(
        name=key,
        autocast_dtype=_DTYPES[key],
        use_grad_scaler=key == "fp16",
        channels_last=use_channels_last,
        device_type=kind,
        reason=f"{key}, {layout}; {why}",
    )


def autocast_context(device, precision: Precision):
    """``torch.autocast`` for the resolved precision, or a no-op context for fp32.

    Lecture idea (mixed precision): run the forward pass and loss under autocast; the
    backward pass follows the dtypes autocast chose.
    """
    if precision.autocast_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=_device_type(device), dtype=precision.autocast_dtype)


def build_grad_scaler(device, precision: Precision) -> torch.amp.GradScaler:
    """A ``torch.amp.GradScaler``, enabled only when the precision needs loss scaling (fp16).

    A disabled scaler passes ``scale(loss)``, ``step(optimizer)`` and ``update()`` straight
    through, so one training loop serves every precision.
    """
    return torch.amp.GradScaler(_device_type(device), enabled=precision.use_grad_scaler)
