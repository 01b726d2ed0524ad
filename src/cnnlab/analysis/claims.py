"""The lectures' quantitative claims, recomputed from the project's own models.

Every number a lecture states about an architecture (AlexNet's 55x55x96 after CONV1,
VGG-16's 138M parameters, the naive Inception module's 854M multiply-adds, ...) is
registered here as a :class:`Claim`: the words, the seed file and an exact quote it comes
from, the lecture's value with a stated tolerance, and a function that computes the same
quantity from cnnlab's models and analysis code (:func:`~cnnlab.analysis.summarize`,
module parameters, receptive fields). :func:`check_claims` runs them and says, for each,
whether the lecture's number *agrees* with what the code computes or *differs*, and why.

Nothing here hard-codes an answer: each compute function builds a model or module
(on the ``meta`` device, so shapes and counts cost milliseconds and no memory) and reads
the number off it. Some lecture numbers do not survive that check (VGG-16's "24M"
total memory, the bottlenecked Inception module's "358M ops", GoogLeNet's "12x fewer
parameters than AlexNet"); their verdict is "differs" with the reason.

Adding a claim from another module::

    from cnnlab.analysis.claims import CLAIM_MODULES, claim

    @claim(id="my-claim", text=..., source="004_cd051ca725a1dddb.txt", quote=...,
           lecture_value=..., unit=..., tolerance=...)
    def _my_claim():
        return ...

and append that module's import path to ``CLAIM_MODULES`` so that :func:`all_claims`
imports it (registration happens at import time).
"""
from __future__ import annotations

import difflib
import importlib
import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from .receptive_field import receptive_field, stacked_receptive_field
from .summary import ModelSummary, summarize

# The seed files (the project's specification, in ../shared/seeds) the quotes come from.
REFERENCES = "000_7cd15f83d1038256.txt"  # reference list with the CS231n case-study numbers
LESSON = "001_c5b7ade6371c8d23.txt"  # long-form lesson "Training CNNs & the Architecture Revolution"
PRACTICE = "002_bce842e4950f4d57.txt"  # practice questions and answers
SLIDES_2025 = "003_d8a3acbf288f8711.txt"  # CS231n 2025 lecture 6 slides
SLIDES_2019 = "004_cd051ca725a1dddb.txt"  # CS231n 2019 lecture 9 slides (CNN architectures)

Value = Any  # int | float | tuple of numbers (a shape such as 55x55x96)

# Modules that register claims when imported; all_claims() imports each once.
CLAIM_MODULES: list[str] = ["cnnlab.analysis.claims_training"]


@dataclass(frozen=True)
class Claim:
    """One number a lecture states, where it says it, and how cnnlab computes it.

    ``lecture_value`` is a number, or a tuple of numbers for a shape (``(55, 55, 96)``
    for "55x55x96", compared element by element). ``tolerance`` is relative: the claim
    agrees when ``|computed - lecture| <= tolerance * |lecture|``; it is chosen per claim
    from how the lecture rounds ("35K" is good to 5%, an exact "1,728" gets 0).
    ``lecture_text`` is the number as the lecture writes it; ``method`` says which model
    or module the number is computed from; ``note`` says why the tolerance is what it
    is; ``explanation`` says why the lecture's number differs, shown when it does.
    """

    id: str
    text: str
    source: str
    quote: str
    lecture_value: Value
    unit: str
    tolerance: float
    compute: Callable[[], Value] = field(repr=False, compare=False)
    lecture_text: str = ""
    method: str = ""
    note: str = ""
    explanation: str = ""

    def __post_init__(self) -> None:
        if self.tolerance < 0:
            raise ValueError(f"claim {self.id}: tolerance must be >= 0, got {self.tolerance}")
        if not self.quote.strip():
            raise ValueError(f"claim {self.id}: the quote must not be empty")
        if not self.lecture_text:
            object.__setattr__(self, "lecture_text", format_value(self.lecture_value, self.unit))


@dataclass(frozen=True)
class ClaimResult:
    """A claim checked: its fields, the computed value, the verdict and the reason."""

    id: str
    text: str
    source: str
    quote: str
    lecture_value: Value
    lecture_text: str
    unit: str
    tolerance: float
    method: str
    note: str
    explanation: str
    computed: Value
    verdict: str  # "agrees", "differs", or "error" (the compute function failed)
    reason: str
    relative_difference: float | None

    def to_dict(self) -> dict:
        """JSON-ready form (``cnnlab claims --json``); shapes become lists."""
        return {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "quote": self.quote,
            "lecture_value": _jsonable(self.lecture_value),
            "lecture_text": self.lecture_text,
            "computed": _jsonable(self.computed),
            "unit": self.unit,
            "tolerance": self.tolerance,
            "verdict": self.verdict,
            "reason": self.reason,
            "relative_difference": self.relative_difference,
            "method": self.method,
            "note": self.note,
            "explanation": self.explanation,
        }


_REGISTRY: dict[str, Claim] = {}


def register_claim(item: Claim) -> Claim:
    """Add a claim to the registry (ids are unique)."""
    if item.id in _REGISTRY:
        raise RuntimeError(f"claim {item.id!r} registered twice")
    _REGISTRY[item.id] = item
    return item


def claim(*, id: str, text: str, source: str, quote: str, lecture_value: Value, unit: str,
          tolerance: float, lecture_text: str = "", method: str = "", note: str = "",
          explanation: str = "") -> Callable[[Callable[[], Value]], Callable[[], Value]]:
    """Decorator: register the decorated zero-argument function as the claim's computation."""

    def decorate(compute: Callable[[], Value]) -> Callable[[], Value]:
        register_claim(Claim(id=id, text=text, source=source, quote=quote, lecture_value=lecture_value,
                             unit=unit, tolerance=tolerance, compute=compute,
                             lecture_text=lecture_text, method=method,
                             note=note, explanation=explanation))
        return compute

    return decorate


def all_claims() -> list[Claim]:
    """Every registered claim, in registration order."""
    for module in CLAIM_MODULES:
        importlib.import_module(module)
    return list(_REGISTRY.values())


