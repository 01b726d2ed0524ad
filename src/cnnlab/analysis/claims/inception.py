"""Claims about GoogLeNet and the Inception module: the naive module's cost, 1x1 bottlenecks, the whole net.

The 2019 slides' example module (28x28x256 in) is built from cnnlab's Inception layers,
the lesson's bottleneck example from plain convolutions, and GoogLeNet's totals are read
off the zoo's ``googlenet_paper`` without its auxiliary heads (:func:`googlenet_params`).
"""
from __future__ import annotations

import math
from typing import Callable

from torch import nn

from ..summary import summarize
from .core import LESSON, PRACTICE, SLIDES_2019, claim, claims_of_one_number
from .measure import (conv_weights, layers_of, longest_weight_path, on_meta, out_shape, param_count, zoo_model,
                      zoo_summary)


# The lecture's example module: 28x28x256 input; 1x1 (128), 3x3 (192), 5x5 (96) convs
# and a 3x3 max-pool; with dimension reduction, "1x1 conv, 64 filter" bottlenecks before
# the 3x3 and 5x5 convs and after the pool.

_INCEPTION_INPUT = (256, 28, 28)


def _naive_inception() -> nn.Module:
    from ...layers.inception import NaiveInceptionModule

    return on_meta(lambda: NaiveInceptionModule(256, ch1x1=128, ch3x3=192, ch5x5=96))


def _reduced_inception() -> nn.Module:
    from ...layers.inception import InceptionModule

    return on_meta(lambda: InceptionModule(256, ch1x1=128, ch3x3red=64, ch3x3=192, ch5x5red=64, ch5x5=96,
                                         pool_proj=64))


def _macs(build: Callable[[], nn.Module]) -> int:
    """Traced multiply-adds of a module on the 28x28x256 example input."""
    return summarize(build(), _INCEPTION_INPUT).total_macs


def _register_bottleneck_costs(without: Callable[[], nn.Module], with_bottleneck: Callable[[], nn.Module],
                               statements: list[dict]) -> None:
    # What a lecture says a module costs without and with 1x1 bottlenecks, each checked
    # against the traced multiply-adds of that module on the example input.
    for build, statement in zip((without, with_bottleneck), statements, strict=True):
        claim(unit="multiply-adds", **statement)(lambda build=build: _macs(build))


@claim(id="inception-naive-shape", text="The naive Inception module on 28x28x256 outputs 28x28x672",
       source=SLIDES_2019, quote="28x28x(128+192+96+256) = 28x28x672", lecture_value=(28, 28, 672),
       unit="HxWxC", tolerance=0, method="NaiveInceptionModule(256, 128, 192, 96), output on 1x256x28x28")
def _inception_naive_shape():
    return out_shape(_naive_inception(), _INCEPTION_INPUT)


@claim(id="inception-naive-values", text="The naive module's output holds 529k values", source=SLIDES_2019,
       quote="28x28x(128+192+96+256) = 529k", lecture_value=529_000, lecture_text="529k", unit="values",
       tolerance=0.001, note="529k states three significant figures",
       method="NaiveInceptionModule(256, 128, 192, 96): values in its traced output",
       explanation="28x28x672 is 526,848 (527k); the slide's 529k is not a rounding of its own product")
def _inception_naive_values():
    return math.prod(out_shape(_naive_inception(), _INCEPTION_INPUT))


_register_bottleneck_costs(_naive_inception, _reduced_inception, [
    dict(id="inception-naive-ops", text="The naive Inception module costs 854M multiply ops (its convs)",
         source=SLIDES_2019, quote="Total: 854M ops", lecture_value=854_000_000, lecture_text="854M",
         tolerance=0.001, note="854M is rounded to the nearest million",
         method="NaiveInceptionModule(256, 128, 192, 96): traced MACs on 28x28x256 (convs only)"),
    dict(id="inception-reduced-ops", text="With 1x1 conv (64 filter) bottlenecks the same module costs 358M ops",
         source=SLIDES_2019, quote="Total: 358M ops", lecture_value=358_000_000, lecture_text="358M",
         tolerance=0.001, note="358M is rounded to the nearest million",
         method="InceptionModule(256, 128, 64, 192, 64, 96, 64): traced MACs on 28x28x256",
         explanation="the six conv terms the slide itself lists sum to 271M; 358M is 271M plus the 3x3 term "
                     "28x28x192x3x3x64 (86.7M) counted a second time"),
])


