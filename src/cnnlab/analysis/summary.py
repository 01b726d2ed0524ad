"""Per-layer summary of a model: output shape, parameters, MACs, activation memory, receptive field.

The lectures' VGG-16 table (memory and parameters per layer, CS231n 2019 lecture 9)
computed for any model in the zoo.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import CnnlabError
from .tracing import ForwardTracer, LayerRecord, MetaInitShortcut

ACTIVATION_RULE = (
    "Activations count the input image plus every layer output that needs new memory in a "
    "forward pass at batch size 1: convolutions, poolings, normalisations, fully connected "
    "layers and the concatenations/additions that make new tensors. In-place ReLUs, eval-mode "
    "dropout and reshapes reuse their input's memory and count 0. MACs count one "
    "multiply-add per MAC for convolutions and fully connected layers (biases, "
    "normalisation, activations and pooling are not counted), the convention of fvcore and ptflops."
)


@dataclass
class ModelSummary:
    """The result of :func:`summarize`: one row per layer call, and totals."""

    model_name: str
    input_shape: tuple[int, ...]
    layers: list[LayerRecord]
    total_params: int
    trainable_params: int
    total_macs: int
    input_values: int
    input_bytes: int
    param_bytes: int
    unexecuted_params: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def activation_values(self) -> int:
        """Input values plus every newly allocated layer output (see ``ACTIVATION_RULE``)."""
        return self.input_values + sum(r.activation_values for r in self.layers)

    @property
    def activation_bytes(self) -> int:
        return self.input_bytes + sum(r.activation_bytes for r in self.layers)

    def to_dict(self) -> dict:
        """JSON-ready form (``cnnlab summary --json``)."""
        return {
            "model": self.model_name,
            "input_shape": list(self.input_shape),
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "total_macs": self.total_macs,
            "activation_values": self.activation_values,
            "activation_bytes": self.activation_bytes,
            "input_values": self.input_values,
            "param_bytes": self.param_bytes,
            "unexecuted_params": self.unexecuted_params,
            "counting": ACTIVATION_RULE,
            "notes": self.notes,
            "layers": [
                {
                    "name": r.name,
                    "type": r.type,
                    "output_shape": list(r.output_shape),
                    "params": r.params,
                    "weights": r.weights,
                    "macs": r.macs,
                    "activation_values": r.activation_values,
                    "activation_bytes": r.activation_bytes,
                    "inplace": r.inplace,
                    "receptive_field": field_size(r.receptive_field),
                    "jump": field_jump(r.receptive_field),
                }
                for r in self.layers
            ],
        }


def field_size(rf) -> int | list[int] | None:
    """Receptive-field size of a record: one number when square, ``[h, w]`` otherwise."""
    if rf is None:
        return None
    (h, _), (w, _) = rf
    return h if h == w else [h, w]


def field_jump(rf) -> int | list[int] | None:
    """Distance in input pixels between neighbouring output units (the cumulative stride)."""
    if rf is None:
        return None
    (_, jh), (_, jw) = rf
    return jh if jh == jw else [jh, jw]


def _resolve(model: nn.Module | str, input_size) -> tuple[nn.Module, str, tuple[int, int, int]]:
    if isinstance(model, str):
        from ..registry import create_model

        name = model
        # Built on the meta device: shapes only, no weights, no arithmetic. A summary of
        # VGG-16 or EfficientNet-B7 then costs milliseconds and no memory.
        with torch.device("meta"), MetaInitShortcut():
            model = create_model(name)
    else:
        name = getattr(getattr(model, "pretrained_cfg", None), "name", type(model).__name__)
    if input_size is None:
        info = getattr(model, "pretrained_cfg", None)
        if info is None:
            raise CnnlabError(f"{name} has no default input size; pass input_size=(C, H, W)")
        input_size = info.input_size
    input_size = tuple(int(v) for v in input_size)
    if len(input_size) != 3 or min(input_size) < 1:
        raise CnnlabError(f"input size must be three positive numbers C x H x W, got {input_size}")
    return model, name, input_size  # type: ignore[return-value]


def summarize(model: nn.Module | str, input_size: tuple[int, int, int] | None = None,
              dtype: torch.dtype = torch.float32) -> ModelSummary:
    """Trace one forward pass of ``model`` (an instance or a registered name) at batch size 1.

    A registered name is built on the ``meta`` device, so only shapes are computed; an
    instance runs for real on the device of its parameters.

    Runs in eval mode (as at inference: GoogLeNet's auxiliary heads do not run, dropout
    is the identity) and restores the model's mode afterwards.
    """
    model, name, input_size = _resolve(model, input_size)
    was_training = model.training
    model.eval()
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    x = torch.zeros((1, *input_size), dtype=dtype, device=device)
    tracer = ForwardTracer(model)
    try:
        with torch.no_grad(), tracer:
            tracer.set_field(x, ((1, 1), (1, 1)))
            model(x)
    except RuntimeError as error:
        layer = tracer.current_layer() or "the first layer"
        text = str(error).splitlines()[0]
        if "size" in text.lower() or "kernel" in text.lower():
            raise CnnlabError(
                f"input {input_size[0]}x{input_size[1]}x{input_size[2]} is too small for {name}: at layer "
                f"'{layer}' the spatial size reaches zero ({text}). Use a larger --input "
                f"(the model's default is {'x'.join(map(str, getattr(model, 'pretrained_cfg').input_size)) if hasattr(model, 'pretrained_cfg') else 'unknown'})."
            ) from None
        raise CnnlabError(f"{name} cannot run on input {input_size}: at layer '{layer}': {text}") from None
    finally:
        model.train(was_training)

    params = list(model.parameters())
    total_params = sum(p.numel() for p in params)
    executed = sum(r.params for r in tracer.records)
    notes = []
    if executed < total_params:
        notes.append(f"{total_params - executed:,} parameters belong to layers that do not run in eval mode "
                     "(e.g. auxiliary classifiers); they are in total_params but in no row.")
    return ModelSummary(
        model_name=name,
        input_shape=tuple(x.shape[1:]),
        layers=tracer.records,
        total_params=total_params,
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        total_macs=tracer.total_macs,
        input_values=x.numel(),
        input_bytes=x.numel() * x.element_size(),
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        unexecuted_params=total_params - executed,
        notes=notes,
    )


def count_params(model: nn.Module) -> int:
    """Number of parameters (each shared tensor counted once)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module | str, input_size: tuple[int, int, int] | None = None) -> int:
    """Multiply-accumulates of one forward pass at batch size 1 (convolutions and FC layers)."""
    return summarize(model, input_size).total_macs