def get_claim(claim_id: str) -> Claim:
    """The claim registered under ``claim_id``; unknown ids get the closest matches."""
    all_claims()
    try:
        return _REGISTRY[claim_id]
    except KeyError:
        close = difflib.get_close_matches(claim_id, list(_REGISTRY), n=5, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise CnnlabError(f"unknown claim {claim_id!r}.{hint} Run `cnnlab claims` to list all "
                          f"{len(_REGISTRY)} claims.") from None


def check_claims(ids: Sequence[str] | None = None) -> list[ClaimResult]:
    """Compute every claim (or those in ``ids``) and compare with the lecture's value."""
    claims = all_claims() if ids is None else [get_claim(i) for i in ids]
    return [evaluate(c) for c in claims]


def evaluate(item: Claim) -> ClaimResult:
    """Run one claim's computation and give its verdict and reason."""
    try:
        computed = item.compute()
    except Exception as error:  # one broken claim must not hide the others' verdicts
        return _result(item, None, "error", f"could not compute: {type(error).__name__}: {error}", None)
    agrees = _agrees(computed, item.lecture_value, item.tolerance)
    shown = f"computed {format_value(computed, item.unit)} vs lecture {item.lecture_text}"
    rel = _relative_difference(computed, item.lecture_value)
    if agrees:
        if item.tolerance == 0:
            reason = f"exact: {shown}"
        else:
            reason = f"within {_percent(item.tolerance)}: {shown}"
        if item.note:
            reason += f" ({item.note})"
        return _result(item, computed, "agrees", reason, rel)
    if rel is not None:
        shown += f" ({rel:+.1%})"
    reason = f"{shown}: {item.explanation}" if item.explanation else shown
    return _result(item, computed, "differs", reason, rel)


def claims_table_rows(results: Sequence[ClaimResult]) -> list[tuple[str, str, str, str, str, str]]:
    """Rows ``(id, lecture, computed, unit, verdict, reason)`` for a plain-text table."""
    return [(r.id, r.lecture_text, format_value(r.computed, r.unit), r.unit, r.verdict, r.reason) for r in results]


def normalize_whitespace(text: str) -> str:
    """Collapse every run of whitespace (line breaks of the PDF text included) to one space."""
    return " ".join(text.split())


def format_value(value: Value, unit: str = "") -> str:
    """A number as a person reads it: ``34,848``, ``8.697``; a shape ``55x55x96``.

    Tuples are joined with "x" when ``unit`` names a shape (``HxWxC``), else with ", ".
    """
    if value is None:
        return "-"
    if isinstance(value, (tuple, list)):
        shape = "HxW" in unit or " x " in unit
        return ("x" if shape else ", ").join(format_value(v).replace(",", "") for v in value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        value = int(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4g}"


# --- verdict arithmetic ---------------------------------------------------------------

def _agrees(computed: Value, lecture: Value, tolerance: float) -> bool:
    if isinstance(lecture, (tuple, list)):
        if not isinstance(computed, (tuple, list)) or len(computed) != len(lecture):
            return False
        return all(_agrees(c, v, tolerance) for c, v in zip(computed, lecture))
    if isinstance(computed, (tuple, list)):
        return False
    return abs(computed - lecture) <= tolerance * abs(lecture)


def _relative_difference(computed: Value, lecture: Value) -> float | None:
    # Only for single numbers with a non-zero lecture value: shapes are compared per axis.
    if isinstance(computed, (tuple, list)) or isinstance(lecture, (tuple, list)) or lecture == 0:
        return None
    return (computed - lecture) / abs(lecture)


def _percent(tolerance: float) -> str:
    return f"{tolerance * 100:.3g}%"


def _jsonable(value: Value) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _result(item: Claim, computed: Value, verdict: str, reason: str, rel: float | None) -> ClaimResult:
    return ClaimResult(
        id=item.id, text=item.text, source=item.source, quote=item.quote, lecture_value=item.lecture_value,
        lecture_text=item.lecture_text, unit=item.unit, tolerance=item.tolerance, method=item.method,
        note=item.note, explanation=item.explanation, computed=computed, verdict=verdict, reason=reason,
        relative_difference=rel,
    )


# --- helpers the computations share -----------------------------------------------------

@lru_cache(maxsize=None)
def _model(name: str, **overrides) -> nn.Module:
    """A zoo model built on the meta device: real shapes and parameter counts, no weights."""
    from ..registry import create_model

    with torch.device("meta"):
        return create_model(name, **overrides)


@lru_cache(maxsize=None)
def _summary(name: str, **overrides) -> ModelSummary:
    """summarize() of a zoo model at its paper input size (shape-only, on meta)."""
    return summarize(_model(name, **overrides))


def _meta(builder: Callable[[], nn.Module]) -> nn.Module:
    with torch.device("meta"):
        return builder()


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _conv_weights(module: nn.Module) -> int:
    """Weights of every convolution in a module: biases and normalisation not counted, as in the lectures."""
    return sum(m.weight.numel() for m in module.modules() if isinstance(m, nn.Conv2d))


def _hwc(shape: Sequence[int]) -> tuple[int, ...]:
    """A traced (1, C, H, W) output shape as the lectures write it, HxWxC; (1, N) as N."""
    if len(shape) == 4:
        return (shape[2], shape[3], shape[1])
    return tuple(shape[1:])


def _out_shape(module: nn.Module, input_size: tuple[int, int, int]) -> tuple[int, ...]:
    """Output shape of a module on a batch of one, HxWxC (meta device: shapes only)."""
    module.eval()
    with torch.no_grad():
        out = module(torch.zeros((1, *input_size), device="meta"))
    return _hwc(tuple(out.shape))


def _weight_layer_counts(model: nn.Module) -> tuple[int, int]:
    """(conv layers, fully connected layers) on the main path, the way papers count depth.

    Projection shortcuts (``downsample``) are not counted, as the ResNet paper does not.
    """
    convs = fcs = 0
    for name, module in model.named_modules():
        if "downsample" in name.split("."):
            continue
        if isinstance(module, nn.Conv2d):
            convs += 1
        elif isinstance(module, nn.Linear):
            fcs += 1
    return convs, fcs


def _longest_weight_path(module: nn.Module) -> int:
    """Weight layers on the longest input-to-output path: parallel branches count once.

    The lecture's GoogLeNet rule: "parallel layers count as 1 layer => 2 layers per
    Inception module". Modules run their children in sequence except Inception modules,
    whose four branches run side by side.
    """
    from ..layers.inception import InceptionModule, NaiveInceptionModule

    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return 1
    children = list(module.children())
    if isinstance(module, (InceptionModule, NaiveInceptionModule)):
        return max(_longest_weight_path(c) for c in children)
    return sum(_longest_weight_path(c) for c in children)


def _layers_of(summary: ModelSummary, types: tuple[str, ...]):
    return [r for r in summary.layers if r.type in types]


# ======================================================================================
# AlexNet (2019 lecture 9, "Case Study: AlexNet")
# ======================================================================================
# alexnet_paper is the lecture's layer list: 227x227 input, CONV1 96 11x11/4 pad 0, the
# 2012 paper's two GPU towers (grouped CONV2/4/5), LRN after POOL1/POOL2.

def _alexnet_rows() -> list:
    """alexnet_paper's CONV and POOL layers in order: CONV1, POOL1, CONV2, POOL2, CONV3-5, POOL3."""
    rows = _layers_of(_summary("alexnet_paper"), ("Conv2d", "MaxPool2d"))
    if len(rows) != 8:
        raise RuntimeError(f"alexnet_paper has {len(rows)} conv/pool layers, expected the lecture's 8")
    return rows


_ALEXNET_ROW = {"conv1": 0, "pool1": 1, "conv2": 2, "pool2": 3, "conv3": 4, "conv4": 5, "conv5": 6, "pool3": 7}


@claim(id="alexnet-conv1-shape", text="AlexNet CONV1 (96 11x11 filters, stride 4, on 227x227x3) outputs 55x55x96",
       source=SLIDES_2019, quote="Output volume [55x55x96]", lecture_value=(55, 55, 96), unit="HxWxC",
       tolerance=0, method="alexnet_paper, traced output of features.0")
def _alexnet_conv1_shape():
    return _hwc(_alexnet_rows()[_ALEXNET_ROW["conv1"]].output_shape)


@claim(id="alexnet-conv1-weights", text="AlexNet CONV1 has (11*11*3)*96 weights, about 35K",
       source=SLIDES_2019, quote="Parameters: (11*11*3)*96 = 35K", lecture_value=35_000, lecture_text="35K",
       unit="weights", tolerance=0.05, note="the slide rounds to thousands; biases not counted",
       method="alexnet_paper: features.0.weight.numel()")
def _alexnet_conv1_weights():
    return _model("alexnet_paper").features[0].weight.numel()


@claim(id="alexnet-pool1-shape", text="AlexNet POOL1 (3x3, stride 2) turns 55x55x96 into 27x27x96",
       source=SLIDES_2019, quote="Output volume: 27x27x96", lecture_value=(27, 27, 96), unit="HxWxC",
       tolerance=0, method="alexnet_paper, traced output of features.2")
def _alexnet_pool1_shape():
    return _hwc(_alexnet_rows()[_ALEXNET_ROW["pool1"]].output_shape)


@claim(id="alexnet-pool1-params", text="AlexNet POOL1 has no parameters", source=SLIDES_2019,
       quote="Parameters: 0!", lecture_value=0, unit="parameters", tolerance=0,
       method="alexnet_paper: parameters of the traced features.2 (MaxPool2d)")
def _alexnet_pool1_params():
    return _alexnet_rows()[_ALEXNET_ROW["pool1"]].params


def _register_alexnet_list() -> None:
    # The rest of the slide's "Full (simplified) AlexNet architecture" list.
    rows = [
        ("conv2", (27, 27, 256), "[27x27x256] CONV2: 256 5x5 filters at stride 1, pad 2"),
        ("pool2", (13, 13, 256), "[13x13x256] MAX POOL2: 3x3 filters at stride 2"),
        ("conv3", (13, 13, 384), "[13x13x384] CONV3: 384 3x3 filters at stride 1, pad 1"),
        ("conv4", (13, 13, 384), "[13x13x384] CONV4: 384 3x3 filters at stride 1, pad 1"),
        ("conv5", (13, 13, 256), "[13x13x256] CONV5: 256 3x3 filters at stride 1, pad 1"),
        ("pool3", (6, 6, 256), "[6x6x256] MAX POOL3: 3x3 filters at stride 2"),
    ]
    for layer, shape, quote in rows:
        index = _ALEXNET_ROW[layer]
        claim(id=f"alexnet-{layer}-shape", text=f"AlexNet {layer.upper()} outputs {format_value(shape, 'HxWxC')}",
              source=SLIDES_2019, quote=quote, lecture_value=shape, unit="HxWxC", tolerance=0,
              method=f"alexnet_paper, traced output of its conv/pool layer #{index + 1}")(
            lambda index=index: _hwc(_alexnet_rows()[index].output_shape))


_register_alexnet_list()


@claim(id="alexnet-layers", text="AlexNet has 8 weight layers: 5 conv + 3 FC", source=LESSON,
       quote="8 (5 conv + 3 FC)", lecture_value=(5, 3), lecture_text="5 conv + 3 FC", unit="conv, FC layers",
       tolerance=0, method="alexnet_paper: Conv2d and Linear modules")
def _alexnet_layers():
    return _weight_layer_counts(_model("alexnet_paper"))


@claim(id="alexnet-params-60m", text="AlexNet has about 60M parameters", source=REFERENCES,
       quote="and ~60M parameters", lecture_value=60_000_000, lecture_text="~60M", unit="parameters",
       tolerance=0.05, note="'~60M' is a round figure",
       method="alexnet_paper (2012 two-tower layer list, biases included)",
       explanation="the 2012 two-tower AlexNet does not have about 60M parameters")
def _alexnet_params_60m():
    return _summary("alexnet_paper").total_params


@claim(id="alexnet-params-62m", text="AlexNet has 62M parameters (lesson's AlexNet vs VGG-16 table)",
       source=LESSON, quote="Parameters62M138M", lecture_value=62_000_000, lecture_text="62M",
       unit="parameters", tolerance=0.01, note="62M states two significant figures",
       method="alexnet_paper (2012 two-tower layer list, biases included)",
       explanation="62M (62.4M) is the count of the same layer list without the two-GPU split, where "
                   "CONV2, CONV4 and CONV5 see all input maps; the paper's two-tower net (grouped convs) "
                   "and torchvision's single-tower variant (61.1M) both have about 61M")
def _alexnet_params_62m():
    return _summary("alexnet_paper").total_params


@claim(id="alexnet-conv1-filters-torchvision",
       text="The first-layer filter bank of (torchvision's) AlexNet is 64 x 3 x 11 x 11",
       source=SLIDES_2025, quote="64 x 3 x 11 x 11", lecture_value=(64, 3, 11, 11), unit="filters x C x H x W",
       tolerance=0, method="alexnet (torchvision's single-tower variant): features.0.weight.shape")
def _alexnet_conv1_filters_torchvision():
    return tuple(_model("alexnet").features[0].weight.shape)


# ZFNet (2019 lecture 9): "AlexNet but: CONV1 ... CONV3,4,5 ..."

@claim(id="zfnet-conv1", text="ZFNet's CONV1 is 7x7 with stride 2 (AlexNet's was 11x11 stride 4)",
       source=SLIDES_2019, quote="CONV1: change from (11x11 stride 4) to (7x7 stride 2)", lecture_value=(7, 2),
       lecture_text="7x7 stride 2", unit="kernel, stride", tolerance=0, method="zfnet: features.0")
def _zfnet_conv1():
    conv = _model("zfnet").features[0]
    return (conv.kernel_size[0], conv.stride[0])


@claim(id="zfnet-conv345", text="ZFNet's CONV3,4,5 have 512, 1024, 512 filters (AlexNet: 384, 384, 256)",
       source=SLIDES_2019, quote="CONV3,4,5: instead of 384, 384, 256 filters use 512, 1024, 512",
       lecture_value=(512, 1024, 512), lecture_text="512, 1024, 512", unit="filters", tolerance=0,
       method="zfnet: out_channels of its 3rd-5th Conv2d")
def _zfnet_conv345():
    convs = [m for m in _model("zfnet").features if isinstance(m, nn.Conv2d)]
    return tuple(c.out_channels for c in convs[2:5])


# ======================================================================================
# VGG-16 (2019 lecture 9: the memory / parameter table; the lesson's worked example)
# ======================================================================================

# The table's rows: the input, then every conv / pool / FC layer in order (VGG paper names).
_VGG16_ROW_NAMES = ["input", "conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2",
                    "conv3_1", "conv3_2", "conv3_3", "pool3", "conv4_1", "conv4_2", "conv4_3", "pool4",
                    "conv5_1", "conv5_2", "conv5_3", "pool5", "fc6", "fc7", "fc8"]


@lru_cache(maxsize=None)
def _vgg16_rows() -> dict[str, tuple[int, int]]:
    """Per table row of vgg16: (memory = values in the layer's output, weights without biases).

    Memory is what the lecture's column counts: the number of values each layer outputs
    at batch size 1 (read from the traced output shape). In-place ReLUs and eval-mode
    dropout make no new values, and torchvision's adaptive 7x7 average pool (absent from
    the lecture's VGG) is left out, so the rows are exactly the lecture's 22.
    """
    model, summary = _model("vgg16"), _summary("vgg16")
    modules = dict(model.named_modules())
    layers = _layers_of(summary, ("Conv2d", "MaxPool2d", "Linear"))
    if len(layers) != len(_VGG16_ROW_NAMES) - 1:
        raise RuntimeError(f"vgg16 has {len(layers)} conv/pool/FC layers, "
                           f"the lecture's table {len(_VGG16_ROW_NAMES) - 1}")
    rows = {"input": (summary.input_values, 0)}
    for name, record in zip(_VGG16_ROW_NAMES[1:], layers):
        weight = getattr(modules[record.name], "weight", None)
        rows[name] = (math.prod(record.output_shape[1:]), 0 if weight is None else weight.numel())
    return rows


def _register_vgg16_table() -> None:
    # One quote per distinct line of the table; identical lines (conv3_3 = conv3_2, ...)
    # are not repeated. Memory is checked at each distinct output shape, weights at each
    # distinct conv/FC line, plus one pooling line's "params: 0".
    table = {
        "input": "INPUT: [224x224x3] memory: 224*224*3=150K params: 0",
        "conv1_1": "CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*3)*64 = 1,728",
        "conv1_2": "CONV3-64: [224x224x64] memory: 224*224*64=3.2M params: (3*3*64)*64 = 36,864",
        "pool1": "POOL2: [112x112x64] memory: 112*112*64=800K params: 0",
        "conv2_1": "CONV3-128: [112x112x128] memory: 112*112*128=1.6M params: (3*3*64)*128 = 73,728",
        "conv2_2": "CONV3-128: [112x112x128] memory: 112*112*128=1.6M params: (3*3*128)*128 = 147,456",
        "pool2": "POOL2: [56x56x128] memory: 56*56*128=400K params: 0",
        "conv3_1": "CONV3-256: [56x56x256] memory: 56*56*256=800K params: (3*3*128)*256 = 294,912",
        "conv3_2": "CONV3-256: [56x56x256] memory: 56*56*256=800K params: (3*3*256)*256 = 589,824",
        "pool3": "POOL2: [28x28x256] memory: 28*28*256=200K params: 0",
        "conv4_1": "CONV3-512: [28x28x512] memory: 28*28*512=400K params: (3*3*256)*512 = 1,179,648",
        "conv4_2": "CONV3-512: [28x28x512] memory: 28*28*512=400K params: (3*3*512)*512 = 2,359,296",
        "pool4": "POOL2: [14x14x512] memory: 14*14*512=100K params: 0",
        "conv5_1": "CONV3-512: [14x14x512] memory: 14*14*512=100K params: (3*3*512)*512 = 2,359,296",
        "pool5": "POOL2: [7x7x512] memory: 7*7*512=25K params: 0",
        "fc6": "FC: [1x1x4096] memory: 4096 params: 7*7*512*4096 = 102,760,448",
        "fc7": "FC: [1x1x4096] memory: 4096 params: 4096*4096 = 16,777,216",
        "fc8": "FC: [1x1x1000] memory: 1000 params: 4096*1000 = 4,096,000",
    }
    # (row, lecture memory, as written) at each distinct output shape.
    memory = [("input", 150_000, "150K"), ("conv1_1", 3_200_000, "3.2M"), ("pool1", 800_000, "800K"),
              ("conv2_1", 1_600_000, "1.6M"), ("pool2", 400_000, "400K"), ("conv3_1", 800_000, "800K"),
              ("pool3", 200_000, "200K"), ("conv4_1", 400_000, "400K"), ("pool4", 100_000, "100K"),
              ("pool5", 25_000, "25K"), ("fc6", 4096, "4096"), ("fc8", 1000, "1000")]
    for row, value, written in memory:
        exact = row.startswith("fc")
        claim(id=f"vgg16-{row}-memory", text=f"VGG-16 {row} output holds {written} values (forward memory table)",
              source=SLIDES_2019, quote=table[row], lecture_value=value, lecture_text=written, unit="values",
              tolerance=0 if exact else 0.01,
              note="" if exact else "the table rounds to two significant figures",
              method=f"vgg16: values in the traced output of {row}" if row != "input" else "vgg16: input values",
              explanation="the traced output shape of this layer differs from the table's")(
            lambda row=row: _vgg16_rows()[row][0])
    # (row, lecture weights) for each distinct conv / FC line, and a pool's zero.
    weights = [("conv1_1", 1_728), ("conv1_2", 36_864), ("pool1", 0), ("conv2_1", 73_728), ("conv2_2", 147_456),
               ("conv3_1", 294_912), ("conv3_2", 589_824), ("conv4_1", 1_179_648), ("conv4_2", 2_359_296),
               ("conv5_1", 2_359_296), ("fc6", 102_760_448), ("fc7", 16_777_216), ("fc8", 4_096_000)]
    for row, value in weights:
        claim(id=f"vgg16-{row}-params", text=f"VGG-16 {row} has {value:,} weights (not counting biases)",
              source=SLIDES_2019, quote=table[row], lecture_value=value, unit="weights", tolerance=0,
              method=f"vgg16: weight.numel() of {row}" if value else f"vgg16: {row} has no weight tensor",
              explanation="the layer's weight tensor differs from the table's")(
            lambda row=row: _vgg16_rows()[row][1])


_register_vgg16_table()


@claim(id="vgg16-total-memory", text="VGG-16's forward pass holds 24M values in total (the table's TOTAL memory line)",
       source=SLIDES_2019, quote="TOTAL memory: 24M * 4 bytes ~= 96MB / image (only forward! ~*2 for bwd)",
       lecture_value=24_000_000, lecture_text="24M", unit="values", tolerance=0.05,
       note="24M is a round figure", method="vgg16: sum of the table's 22 rows (input + every conv/pool/FC output)",
       explanation="the table's own 22 memory rows add up to about 15.2M values, not 24M: the TOTAL line "
                   "overstates them by about 1.6x (cnnlab's summary, which also counts torchvision's "
                   "7x7x512 adaptive average pool, gives 25,088 more)")
def _vgg16_total_memory():
    return sum(memory for memory, _ in _vgg16_rows().values())


@claim(id="vgg16-total-memory-mb", text="VGG-16's forward activations take ~96MB per image at 4 bytes each",
       source=SLIDES_2019, quote="TOTAL memory: 24M * 4 bytes ~= 96MB / image", lecture_value=96,
       lecture_text="~96MB", unit="MB (1e6 bytes, float32)", tolerance=0.05, note="'~96MB' is a round figure",
       method="vgg16: the table's rows (as vgg16-total-memory) x 4 bytes",
       explanation="96MB is 24M x 4 bytes, and 24M is not the table's sum; its rows at 4 bytes each are "
                   "about 61MB")
def _vgg16_total_memory_mb():
    summary = _summary("vgg16")
    bytes_per_value = summary.input_bytes // summary.input_values
    return _vgg16_total_memory() * bytes_per_value / 1e6


@claim(id="vgg16-total-params", text="VGG-16 has 138M parameters in total", source=SLIDES_2019,
       quote="TOTAL params: 138M parameters", lecture_value=138_000_000, lecture_text="138M",
       unit="parameters", tolerance=0.005, note="138M is rounded to the nearest million",
       method="vgg16: all parameters (biases included; without them 138.34M)")
def _vgg16_total_params():
    return _summary("vgg16").total_params


@claim(id="vgg16-params-140m", text="VGG-16 has roughly 140 million parameters", source=PRACTICE,
       quote="roughly 140 million parameters", lecture_value=140_000_000, lecture_text="~140M",
       unit="parameters", tolerance=0.05, note="'roughly 140 million' is a round figure",
       method="vgg16: all parameters")
def _vgg16_params_140m():
    return _summary("vgg16").total_params


@claim(id="vgg16-fc-params", text="VGG-16's 3 FC layers hold ~124M of its 138M parameters", source=LESSON,
       quote="The 3 FC layers alone account for ~124M of VGG-16", lecture_value=124_000_000,
       lecture_text="~124M", unit="parameters", tolerance=0.005, note="rounded to the nearest million",
       method="vgg16: parameters of its Linear layers (biases included)")
def _vgg16_fc_params():
    return sum(_params(m) for m in _model("vgg16").modules() if isinstance(m, nn.Linear))


@claim(id="vgg16-macs", text="VGG-16 costs 15.5 billion FLOPs (multiply-adds) per forward pass", source=LESSON,
       quote="138 million parameters and 15.5 billion FLOPs", lecture_value=15_500_000_000,
       lecture_text="15.5B", unit="multiply-adds", tolerance=0.005,
       note="the lesson's 'FLOPs' count one multiply-add each; 15.5B is rounded to 0.1B",
       method="vgg16: traced MACs of all convs and FC layers at 224x224")
def _vgg16_macs():
    return _summary("vgg16").total_macs


@claim(id="vgg16-weights-mib", text="VGG-16 needs ~528 MB just to store its weights", source=LESSON,
       quote="VGG-16 requires ~528 MB just to store the model weights", lecture_value=528,
       lecture_text="~528 MB", unit="MiB (2^20 bytes, float32)", tolerance=0.005,
       note="528 is in MiB (2^20 bytes); in 10^6-byte MB the same weights are 553 MB",
       method="vgg16: parameter bytes at float32 / 2^20",
       explanation="the float32 size of VGG-16's parameters is not 528 MiB")
def _vgg16_weights_mib():
    return _summary("vgg16").param_bytes / 2**20


@claim(id="vgg-depths", text="VGG nets are 16 - 19 layers deep (VGG-16, VGG-19)", source=SLIDES_2019,
       quote="-> 16 - 19 layers (VGG16Net)", lecture_value=(16, 19), lecture_text="16 - 19", unit="weight layers",
       tolerance=0, method="vgg16 and vgg19: number of Conv2d + Linear modules")
def _vgg_depths():
    return tuple(sum(_weight_layer_counts(_model(name))) for name in ("vgg16", "vgg19"))


@claim(id="vgg16-layers", text="VGG-16 has 16 weight layers: 13 conv + 3 FC", source=LESSON,
       quote="16 (13 conv + 3 FC)", lecture_value=(13, 3), lecture_text="13 conv + 3 FC", unit="conv, FC layers",
       tolerance=0, method="vgg16: Conv2d and Linear modules")
def _vgg16_layers():
    return _weight_layer_counts(_model("vgg16"))


# --- why 3x3: three stacked 3x3 convs vs one 7x7 ---------------------------------------

def _three_3x3(channels: int, count: int = 3) -> nn.Sequential:
    return nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(count)])


