"""The training lectures' numbers as claims: batch norm, dropout, initial loss, initialisation, label smoothing.

Each claim runs the library's own training code on a small, seeded input and reads the
number off the result: the lesson's batch-norm worked example goes through the BN layer
of :func:`cnnlab.layers.get_norm`, dropout through :class:`cnnlab.layers.InvertedDropout`,
the initial-loss sanity check through a freshly built zoo model, the slides'
initialisation study through :func:`cnnlab.train.init.init_weights`, and label smoothing
through :func:`cnnlab.data.augment.smooth_labels` and the trainer's loss.

The initialisation study (2025 slides, "Weight Initialization") is also public:
:func:`initialization_study` runs one configuration of the lecture's 6-layer, 4096-wide
net and returns per-layer activation statistics, :func:`initialization_table` lists
them for every configuration of :data:`INITIALIZATION_RUNS`, and
:func:`plot_initialization_study` draws them (``cnnlab claims --figures DIR``).

Random inputs come from a seeded generator inside :func:`torch.random.fork_rng`, so a
claim's number is the same on every run and checking claims never changes the caller's
random state. Results are cached for the life of the process.
"""
from __future__ import annotations

import functools
import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import CnnlabError
from ..train.report import save_figure
from .claims import LESSON, SLIDES_2025, claim

_Result = TypeVar("_Result")


def _cached(function: Callable[..., _Result]) -> Callable[..., _Result]:
    """Cache results for the life of the process, keyed on the arguments with defaults filled in.

    Unlike a bare ``lru_cache``, ``f()``, ``f(default)`` and ``f(name=default)`` share one
    entry, so a claim and a figure asking for the same run compute it once.
    """
    signature = inspect.signature(function)
    cache: dict = {}

    @functools.wraps(function)
    def cached(*args, **kwargs):
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()
        key = tuple(bound.arguments.items())
        if key not in cache:
            cache[key] = function(*bound.args, **bound.kwargs)
        return cache[key]

    cached.cache_clear = cache.clear  # type: ignore[attr-defined]
    return cached

# ======================================================================================
# Batch normalisation: the lesson's worked example (chapter 04, "BN on a Mini-Batch")
# ======================================================================================

_BN_VALUES = (2.0, 4.0, 6.0, 8.0)  # "Batch of 4 values from one channel"
_BN_GAMMA, _BN_BETA = 2.0, 1.0  # step 4: "With γ=2, β=1"
_BN_EPS = 1e-5  # step 3 divides by √(5 + 10⁻⁵): BatchNorm2d's default eps


@dataclass(frozen=True)
class BatchNormExample:
    """What a BatchNorm2d layer in training mode does with one channel's mini-batch.

    ``mean`` is the batch mean the layer recorded; ``variance`` the (biased, 1/N)
    variance it normalised with, recovered from its output as ((x - mean) / x_hat)^2 -
    eps; ``running_variance`` the estimate it stores for inference, which uses the
    unbiased 1/(N-1) variance; ``x_hat`` the output with gamma 1, beta 0; ``y`` the
    output with the given gamma and beta.
    """

    values: tuple[float, ...]
    mean: float
    variance: float
    running_variance: float
    x_hat: tuple[float, ...]
    y: tuple[float, ...]


@_cached
def batchnorm_example(values: tuple[float, ...] = _BN_VALUES, gamma: float = _BN_GAMMA, beta: float = _BN_BETA,
                      eps: float = _BN_EPS) -> BatchNormExample:
    """Run one channel's values through the library's BN layer (Ioffe & Szegedy 2015) in training mode.

    Lecture idea: BN normalises with the mini-batch's own mean and variance, then scales
    by gamma and shifts by beta. The values form a batch of N samples of one channel
    (shape N x 1 x 1 x 1); computed in float64 so the example's arithmetic is exact.
    """
    from ..layers import get_norm

    if len(values) < 2:
        raise CnnlabError(f"batch norm needs at least 2 values to normalise, got {len(values)}")
    x = torch.tensor(values, dtype=torch.float64).view(-1, 1, 1, 1)
    # momentum=None: the running statistics are a plain average over the batches seen, so
    # after this one batch they hold exactly the statistics BN computed from it.
    layer = get_norm("batchnorm", 1, eps=eps, momentum=None).double().train()
    with torch.no_grad():
        x_hat = layer(x)
        mean = float(layer.running_mean[0])
        running_variance = float(layer.running_var[0])
        layer.weight.fill_(gamma)
        layer.bias.fill_(beta)
        y = layer(x)
    # x_hat = (x - mean) / sqrt(var + eps): the variance the layer divided by, read off its output
    # (values equal to the mean carry no information about it; if all are, the variance is 0).
    informative = x_hat != 0
    variance = float((((x - mean)[informative] / x_hat[informative]) ** 2).mean()) - eps if informative.any() else 0.0
    return BatchNormExample(values=tuple(values), mean=mean, variance=variance, running_variance=running_variance,
                            x_hat=tuple(x_hat.flatten().tolist()), y=tuple(y.flatten().tolist()))