def _naive_branch_macs() -> tuple[int, ...]:
    """Traced multiply-adds of the naive module's three convs (1x1, 3x3, 5x5), in branch order."""
    summary = summarize(_naive_inception(), _INCEPTION_INPUT)
    return tuple(record.macs for record in layers_of(summary, ("Conv2d",)))


def _register_naive_products() -> None:
    # The slide's "Conv Ops" lines: each conv's output size times its filter size.
    rows = [("1x1", 128, 1), ("3x3", 192, 3), ("5x5", 96, 5)]
    for index, (name, filters, k) in enumerate(rows):
        product = f"28x28x{filters}x{k}x{k}x256"
        claim(id=f"inception-naive-{name}-ops", text=f"The naive module's {name} conv ({filters} filters) costs "
              f"{product} multiply-adds", source=SLIDES_2019, quote=f"[{name} conv, {filters}] {product}",
              lecture_value=28 * 28 * filters * k * k * 256, lecture_text=product, unit="multiply-adds",
              tolerance=0, method=f"NaiveInceptionModule(256, 128, 192, 96): traced MACs of its {name} conv "
                                  f"on 28x28x256")(lambda index=index: _naive_branch_macs()[index])


_register_naive_products()


@claim(id="inception-reduced-shape", text="The module with bottlenecks outputs 28x28x480 (128+192+96+64)",
       source=SLIDES_2019, quote="28x28x480", lecture_value=(28, 28, 480), unit="HxWxC", tolerance=0,
       method="InceptionModule(256, 128, 64, 192, 64, 96, 64), output on 1x256x28x28")
def _inception_reduced_shape():
    return out_shape(_reduced_inception(), _INCEPTION_INPUT)


@claim(id="inception-1x1-128-shape", text="The naive module's 1x1 conv with 128 filters outputs 28x28x128",
       source=SLIDES_2019, quote="Q1: What is the output size of the 1x1 conv, with 128 filters? 28x28x128",
       lecture_value=(28, 28, 128), unit="HxWxC", tolerance=0,
       method="NaiveInceptionModule(256, 128, 192, 96).branch1: traced output on 1x256x28x28")
def _inception_1x1_128_shape():
    return out_shape(_naive_inception().branch1, _INCEPTION_INPUT)


@claim(id="inception-naive-branch-shapes",
       text="The naive module's four branches output 28x28x128, 28x28x192, 28x28x96 and 28x28x256",
       source=SLIDES_2019, quote="28x28x128 28x28x192 28x28x96 28x28x256",
       lecture_value=(28, 28, 128, 28, 28, 192, 28, 28, 96, 28, 28, 256),
       lecture_text="28x28x128 28x28x192 28x28x96 28x28x256", unit="H, W, C of each branch", tolerance=0,
       method="NaiveInceptionModule(256, 128, 192, 96): traced outputs of branch1 (1x1), branch2 (3x3), "
              "branch3 (5x5), branch4 (3x3 max pool) on 1x256x28x28")
def _inception_naive_branch_shapes():
    module = _naive_inception()
    branches = (module.branch1, module.branch2, module.branch3, module.branch4)
    return tuple(v for branch in branches for v in out_shape(branch, _INCEPTION_INPUT))


# The 2019 slides' reminder of what a 1x1 conv does: 56x56x64 in, 32 filters.

def _reminder_1x1() -> nn.Module:
    return on_meta(lambda: nn.Conv2d(64, 32, kernel_size=1, bias=False))