@claim(id="rf-three-3x3", text="Three stacked 3x3 stride-1 convs have the receptive field of one 7x7 conv",
       source=SLIDES_2019,
       quote="Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one 7x7 conv layer",
       lecture_value=7, lecture_text="7x7", unit="pixels (side)", tolerance=0,
       method="stacked_receptive_field([3, 3, 3]) (closed form)")
def _rf_three_3x3():
    return stacked_receptive_field([3, 3, 3])


@claim(id="rf-three-3x3-traced", text="Three stacked 3x3 stride-1 convs see a 7x7 input region (traced)",
       source=SLIDES_2019,
       quote="Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one 7x7 conv layer",
       lecture_value=7, lecture_text="7x7", unit="pixels (side)", tolerance=0,
       method="receptive_field() of a traced nn.Sequential of three 3x3 pad-1 convs on 8x32x32")
def _rf_three_3x3_traced():
    fields = receptive_field(_meta(lambda: _three_3x3(8)), (8, 32, 32))
    return fields[-1].size


@claim(id="rf-five-3x3", text="L stacked 3x3 convs see (2L+1)x(2L+1): five see 11x11", source=LESSON,
       quote="L=5 → 11×11", lecture_value=11, lecture_text="11x11", unit="pixels (side)", tolerance=0,
       method="stacked_receptive_field([3] * 5)")
