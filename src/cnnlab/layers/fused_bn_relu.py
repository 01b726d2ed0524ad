"""Fused BatchNorm + ReLU for training on the CPU: the same maths in half the memory passes.

In the lecture's networks almost every BatchNorm is followed by a ReLU, either directly
(``relu(bn(conv(x)))``) or after the residual addition that ends a ResNet unit
(``relu(bn(conv(x)) + shortcut)``, ResNet paper Fig. 2). On a CPU these three or four
elementwise kernels are memory-bound and each reads the whole activation again; on a 2-core
AVX2 machine they are ~15% of a CIFAR ResNet's training step. :func:`fuse_bn_relu` rewrites a
model's ``forward`` methods so that, while the model trains, each such pair or triple runs as
one C++ kernel (``csrc/fused_bn_relu.cpp``): the statistics in one pass, normalise + add + ReLU
in another, and a backward that reads the activations twice instead of four times.

The model keeps its modules, parameters, buffers and state_dict keys (the BN modules stay
``nn.BatchNorm2d``, their running statistics updated as PyTorch does); only its training-mode
forward changes. In eval mode, and for any input the kernel does not take (not fp32, not
channels-last, not on the CPU), the original code runs. Forward hooks on a fused BN or ReLU do
not fire while training.

The kernel is compiled once per machine with torch's C++ extension builder (a C++ compiler and
ninja; about a minute) and cached in torch's extensions folder (``TORCH_EXTENSIONS_DIR``).
"""
from __future__ import annotations

import hashlib
import operator
import os
import types
from pathlib import Path

import torch
from torch import fx, nn

SOURCE = Path(__file__).parent / "csrc" / "fused_bn_relu.cpp"
_RELUS = (torch.relu, torch.relu_, nn.functional.relu)
_ADDS = (operator.add, operator.iadd, torch.add)


def _cpu_fingerprint() -> str:
    # The kernel is built with -march=native, so a cached build must never reach another kind of CPU.
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = next((line for line in text.splitlines() if line.startswith(("flags", "Features"))), "")
    return hashlib.sha1(" ".join(sorted(flags.split())).encode()).hexdigest()[:10]


_KERNEL: list = []  # the build's outcome, once per process: the module, or why there is none


def _build(note=None):
    """The compiled kernel module, or the reason it could not be built (a string)."""
    if not _KERNEL:
        _KERNEL.append(_compile(note))
    return _KERNEL[0]


def _compile(note):
    if not torch.backends.cpu.get_cpu_capability().startswith("AVX"):  # x86 with AVX2 or AVX-512
        return f"the fused BN+ReLU kernel is built for x86 CPUs with AVX2 ({torch.backends.cpu.get_cpu_capability()} here)"
    source = SOURCE.read_bytes()
    name = f"cnnlab_bn_relu_{hashlib.sha1(source).hexdigest()[:10]}_{_cpu_fingerprint()}"
    try:
        import logging

        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)  # "No CUDA runtime" is noise here
        from torch.utils import cpp_extension

        try:  # the ninja wheel's binary, when ninja is not on PATH (a venv that is not activated)
            import ninja

            os.environ["PATH"] = os.pathsep.join([ninja.BIN_DIR, os.environ.get("PATH", "")])
        except ImportError:
            pass
        if note is not None and not _is_built(cpp_extension, name):
            note("compiling the fused BN+ReLU kernel for this CPU (once; about a minute)")
        return cpp_extension.load(name=name, sources=[str(SOURCE)], extra_cflags=["-O3", "-march=native", "-fopenmp"],
                                  extra_ldflags=["-fopenmp"], verbose=False)
    except Exception as error:  # no compiler, no ninja, a failed build: the eager path stays
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        return f"the fused BN+ReLU kernel could not be built ({first_line[:200]})"


def _is_built(cpp_extension, name: str) -> bool:
    try:
        folder = Path(cpp_extension._get_build_directory(name, verbose=False))
    except Exception:
        return False
    return any(folder.glob(f"{name}*.so"))


def kernel_status(note=None) -> tuple[bool, str]:
    """Whether the fused kernel is usable here, and why not when it is not (builds it on first use)."""
    built = _build(note)
    return (False, built) if isinstance(built, str) else (True, "fused BN+ReLU kernel ready")


def _rows(t: torch.Tensor) -> torch.Tensor:
    # A channels-last NCHW tensor viewed as its [N*H*W, C] matrix of pixels (no copy).
    return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1])