@claim(id="conv1x1-reminder-shape", text="A 1x1 conv with 32 filters turns 56x56x64 into 56x56x32",
       source=SLIDES_2019, quote="1x1 CONV with 32 filters 32 56", lecture_value=(56, 56, 32), unit="HxWxC",
       tolerance=0, method="Conv2d(64, 32, 1): traced output on 1x64x56x56")
def _conv1x1_reminder_shape():
    return out_shape(_reminder_1x1(), (64, 56, 56))


@claim(id="conv1x1-reminder-filter", text="Each of those filters is 1x1x64: a 64-dimensional dot product",
       source=SLIDES_2019, quote="each filter has size 1x1x64, and performs a 64-dimensional dot product",
       lecture_value=64, unit="weights per filter (one output value)", tolerance=0,
       method="Conv2d(64, 32, 1): weight.numel() / out_channels")
def _conv1x1_reminder_filter():
    conv = _reminder_1x1()
    return conv.weight.numel() // conv.out_channels


@claim(id="inception-5x5-256-weights", text="A 5x5 conv from 256 to 256 channels needs about 1.6M weights",
       source=LESSON, quote="5×5×256×256 ≈ 1.6M parameters", lecture_value=1_600_000, lecture_text="1.6M",
       unit="weights", tolerance=0.05, note="the lesson rounds to two significant figures",
       method="Conv2d(256, 256, 5) weights")
def _inception_5x5_256_weights():
    return conv_weights(on_meta(lambda: nn.Conv2d(256, 256, 5, padding=2, bias=False)))


# The lesson's 1x1 bottleneck: 256 channels in, 64 out, a per-pixel linear projection.

@claim(id="conv1x1-per-position", text="A 1x1 conv from 256 to 64 channels costs 256x64 = 16,384 per position",
       source=LESSON, quote="It costs 256×64 = 16,384 parameters per spatial position.", lecture_value=16_384,
       unit="multiply-adds per position (= weights)", tolerance=0,
       note="the lesson calls them parameters: a 1x1 conv does one multiply-add per weight at each position",
       method="Conv2d(256, 64, 1): traced MACs on 28x28x256 / (28 x 28)")
def _conv1x1_per_position():
    conv = on_meta(lambda: nn.Conv2d(256, 64, kernel_size=1, bias=False))
    return summarize(conv, _INCEPTION_INPUT).total_macs / (28 * 28)


@claim(id="bottleneck-5x5-on-64", text="Reducing 256 channels to 64 first makes the 5x5 conv 4x cheaper",
       source=LESSON, quote="reduce 256 channels to 64, apply the expensive 5×5 conv on 64 channels, then the cost "
                            "drops by 4×", lecture_value=4, lecture_text="4×", unit="times fewer multiply-adds",
       tolerance=0, note="the 5x5 conv's own cost; the 1x1 reduction in front of it adds 256 x 64 multiply-adds "
                         "per position, so the whole branch saves a little less",
       method="traced MACs of Conv2d(256, 256, 5) on 28x28x256 / those of Conv2d(64, 256, 5) on 28x28x64")
def _bottleneck_5x5_on_64():
    wide = summarize(on_meta(lambda: nn.Conv2d(256, 256, 5, padding=2, bias=False)), (256, 28, 28)).total_macs
    narrow = summarize(on_meta(lambda: nn.Conv2d(64, 256, 5, padding=2, bias=False)), (64, 28, 28)).total_macs
    return wide / narrow


# The lesson's worked example: 28x28x256 input, a 5x5 conv to 128 channels, with and
# without a 1x1 bottleneck to 32 channels in front.

def _direct_5x5() -> nn.Module:
    return on_meta(lambda: nn.Conv2d(256, 128, 5, padding=2, bias=False))


def _bottlenecked_5x5() -> nn.Module:
    return on_meta(lambda: nn.Sequential(nn.Conv2d(256, 32, 1, bias=False),
                                       nn.Conv2d(32, 128, 5, padding=2, bias=False)))


@claim(id="bottleneck-example-weights", text="A 5x5 conv from 256 to 128 channels has 819,200 weights",
       source=LESSON, quote="Without bottleneck: 5×5×256×128 = 819,200 params", lecture_value=819_200,
       unit="weights", tolerance=0, method="Conv2d(256, 128, 5) weights")