def _rf_five_3x3():
    return stacked_receptive_field([3] * 5)


@claim(id="three-3x3-weights", text="Three 3x3 convs with C channels in and out have 27C^2 weights",
       source=LESSON, quote="3 × (32C2) = 27C2", lecture_value=27, lecture_text="27C^2", unit="C^2 weights",
       tolerance=0, method="conv weights of three Conv2d(64, 64, 3) / 64^2")
def _three_3x3_weights():
    channels = 64
    return _conv_weights(_meta(lambda: _three_3x3(channels))) / channels**2


@claim(id="one-7x7-weights", text="One 7x7 conv with C channels in and out has 49C^2 weights",
       source=LESSON, quote="72C2 = 49C2", lecture_value=49, lecture_text="49C^2", unit="C^2 weights",
       tolerance=0, method="conv weights of Conv2d(64, 64, 7) / 64^2")
def _one_7x7_weights():
    channels = 64
    return _conv_weights(_meta(lambda: nn.Conv2d(channels, channels, 7, padding=3, bias=False))) / channels**2


# ======================================================================================
# GoogLeNet / Inception (2019 lecture 9; the lesson's bottleneck example)
# ======================================================================================
# The lecture's example module: 28x28x256 input; 1x1 (128), 3x3 (192), 5x5 (96) convs
# and a 3x3 max-pool; with dimension reduction, "1x1 conv, 64 filter" bottlenecks before
# the 3x3 and 5x5 convs and after the pool.