_BN_METHOD = ("get_norm('batchnorm', 1, eps=1e-5) (nn.BatchNorm2d), training mode, float64, on x = [2, 4, 6, 8] "
              "as a batch of 4 samples of one channel")


@claim(id="bn-example-mean", text="BN's batch mean of x = [2, 4, 6, 8] is 5", source=LESSON,
       quote="Step 1: μB = (2+4+6+8)/4 = 5.0", lecture_value=5.0, lecture_text="5.0", unit="batch mean",
       tolerance=1e-9, note="float64 arithmetic",
       method=_BN_METHOD + "; the batch mean it records (running_mean with momentum=None after one batch)")
def _bn_mean():
    return batchnorm_example().mean


@claim(id="bn-example-variance", text="BN normalises x = [2, 4, 6, 8] with the batch variance 5 (1/N, biased)",
       source=LESSON, quote="Step 2: σ2B = ((2−5)2 + (4−5)2 + (6−5)2 + (8−5)2) / 4 = (9+1+1+9)/4 = 5.0",
       lecture_value=5.0, lecture_text="5.0", unit="batch variance", tolerance=1e-9,
       note="float64 arithmetic; BN normalises with this biased 1/N variance, but the running_var it keeps "
            "for inference is the unbiased 20/3 = 6.67 (1/(N-1))",
       method=_BN_METHOD + "; variance = ((x - mean) / x_hat)^2 - eps, read off the layer's output")
def _bn_variance():
    return batchnorm_example().variance


@claim(id="bn-example-xhat", text="BN turns x = [2, 4, 6, 8] into x̂ ≈ [-1.34, -0.45, 0.45, 1.34]", source=LESSON,
       quote="Step 3: x̂ = (x − 5) / √(5 + 10−5) ≈ [−1.34, −0.45, 0.45, 1.34]",
       lecture_value=(-1.34, -0.45, 0.45, 1.34), unit="normalised values", tolerance=0.011,
       note="two decimals: ±0.005 is 1.1% of the smallest value, 0.45",
       method=_BN_METHOD + "; output with gamma 1, beta 0")
def _bn_x_hat():
    return batchnorm_example().x_hat


@claim(id="bn-example-y", text="With γ = 2, β = 1 BN outputs y ≈ [-1.68, 0.10, 1.90, 3.68]", source=LESSON,
       quote="Step 4: With γ=2, β=1: y = 2 · x̂ + 1 ≈ [−1.68, 0.10, 1.90, 3.68]",
       lecture_value=(-1.68, 0.10, 1.90, 3.68), unit="outputs", tolerance=0.05,
       note="two decimals: ±0.005 is 5% of the smallest value, 0.10",
       method=_BN_METHOD + "; output with weight (gamma) 2, bias (beta) 1",
       explanation="the lesson scales the rounded x̂ (2 · 0.45 + 1 = 1.90); the exact x̂ = ±0.447 gives "
                   "y = [-1.683, 0.106, 1.894, 3.683], i.e. 0.11 and 1.89 to two decimals")
def _bn_y():
    return batchnorm_example().y


# ======================================================================================
# Inverted dropout (2025 slides "Regularization: Dropout", lesson "Inverted Dropout")
# ======================================================================================

_DROPOUT_P = 0.5  # "0.5 is common"
_DROPOUT_SIZE = 1_000_000  # a mean of 1M draws has a standard error of 0.1% at p = 0.5


@dataclass(frozen=True)
class DropoutExample:
    """Inverted dropout applied to a tensor of ones, in training and in eval mode.

    ``dropped`` is the fraction of activations zeroed, ``survivor_value`` the value the
    kept ones carry, ``train_mean`` / ``eval_mean`` the average output in each mode.
    """

    p: float
    size: int
    dropped: float
    survivor_value: float
    train_mean: float
    eval_mean: float


