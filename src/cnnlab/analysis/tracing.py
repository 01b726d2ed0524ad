"""One instrumented forward pass: per-layer shapes, MACs, new activation memory and receptive field.

Module hooks say *which layer* runs; a ``TorchFunctionMode`` sees *every tensor op*
(including functional ones such as ``torch.cat`` in an Inception module or the
residual addition), so the numbers follow what the model really computes instead of a
per-architecture formula.

Receptive field (Araujo et al. 2019, "Computing Receptive Fields of CNNs"): every
tensor carries ``(size, jump)`` per spatial axis; a conv or pool with kernel ``k``,
dilation ``d`` and stride ``s`` maps it to ``(size + d(k-1)*jump, jump*s)``; ops that
merge tensors (add, cat) take the largest field of their inputs; a global pool,
flatten or fully connected layer sees its whole input.
"""
from __future__ import annotations

import inspect
import math
import weakref
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

# Receptive field of one tensor: ((size_h, jump_h), (size_w, jump_w)).
Field = tuple[tuple[int, int], tuple[int, int]]
_PIXEL: Field = ((1, 1), (1, 1))


@dataclass
class LayerRecord:
    """What one call of one leaf layer (or one allocating functional op) did."""

    name: str
    type: str
    output_shape: tuple[int, ...]
    params: int = 0
    weights: int = 0  # the ``weight`` tensors alone, biases excluded, as the lecture's tables count
    macs: int = 0
    activation_values: int = 0
    activation_bytes: int = 0
    receptive_field: Field | None = None
    inplace: bool = False
    extra: dict = field(default_factory=dict)


def _arg(args, kwargs, index: int, name: str, default):
    if name in kwargs:
        return kwargs[name]
    return args[index] if len(args) > index else default


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        return (int(value[0]), int(value[-1]))
    return (int(value), int(value))


def _spatial(tensor: torch.Tensor) -> tuple[int, int] | None:
    return (tensor.shape[-2], tensor.shape[-1]) if tensor.dim() >= 3 else None


def _grow(rf: Field, kernel, stride, dilation=(1, 1)) -> Field:
    return tuple(
        (size + dil * (k - 1) * jump, jump * s)
        for (size, jump), k, s, dil in zip(rf, kernel, stride, dilation)
    )  # type: ignore[return-value]


def _whole_input(rf: Field, spatial: tuple[int, int]) -> Field:
    """The field of a unit that sees every position of its input (global pool, FC)."""
    return tuple((size + (extent - 1) * jump, jump) for (size, jump), extent in zip(rf, spatial))  # type: ignore[return-value]


def _shares_memory(a: torch.Tensor, b: torch.Tensor) -> bool:
    """True when ``a`` is ``b`` or a view of the same base: no new memory was needed.

    Decided from tensor identity rather than data pointers so that it also holds for
    shape-only tracing on the ``meta`` device.
    """
    return (a if a._base is None else a._base) is (b if b._base is None else b._base)