_INCEPTION_INPUT = (256, 28, 28)


def _naive_inception() -> nn.Module:
    from ..layers.inception import NaiveInceptionModule

    return _meta(lambda: NaiveInceptionModule(256, ch1x1=128, ch3x3=192, ch5x5=96))


def _reduced_inception() -> nn.Module:
    from ..layers.inception import InceptionModule

    return _meta(lambda: InceptionModule(256, ch1x1=128, ch3x3red=64, ch3x3=192, ch5x5red=64, ch5x5=96,
                                         pool_proj=64))


@claim(id="inception-naive-shape", text="The naive Inception module on 28x28x256 outputs 28x28x672",
       source=SLIDES_2019, quote="28x28x(128+192+96+256) = 28x28x672", lecture_value=(28, 28, 672),
       unit="HxWxC", tolerance=0, method="NaiveInceptionModule(256, 128, 192, 96), output on 1x256x28x28")
def _inception_naive_shape():
    return _out_shape(_naive_inception(), _INCEPTION_INPUT)


@claim(id="inception-naive-values", text="The naive module's output holds 529k values", source=SLIDES_2019,
       quote="28x28x(128+192+96+256) = 529k", lecture_value=529_000, lecture_text="529k", unit="values",
       tolerance=0.001, note="529k states three significant figures",
       method="NaiveInceptionModule(256, 128, 192, 96): values in its traced output",
       explanation="28x28x672 is 526,848 (527k); the slide's 529k is not a rounding of its own product")
def _inception_naive_values():
    return math.prod(_out_shape(_naive_inception(), _INCEPTION_INPUT))


@claim(id="inception-naive-ops", text="The naive Inception module costs 854M multiply ops (its convs)",
       source=SLIDES_2019, quote="Total: 854M ops", lecture_value=854_000_000, lecture_text="854M",
       unit="multiply-adds", tolerance=0.001, note="854M is rounded to the nearest million",
       method="NaiveInceptionModule(256, 128, 192, 96): traced MACs on 28x28x256 (convs only)")
def _inception_naive_ops():
    return summarize(_naive_inception(), _INCEPTION_INPUT).total_macs


@claim(id="inception-reduced-ops",
       text="With 1x1 conv (64 filter) bottlenecks the same module costs 358M ops", source=SLIDES_2019,
       quote="Total: 358M ops", lecture_value=358_000_000, lecture_text="358M", unit="multiply-adds",
       tolerance=0.001, note="358M is rounded to the nearest million",
       method="InceptionModule(256, 128, 64, 192, 64, 96, 64): traced MACs on 28x28x256",
       explanation="the six conv terms the slide itself lists sum to 271M; 358M is 271M plus the 3x3 term "
                   "28x28x192x3x3x64 (86.7M) counted a second time")
def _inception_reduced_ops():
    return summarize(_reduced_inception(), _INCEPTION_INPUT).total_macs


@claim(id="inception-reduced-shape", text="The module with bottlenecks outputs 28x28x480 (128+192+96+64)",
       source=SLIDES_2019, quote="28x28x480", lecture_value=(28, 28, 480), unit="HxWxC", tolerance=0,
       method="InceptionModule(256, 128, 64, 192, 64, 96, 64), output on 1x256x28x28")
def _inception_reduced_shape():
    return _out_shape(_reduced_inception(), _INCEPTION_INPUT)


@claim(id="inception-5x5-256-weights", text="A 5x5 conv from 256 to 256 channels needs about 1.6M weights",
       source=LESSON, quote="5×5×256×256 ≈ 1.6M parameters", lecture_value=1_600_000, lecture_text="1.6M",
       unit="weights", tolerance=0.05, note="the lesson rounds to two significant figures",
       method="Conv2d(256, 256, 5) weights")
def _inception_5x5_256_weights():
    return _conv_weights(_meta(lambda: nn.Conv2d(256, 256, 5, padding=2, bias=False)))


# The lesson's worked example: 28x28x256 input, a 5x5 conv to 128 channels, with and
# without a 1x1 bottleneck to 32 channels in front.

