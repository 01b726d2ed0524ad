"""Precision: mixed precision and channels_last where the hardware has them, fp32 elsewhere, with reasons."""
import json
from pathlib import Path

import pytest
import torch

from cnnlab.errors import CnnlabError
from cnnlab import device as precision_module
from cnnlab.device import (autocast_context, build_grad_scaler, cpu_native_bf16, resolve_channels_last,
                           resolve_precision)

SKYLAKE = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 avx512f avx512dq avx512bw avx512_vnni\n\n"
COOPER_LAKE = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n\n"
SAPPHIRE_RAPIDS = "processor\t: 0\nflags\t\t: fpu avx512f amx_tile amx_int8\n\n"
HASWELL = "processor\t: 0\nflags\t\t: fpu sse sse2 avx avx2 fma\n\n"
SANDY_BRIDGE = "processor\t: 0\nflags\t\t: fpu sse sse2 sse4_1 avx\n\n"


@pytest.fixture
def cpuinfo(monkeypatch):
    def use(text):
        monkeypatch.setattr(precision_module, "_cpuinfo_text", lambda: text)

    return use


@pytest.fixture
def gpu(monkeypatch):
    def use(bf16: bool):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(precision_module, "_cuda_bf16_supported", lambda: bf16)

    return use


def test_cpu_without_native_bf16_trains_in_fp32(cpuinfo):
    cpuinfo(SKYLAKE)  # avx512f alone (like the development machine) is not enough for bf16...
    precision = resolve_precision("cpu")
    # ...but its oneDNN convolutions are faster channels-last in fp32 too
    assert (precision.name, precision.autocast_dtype, precision.use_grad_scaler, precision.channels_last) == (
        "fp32", None, False, True)
    assert "lacks native bf16" in precision.reason and "channels_last (auto)" in precision.reason


def test_avx2_cpus_train_fp32_channels_last(cpuinfo):
    cpuinfo(HASWELL)  # measured faster channels-last on an AVX2-only CPU too
    precision = resolve_precision("cpu")
    assert (precision.name, precision.channels_last) == ("fp32", True)
    assert "channels_last (auto)" in precision.reason


def test_cpus_without_avx2_stay_channels_first(cpuinfo):
    cpuinfo(SANDY_BRIDGE)  # not measured there: the usual layout
    precision = resolve_precision("cpu")
    assert (precision.name, precision.channels_last) == ("fp32", False)
    assert "channels_first (auto)" in precision.reason
    cpuinfo(None)
    assert resolve_channels_last("cpu") is False


@pytest.mark.parametrize("text,flag", [(COOPER_LAKE, "avx512_bf16"), (SAPPHIRE_RAPIDS, "amx_tile")])
def test_cpu_with_native_bf16_uses_bf16_and_channels_last(cpuinfo, text, flag):
    cpuinfo(text)
    assert cpu_native_bf16() == (True, f"CPU has native bf16 ({flag})")
    precision = resolve_precision("cpu")
    assert (precision.name, precision.autocast_dtype, precision.use_grad_scaler, precision.channels_last) == (
        "bf16", torch.bfloat16, False, True)
    assert flag in precision.reason


@pytest.mark.parametrize("cap,name,channels_last", [
    ("AVX2", "fp32", True),                # an AVX2-only CPU's convolutions: fp32, channels last
    ("SSE41", "fp32", False),              # below AVX2: channels first
    ("avx512_core", "fp32", True),         # AVX-512 without bf16: fp32, channels last
    ("AVX512_CORE_BF16", "bf16", True),    # bf16 still native
    ("ALL", "bf16", True),
])
def test_onednn_isa_cap_is_honoured(cpuinfo, monkeypatch, cap, name, channels_last):
    cpuinfo(COOPER_LAKE)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
    precision = resolve_precision("cpu")
    assert (precision.name, precision.channels_last) == (name, channels_last)
    held = cap.upper() in ("AVX2", "SSE41", "AVX512_CORE")
    assert ("oneDNN held to" in precision.reason) == held
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "avx2")  # oneDNN's older name
    assert resolve_precision("cpu").name == "fp32"


def test_no_cpuinfo_falls_back_to_fp32(cpuinfo):
    cpuinfo(None)  # macOS, Windows
    precision = resolve_precision("cpu")
    assert precision.name == "fp32" and "unavailable" in precision.reason


def test_this_machine_resolves_from_its_own_flags():
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        flags = []
    native = any(f in flags for f in ("avx512_bf16", "amx_bf16", "amx_tile"))
    assert resolve_precision("cpu").name == ("bf16" if native else "fp32")


def test_cuda_prefers_bf16_then_fp16_with_loss_scaling(gpu):
    gpu(bf16=True)
    precision = resolve_precision("cuda:0")
    assert (precision.name, precision.use_grad_scaler, precision.channels_last) == ("bf16", False, True)
    gpu(bf16=False)
    precision = resolve_precision("cuda")
    assert (precision.name, precision.autocast_dtype, precision.use_grad_scaler) == ("fp16", torch.float16, True)
    assert "loss scaling" in precision.reason
    with pytest.raises(CnnlabError, match="'bf16' needs a GPU with bf16 support"):
        resolve_precision("cuda", "bf16")
    assert resolve_precision("cuda", "fp32", channels_last=False).autocast_dtype is None


def test_explicit_requests_and_overrides(cpuinfo):
    cpuinfo(SKYLAKE)
    precision = resolve_precision(torch.device("cpu"), "bf16", channels_last=True)
    assert precision.autocast_dtype is torch.bfloat16 and precision.channels_last
    assert "emulated" in precision.reason
    assert resolve_precision("cpu", "float16").use_grad_scaler
    assert resolve_precision("mps").name == "fp32"
    assert resolve_channels_last("cpu") is True and resolve_channels_last("cpu", False) is False
    assert json.loads(json.dumps(precision.as_dict()))["autocast_dtype"] == "bfloat16"


@pytest.mark.parametrize("call,match", [
    (lambda: resolve_precision("cpu", "int8"), "unknown precision .int8.; choose one of auto, fp32, bf16, fp16"),
    (lambda: resolve_precision("gpu0"), "device must be a torch device"),
    (lambda: resolve_channels_last("cpu", "yes"), "channels_last must be 'auto', True or False"),
])
def test_invalid_precision_settings(call, match):
    with pytest.raises(CnnlabError, match=match):
        call()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_without_cuda_is_a_user_error():
    with pytest.raises(CnnlabError, match="CUDA is not available"):
        resolve_precision("cuda")


def test_autocast_context_and_grad_scaler(cpuinfo):
    cpuinfo(SKYLAKE)
    a, b = torch.randn(4, 4), torch.randn(4, 4)
    fp32 = resolve_precision("cpu", "fp32")
    with autocast_context("cpu", fp32):
        assert (a @ b).dtype == torch.float32
    bf16 = resolve_precision("cpu", "bf16")
    with autocast_context("cpu", bf16):
        assert (a @ b).dtype == torch.bfloat16
    assert not build_grad_scaler("cpu", fp32).is_enabled()
    assert build_grad_scaler("cpu", resolve_precision("cpu", "fp16")).is_enabled()
