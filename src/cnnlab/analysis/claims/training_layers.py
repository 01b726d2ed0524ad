"""Claims about the layers that behave differently in training, and the gradient through residual blocks.

The lesson's batch-norm example goes through the BN layer of :func:`cnnlab.layers.get_norm`
(:func:`batchnorm_example`; what gamma and beta can undo, a batch of one:
:func:`batch_of_one`), dropout through :class:`cnnlab.layers.InvertedDropout`
(:func:`dropout_example`, :func:`dropout_units`), GELU through the library's activation
factory, and the paths of the gradient through residual blocks are counted in the autograd
graph of a ResNet (:func:`residual_gradient_paths`). Random draws come from a seeded
generator inside :func:`torch.random.fork_rng`, so a claim's number is the same on every run
and checking claims never changes the caller's random state.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from ...errors import CnnlabError
from ..summary import summarize
from .core import LESSON, SLIDES_2025, claim
from .measure import cached_run, zoo_model


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


@claim(id="dropout-test-scale", text="Plain (non-inverted) dropout scales outputs by (1 - p) at test time: the "
       "share of activations a training mask keeps", source=LESSON,
       quote="At test time, keep all neurons active but multiply outputs by (1−p) to compensate for the missing "
             "activations.", lecture_value=1 - 0.2, lecture_text="1 − p = 0.8 (p = 0.2)",
       unit="mean plain-dropout training output / input", tolerance=0.005,
       note="p = 0.2 rather than 0.5 keeps 1 − p apart from p; 1M Bernoulli draws have a standard error of "
            "0.0004, the tolerance is 10 of them",
       method="InvertedDropout(p=0.2) on 1,000,000 ones, seed 0: mean training output with the 1/(1 − p) "
              "scaling undone (plain dropout's mask average)")
def _dropout_test_scale():
    example = dropout_example(p=0.2)
    return example.train_mean / example.survivor_value


@claim(id="dropout-mask-count", text="An FC layer with 4096 units has 2^4096 ~ 10^1233 dropout masks",
       source=SLIDES_2025, quote="An FC layer with 4096 units has 24096 ~ 101233 possible masks!",
       lecture_value=1233, lecture_text="2^4096 ~ 10^1233", unit="log10(masks)", tolerance=0.5 / 1233,
       note="right if log10 of the count rounds to 1233",
       method="alexnet_paper: the units its first Dropout (after FC6) acts on, traced on the meta device; "
              "log10(2^units) = units x log10(2)")
def _dropout_mask_count():
    return dropout_units("alexnet_paper") * math.log10(2)


def dropout_units(model: str) -> int:
    """How many activations the model's first dropout layer acts on (one image, traced on meta): 2^units masks."""
    net = zoo_model(model)
    from ...layers import InvertedDropout

    dropout = next(m for m in net.modules() if isinstance(m, (nn.Dropout, InvertedDropout)))
    seen: list[int] = []
    handle = dropout.register_forward_pre_hook(lambda module, inputs: seen.append(inputs[0][0].numel()))
    try:
        summarize(net)
    finally:
        handle.remove()
    return seen[0]


# ======================================================================================
# Batch normalisation: what gamma and beta can undo, its epsilon, a batch of one
# ======================================================================================

@claim(id="bn-identity", text="With γ = σ_B and β = μ_B, BN gives back its input", source=LESSON,
       quote="If γ = σB and β = μB, the transform is the identity.", lecture_value=_BN_VALUES,
       lecture_text="y = x = [2, 4, 6, 8]", unit="outputs", tolerance=1e-5,
       note="ε = 1e-5 keeps γ = σ_B a hair short of the identity: y − μ = (x − μ)·σ/√(σ² + ε), here off by "
            "about 1e-6 of x",
       method=_BN_METHOD + "; output with weight (gamma) = the square root of the batch variance it used and bias "
              "(beta) = the batch mean it recorded")
def _bn_identity():
    batch = batchnorm_example()
    return batchnorm_example(gamma=math.sqrt(batch.variance), beta=batch.mean).y


@claim(id="bn-epsilon", text="BN adds ε = 1e-5 to the variance", source=LESSON,
       quote="ε ≈ 10−5 prevents division by zero.", lecture_value=1e-5, lecture_text="10⁻⁵", unit="epsilon",
       tolerance=0, note="a setting, not a computation: the library's BN layer keeps PyTorch's default",
       method="get_norm('batchnorm', 8).eps")
def _bn_epsilon():
    from ...layers import get_norm

    return get_norm("batchnorm", 8).eps


@dataclass(frozen=True)
class BatchOfOne:
    """What a BN layer in training mode does with a batch of one sample.

    ``variance`` is the batch variance it would normalise each channel with (biased, 1/n
    over the values it averages: N for BatchNorm1d on N x C, N x H x W for BatchNorm2d),
    averaged over the channels; ``refused`` says whether PyTorch's layer raised instead.
    """

    layer: str
    values_per_channel: int
    variance: float
    refused: bool