def _direct_5x5() -> nn.Module:
    return _meta(lambda: nn.Conv2d(256, 128, 5, padding=2, bias=False))


def _bottlenecked_5x5() -> nn.Module:
    return _meta(lambda: nn.Sequential(nn.Conv2d(256, 32, 1, bias=False),
                                       nn.Conv2d(32, 128, 5, padding=2, bias=False)))


@claim(id="bottleneck-example-weights", text="A 5x5 conv from 256 to 128 channels has 819,200 weights",
       source=LESSON, quote="Without bottleneck: 5×5×256×128 = 819,200 params", lecture_value=819_200,
       unit="weights", tolerance=0, method="Conv2d(256, 128, 5) weights")
def _bottleneck_example_weights():
    return _conv_weights(_direct_5x5())


@claim(id="bottleneck-example-direct", text="That 5x5 conv on 28x28x256 costs 642M multiply-adds", source=LESSON,
       quote="FLOPs: 819,200 × 28×28 ≈ 642M", lecture_value=642_000_000, lecture_text="642M",
       unit="multiply-adds", tolerance=0.001, note="642M is rounded to the nearest million",
       method="Conv2d(256, 128, 5, padding=2): traced MACs on 28x28x256")
def _bottleneck_example_direct():
    return summarize(_direct_5x5(), _INCEPTION_INPUT).total_macs


@claim(id="bottleneck-example-reduced",
       text="With a 1x1 bottleneck to 32 channels first it costs 86.4M multiply-adds", source=LESSON,
       quote="Total: 86.4M FLOPs vs 642M", lecture_value=86_400_000, lecture_text="86.4M",
       unit="multiply-adds", tolerance=0.01,
       note="86.4M adds the rounded terms 6.4M + 80M; the 5x5 term is really 80.3M, so the sum is good to ~1%",
       method="Conv2d(256, 32, 1) -> Conv2d(32, 128, 5): traced MACs on 28x28x256")
def _bottleneck_example_reduced():
    return summarize(_bottlenecked_5x5(), _INCEPTION_INPUT).total_macs


@claim(id="bottleneck-example-saving", text="The 1x1 bottleneck cuts that branch's cost 7.4x", source=LESSON,
       quote="a 7.4× reduction", lecture_value=7.4, lecture_text="7.4x", unit="times fewer multiply-adds",
       tolerance=0.01, note="7.4 states two significant figures",
       method="ratio of the two traced MAC counts above")
def _bottleneck_example_saving():
    return _bottleneck_example_direct() / _bottleneck_example_reduced()


# --- GoogLeNet as a whole --------------------------------------------------------------
# The zoo's googlenet_paper (true 5x5 kernels; BatchNorm in place of LRN) without its
# auxiliary classifiers, which the paper discards at inference and does not count.

def _googlenet_params() -> int:
    return _params(_model("googlenet_paper", aux_logits=False))


@claim(id="googlenet-params-5m", text="GoogLeNet has only 5 million parameters", source=SLIDES_2019,
       quote="Only 5 million parameters!", lecture_value=5_000_000, lecture_text="5M", unit="parameters",
       tolerance=0.1, note="'5 million' is one significant figure",
       method="googlenet_paper(aux_logits=False): all parameters",
       explanation="GoogLeNet without its auxiliary heads has about 7.0M parameters (6.6M in torchvision's "
                   "variant with 3x3 kernels in the '5x5' branches); its final FC-1000 layer alone has 1.0M")
def _googlenet_params_5m():
    return _googlenet_params()


@claim(id="googlenet-params-4m", text="GoogLeNet (Inception) has about 4 million parameters", source=PRACTICE,
       quote="low parameter count of about 4 million", lecture_value=4_000_000, lecture_text="~4M",
       unit="parameters", tolerance=0.125, note="'about 4 million' is one significant figure",
       method="googlenet_paper(aux_logits=False): all parameters",
       explanation="GoogLeNet without its auxiliary heads has about 7.0M parameters (6.6M in torchvision's "
                   "variant); 4M is the course notes' figure and matches no GoogLeNet the zoo can build")
def _googlenet_params_4m():
    return _googlenet_params()


@claim(id="googlenet-vs-alexnet", text="GoogLeNet has 12x fewer parameters than AlexNet", source=SLIDES_2019,
       quote="12x less than AlexNet", lecture_value=12, lecture_text="12x", unit="times fewer parameters",
       tolerance=0.05, note="'12x' is a round ratio",
       method="alexnet_paper params / googlenet_paper(aux_logits=False) params",
       explanation="12x is the lecture's 60M / 5M; with the networks' real counts (61.0M vs 7.0M, or "
                   "torchvision's 61.1M vs 6.6M) AlexNet has about 9x more")
def _googlenet_vs_alexnet():
    return _summary("alexnet_paper").total_params / _googlenet_params()


@claim(id="googlenet-vs-vgg", text="GoogLeNet is about 35x smaller than VGG", source=PRACTICE,
       quote="roughly thirty-five times smaller", lecture_value=35, lecture_text="~35x",
       unit="times fewer parameters", tolerance=0.05, note="'roughly thirty-five' is a round ratio",
       method="vgg16 params / googlenet_paper(aux_logits=False) params",
       explanation="35x is 140M / 4M; VGG-16's 138.4M over GoogLeNet's 7.0M is about 20x (21x for "
                   "torchvision's 6.6M GoogLeNet)")
def _googlenet_vs_vgg():
    return _summary("vgg16").total_params / _googlenet_params()


@claim(id="googlenet-depth", text="GoogLeNet has 22 layers with weights (parallel layers count once)",
       source=SLIDES_2019, quote="22 total layers with weights", lecture_value=22, unit="weight layers",
       tolerance=0, method="googlenet_paper(aux_logits=False): longest chain of conv/FC layers, "
                           "an Inception module's branches side by side")
def _googlenet_depth():
    return _longest_weight_path(_model("googlenet_paper", aux_logits=False))


@claim(id="googlenet-macs", text="GoogLeNet costs 1.5B FLOPs (multiply-adds) per image", source=LESSON,
       quote="FLOPs15.5B1.5B", lecture_value=1_500_000_000, lecture_text="1.5B", unit="multiply-adds",
       tolerance=0.05, note="1.5B is a round figure (the paper's 'budget of 1.5 billion multiply-adds')",
       method="googlenet_paper: traced MACs at 224x224 in eval mode (no auxiliary heads)",
       explanation="with the paper's true 5x5 kernels GoogLeNet costs about 1.58G multiply-adds; "
                   "torchvision's variant (3x3 kernels in the '5x5' branches) costs 1.50G")
def _googlenet_macs():
    return _summary("googlenet_paper").total_macs


# ======================================================================================
# ResNet (lesson chapter 7; 2019 lecture 9)
# ======================================================================================

@claim(id="resnet-bottleneck-weights", text="A bottleneck block 256->64->64->256 has 69,632 weights",
       source=LESSON, quote="256×64 + 32×642 + 64×256 = 69,632 params", lecture_value=69_632, unit="weights",
       tolerance=0, method="cnnlab.layers.residual.Bottleneck(256, 64): conv weights (BN not counted)")
def _resnet_bottleneck_weights():
    from ..layers.residual import Bottleneck

    return _conv_weights(_meta(lambda: Bottleneck(256, 64)))


@claim(id="resnet-two-3x3-weights", text="Two 3x3 convs on 256 channels have 1.18M weights", source=LESSON,
       quote="two 3×3 conv on 256 channels = 2 × 32 × 2562 = 1.18M params", lecture_value=1_180_000,
       lecture_text="1.18M", unit="weights", tolerance=0.005, note="rounded to 0.01M",
       method="cnnlab.layers.residual.BasicBlock(256, 256): conv weights (BN not counted)")
