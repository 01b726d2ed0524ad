"""Claims about the net at step 0: the initial loss and the slides' weight-initialisation study.

The initial-loss sanity check runs a freshly built zoo model (:func:`initial_loss`); the
initialisation study (2025 slides, "Weight Initialization") runs the lecture's 6-layer,
4096-wide net with :func:`cnnlab.layers.init_weights`. The study is also public:
:func:`initialization_study` runs one configuration and returns per-layer activation
statistics, :func:`initialization_table` lists them for every configuration of
:data:`INITIALIZATION_RUNS`, :func:`plot_initialization_study` draws them and
:func:`write_claim_figures` writes that figure (``cnnlab claims --figures DIR``).

Random inputs come from a seeded generator inside :func:`torch.random.fork_rng`, so a
claim's number is the same on every run and checking claims never changes the caller's
random state. Results are cached for the life of the process.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import CnnlabError
from ...figures import save_figure
from .core import SLIDES_2025, claim
from .measure import cached_run


# ======================================================================================
# The initial loss (2025 slides, "Choosing Hyperparameters", step 1)
# ======================================================================================

@dataclass(frozen=True)
class InitialLoss:
    """The cross-entropy of a freshly built classifier before any training step.

    ``loss`` is averaged over every (image, class) pair, i.e. the expected loss when the
    labels are drawn uniformly, as they are to an untrained net; ``logit_std`` is the
    spread of the logits around each image's mean logit (0 would mean a uniform softmax).
    """

    model: str
    num_classes: int
    loss: float
    logit_std: float


@cached_run
def initial_loss(model: str = "resnet20", batch: int = 64, seed: int = 0) -> InitialLoss:
    """Build ``model`` with seed ``seed`` and return its loss on a batch of normalised random images.

    Lecture idea (the hyper-parameter recipe's first step, "check initial loss"): an
    untrained classifier's scores are nearly equal, so its softmax is nearly uniform and
    the cross-entropy starts near ln(C) for C classes; a very different value signals a
    bug or a badly scaled initialisation. The model runs in training mode, as in the first
    step of training (BatchNorm normalises with the batch's statistics). The inputs are
    standard normal, the statistics of images normalised per channel.
    """
    from ...registry import create_model

    if batch < 2:
        raise CnnlabError(f"batch must be at least 2 (BatchNorm needs a batch), got {batch}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = create_model(model)
        images = torch.randn(batch, *net.pretrained_cfg.input_size)
        net.train()
        with torch.no_grad():
            logits = net(images)
    if isinstance(logits, (tuple, list)):  # GoogLeNet-style auxiliary heads: the main logits come first
        logits = logits[0]
    logits = logits.double()
    classes = logits.shape[1]
    uniform = torch.full_like(logits, 1.0 / classes)
    loss = float(F.cross_entropy(logits, uniform))  # class-probability targets: -sum(t * log softmax), mean
    spread = float((logits - logits.mean(dim=1, keepdim=True)).pow(2).mean().sqrt())
    return InitialLoss(model=model, num_classes=classes, loss=loss, logit_std=spread)


@claim(id="initial-loss-ln-c", text="A freshly initialised 10-class classifier starts at a loss of about "
       "ln(10) = 2.30", source=SLIDES_2025, quote="Choosing Hyperparameters Step 1: Check initial loss",
       lecture_value=math.log(10), lecture_text="ln(10) ≈ 2.30 (implied: the slide names the check, not the number)",
       unit="cross-entropy", tolerance=0.2,
       note="ln(C) is the loss of a uniform softmax and its floor: logits spread s around their mean add about "
            "s²/2 (resnet20 at initialisation: s = 0.80, +0.32). The check is meant to catch losses far above "
            "ln(C) (a bug, a wrong class count, a badly scaled init); 20% allows s up to 0.96, while PyTorch's "
            "default classifier init gives s² = E[f²]/3 on features f, about 0.6 for unit-scale features",
       method="resnet20 (CIFAR-10) built with seed 0, training mode, 64 standard-normal 3x32x32 images: "
              "cross-entropy averaged over every class as the label")
def _initial_loss():
    return initial_loss().loss


# ======================================================================================
# Weight initialisation (2025 slides, "Weight Initialization": 6 layers of 4096 units)
# ======================================================================================
# The slides' forward pass: x ~ N(0, 1), then 6 times x = act(x W) with 4096x4096 weights.
# The slides' text ("Activations blow up quickly", "ReLU correction: std = sqrt(2 / Din)")
# is about ReLU nets; tanh runs are in the study and the figure for comparison.

_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh}
_STUDY_INITS = ("normal", "xavier", "kaiming")
_STUDY_LAYERS, _STUDY_WIDTH, _STUDY_BATCH = 6, 4096, 256
SATURATION = 0.99  # |tanh| above this: the unit sits on a flat part of tanh, its local gradient < 0.02


@dataclass(frozen=True)
class ActivationStatistics:
    """Per-layer statistics of one run of the initialisation study (index 0 = layer 1).

    ``means`` and ``stds`` are over every unit and sample of a layer's activations,
    ``saturated`` the fraction with ``|a| > SATURATION`` (tanh's flat region; for ReLU
    it just counts large activations), ``weight_std`` the std of layer 1's weights (every
    layer draws from the same distribution).
    """

    activation: str
    init: str
    std: float | None
    layers: int
    width: int
    batch: int
    seed: int
    means: tuple[float, ...]
    stds: tuple[float, ...]
    saturated: tuple[float, ...]
    weight_std: float

    @property
    def label(self) -> str:
        """The initialisation as the slides write it: ``W = 0.01 * randn``, ``Kaiming``."""
        if self.init == "normal":
            return f"W = {self.std:g} * randn"
        return {"kaiming": "Kaiming (std = sqrt(2/Din))", "xavier": "Xavier"}.get(self.init, self.init)

    @property
    def last_over_first(self) -> float:
        """The last layer's activation std as a multiple of the first's."""
        return self.stds[-1] / self.stds[0]

    @property
    def max_over_min(self) -> float:
        """The largest per-layer activation std over the smallest: 1 when every layer has the same scale."""
        return max(self.stds) / min(self.stds)


def initialization_study(activation: str = "relu", init: str = "kaiming", *, std: float = 0.01,
                         layers: int = _STUDY_LAYERS, width: int = _STUDY_WIDTH, batch: int = _STUDY_BATCH,
                         seed: int = 0) -> ActivationStatistics:
    """The slides' forward pass through a deep MLP, returning each layer's activation statistics.

    Lecture idea: the scale of the initial weights decides whether activations survive
    depth. Each of ``layers`` ``nn.Linear(width, width)`` layers is initialised with
    :func:`cnnlab.layers.init_weights` (``init`` = "normal" with ``std``, "xavier" or
    "kaiming" for the given nonlinearity; biases zero, as the slides' ``x.dot(W)``) and
    followed by ``activation`` ("relu" or "tanh"); the input is ``batch`` standard normal
    vectors. A ReLU layer with weight std sigma multiplies the activation std by
    sigma * sqrt(width / 2): below 1 activations shrink to zero (std 0.01), above 1 they
    blow up (std 0.05), and Kaiming's sigma = sqrt(2 / width) keeps them constant.

    Layers are built one at a time (64 MB of weights each at width 4096), so the study
    never holds the whole net.
    """
    if activation not in _ACTIVATIONS:
        raise CnnlabError(f"activation must be one of {', '.join(_ACTIVATIONS)}, got {activation!r}")
    if init not in _STUDY_INITS:
        # Not "default": the layers are materialised empty and need a scheme that sets every weight.
        raise CnnlabError(f"init must be one of {', '.join(_STUDY_INITS)}, got {init!r}")
    for name, value, least in (("layers", layers, 1), ("width", width, 1), ("batch", batch, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise CnnlabError(f"{name} must be an integer >= {least}, got {value!r}")
    # std only matters to "normal": Kaiming or Xavier runs share one cache entry whatever it is.
    return _initialization_study(activation, init, std if init == "normal" else None, layers, width, batch, seed)


@cached_run
def _initialization_study(activation: str, init: str, std: float | None, layers: int, width: int, batch: int,
                          seed: int) -> ActivationStatistics:
    from ...layers import init_weights

    act = _ACTIVATIONS[activation]
    means, stds, saturated = [], [], []
    weight_std = math.nan
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        x = torch.randn(batch, width)
        for index in range(layers):
            # Built on meta and materialised empty: init_weights sets every value, so the
            # default initialisation nn.Linear would draw first is skipped.
            with torch.device("meta"):
                layer = nn.Linear(width, width)
            layer = init_weights(layer.to_empty(device="cpu"), init, std=0.01 if std is None else std,
                                 nonlinearity=activation)
            x = act(layer(x))
            means.append(float(x.mean()))
            stds.append(float(x.std()))
            saturated.append(float((x.abs() > SATURATION).float().mean()))
            if index == 0:
                weight_std = float(layer.weight.std())
    return ActivationStatistics(activation=activation, init=init, std=std,
                                layers=layers, width=width, batch=batch, seed=seed, means=tuple(means),
                                stds=tuple(stds), saturated=tuple(saturated), weight_std=weight_std)


# (activation, init, std): the slides' three ReLU runs, Xavier for contrast, and the tanh versions.
INITIALIZATION_RUNS: tuple[tuple[str, str, float], ...] = (
    ("relu", "normal", 0.01),
    ("relu", "normal", 0.05),
    ("relu", "xavier", 0.01),
    ("relu", "kaiming", 0.01),
    ("tanh", "normal", 0.01),
    ("tanh", "normal", 0.05),
    ("tanh", "xavier", 0.01),
)


def initialization_studies(runs: Sequence[tuple[str, str, float]] = INITIALIZATION_RUNS,
                           **options) -> list[ActivationStatistics]:
    """:func:`initialization_study` for each ``(activation, init, std)`` run; ``options`` go to every run."""
    return [initialization_study(activation, init, std=std, **options) for activation, init, std in runs]


def initialization_table(runs: Sequence[tuple[str, str, float]] = INITIALIZATION_RUNS,
                         **options) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The study as a plain-text table: ``(columns, rows)``, one row per run.

    Each layer's cell is its activation std over its mean; then the last layer's std as a
    multiple of the first's, and (tanh) the share of saturated units in the last layer.
    """
    results = initialization_studies(runs, **options)
    depth = max(r.layers for r in results)
    columns = ("activation", "init", *(f"layer {i} std / mean" for i in range(1, depth + 1)),
               f"layer {depth} / layer 1", f"saturated |a| > {SATURATION} (last layer)")
    rows = []
    for result in results:
        cells = [f"{s:.3g}\n{m:+.2g}" for s, m in zip(result.stds, result.means)]
        cells += [""] * (depth - len(cells))
        # |a| > 0.99 is tanh's flat region; a ReLU is never saturated on the positive side.
        saturated = f"{result.saturated[-1]:.0%}" if result.activation == "tanh" else "-"
        rows.append((result.activation, result.label, *cells, f"{result.last_over_first:.3g}", saturated))
    return columns, rows


def plot_initialization_study(path: str | os.PathLike, runs: Sequence[tuple[str, str, float]] = INITIALIZATION_RUNS,
                              **options) -> Path:
    """PNG of the study: per-layer activation std (log scale) for each initialisation, one panel per activation.

    Lecture idea: the slides' histograms in one picture: std 0.01 collapses toward zero,
    std 0.05 grows layer after layer (ReLU) or pins tanh at +-1, Kaiming (ReLU) and
    Xavier (tanh) keep the scale. Drawn on matplotlib's Agg canvas (no GUI, no pyplot state).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = initialization_studies(runs, **options)
    activations = list(dict.fromkeys(r.activation for r in results))
    path = Path(path)
    figure = Figure(figsize=(5.5 * len(activations), 4.2), dpi=100)
    FigureCanvasAgg(figure)
    panels = figure.subplots(1, len(activations), squeeze=False)[0]
    for axes, activation in zip(panels, activations):
        for result in (r for r in results if r.activation == activation):
            layers = range(1, result.layers + 1)
            axes.plot(layers, result.stds, "-o", markersize=4, label=result.label)
        first = next(r for r in results if r.activation == activation)
        axes.set_yscale("log")
        axes.set_xticks(list(range(1, first.layers + 1)))
        axes.set_xlabel("layer")
        axes.set_ylabel("activation std")
        axes.set_title(f"{activation}: {first.layers} layers of {first.width} units")
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=8)
    figure.suptitle("Weight initialisation: activation scale through depth")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(figure, path)


def write_claim_figures(directory: str | os.PathLike) -> list[Path]:
    """Write the claims' figures into ``directory`` (created if missing); return their paths."""
    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise CnnlabError(f"--figures must be a directory, but {directory} is a file")
    return [plot_initialization_study(directory / "initialization_study.png")]


def _relu_gain(std: float, width: int = _STUDY_WIDTH) -> float:
    # The slides' ReLU correction std = sqrt(2 / Din) keeps the scale; any other std
    # multiplies it by std / sqrt(2 / Din) per layer.
    return std / math.sqrt(2 / width)


_INIT_METHOD = ("6 nn.Linear(4096, 4096) layers + ReLU, init_weights('{init}'{std}), 256 standard-normal inputs, "
                "seed 0: activation std of layer 6 / layer 1")
_INIT_NOTE = ("the sqrt(2/Din) rule is exact for infinitely wide layers; with 4096 random units each layer's "
              "factor is off by 1-2%, which compounds over 5 layers: seeds 0-4 give 0.94 to 1.05 times the "
              "prediction, hence 10%")


@claim(id="init-small-vanish", text="With W = 0.01 * randn the activations of the 6-layer, 4096-wide ReLU net tend "
       "to zero: each layer scales them by 0.01 / sqrt(2/4096) = 0.45, so layer 6 keeps 0.45^5 = 1.9% of layer 1's std",
       source=SLIDES_2025, quote="Weight Initialization Case: Values too small All activations tend to zero for "
       "deeper network layers", lecture_value=_relu_gain(0.01) ** 5,
       lecture_text="→ 0 (0.45^5 = 0.019 by the slides' sqrt(2/Din) rule)", unit="layer-6 std / layer-1 std",
       tolerance=0.1, note=_INIT_NOTE, method=_INIT_METHOD.format(init="normal", std=", std=0.01"))
def _init_small_vanish():
    return initialization_study("relu", "normal", std=0.01).last_over_first


@claim(id="init-large-blowup", text="With W = 0.05 * randn the activations blow up: each ReLU layer scales them by "
       "0.05 / sqrt(2/4096) = 2.26, so layer 6 is 2.26^5 = 59x layer 1", source=SLIDES_2025,
       quote="Activations blow up quickly Increase std of initial weights from 0.01 to 0.05",
       lecture_value=_relu_gain(0.05) ** 5, lecture_text="blow up (2.26^5 = 59x by the slides' sqrt(2/Din) rule)",
       unit="layer-6 std / layer-1 std", tolerance=0.1, note=_INIT_NOTE,
       method=_INIT_METHOD.format(init="normal", std=", std=0.05"))
def _init_large_blowup():
    return initialization_study("relu", "normal", std=0.05).last_over_first


@claim(id="init-kaiming-std", text="Kaiming/MSRA initialisation draws a 4096-input ReLU layer's weights with "
       "std sqrt(2/4096) = 0.0221", source=SLIDES_2025, quote="ReLU correction: std = sqrt(2 / Din)",
       lecture_value=math.sqrt(2 / _STUDY_WIDTH), lecture_text="sqrt(2/4096) = 0.0221", unit="weight std",
       tolerance=0.005, note="the sample std of 16.8M draws is good to 0.02%",
       method="init_weights(nn.Linear(4096, 4096), 'kaiming', nonlinearity='relu'): std of the weights of layer 1 "
              "of the study")
def _init_kaiming_std():
    return initialization_study("relu", "kaiming").weight_std


@claim(id="init-kaiming-scaled", text="With Kaiming initialisation the activations of all 6 ReLU layers keep the "
       "same scale", source=SLIDES_2025, quote="nicely scaled for all layers!", lecture_value=1.0,
       lecture_text="1 (the same scale in every layer)", unit="largest / smallest per-layer activation std",
       tolerance=0.1, note="'nicely scaled' read as every layer's std within 10% of the others' (each layer's "
                           "factor is 1 to within 1-2% at 4096 units); compare 0.019 (std 0.01) and 59 (std 0.05) "
                           "over the same layers",
       method="6 nn.Linear(4096, 4096) layers + ReLU, init_weights('kaiming', nonlinearity='relu'), 256 "
              "standard-normal inputs, seed 0: max / min of the per-layer activation stds")
def _init_kaiming_scaled():
    return initialization_study("relu", "kaiming").max_over_min