def _bottleneck_example_weights():
    return conv_weights(_direct_5x5())


_register_bottleneck_costs(_direct_5x5, _bottlenecked_5x5, [
    dict(id="bottleneck-example-direct", text="That 5x5 conv on 28x28x256 costs 642M multiply-adds", source=LESSON,
         quote="FLOPs: 819,200 × 28×28 ≈ 642M", lecture_value=642_000_000, lecture_text="642M", tolerance=0.001,
         note="642M is rounded to the nearest million",
         method="Conv2d(256, 128, 5, padding=2): traced MACs on 28x28x256"),
    dict(id="bottleneck-example-reduced", text="With a 1x1 bottleneck to 32 channels first it costs 86.4M "
         "multiply-adds", source=LESSON, quote="Total: 86.4M FLOPs vs 642M", lecture_value=86_400_000,
         lecture_text="86.4M", tolerance=0.05 / 86.4, note="right if the count rounds to 86.4M",
         method="Conv2d(256, 32, 1) -> Conv2d(32, 128, 5): traced MACs on 28x28x256",
         explanation="86.4M adds the two terms as the lesson rounds them, 6.4M + 80M; the 5x5 term is 80.3M, so "
                     "the branch costs 86.7M (the 7.4x saving holds either way)"),
])


def _bottlenecked_5x5_layers() -> list:
    """The traced records of the worked example's two convs: the 1x1 to 32 channels, then the 5x5 to 128."""
    return layers_of(summarize(_bottlenecked_5x5(), _INCEPTION_INPUT), ("Conv2d",))


def _register_bottleneck_terms() -> None:
    # "• 1×1 conv: 256×32 = 8,192 params. FLOPs: 8,192 × 28×28 ≈ 6.4M." and the 5x5 line.
    rows = [(0, "1x1", "1×1 conv: 256×32 = 8,192 params.", 8_192, "FLOPs: 8,192 × 28×28 ≈ 6.4M.", 6_400_000, "6.4M"),
            (1, "5x5", "5×5 conv: 5×5×32×128 = 102,400 params.", 102_400, "FLOPs: 102,400 × 28×28 ≈ 80M.",
             80_000_000, "80M")]
    for index, name, weights_quote, weights, macs_quote, macs, written in rows:
        method = f"Conv2d(256, 32, 1) -> Conv2d(32, 128, 5) on 28x28x256: the traced {name} conv's"
        claim(id=f"bottleneck-example-{name}-weights", text=f"The bottlenecked branch's {name} conv has "
              f"{weights:,} weights", source=LESSON, quote=weights_quote, lecture_value=weights, unit="weights",
              tolerance=0, method=f"{method} weights")(lambda index=index: _bottlenecked_5x5_layers()[index].weights)
        decimals = len(written.rstrip("M").split(".")[1]) if "." in written else 0
        claim(id=f"bottleneck-example-{name}-macs", text=f"It costs {written} multiply-adds on 28x28",
              source=LESSON, quote=macs_quote, lecture_value=macs, lecture_text=written, unit="multiply-adds",
              tolerance=0.5 * 10 ** (6 - decimals) / macs, note=f"right if the count rounds to {written}",
              method=f"{method} MACs")(lambda index=index: _bottlenecked_5x5_layers()[index].macs)


_register_bottleneck_terms()


@claim(id="bottleneck-example-saving", text="The 1x1 bottleneck cuts that branch's cost 7.4x", source=LESSON,
       quote="a 7.4× reduction", lecture_value=7.4, lecture_text="7.4x", unit="times fewer multiply-adds",
       tolerance=0.01, note="7.4 states two significant figures",
       method="ratio of the two traced MAC counts above")
def _bottleneck_example_saving():
    return _macs(_direct_5x5) / _macs(_bottlenecked_5x5)


# --- GoogLeNet as a whole --------------------------------------------------------------
# The zoo's googlenet_paper (true 5x5 kernels; BatchNorm in place of LRN) without its
# auxiliary classifiers, which the paper discards at inference and does not count.