@_cached
def dropout_example(p: float = _DROPOUT_P, size: int = _DROPOUT_SIZE, seed: int = 0) -> DropoutExample:
    """Measure :class:`cnnlab.layers.InvertedDropout` on ``size`` ones (Srivastava et al. 2014).

    Lecture idea: dropping with probability p and scaling the survivors by 1/(1 - p)
    during training keeps every neuron's expected output equal to its test-time output.
    """
    from ..layers import InvertedDropout

    layer = InvertedDropout(p)
    ones = torch.ones(size)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        train = layer.train()(ones)
        test = layer.eval()(ones)
    kept = train[train != 0]
    return DropoutExample(p=p, size=size, dropped=float((train == 0).double().mean()),
                          survivor_value=float(kept.max()) if kept.numel() else 0.0,
                          train_mean=float(train.double().mean()), eval_mean=float(test.double().mean()))


_DROPOUT_METHOD = "InvertedDropout(p=0.5) (nn.Dropout) on 1,000,000 ones, seed 0"


@claim(id="dropout-drop-probability", text="Dropout with p = 0.5 zeroes half of the activations: p is the "
       "probability of dropping", source=SLIDES_2025,
       quote="Probability of dropping is a hyperparameter; 0.5 is common",
       lecture_value=0.5, unit="fraction of activations zeroed", tolerance=0.005,
       note="1M Bernoulli draws: standard error 0.0005, the tolerance is 5 of them",
       method=_DROPOUT_METHOD + ", training mode: share of zeros")
def _dropout_drop_probability():
    return dropout_example().dropped


@claim(id="dropout-inverted-scale", text="Inverted dropout scales the kept activations by 1/(1-p) = 2 during training",
       source=LESSON, quote="scale activations by 1/(1−p) during training instead of scaling by (1−p) at test time",
       lecture_value=1 / (1 - _DROPOUT_P), lecture_text="1/(1−p) = 2", unit="value of a kept activation of 1",
       tolerance=1e-6, note="float32 arithmetic",
       method=_DROPOUT_METHOD + ", training mode: value of the non-zero outputs")
def _dropout_inverted_scale():
    return dropout_example().survivor_value


@claim(id="dropout-expected-output", text="With inverted dropout the expected training output equals the test "
       "output, so nothing is rescaled at test time", source=SLIDES_2025,
       quote="output at test time = expected output at training time", lecture_value=1.0,
       lecture_text="1 (equal)", unit="training-mode mean / eval-mode mean", tolerance=0.005,
       note="the training mean of 1M draws has a standard error of 0.1%; the tolerance is 5 of them",
       method=_DROPOUT_METHOD + ": mean output in training mode / mean output in eval mode")
def _dropout_expected_output():
    example = dropout_example()
    return example.train_mean / example.eval_mean


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


@_cached
def initial_loss(model: str = "resnet20", batch: int = 64, seed: int = 0) -> InitialLoss:
    """Build ``model`` with seed ``seed`` and return its loss on a batch of normalised random images.

    Lecture idea (the hyper-parameter recipe's first step, "check initial loss"): an
    untrained classifier's scores are nearly equal, so its softmax is nearly uniform and
    the cross-entropy starts near ln(C) for C classes; a very different value signals a
    bug or a badly scaled initialisation. The model runs in training mode, as in the first
    step of training (BatchNorm normalises with the batch's statistics). The inputs are
    standard normal, the statistics of images normalised per channel.
    """
    from ..data.augment import soft_target_cross_entropy
    from ..registry import create_model

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
    loss = float(soft_target_cross_entropy(logits, uniform))
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
    :func:`cnnlab.train.init.init_weights` (``init`` = "normal" with ``std``, "xavier" or
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


@_cached
def _initialization_study(activation: str, init: str, std: float | None, layers: int, width: int, batch: int,
                          seed: int) -> ActivationStatistics:
    from ..train.init import init_weights

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


# ======================================================================================
# Label smoothing (lesson chapter 03, "Label Smoothing")
# ======================================================================================

_SMOOTHING_EPS, _SMOOTHING_CLASSES = 0.1, 10


@dataclass(frozen=True)
class LabelSmoothingExample:
    """Smoothed targets for class 0 of K and the trainer's loss against them.

    ``true_class`` and ``other_class`` are the targets of :func:`smooth_labels`;
    ``builtin_loss`` is ``F.cross_entropy(label_smoothing=eps)`` (what the trainer uses
    with hard labels), ``soft_target_loss`` the cross-entropy against the smoothed
    targets (what it uses with soft ones), on the same random logits.
    """

    eps: float
    num_classes: int
    true_class: float
    other_class: float
    builtin_loss: float
    soft_target_loss: float


@_cached
def label_smoothing_example(eps: float = _SMOOTHING_EPS, num_classes: int = _SMOOTHING_CLASSES,
                            batch: int = 32, seed: int = 0) -> LabelSmoothingExample:
    """Label smoothing (Szegedy et al. 2016) with the library's :func:`~cnnlab.data.augment.smooth_labels`.

    Lecture idea: the true class keeps 1 - eps of the probability and every class gets an
    equal eps / K, so the net is never pushed toward infinite logits.
    """
    from ..data.augment import smooth_labels, soft_target_cross_entropy

    targets = smooth_labels(torch.tensor([0]), num_classes, eps=eps)
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, num_classes, generator=generator, dtype=torch.float64) * 3
    labels = torch.randint(0, num_classes, (batch,), generator=generator)
    builtin = F.cross_entropy(logits, labels, label_smoothing=eps)
    soft = soft_target_cross_entropy(logits, smooth_labels(labels, num_classes, eps=eps).double())
    return LabelSmoothingExample(eps=eps, num_classes=num_classes, true_class=float(targets[0, 0]),
                                 other_class=float(targets[0, 1]), builtin_loss=float(builtin),
                                 soft_target_loss=float(soft))