def _unrows(t: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    n, c, h, w = shape
    return t.view(n, h, w, c).permute(0, 3, 1, 2)


class _BNReLUFunction(torch.autograd.Function):
    """relu(batch_norm(x) [+ residual]) with the batch's statistics; returns y, mean and biased variance."""

    @staticmethod
    def forward(ctx, x, residual, weight, bias, eps):
        kernel = _build()
        rows = _rows(x)
        y, mean, invstd, var = kernel.forward_train(rows, None if residual is None else _rows(residual),
                                                    weight.detach(), bias.detach(), eps)
        # Without a residual the backward recomputes the ReLU's mask from x; with one it reads y.
        ctx.save_for_backward(rows, y if residual is not None else None, weight, bias, mean, invstd)
        ctx.shape = x.shape
        ctx.mark_non_differentiable(mean, var)
        return _unrows(y, x.shape), mean, var

    @staticmethod
    def backward(ctx, grad_y, _grad_mean, _grad_var):
        rows, y, weight, bias, mean, invstd = ctx.saved_tensors
        grad_rows = _rows(grad_y.contiguous(memory_format=torch.channels_last))
        dx, dweight, dbias, dresidual = _build().backward(grad_rows, rows, y, weight.detach(), bias.detach(),
                                                          mean, invstd)
        return (_unrows(dx, ctx.shape), None if y is None else _unrows(dresidual, ctx.shape), dweight, dbias, None)


def _fusable(bn: nn.BatchNorm2d, x: torch.Tensor, residual: torch.Tensor | None) -> bool:
    tensors = [x] if residual is None else [x, residual]
    return (bn.training and bn.affine and bn.track_running_stats and x.dim() == 4
            and x.shape[0] * x.shape[2] * x.shape[3] > 1
            and all(t.device.type == "cpu" and t.dtype == torch.float32 and t.shape == x.shape
                    and t.is_contiguous(memory_format=torch.channels_last) for t in tensors)
            and bn.weight.dtype == torch.float32 and not isinstance(_build(), str))


def bn_relu(bn: nn.BatchNorm2d, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """``relu(bn(x) + residual)`` (``relu(bn(x))`` without one), fused where the kernel takes the input."""
    if not _fusable(bn, x, residual):
        out = bn(x)
        return torch.relu(out if residual is None else out + residual)
    y, mean, var = _BNReLUFunction.apply(x, residual, bn.weight, bn.bias, bn.eps)
    with torch.no_grad():  # the running statistics, as nn.BatchNorm2d keeps them
        bn.num_batches_tracked.add_(1)
        factor = bn.momentum if bn.momentum is not None else 1.0 / float(bn.num_batches_tracked)
        count = x.numel() // x.shape[1]
        bn.running_mean.lerp_(mean, factor)
        bn.running_var.lerp_(var * (count / (count - 1)), factor)
    return y


class _OwnChildrenTracer(fx.Tracer):
    # Traces one module's own forward: every submodule is a leaf (each is rewritten on its own).
    def __init__(self, root: nn.Module):
        super().__init__()
        self.traced_root = root

    def is_leaf_module(self, module: nn.Module, qualified_name: str) -> bool:
        return module is not self.traced_root


def _module(owner: nn.Module, node: fx.Node, kind) -> bool:
    return node.op == "call_module" and type(owner.get_submodule(node.target)) is kind


def _only_user(node: fx.Node) -> fx.Node | None:
    return next(iter(node.users)) if len(node.users) == 1 else None


def _fuse_graph(owner: nn.Module, graph: fx.Graph) -> int:
    """Replace bn -> relu and bn -> (identity) -> add -> relu chains in ``graph`` by :func:`bn_relu` calls."""
    fused = 0
    for node in list(graph.nodes):
        if not _module(owner, node, nn.BatchNorm2d) or len(node.args) != 1 or node.kwargs:
            continue
        chain, residual, nxt = [node], None, _only_user(node)
        if nxt is not None and _module(owner, nxt, nn.Identity):  # drop_path when off
            chain.append(nxt)
            nxt = _only_user(nxt)
        if nxt is not None and nxt.op == "call_function" and nxt.target in _ADDS and len(nxt.args) == 2 \
                and not nxt.kwargs:
            others = [a for a in nxt.args if a is not chain[-1]]
            if len(others) != 1 or not isinstance(others[0], fx.Node):
                continue
            residual = others[0]
            chain.append(nxt)
            nxt = _only_user(nxt)
        is_relu = nxt is not None and (_module(owner, nxt, nn.ReLU) or (
            nxt.op == "call_function" and nxt.target in _RELUS and len(nxt.args) == 1))
        if not is_relu:
            continue
        with graph.inserting_before(nxt):
            bn = graph.get_attr(node.target)
            out = graph.call_function(bn_relu, (bn, node.args[0]) + ((residual,) if residual is not None else ()))
        nxt.replace_all_uses_with(out)
        for dead in [nxt] + chain[::-1]:
            graph.erase_node(dead)
        fused += 1
    return fused


def _training_forward(fused_forward):
    # Training mode runs the rewritten graph; eval mode the module's own forward, untouched.
    def forward(self, *args, **kwargs):
        if self.training:
            return fused_forward(self, *args, **kwargs)
        return type(self).forward(self, *args, **kwargs)

    return forward


def fuse_bn_relu(model: nn.Module) -> int:
    """Make ``model`` run its BN -> ReLU (and BN -> add -> ReLU) chains fused while training.

    Each module's own ``forward`` is traced with torch.fx (its submodules as leaves); where a
    chain is found, the module's ``forward`` becomes the rewritten graph in training mode and
    stays its class's forward in eval mode. Modules that cannot be traced are left as they are
    (their children are still visited). Returns the number of chains fused.
    """
    total = 0
    for module in list(model.modules()):
        if "forward" in vars(module) or not any(isinstance(c, nn.BatchNorm2d) for c in module.children()):
            continue
        try:
            graph = _OwnChildrenTracer(module).trace(module)
        except Exception:  # data-dependent control flow and the like: keep the module as it is
            continue
        if any(n.op == "get_attr" for n in graph.nodes):  # constants the module itself does not hold
            continue
        count = _fuse_graph(module, graph)
        if count:
            graph.lint()
            code = fx.GraphModule(module, graph)
            module.forward = types.MethodType(_training_forward(type(code).forward), module)
            total += count
    return total
