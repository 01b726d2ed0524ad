"""The fused BN+ReLU kernel: the gradients of relu(bn(x) [+ r]), BN's running statistics, the fx rewrite."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from cnnlab import create_model
from cnnlab.device import resolve_precision
from cnnlab.errors import CnnlabError
from cnnlab.layers import fused_bn_relu as fused
from cnnlab.train.fusion import fuse_for_training


@pytest.fixture(scope="module", autouse=True)
def kernel():
    usable, reason = fused.kernel_status()
    if not usable:
        pytest.skip(reason)


def _cl(t):
    return t.contiguous(memory_format=torch.channels_last)


def _reference(x, residual, weight, bias, grad):
    """relu(batch_norm(x) + residual) and its gradients in float64: the truth both paths are held to."""
    leaves = [t.double().detach().requires_grad_() for t in (x, residual, weight, bias) if t is not None]
    xx, *rest = leaves
    rr = rest.pop(0) if residual is not None else None
    ww, bb = rest
    out = F.batch_norm(xx, None, None, ww, bb, training=True, eps=1e-5)
    y = torch.relu(out if rr is None else out + rr)
    y.backward(grad.double())
    return y.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("shape", [(8, 16, 6, 6), (4, 5, 7, 3), (2, 64, 4, 4)])
@pytest.mark.parametrize("with_residual", [False, True])
def test_fused_forward_and_gradients_match_float64(shape, with_residual):
    torch.manual_seed(0)
    x = _cl(torch.randn(shape) * 2 + 3).requires_grad_()  # an offset mean: the statistics must not cancel
    residual = _cl(torch.randn(shape)).requires_grad_() if with_residual else None
    bn = nn.BatchNorm2d(shape[1])
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    grad = _cl(torch.randn(shape))
    want_y, want_grads = _reference(x, residual, bn.weight, bn.bias, grad)
    y = fused.bn_relu(bn, x, residual)
    assert y.is_contiguous(memory_format=torch.channels_last)
    y.backward(grad)
    got = [x.grad] + ([residual.grad] if with_residual else []) + [bn.weight.grad, bn.bias.grad]
    torch.testing.assert_close(y.double(), want_y, rtol=1e-5, atol=1e-5)
    for g, w in zip(got, want_grads):
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_running_statistics_are_kept_as_batchnorm2d_keeps_them(momentum):
    torch.manual_seed(0)
    ours, theirs = nn.BatchNorm2d(8, momentum=momentum), nn.BatchNorm2d(8, momentum=momentum)
    for _ in range(3):
        x = _cl(torch.randn(4, 8, 5, 5) * 3 + 1)
        fused.bn_relu(ours, x)
        theirs(x)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(theirs, name), rtol=1e-5, atol=1e-6)


def test_inputs_the_kernel_does_not_take_run_the_eager_maths():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    x = torch.randn(2, 4, 3, 3)  # channels-first
    torch.testing.assert_close(fused.bn_relu(bn, x), torch.relu(nn.BatchNorm2d(4)(x)))
    bn.eval()
    torch.testing.assert_close(fused.bn_relu(bn, _cl(x)), torch.relu(bn(x)))


def _pair(name, **kwargs):
    torch.manual_seed(0)
    eager = create_model(name, **kwargs).to(memory_format=torch.channels_last)
    rewritten = copy.deepcopy(eager)
    return eager, rewritten, fused.fuse_bn_relu(rewritten)


@pytest.mark.parametrize("name, chains", [("resnet20", 19), ("plain20", 19), ("vgg11_bn", 8)])
def test_a_rewritten_model_trains_as_the_eager_one_and_keeps_its_state_dict(name, chains):
    kwargs = {"num_classes": 10} if name.startswith("vgg") else {}
    eager, rewritten, count = _pair(name, **kwargs)
    assert count == chains
    assert list(rewritten.state_dict()) == list(eager.state_dict())
    assert type(rewritten) is type(eager)
    exact = copy.deepcopy(eager).double()  # the truth: eager PyTorch in float64
    size = 32 if not name.startswith("vgg") else 64
    x = _cl(torch.randn(8, 3, size, size))
    targets = torch.arange(8) % 10
    outputs = []
    for model, images in ((rewritten, x), (exact, x.double())):
        torch.manual_seed(1)  # the same dropout masks (VGG's classifier)
        outputs.append(F.cross_entropy(model(images), targets))
    torch.testing.assert_close(outputs[0].double(), outputs[1], rtol=1e-4, atol=1e-5)
    if name == "resnet20":
        # The gradients against float64 in a well-conditioned net (in deep plain nets fp32 flips some
        # ReLU masks either way, eager or fused; the kernel's own gradients are checked above).
        for model in (rewritten, exact):
            model.zero_grad()
        outputs[0].backward()
        outputs[1].backward()
        for (n, r), d in zip(rewritten.named_parameters(), exact.parameters()):
            torch.testing.assert_close(r.grad.double(), d.grad, rtol=1e-3, atol=1e-5, msg=n)
    for (n, a), b in zip(exact.state_dict().items(), rewritten.state_dict().values()):
        torch.testing.assert_close(b.double(), a.double(), rtol=1e-4, atol=1e-5, msg=n)  # running statistics
    rewritten.load_state_dict(eager.state_dict())
    eager.eval()
    rewritten.eval()  # eval mode runs the class's own forward: the same numbers bit for bit
    with torch.no_grad():
        assert torch.equal(rewritten(x), eager(x))


def test_a_copy_of_a_rewritten_model_runs_its_own_weights():
    _, rewritten, _ = _pair("resnet20")
    twin = copy.deepcopy(rewritten)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    x = _cl(torch.randn(2, 3, 32, 32))
    assert not torch.equal(rewritten(x), twin(x))
    assert twin.layer1[0].forward.__self__ is twin.layer1[0]


def test_a_model_without_bn_relu_chains_is_left_alone():
    model = create_model("airbench94")  # BN -> GELU
    assert fused.fuse_bn_relu(model) == 0
    assert not any("forward" in vars(m) for m in model.modules())


def test_auto_fuses_only_a_cpu_fp32_channels_last_run_and_true_says_why_not():
    cpu = torch.device("cpu")
    model = create_model("resnet20")
    first = resolve_precision(cpu, "fp32", False)
    assert fuse_for_training(model, "auto", cpu, first) == 0
    assert not any("forward" in vars(m) for m in model.modules())
    with pytest.raises(CnnlabError, match="channels_last"):
        fuse_for_training(model, True, cpu, first)
    last = resolve_precision(cpu, "fp32", True)
    assert fuse_for_training(model, "auto", cpu, last, compile_mode="default") == 0
    assert fuse_for_training(model, False, cpu, last) == 0
    lines = []
    assert fuse_for_training(model, "auto", cpu, last, note=lines.append) == 19
    assert lines[-1].startswith("19 BN+ReLU chains fused")
    assert fuse_for_training(create_model("airbench94"), True, cpu, last, note=lines.append) == 0
    assert lines[-1] == "fuse_bn_relu: true, but this model has no BN -> ReLU chain to fuse"


def test_a_failed_build_leaves_the_eager_path_and_says_why(monkeypatch):
    monkeypatch.setattr(fused, "_KERNEL", ["the fused BN+ReLU kernel could not be built (no compiler)"])
    assert fused.kernel_status() == (False, "the fused BN+ReLU kernel could not be built (no compiler)")
    model = create_model("resnet20").to(memory_format=torch.channels_last)
    lines = []
    last = resolve_precision(torch.device("cpu"), "fp32", True)
    assert fuse_for_training(model, "auto", torch.device("cpu"), last, note=lines.append) == 0
    assert "no compiler" in lines[-1]
    model(_cl(torch.randn(2, 3, 32, 32))).sum().backward()  # the rewritten graph runs the eager maths
    with pytest.raises(CnnlabError, match="no compiler"):
        fuse_for_training(create_model("resnet20").to(memory_format=torch.channels_last), True,
                          torch.device("cpu"), last)


def test_every_fused_chain_of_resnet20_runs_the_kernel(monkeypatch):
    # The graph rewrite counts chains; this checks that none falls back to eager at run time
    # (the downsampling units' padded shortcut must arrive channels-last, for instance).
    _, rewritten, count = _pair("resnet20")
    calls = []
    apply = fused._BNReLUFunction.apply
    monkeypatch.setattr(fused._BNReLUFunction, "apply", lambda *args: calls.append(1) or apply(*args))
    rewritten(_cl(torch.randn(2, 3, 32, 32)))
    assert len(calls) == count == 19


@pytest.mark.parametrize("name", ["mobilenet_v1_025", "densenet_bc100_k12", "fractalnet20", "nas_macro",
                                  "preact_resnet18", "nasnet_cifar"])
def test_other_families_rewrite_without_changing_what_they_compute(name):
    # Each family's own forward code is traced: Sequentials, concatenations, pre-activation
    # units, fractal joins, NAS cells. Training output as eager's; eval output bit for bit.
    eager, rewritten, count = _pair(name)
    assert count > 0
    channels, height, width = eager.pretrained_cfg.input_size
    x = _cl(torch.randn(2, channels, min(height, 64), min(width, 64)))
    outputs = []
    for model in (eager, rewritten):
        torch.manual_seed(1)  # the same dropout and drop-path draws
        out = model(x)
        outputs.append(out if torch.is_tensor(out) else out[0])
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-3, atol=1e-4)
    outputs[1].sum().backward()
    rewritten.load_state_dict(eager.state_dict())
    eager.eval()
    rewritten.eval()
    with torch.no_grad():
        assert torch.equal(rewritten(x), eager(x))
