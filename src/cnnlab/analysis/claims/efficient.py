"""Claims about the designs after ResNet: depthwise separable convs, the lesson's tables, EfficientNet, DenseNet, ConvNeXt.

The MobileNet worked example compares :class:`cnnlab.layers.DepthwiseSeparableConv` with
one standard conv; the lesson's table of residual designs and its architecture timeline
(:data:`TIMELINE`, :func:`architecture_timeline`) are checked row by row against the zoo's
parameter counts, each row right when the count rounds to the digits written.
"""
from __future__ import annotations

from torch import nn

from ..summary import summarize
from .alexnet import alexnet_simplified_params
from .core import LESSON, claim
from .inception import googlenet_params
from .measure import conv_weights, first, on_meta, out_shape, param_count, zoo_model


# ======================================================================================
# Depthwise separable convolution (lesson chapter 10, MobileNet worked example)
# ======================================================================================
# MobileNet's block (cnnlab.layers.DepthwiseSeparableConv) against one standard conv.

def _standard_3x3() -> nn.Module:
    return on_meta(lambda: nn.Conv2d(256, 256, 3, padding=1, bias=False))


def _separable_3x3() -> nn.Module:
    from ...layers import DepthwiseSeparableConv

    return on_meta(lambda: DepthwiseSeparableConv(256, 256))


@claim(id="separable-weights", text="A depthwise separable 3x3 conv, 256 -> 256 channels, has 67,840 weights",
       source=LESSON, quote="Total: 67,840 params", lecture_value=67_840, unit="weights", tolerance=0,
       method="cnnlab.layers.DepthwiseSeparableConv(256, 256): conv weights (BN not counted)")
def _separable_weights():
    return conv_weights(_separable_3x3())


@claim(id="separable-saving", text="That is 8.7x fewer weights than a standard 3x3 conv", source=LESSON,
       quote="67,840 params — 8.7× fewer", lecture_value=8.7, lecture_text="8.7x", unit="times fewer weights",
       tolerance=0.01, note="8.7 states two significant figures",
       method="Conv2d(256, 256, 3) weights / separable weights")
def _separable_saving():
    return conv_weights(_standard_3x3()) / conv_weights(_separable_3x3())


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


# The zoo models whose tables' counts need them built in a particular way.
_MODEL_AS_COUNTED = {"alexnet_paper": "alexnet_paper(towers=1)", "googlenet_paper": "googlenet_paper(aux_logits=False)"}


def _register_params_rows(rows, quote_of, id_prefix: str, table: str) -> None:
    for name, model, written, compute, explanation in rows:
        value = float(written.rstrip("M")) * 1e6
        claim(id=f"{id_prefix}-{model.replace('_', '-')}-params", text=f"{name} has {written} parameters ({table})",
              source=LESSON, quote=quote_of(name, written), lecture_value=value, lecture_text=written,
              unit="parameters", tolerance=_rounding_tolerance(written, value),
              note=f"right if the count rounds to {written}",
              method=f"{_MODEL_AS_COUNTED.get(model, model)}: all parameters",
              explanation=explanation)(compute or (lambda model=model: param_count(zoo_model(model))))


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
    "AlexNet": "the slides' simplified AlexNet (the layer list without the two-GPU split, which the table's "
               "62M counts) does not round to 62M",
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
    from ...registry import model_info

    return model_info(name)


def _timeline_params(model: str) -> int:
    if model == "googlenet_paper":
        return googlenet_params()  # without the auxiliary heads, as at test time
    if model == "alexnet_paper":
        # The table's 62M is the slides' simplified layer list (62.4M), not the two-tower
        # net of the paper (61.0M): see alexnet-params-62m.
        return alexnet_simplified_params()
    return param_count(zoo_model(model))


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
    from ...models.efficientnet import ALPHA, BETA, GAMMA

    return ALPHA * BETA**2 * GAMMA**2


@claim(id="efficientnet-b7-params", text="EfficientNet-B7 has 66M parameters", source=LESSON,
       quote="EfficientNet-B7 achieves 84.3% top-1 accuracy on ImageNet with 66M parameters",
       lecture_value=66_000_000, lecture_text="66M", unit="parameters", tolerance=0.5 / 66,
       note="right if the count rounds to 66M", method="efficientnet_b7 (B0 scaled by phi = 7): all parameters")
def _efficientnet_b7_params():
    return param_count(zoo_model("efficientnet_b7"))


@claim(id="convnext-t-params", text="ConvNeXt-T has 29M parameters", source=LESSON,
       quote="ConvNeXt-T (29M params)", lecture_value=29_000_000, lecture_text="29M", unit="parameters",
       tolerance=0.5 / 29, note="right if the count rounds to 29M", method="convnext_tiny: all parameters")
def _convnext_t_params():
    return param_count(zoo_model("convnext_tiny"))


# --- DenseNet's growth rate and ConvNeXt's Transformer-borrowed design ---------------------