@cached_run
def batch_of_one(layer: str = "BatchNorm1d", channels: int = 4, size: int = 8, seed: int = 0) -> BatchOfOne:
    """Run one random sample through BatchNorm1d (N x C: statistics over N alone) or BatchNorm2d (over N, H, W).

    Lecture idea: in training mode BN normalises with the batch's own statistics; over a
    batch of one, statistics taken over N alone have nothing to average, so the variance
    is zero. BatchNorm2d also averages over the H x W positions of each map.
    """
    from ...layers import get_norm

    generator = torch.Generator().manual_seed(seed)
    if layer == "BatchNorm1d":
        x, dims, norm = torch.randn(1, channels, generator=generator, dtype=torch.float64), (0,), nn.BatchNorm1d
    elif layer == "BatchNorm2d":
        x = torch.randn(1, channels, size, size, generator=generator, dtype=torch.float64)
        dims, norm = (0, 2, 3), lambda c, momentum: get_norm("batchnorm", c, momentum=momentum)
    else:
        raise CnnlabError(f"batch_of_one knows BatchNorm1d and BatchNorm2d, got {layer!r}")
    values = math.prod(x.shape[d] for d in dims)
    bn = norm(channels, momentum=None).double().train()  # momentum=None: running_var = this batch's (unbiased)
    try:
        with torch.no_grad():
            bn(x)
    except ValueError:  # PyTorch: "Expected more than 1 value per channel when training"
        # The variance it would have used: over the values it averages, here one per channel.
        return BatchOfOne(layer, values, float(x.var(dim=dims, correction=0).mean()), refused=True)
    biased = bn.running_var * (values - 1) / values
    return BatchOfOne(layer, values, float(biased.mean()), refused=False)


_BATCH_OF_ONE = "If you evaluate with batch statistics and a batch size of 1, the variance is zero and everything breaks."


@claim(id="bn-batch-of-one", text="BN over the batch alone (BatchNorm1d) sees zero variance in a batch of one",
       source=LESSON, quote=_BATCH_OF_ONE, lecture_value=0.0, lecture_text="0", unit="batch variance",
       tolerance=0, note="PyTorch's BatchNorm1d refuses such a batch in training mode ('Expected more than 1 value "
                         "per channel when training') for exactly this reason",
       method="nn.BatchNorm1d(4) in training mode on one random 1 x 4 sample (float64): the biased variance over "
              "the values it averages, one per channel")
def _bn_batch_of_one():
    return batch_of_one("BatchNorm1d").variance


@claim(id="bn2d-batch-of-one", text="A conv net's BN (BatchNorm2d) in a batch of one still sees a variance",
       source=LESSON, quote=_BATCH_OF_ONE, lecture_value=0.0, lecture_text="0", unit="batch variance",
       tolerance=0,
       method="get_norm('batchnorm', 4) (nn.BatchNorm2d) in training mode on one random 1 x 4 x 8 x 8 sample "
              "(float64, standard normal): the biased variance it normalised with, from its running_var with "
              "momentum=None, averaged over the channels",
       explanation="BatchNorm2d takes its statistics over N, H and W, so with one image it normalises each map "
                   "over its own 64 positions: the variance is not zero and nothing breaks numerically; what "
                   "goes wrong is that each image is normalised by its own statistics, not the data set's")
def _bn2d_batch_of_one():
    return batch_of_one("BatchNorm2d").variance


# ======================================================================================
# GELU (2025 slides, activation functions)
# ======================================================================================

_GELU_POINTS = (-2.0, -1.0, 1.0, 2.0)


@claim(id="gelu-definition", text="GELU computes x·Φ(x), Φ the standard normal CDF: GELU(x)/x = Φ(x)",
       source=SLIDES_2025, quote="Computes f(x) = x*Î¦(x)",
       lecture_value=tuple(0.5 * (1 + math.erf(x / math.sqrt(2))) for x in _GELU_POINTS),
       lecture_text="Φ(−2), Φ(−1), Φ(1), Φ(2)", unit="GELU(v) / v at v = −2, −1, 1, 2", tolerance=1e-9,
       note="a definition, checked on the library's GELU; the seed's text shows Φ mis-decoded as 'Î¦'",
       method="get_activation('gelu') (nn.GELU, exact erf form) on float64 x = [-2, -1, 1, 2]: output / x")
def _gelu_definition():
    from ...layers import get_activation

    x = torch.tensor(_GELU_POINTS, dtype=torch.float64)
    with torch.no_grad():
        return tuple((get_activation("gelu")(x) / x).tolist())


# ======================================================================================
# Gradient paths through residual blocks (lesson chapter 07)
# ======================================================================================

@cached_run
def residual_gradient_paths(model: str = "resnet20", seed: int = 0) -> tuple[int, int]:
    """(residual blocks, paths from the output back to the input in the autograd graph) of a zoo model.

    Lecture idea: the gradient through L residual blocks is a product of L factors
    (1 + dF/dx), which expands into 2^L terms, one per path: each block is passed either
    through its skip connection or through its residual branch. The paths are counted in
    the graph autograd records for one real forward pass (eval mode, one image).
    """
    from ...layers.residual import ResidualBlock
    from ...registry import create_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = create_model(model).eval()
    blocks = sum(isinstance(m, ResidualBlock) for m in net.modules())
    x = torch.zeros(1, *net.pretrained_cfg.input_size, requires_grad=True)
    with torch.enable_grad():
        out = net(x)
    counts: dict = {}

    def paths(node) -> int:
        # Backward nodes reach the input through their next_functions; x's gradient ends in the
        # AccumulateGrad node that holds x itself (parameters end in their own).
        if node is None:
            return 0
        if node not in counts:
            if getattr(node, "variable", None) is x:
                counts[node] = 1
            else:
                counts[node] = sum(paths(child) for child, _ in node.next_functions)
        return counts[node]

    return blocks, paths(out.grad_fn)


@claim(id="residual-gradient-paths", text="The gradient through L residual blocks expands into 2^L paths "
       "(ResNet-20: L = 9, 512 paths)", source=LESSON,
       quote="Expanding this product gives 2L terms, each corresponding to a different path through the network.",
       lecture_value=2 ** 9, lecture_text="2^L = 2^9 = 512", unit="input-to-output paths",
       tolerance=0, note="the seed's text shows 2^L as '2L' (a lost superscript)",
       method="resnet20 (9 residual blocks), one forward pass in eval mode: paths from the output's grad_fn to "
              "the input in the autograd graph")
def _residual_gradient_paths():
    return residual_gradient_paths()[1]