def _resnet_two_3x3_weights():
    from ..layers.residual import BasicBlock

    return _conv_weights(_meta(lambda: BasicBlock(256, 256)))


@claim(id="resnet-bottleneck-saving", text="The bottleneck block has 17x fewer weights than two 3x3 convs",
       source=LESSON, quote="69,632 params — 17× fewer", lecture_value=17, lecture_text="17x",
       unit="times fewer weights", tolerance=0.03, note="'17x' states two significant figures",
       method="BasicBlock(256, 256) conv weights / Bottleneck(256, 64) conv weights")
def _resnet_bottleneck_saving():
    return _resnet_two_3x3_weights() / _resnet_bottleneck_weights()


@claim(id="resnext-block-weights",
       text="A ResNeXt block (256 in, cardinality 32, width 4) has 70,144 weights", source=LESSON,
       quote="Total: 32 × 2,192 = 70,144 params", lecture_value=70_144, unit="weights", tolerance=0,
       method="Bottleneck(256, 64, groups=32, base_width=4): conv weights; the 32 paths are one grouped conv")
def _resnext_block_weights():
    from ..layers.residual import Bottleneck

    return _conv_weights(_meta(lambda: Bottleneck(256, 64, groups=32, base_width=4)))


def _register_resnet_table() -> None:
    # The lesson's ResNet table (flattened in the seed text: "ResNet-181811.7M..." is
    # ResNet-18 | 18 layers | 11.7M).
    for depth, value, written in [(18, 11_700_000, "11.7M"), (34, 21_800_000, "21.8M"),
                                  (50, 25_600_000, "25.6M"), (101, 44_500_000, "44.5M"),
                                  (152, 60_200_000, "60.2M")]:
        claim(id=f"resnet{depth}-params", text=f"ResNet-{depth} has {written} parameters", source=LESSON,
              quote=f"ResNet-{depth}{depth}{written}", lecture_value=value, lecture_text=written,
              unit="parameters", tolerance=0.005, note="rounded to 0.1M",
              method=f"resnet{depth}: all parameters")(
            lambda depth=depth: _summary(f"resnet{depth}").total_params)


_register_resnet_table()


@claim(id="resnet34-worked-example", text="ResNet-34 has 21.3M parameters (the lesson's worked example)",
       source=LESSON, quote="FC 1000. Total: 21.3M params.", lecture_value=21_300_000, lecture_text="21.3M",
       unit="parameters", tolerance=0.005, note="rounded to 0.1M", method="resnet34: all parameters",
       explanation="ResNet-34 has 21.8M parameters, as the lesson's own table says; 21.3M is its count "
                   "without the final FC-1000 layer (513,000 parameters)")
def _resnet34_worked_example():
    return _summary("resnet34").total_params


@claim(id="resnet-depths", text="ResNets for ImageNet are 34, 50, 101 or 152 layers deep", source=SLIDES_2019,
       quote="Total depths of 34, 50, 101, or 152 layers for ImageNet", lecture_value=(34, 50, 101, 152),
       lecture_text="34, 50, 101, 152", unit="weight layers", tolerance=0,
       method="resnet34/50/101/152: Conv2d + Linear modules, projection shortcuts not counted")
def _resnet_depths():
    return tuple(sum(_weight_layer_counts(_model(f"resnet{d}"))) for d in (34, 50, 101, 152))


@claim(id="se-block-share", text="An SE block on 512 channels (r=16) adds ~0.05% of ResNet-50's parameters",
       source=LESSON, quote="Extra params: 512×32 + 32×512 = 32,768 (~0.05% of ResNet-50)", lecture_value=0.05,
       lecture_text="~0.05%", unit="% of ResNet-50's parameters", tolerance=0.2,
       note="'~0.05%' is a rough figure",
       method="cnnlab.layers.SqueezeExcite(512, r=16): fc1 + fc2 weights / resnet50 parameters x 100",
       explanation="32,768 is 0.13% of ResNet-50's 25.6M parameters; 0.05% of 25.6M would be about 12.8K")
def _se_block_share():
    return 100 * _se_block_weights() / _summary("resnet50").total_params


@claim(id="se-block-weights", text="An SE block on 512 channels with r=16 adds 32,768 weights", source=LESSON,
       quote="Extra params: 512×32 + 32×512 = 32,768", lecture_value=32_768, unit="weights", tolerance=0,
       method="cnnlab.layers.SqueezeExcite(512, reduction=16): fc1 + fc2 weights (biases not counted)")
def _se_block_weights():
    from ..layers import SqueezeExcite

    return _conv_weights(_meta(lambda: SqueezeExcite(512, reduction=16)))


# ======================================================================================
# Depthwise separable convolution (lesson chapter 10, MobileNet worked example)
# ======================================================================================
# MobileNet's block (cnnlab.layers.DepthwiseSeparableConv) against one standard conv.

def _standard_3x3() -> nn.Module:
    return _meta(lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False))


def _separable_3x3() -> nn.Module:
    from ..layers import DepthwiseSeparableConv

    return _meta(lambda: DepthwiseSeparableConv(256, 256))


@claim(id="separable-weights", text="A depthwise separable 3x3 conv, 256 -> 256 channels, has 67,840 weights",
       source=LESSON, quote="Total: 67,840 params", lecture_value=67_840, unit="weights", tolerance=0,
       method="cnnlab.layers.DepthwiseSeparableConv(256, 256): conv weights (BN not counted)")
def _separable_weights():
    return _conv_weights(_separable_3x3())


@claim(id="separable-saving", text="That is 8.7x fewer weights than a standard 3x3 conv", source=LESSON,
       quote="67,840 params — 8.7× fewer", lecture_value=8.7, lecture_text="8.7x", unit="times fewer weights",
       tolerance=0.01, note="8.7 states two significant figures",
       method="Conv2d(256, 256, 3) weights / separable weights")
def _separable_saving():
    return _conv_weights(_standard_3x3()) / _conv_weights(_separable_3x3())


@claim(id="standard-3x3-macs", text="A standard 3x3 conv, 256 -> 256 channels, on 14x14 costs 115.6M FLOPs",
       source=LESSON, quote="FLOPs: 589,824 × 14×14 ≈ 115.6M", lecture_value=115_600_000,
       lecture_text="115.6M", unit="multiply-adds", tolerance=0.001, note="rounded to 0.1M",
       method="Conv2d(256, 256, 3, padding=1): traced MACs on 14x14x256")
def _standard_3x3_macs():
    return summarize(_standard_3x3(), (256, 14, 14)).total_macs


@claim(id="separable-macs", text="The depthwise separable version costs 13.3M FLOPs", source=LESSON,
       quote="FLOPs: 67,840 × 196 ≈ 13.3M", lecture_value=13_300_000, lecture_text="13.3M",
       unit="multiply-adds", tolerance=0.005, note="rounded to 0.1M",
       method="DepthwiseSeparableConv(256, 256): traced MACs of its two convs on 14x14x256")
def _separable_macs():
    return summarize(_separable_3x3(), (256, 14, 14)).total_macs


# ======================================================================================
# After ResNet: the lesson's architecture tables and EfficientNet's scaling rule
# ======================================================================================

def _rounding_tolerance(written: str, value: float) -> float:
    # A table entry such as "25.0M" or "29M" is right when it is the computed count rounded
    # to the digits written: within half a unit of its last digit.
    digits = written.rstrip("M")
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    return 0.5 * 10 ** (6 - decimals) / value


def _register_params_rows(rows, quote_of, id_prefix: str, table: str) -> None:
    for name, model, written, compute, explanation in rows:
        value = float(written.rstrip("M")) * 1e6
        claim(id=f"{id_prefix}-{model.replace('_', '-')}-params", text=f"{name} has {written} parameters ({table})",
              source=LESSON, quote=quote_of(name, written), lecture_value=value, lecture_text=written,
              unit="parameters", tolerance=_rounding_tolerance(written, value),
              note=f"right if the count rounds to {written}", method=f"{model}: all parameters",
              explanation=explanation)(compute or (lambda model=model: _params(_model(model))))