def _growth_rate(model: str) -> int:
    """New channels each layer of the model's first dense block adds, read off the traced block."""
    from ...layers import DenseBlock

    block = next(m for m in zoo_model(model).modules() if isinstance(m, DenseBlock))
    size = zoo_model(model).pretrained_cfg.input_size[1]
    added = out_shape(block, (block.in_channels, size, size))[2] - block.in_channels
    return added // len(block) if added % len(block) == 0 else added / len(block)


@claim(id="densenet-growth-rates", text="DenseNet layers are narrow: each adds only 12 or 24 new channels",
       source=LESSON, quote="only 12 or 24 new channels per layer, called the \"growth rate\"",
       lecture_value=(12, 24), lecture_text="12 or 24", unit="new channels per layer", tolerance=0,
       note="the CIFAR DenseNet-BC nets' growth rates; the ImageNet DenseNet-121 uses k = 32",
       method="densenet_bc100_k12 and densenet_bc250_k24: (output - input channels) / layers of the first dense "
              "block, traced at 32x32")
def _densenet_growth_rates():
    return (_growth_rate("densenet_bc100_k12"), _growth_rate("densenet_bc250_k24"))


def _convnext_blocks() -> list:
    from ...layers import ConvNeXtBlock

    return [m for m in zoo_model("convnext_tiny").modules() if isinstance(m, ConvNeXtBlock)]


def _same_in_every_block(values: list):
    # One value when all 18 blocks agree; all of them otherwise, so that an odd block shows.
    return values[0] if len(set(values)) == 1 else tuple(values)


@claim(id="convnext-depthwise-7x7", text="ConvNeXt's blocks start with a 7x7 depthwise conv", source=LESSON,
       quote="Larger kernel (7×7 depthwise conv)", lecture_value=(7, 1), lecture_text="7×7, depthwise",
       unit="kernel, input channels per filter", tolerance=0,
       method="convnext_tiny: kernel size and in_channels / groups of each block's spatial conv (1 = depthwise)")