def googlenet_params() -> int:
    return param_count(zoo_model("googlenet_paper", aux_logits=False))


claims_of_one_number(googlenet_params, unit="parameters", method="googlenet_paper(aux_logits=False): all parameters",
                     statements=[
    dict(id="googlenet-params-5m", text="GoogLeNet has only 5 million parameters", source=SLIDES_2019,
         quote="Only 5 million parameters!", lecture_value=5_000_000, lecture_text="5M", tolerance=0.1,
         note="'5 million' is one significant figure",
         explanation="GoogLeNet without its auxiliary heads has about 7.0M parameters (6.6M in torchvision's "
                     "variant with 3x3 kernels in the '5x5' branches); its final FC-1000 layer alone has 1.0M"),
    dict(id="googlenet-params-4m", text="GoogLeNet (Inception) has about 4 million parameters", source=PRACTICE,
         quote="low parameter count of about 4 million", lecture_value=4_000_000, lecture_text="~4M",
         tolerance=0.125, note="'about 4 million' is one significant figure",
         explanation="GoogLeNet without its auxiliary heads has about 7.0M parameters (6.6M in torchvision's "
                     "variant); 4M is the course notes' figure and matches no GoogLeNet the zoo can build"),
])


def _register_googlenet_ratios() -> None:
    # How many times more parameters AlexNet and VGG have than GoogLeNet, as two sources put it.
    rows = [
        ("alexnet", "alexnet_paper", "GoogLeNet has 12x fewer parameters than AlexNet", SLIDES_2019,
         "12x less than AlexNet", 12, "12x", "'12x' is a round ratio",
         "12x is the lecture's 60M / 5M; with the networks' real counts (61.0M vs 7.0M, or "
         "torchvision's 61.1M vs 6.6M; the slides' simplified 62.4M AlexNet too) AlexNet has about 9x more"),
        ("vgg", "vgg16", "GoogLeNet is about 35x smaller than VGG", PRACTICE,
         "roughly thirty-five times smaller", 35, "~35x", "'roughly thirty-five' is a round ratio",
         "35x is 140M / 4M; VGG-16's 138.4M over GoogLeNet's 7.0M is about 20x (21x for "
         "torchvision's 6.6M GoogLeNet)"),
    ]
    for name, model, text, source, quote, value, written, note, explanation in rows:
        claim(id=f"googlenet-vs-{name}", text=text, source=source, quote=quote, lecture_value=value,
              lecture_text=written, unit="times fewer parameters", tolerance=0.05, note=note,
              method=f"{model} params / googlenet_paper(aux_logits=False) params", explanation=explanation)(
            lambda model=model: zoo_summary(model).total_params / googlenet_params())


_register_googlenet_ratios()


@claim(id="googlenet-depth", text="GoogLeNet has 22 layers with weights (parallel layers count once)",
       source=SLIDES_2019, quote="22 total layers with weights", lecture_value=22, unit="weight layers",
       tolerance=0, method="googlenet_paper(aux_logits=False): longest chain of conv/FC layers, "
                           "an Inception module's branches side by side")
def _googlenet_depth():
    return longest_weight_path(zoo_model("googlenet_paper", aux_logits=False))


@claim(id="googlenet-macs", text="GoogLeNet costs 1.5B FLOPs (multiply-adds) per image", source=LESSON,
       quote="FLOPs15.5B1.5B", lecture_value=1_500_000_000, lecture_text="1.5B", unit="multiply-adds",
       tolerance=0.05, note="1.5B is a round figure (the paper's 'budget of 1.5 billion multiply-adds')",
       method="googlenet_paper: traced MACs at 224x224 in eval mode (no auxiliary heads)",
       explanation="with the paper's true 5x5 kernels GoogLeNet costs about 1.58G multiply-adds; "
                   "torchvision's variant (3x3 kernels in the '5x5' branches) costs 1.50G")
def _googlenet_macs():
    return zoo_summary("googlenet_paper").total_macs