# The lesson's comparison of the residual-family designs (chapter 9), flattened in the seed
# text as "ResNeXt-50Grouped (cardinality)x + Σ Fi(x)25.0M5.6%".
_FAMILY_TABLE = {
    "ResNeXt-50": "Grouped (cardinality)x + Σ Fi(x)",
    "DenseNet-121": "Dense (concat)concat(x0..l)",
    "SE-ResNet-50": "Channel attentionx + s · F(x)",
}
_FAMILY_ERRORS = {"ResNeXt-50": "5.6%", "DenseNet-121": "6.2%", "SE-ResNet-50": "5.5%"}
_register_params_rows(
    [("ResNeXt-50", "resnext50_32x4d", "25.0M", None, ""),
     ("DenseNet-121", "densenet121", "8.0M", None, ""),
     ("SE-ResNet-50", "se_resnet50", "28.1M", None, "")],
    lambda name, written: f"{name}{_FAMILY_TABLE[name]}{written}{_FAMILY_ERRORS[name]}",
    "family", "lesson's table of residual designs")


# "The Full Timeline" table of the lesson, flattened as "2017ResNeXt-50Grouped convolutions25.0M77.8%".
TIMELINE = [
    # year, name as written, key innovation as written, zoo model, params as written, top-1 as written
    (2012, "AlexNet", "GPU training + ReLU", "alexnet_paper", "62M", "63.3%"),
    (2014, "VGG-16", "Small 3×3 filters", "vgg16", "138M", "74.4%"),
    (2014, "GoogLeNet", "Inception + 1×1 conv", "googlenet_paper", "5M", "74.8%"),
    (2015, "ResNet-50", "Skip connections", "resnet50", "25.6M", "76.1%"),
    (2017, "ResNeXt-50", "Grouped convolutions", "resnext50_32x4d", "25.0M", "77.8%"),
    (2017, "MobileNetV1", "Depthwise separable conv", "mobilenet_v1", "3.4M", "70.6%"),
    (2017, "DenseNet-121", "Dense connectivity", "densenet121", "8.0M", "74.4%"),
    (2018, "MobileNetV2", "Inverted residuals", "mobilenet_v2", "3.4M", "72.0%"),
    (2019, "EfficientNet-B0", "Compound scaling", "efficientnet_b0", "5.3M", "77.1%"),
    (2022, "ConvNeXt-T", "Modernized ResNet", "convnext_tiny", "29M", "82.1%"),
]
_TIMELINE_EXPLANATIONS = {
    "AlexNet": "62M (62.4M) counts the layer list without the two-GPU split; the paper's two-tower net has "
               "61.0M and torchvision's single-tower variant 61.1M",
    "GoogLeNet": "without its auxiliary heads GoogLeNet has about 7.0M parameters (6.6M in torchvision's "
                 "variant); the FC-1000 layer alone has 1.0M",
    "MobileNetV1": "MobileNet v1 1.0-224 has 4.2M parameters (its paper's Table 6 says 4.2M); 3.4M is "
                   "MobileNetV2's count, repeated in the next row",
    "MobileNetV2": "MobileNetV2 1.0-224 has 3.50M parameters (torchvision's count, equal here); its paper's "
                   "Table 4 rounds down to 3.4M",
}


def architecture_timeline() -> list[dict]:
    """The lesson's timeline table (year, architecture, params, top-1) next to the zoo's own counts."""
    rows = []
    for year, name, idea, model, written, top1 in TIMELINE:
        info = _model_info(model)
        rows.append({"year": year, "architecture": name, "key_innovation": idea, "model": model,
                     "lecture_params": written, "zoo_params": _timeline_params(model),
                     "lecture_top1": top1, "zoo_reference_top1": info.reference_top1})
    return rows


def _model_info(name: str):
    from ..registry import model_info

    return model_info(name)


def _timeline_params(model: str) -> int:
    if model == "googlenet_paper":
        return _googlenet_params()  # without the auxiliary heads, as at test time
    return _params(_model(model))


_register_params_rows(
    [(name, model, written, lambda model=model: _timeline_params(model), _TIMELINE_EXPLANATIONS.get(name, ""))
     for _, name, _, model, written, _ in TIMELINE],
    lambda name, written: next(f"{y}{n}{i}{w}{t}" for y, n, i, _, w, t in TIMELINE if n == name),
    "timeline", "lesson's architecture timeline")


@claim(id="efficientnet-constraint", text="EfficientNet's scaling constants satisfy alpha * beta^2 * gamma^2 ~ 2",
       source=LESSON, quote="subject to: α · β2 · γ2 ≈ 2", lecture_value=2.0, lecture_text="≈ 2",
       unit="FLOPs factor per unit of phi", tolerance=0.05, note="'≈ 2': within 5%",
       method="cnnlab.models.efficientnet: ALPHA * BETA**2 * GAMMA**2 (1.2, 1.1, 1.15, found by the paper's "
              "grid search)")
def _efficientnet_constraint():
    from ..models.efficientnet import ALPHA, BETA, GAMMA

    return ALPHA * BETA**2 * GAMMA**2


@claim(id="efficientnet-b7-params", text="EfficientNet-B7 has 66M parameters", source=LESSON,
       quote="EfficientNet-B7 achieves 84.3% top-1 accuracy on ImageNet with 66M parameters",
       lecture_value=66_000_000, lecture_text="66M", unit="parameters", tolerance=0.5 / 66,
       note="right if the count rounds to 66M", method="efficientnet_b7 (B0 scaled by phi = 7): all parameters")
def _efficientnet_b7_params():
    return _params(_model("efficientnet_b7"))


@claim(id="convnext-t-params", text="ConvNeXt-T has 29M parameters", source=LESSON,
       quote="ConvNeXt-T (29M params)", lecture_value=29_000_000, lecture_text="29M", unit="parameters",
       tolerance=0.5 / 29, note="right if the count rounds to 29M", method="convnext_tiny: all parameters")
def _convnext_t_params():
    return _params(_model("convnext_tiny"))


# ======================================================================================
# LeNet-5 (2019 lecture 9, "Review: LeNet-5")
# ======================================================================================

def _unique(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    # One (kernel, stride) pair when every layer shares it, all pairs otherwise.
    return pairs[0] if len(set(pairs)) == 1 else tuple(v for pair in pairs for v in pair)


@claim(id="lenet5-conv", text="LeNet-5's conv filters are 5x5, applied at stride 1", source=SLIDES_2019,
       quote="Conv filters were 5x5, applied at stride 1", lecture_value=(5, 1), lecture_text="5x5 stride 1",
       unit="kernel, stride", tolerance=0, method="lenet5: kernel and stride of every Conv2d")
def _lenet5_conv():
    return _unique([(m.kernel_size[0], m.stride[0]) for m in _model("lenet5").modules() if isinstance(m, nn.Conv2d)])


@claim(id="lenet5-pool", text="LeNet-5's subsampling layers are 2x2, applied at stride 2", source=SLIDES_2019,
       quote="Subsampling (Pooling) layers were 2x2 applied at stride 2", lecture_value=(2, 2),
       lecture_text="2x2 stride 2", unit="kernel, stride", tolerance=0,
       method="lenet5: kernel and stride of every pooling layer")
def _lenet5_pool():
    pools = [m for m in _model("lenet5").modules() if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
    return _unique([(_first(m.kernel_size), _first(m.stride)) for m in pools])


def _first(value) -> int:
    # Pooling layers store a kernel or stride as an int or as an (h, w) pair.
    return int(value if isinstance(value, int) else value[0])