_SMOOTHING_FORMULA = "Label Smoothing ysmooth = (1 − ε) · yhard + ε / K"
_SMOOTHING_METHOD = "smooth_labels(tensor([0]), num_classes=10, eps=0.1)"


@claim(id="label-smoothing-true-class",
       text="With ε = 0.1 and K = 10 the true class's target is (1 - ε) + ε/K = 0.91",
       source=LESSON, quote=_SMOOTHING_FORMULA,
       lecture_value=(1 - _SMOOTHING_EPS) * 1 + _SMOOTHING_EPS / _SMOOTHING_CLASSES,
       lecture_text="(1 − 0.1) · 1 + 0.1 / 10 = 0.91", unit="target probability", tolerance=1e-6,
       note="float32 arithmetic", method=_SMOOTHING_METHOD + "[0, 0]")
def _label_smoothing_true_class():
    return label_smoothing_example().true_class


@claim(id="label-smoothing-other-class", text="With ε = 0.1 and K = 10 every other class's target is ε/K = 0.01",
       source=LESSON, quote=_SMOOTHING_FORMULA,
       lecture_value=(1 - _SMOOTHING_EPS) * 0 + _SMOOTHING_EPS / _SMOOTHING_CLASSES,
       lecture_text="(1 − 0.1) · 0 + 0.1 / 10 = 0.01", unit="target probability", tolerance=1e-6,
       note="float32 arithmetic", method=_SMOOTHING_METHOD + "[0, 1]")
def _label_smoothing_other_class():
    return label_smoothing_example().other_class


@claim(id="label-smoothing-soft-labels", text="The lesson's soft labels for ε = 0.1, K = 10: [0.9, 0.01, ..., 0.01]",
       source=LESSON, quote="use soft labels [0.9, 0.01, 0.01, ..., 0.01]", lecture_value=(0.9, 0.01),
       lecture_text="0.9, 0.01", unit="true class, other classes", tolerance=0.005,
       note="written to two decimals (the 0.01 entries)", method=_SMOOTHING_METHOD + "[0, 0] and [0, 1]",
       explanation="the true class keeps 1 − ε = 0.9 and also gets its own ε/K = 0.01, as the lesson's formula "
                   "says: 0.91; [0.9, 0.01 × 9] sums to 0.99, not 1")
def _label_smoothing_soft_labels():
    example = label_smoothing_example()
    return (example.true_class, example.other_class)


@claim(id="label-smoothing-loss", text="The trainer's label-smoothed loss is the cross-entropy against the lesson's "
       "y_smooth", source=LESSON, quote="K = number of classes, ε = smoothing parameter (e.g. 0.1)",
       lecture_value=1.0, lecture_text="1 (the same loss)", unit="built-in / soft-target cross-entropy",
       tolerance=1e-6, note="float64 logits, float32 smoothed targets",
       method="32 random float64 logits over 10 classes, seed 0: F.cross_entropy(label_smoothing=0.1) (the trainer's "
              "loss for hard labels) / soft_target_cross_entropy(smooth_labels(labels, 10, eps=0.1))")
def _label_smoothing_loss():
    example = label_smoothing_example()
    return example.builtin_loss / example.soft_target_loss