class ForwardTracer(TorchFunctionMode):
    """Runs a model once and records a :class:`LayerRecord` per leaf-layer call.

    Use :func:`trace_model`; this class holds the bookkeeping.
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.records: list[LayerRecord] = []
        self.total_macs = 0
        self._fields: dict[int, tuple[weakref.ref, Field]] = {}
        self._stack: list[tuple[str, nn.Module, list[torch.Tensor], LayerRecord | None]] = []
        self._seen_params: set[int] = set()
        self._names = {module: name for name, module in model.named_modules()}
        self._handles: list = []

    # --- receptive-field bookkeeping -------------------------------------------------
    def field_of(self, tensor: torch.Tensor) -> Field | None:
        entry = self._fields.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def set_field(self, tensor: torch.Tensor, rf: Field) -> None:
        self._fields[id(tensor)] = (weakref.ref(tensor), rf)

    def _input_fields(self, args, kwargs) -> list[Field]:
        found = []
        for value in list(args) + list(kwargs.values()):
            items = value if isinstance(value, (list, tuple)) else [value]
            for item in items:
                if isinstance(item, torch.Tensor):
                    rf = self.field_of(item)
                    if rf is not None:
                        found.append(rf)
        return found

    def _output_field(self, func, args, kwargs, inputs: list[Field], out: torch.Tensor) -> Field:
        name = getattr(func, "__name__", "")
        first = args[0] if args and isinstance(args[0], torch.Tensor) else None
        rf_in = self.field_of(first) if first is not None else None
        if rf_in is not None and name in ("conv2d", "conv1d", "conv3d"):
            weight = _arg(args, kwargs, 1, "weight", None)
            return _grow(rf_in, _pair(tuple(weight.shape[2:])), _pair(_arg(args, kwargs, 3, "stride", 1)),
                         _pair(_arg(args, kwargs, 5, "dilation", 1)))
        if rf_in is not None and name in ("max_pool2d", "_max_pool2d", "max_pool2d_with_indices",
                                          "avg_pool2d", "lp_pool2d"):
            kernel = _pair(_arg(args, kwargs, 1, "kernel_size", 1))
            stride = _arg(args, kwargs, 2, "stride", None)
            stride = kernel if stride in (None, [], ()) else _pair(stride)
            dilation = _pair(_arg(args, kwargs, 4, "dilation", 1)) if "max" in name else (1, 1)
            return _grow(rf_in, kernel, stride, dilation)
        if rf_in is not None and name.startswith("adaptive_") and first.dim() >= 3:
            in_hw, out_hw = _spatial(first), _spatial(out)
            if out_hw == in_hw:
                return rf_in
            # An adaptive pool's windows are at most ceil(in/out) wide, placed every floor(in/out).
            kernel = tuple(math.ceil(i / o) + (1 if i % o else 0) if o > 1 else i for i, o in zip(in_hw, out_hw))
            stride = tuple(max(i // o, 1) for i, o in zip(in_hw, out_hw))
            return _grow(rf_in, kernel, stride)
        if rf_in is not None and first.dim() >= 3 and out.dim() < first.dim() - 1:
            # flatten / view to a vector: every output value may depend on every position.
            return _whole_input(rf_in, _spatial(first))
        if not inputs:
            return _PIXEL
        return tuple(  # merges (add, cat, mul) and elementwise ops: the widest input field
            (max(f[axis][0] for f in inputs), max(f[axis][1] for f in inputs)) for axis in range(2)
        )  # type: ignore[return-value]

    # --- MACs: one multiply-add per MAC, convolutions and matrix products only ----------
    @staticmethod
    def _macs(func, args, kwargs, out) -> int:
        name = getattr(func, "__name__", "")
        if name in ("conv1d", "conv2d", "conv3d"):
            weight = _arg(args, kwargs, 1, "weight", None)
            return out.numel() * math.prod(weight.shape[1:])
        if name == "linear":
            weight = _arg(args, kwargs, 1, "weight", None)
            return out.numel() * weight.shape[1]
        if name in ("matmul", "mm", "bmm", "__matmul__"):
            return out.numel() * args[0].shape[-1]
        return 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = meta_shortcut(func, args, kwargs)
        if out is None:
            out = func(*args, **kwargs)
        if not isinstance(out, torch.Tensor) or getattr(func, "__name__", "") in ("__get__", "__set__"):
            return out
        inputs = self._input_fields(args, kwargs)
        if inputs:
            self.set_field(out, self._output_field(func, args, kwargs, inputs, out))
        macs = self._macs(func, args, kwargs, out)
        self.total_macs += macs
        if self._stack:
            name, module, module_inputs, record = self._stack[-1]
            if record is not None:  # inside a leaf layer: its row gets the MACs
                record.macs += macs
            elif out.dim() >= 2 and out.numel() and not any(
                isinstance(a, torch.Tensor) and _shares_memory(a, out) for a in args
            ) and getattr(func, "__name__", "") not in _METADATA_OPS:
                # A functional op in a composite layer that allocates a new activation
                # (Inception's concatenation, an out-of-place residual addition).
                op = getattr(func, "__name__", "op").strip("_")
                # A parameter a composite layer owns itself (ConvNeXt's layer scale) counts
                # on the row of the op that uses it.
                own = [a for a in args if isinstance(a, nn.Parameter) and id(a) not in self._seen_params]
                self._seen_params.update(id(p) for p in own)
                self.records.append(LayerRecord(
                    name=f"{name}.{op}" if name else op, type=op, output_shape=tuple(out.shape),
                    params=sum(p.numel() for p in own), weights=sum(p.numel() for p in own),
                    macs=macs, activation_values=out.numel(), activation_bytes=out.numel() * out.element_size(),
                    receptive_field=self.field_of(out),
                ))
        return out

    # --- module hooks -----------------------------------------------------------------
    def _pre_hook(self, module: nn.Module, args):
        name = self._names.get(module, type(module).__name__)
        is_leaf = next(module.children(), None) is None
        record = None
        if is_leaf:
            new_params = [p for p in module.parameters(recurse=False) if id(p) not in self._seen_params]
            self._seen_params.update(id(p) for p in new_params)
            weight = getattr(module, "weight", None)
            record = LayerRecord(name=name, type=type(module).__name__, output_shape=(),
                                 params=sum(p.numel() for p in new_params),
                                 weights=weight.numel() if any(weight is p for p in new_params) else 0)
            self.records.append(record)
        tensors = [a for a in args if isinstance(a, torch.Tensor)]
        self._stack.append((name, module, tensors, record))

    def _post_hook(self, module: nn.Module, args, output):
        name, _, inputs, record = self._stack.pop()
        if record is None:
            # Own parameters of a composite layer used by no op that made a row of its own
            # (e.g. through an in-place op) still belong to the layer: a row of their own.
            own = [p for p in module.parameters(recurse=False) if id(p) not in self._seen_params]
            if own:
                self._seen_params.update(id(p) for p in own)
                count = sum(p.numel() for p in own)
                self.records.append(LayerRecord(name=f"{name}.params" if name else "params", type="Parameter",
                                                output_shape=(), params=count, weights=count))
            return
        outputs = [output] if isinstance(output, torch.Tensor) else [
            o for o in (output if isinstance(output, (tuple, list)) else []) if isinstance(o, torch.Tensor)
        ]
        if not outputs:
            return
        first = outputs[0]
        record.output_shape = tuple(first.shape)
        record.receptive_field = self.field_of(first)
        for out in outputs:
            if any(_shares_memory(out, i) for i in inputs):
                record.inplace = True  # in-place ReLU, eval-mode dropout, views: no new memory
                continue
            record.activation_values += out.numel()
            record.activation_bytes += out.numel() * out.element_size()

    def __enter__(self):
        for module in self.model.modules():
            self._handles.append(module.register_forward_pre_hook(self._pre_hook))
            self._handles.append(module.register_forward_hook(self._post_hook))
        return super().__enter__()

    def __exit__(self, *exc):
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        return super().__exit__(*exc)

    def current_layer(self) -> str | None:
        """Name of the innermost layer running now (used to name the layer that failed)."""
        return self._stack[-1][0] if self._stack else None


# --- shape-only tracing on the meta device -------------------------------------------
# PyTorch runs many meta kernels as Python reference implementations that cost about a
# millisecond per call, which made a summary of ResNet-1202 take seconds. For ops whose
# output has the shape of their input (activations, normalisation, dropout) or the
# broadcast shape of two operands (arithmetic), and for in-place weight initialisation,
# the answer on the meta device is known without running them.
_SAME_SHAPE_OPS = {
    "relu", "relu_", "relu6", "leaky_relu", "leaky_relu_", "elu", "elu_", "gelu", "silu", "sigmoid", "tanh",
    "hardswish", "hardsigmoid", "hardtanh", "hardtanh_", "batch_norm", "layer_norm", "group_norm",
    "instance_norm", "dropout", "local_response_norm",
}
_BROADCAST_OPS = {"add", "sub", "mul", "div", "__add__", "__radd__", "__sub__", "__mul__", "__rmul__",
                  "__truediv__", "add_", "sub_", "mul_", "div_", "__iadd__", "__isub__", "__imul__", "__itruediv__"}
_INIT_OPS = {"normal_", "uniform_", "zero_", "fill_", "erfinv_", "clamp_", "copy_", "bernoulli_",
             "exponential_", "random_"}
_SIGNATURES: dict = {}


def _flag(func, args, kwargs, flag: str, default: bool) -> bool:
    """The value of a functional's boolean argument (``inplace``, ``training``) in this call."""
    if func not in _SIGNATURES:
        try:
            _SIGNATURES[func] = inspect.signature(func)
        except (TypeError, ValueError):
            _SIGNATURES[func] = None
    signature = _SIGNATURES[func]
    if signature is None or flag not in signature.parameters:
        return default
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return default
    bound.apply_defaults()
    return bool(bound.arguments[flag])


