"""Claims about the layers that behave differently in training: batch norm's worked example, inverted dropout.

The lesson's batch-norm example goes through the BN layer of :func:`cnnlab.layers.get_norm`
(:func:`batchnorm_example`), dropout through :class:`cnnlab.layers.InvertedDropout`
(:func:`dropout_example`). Random draws come from a seeded generator inside
:func:`torch.random.fork_rng`, so a claim's number is the same on every run and checking
claims never changes the caller's random state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import CnnlabError
from .core import LESSON, SLIDES_2025, claim
from .measure import cached_run


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


@cached_run
def batchnorm_example(values: tuple[float, ...] = _BN_VALUES, gamma: float = _BN_GAMMA, beta: float = _BN_BETA,
                      eps: float = _BN_EPS) -> BatchNormExample:
    """Run one channel's values through the library's BN layer (Ioffe & Szegedy 2015) in training mode.

    Lecture idea: BN normalises with the mini-batch's own mean and variance, then scales
    by gamma and shifts by beta. The values form a batch of N samples of one channel
    (shape N x 1 x 1 x 1); computed in float64 so the example's arithmetic is exact.
    """
    from ...layers import get_norm

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


@cached_run
def dropout_example(p: float = _DROPOUT_P, size: int = _DROPOUT_SIZE, seed: int = 0) -> DropoutExample:
    """Measure :class:`cnnlab.layers.InvertedDropout` on ``size`` ones (Srivastava et al. 2014).

    Lecture idea: dropping with probability p and scaling the survivors by 1/(1 - p)
    during training keeps every neuron's expected output equal to its test-time output.
    """
    from ...layers import InvertedDropout

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