def _convnext_depthwise_7x7():
    return _same_in_every_block([(first(c.kernel_size), c.in_channels // c.groups)
                                 for c in (next(m for m in b.modules() if isinstance(m, nn.Conv2d))
                                           for b in _convnext_blocks())])


@claim(id="convnext-expansion", text="ConvNeXt's inverted bottleneck expands the channels 4x", source=LESSON,
       quote="MLP block in Transformers: 4× expansion", lecture_value=4, lecture_text="4×", unit="x channels",
       tolerance=0, method="convnext_tiny: hidden / input width of each block's first Linear (a 1x1 conv)")
def _convnext_expansion():
    linears = [next(m for m in b.modules() if isinstance(m, nn.Linear)) for b in _convnext_blocks()]
    return _same_in_every_block([m.out_features / m.in_features for m in linears])


@claim(id="convnext-one-activation", text="A ConvNeXt block has a single activation, one GELU", source=LESSON,
       quote="Fewer activation functions (GELU, only after pointwise)", lecture_value=1,
       unit="activations per block", tolerance=0, method="convnext_tiny: nn.GELU modules in each block")
def _convnext_one_activation():
    return _same_in_every_block([sum(isinstance(m, nn.GELU) for m in b.modules()) for b in _convnext_blocks()])


@claim(id="convnext-one-norm", text="A ConvNeXt block has a single normalisation layer", source=LESSON,
       quote="Fewer normalization layers (only one per block)", lecture_value=1, unit="norm layers per block",
       tolerance=0, method="convnext_tiny: LayerNorm / BatchNorm modules in each block")
def _convnext_one_norm():
    norms = (nn.LayerNorm, nn.BatchNorm2d, nn.GroupNorm)
    return _same_in_every_block([sum(isinstance(m, norms) for m in b.modules()) for b in _convnext_blocks()])


@claim(id="convnext-patchify-stem", text="ConvNeXt's stem is a 4x4 conv with stride 4 (non-overlapping patches)",
       source=LESSON, quote="Patchify stem (4×4 non-overlapping conv stride 4)", lecture_value=(4, 4),
       lecture_text="4×4, stride 4", unit="kernel, stride", tolerance=0,
       method="convnext_tiny: kernel and stride of the first Conv2d (features.0)")
def _convnext_patchify_stem():
    conv = next(m for m in zoo_model("convnext_tiny").features[0].modules() if isinstance(m, nn.Conv2d))
    return (first(conv.kernel_size), first(conv.stride))


# --- the general cost of a depthwise separable conv --------------------------------------

_SEPARABLE_COST = "Total cost: 9Cin + Cin×Cout vs. 9×Cin×Cout for standard conv."
_SEPARABLE_SAVING = "Savings: roughly Cout/9 — about 8–9× fewer parameters and FLOPs."
_C_IN, _C_OUT = 32, 64  # MobileNet's first separable layer: different widths keep Cin and Cout apart


@claim(id="separable-cost-formula", text="A separable 3x3 conv has 9Cin + Cin x Cout weights, a standard one "
       "9 x Cin x Cout (at Cin = 32, Cout = 64)", source=LESSON, quote=_SEPARABLE_COST,
       lecture_value=(9 * _C_IN + _C_IN * _C_OUT, 9 * _C_IN * _C_OUT),
       lecture_text="9Cin + Cin×Cout, 9×Cin×Cout", unit="separable, standard weights", tolerance=0,
       method="DepthwiseSeparableConv(32, 64) and Conv2d(32, 64, 3): conv weights (BN not counted)")
def _separable_cost_formula():
    from ...layers import DepthwiseSeparableConv

    separable = conv_weights(on_meta(lambda: DepthwiseSeparableConv(_C_IN, _C_OUT)))
    standard = conv_weights(on_meta(lambda: nn.Conv2d(_C_IN, _C_OUT, 3, padding=1, bias=False)))
    return (separable, standard)


@claim(id="separable-saving-cout-over-9", text="A separable conv saves roughly Cout/9 (lesson's worked example, "
       "Cout = 256)", source=LESSON, quote=_SEPARABLE_SAVING, lecture_value=256 / 9, lecture_text="Cout/9 = 28.4",
       unit="times fewer weights", tolerance=0.1, note="'roughly': within 10%",
       method="Conv2d(256, 256, 3) weights / DepthwiseSeparableConv(256, 256) weights",
       explanation="the separable conv costs 9Cin + Cin×Cout, i.e. 1/Cout + 1/9 of the standard conv (the "
                   "MobileNet paper's ratio), so the saving is 9·Cout/(Cout + 9): it approaches 9 as Cout grows and "
                   "is never Cout/9; the lesson's own '8–9×' and its 8.7× example are right")
def _separable_saving_cout_over_9():
    return _separable_saving()


@claim(id="separable-saving-8-9x", text="A separable conv has about 8-9x fewer parameters and FLOPs "
       "(256 -> 256 channels on 14x14)", source=LESSON, quote=_SEPARABLE_SAVING, lecture_value=(8.5, 8.5),
       lecture_text="8–9×, 8–9×", unit="times fewer weights, times fewer multiply-adds", tolerance=0.5 / 8.5,
       note="'8–9×': any ratio from 8 to 9 agrees",
       method="Conv2d(256, 256, 3) / DepthwiseSeparableConv(256, 256): conv weights, and traced MACs on 14x14x256")
def _separable_saving_8_9x():
    return (_separable_saving(), _standard_3x3_macs() / _separable_macs())


# --- EfficientNet: FLOPs per step of phi ---------------------------------------------------

def _compound_macs(phi: int) -> int:
    """Traced MACs of EfficientNet-B``phi`` built by the exact compound rule, at the rule's resolution."""
    from ...models.efficientnet import scaling_for

    size = scaling_for(phi, "compound").resolution
    return summarize(zoo_model(f"efficientnet_b{phi}", scaling="compound"), (3, size, size)).total_macs


_EFFICIENTNET_STEPS = 3


@claim(id="efficientnet-flops-per-phi", text="Under compound scaling FLOPs roughly double per unit increase in phi",
       source=LESSON, quote="The constraint ensures FLOPs roughly double per unit increase in φ.", lecture_value=2.0,
       lecture_text="roughly 2×", unit="FLOPs factor per unit of phi", tolerance=0.1, note="'roughly': within 10%",
       method=f"efficientnet_b0 .. b{_EFFICIENTNET_STEPS}(scaling='compound') at 224 x 1.15^phi: traced MACs, "
              f"(MACs(B{_EFFICIENTNET_STEPS}) / MACs(B0))^(1/{_EFFICIENTNET_STEPS}); the released B1-B7 use smaller "
              "multipliers than the rule",
       explanation="the traced multiply-adds of the compound-scaled nets do not grow about 2x per step of phi")
def _efficientnet_flops_per_phi():
    return (_compound_macs(_EFFICIENTNET_STEPS) / _compound_macs(0)) ** (1 / _EFFICIENTNET_STEPS)


@claim(id="swin-t-params", text="Swin Transformer-T has 29M parameters", source=LESSON,
       quote="matches Swin Transformer-T (29M params)", lecture_value=29_000_000, lecture_text="29M",
       unit="parameters", tolerance=0.5 / 29, note="right if the count rounds to 29M",
       method="torchvision.models.swin_t() on the meta device: all parameters (the zoo has no transformers)",
       explanation="Swin-T has 28.3M parameters (its paper and the ConvNeXt paper's table say 28M); 29M is "
                   "ConvNeXt-T's count (28.6M) rounded, given to both")
def _swin_t_params():
    from torchvision.models import swin_t

    return param_count(on_meta(lambda: swin_t()))