def _is_inplace(func, name: str, args, kwargs) -> bool:
    if name.startswith("__i") or (name.endswith("_") and not name.startswith("__")):
        return True
    return _flag(func, args, kwargs, "inplace", False)


def meta_shortcut(func, args, kwargs) -> torch.Tensor | None:
    """The result of ``func`` on meta tensors when it is known from shapes alone, else ``None``."""
    first = args[0] if args else None
    if not isinstance(first, torch.Tensor) or not first.is_meta:
        return None
    name = getattr(func, "__name__", "")
    if name in _INIT_OPS:
        return first
    if name == "dropout" and not _flag(func, args, kwargs, "training", True):
        return first  # eval-mode dropout hands back its input, as on a real device
    if name in _SAME_SHAPE_OPS:
        return first if _is_inplace(func, name, args, kwargs) else torch.empty_like(first)
    if name in _BROADCAST_OPS and len(args) >= 2:
        if _is_inplace(func, name, args, kwargs):
            return first
        other = args[1]
        shape = torch.broadcast_shapes(first.shape, other.shape) if isinstance(other, torch.Tensor) else first.shape
        return torch.empty(shape, dtype=first.dtype, device="meta")
    return None


class MetaInitShortcut(TorchFunctionMode):
    """Build a model on the meta device without running its weight initialisation."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", "") in _INIT_OPS and args and isinstance(args[0], torch.Tensor) and args[0].is_meta:
            return args[0]
        return func(*args, **kwargs)


# Ops that only read metadata or reshape without computing: never rows of their own.
_METADATA_OPS = {"size", "dim", "numel", "view", "reshape", "flatten", "permute", "contiguous", "to",
                 "transpose", "squeeze", "unsqueeze", "expand", "chunk", "split", "narrow", "__getitem__",
                 "detach", "clone", "float", "type_as"}
