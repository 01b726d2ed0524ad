"""Claims about ResNet and its family: block weights, the lesson's parameter table, depths, SE blocks.

Block counts come from cnnlab's residual layers built on the meta device (convolution
weights only, as the lesson counts them), whole-net counts and depths from the zoo's
``resnet*`` models.
"""
from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn

from .core import LESSON, SLIDES_2019, claim
from .measure import conv_weights, first, hwc, on_meta, out_shape, weight_layer_counts, zoo_model, zoo_summary


@claim(id="resnet-bottleneck-weights", text="A bottleneck block 256->64->64->256 has 69,632 weights",
       source=LESSON, quote="256×64 + 32×642 + 64×256 = 69,632 params", lecture_value=69_632, unit="weights",
       tolerance=0, method="cnnlab.layers.residual.Bottleneck(256, 64): conv weights (BN not counted)")
def _resnet_bottleneck_weights():
    from ...layers.residual import Bottleneck

    return conv_weights(on_meta(lambda: Bottleneck(256, 64)))


@claim(id="resnet-two-3x3-weights", text="Two 3x3 convs on 256 channels have 1.18M weights", source=LESSON,
       quote="two 3×3 conv on 256 channels = 2 × 32 × 2562 = 1.18M params", lecture_value=1_180_000,
       lecture_text="1.18M", unit="weights", tolerance=0.005, note="rounded to 0.01M",
       method="cnnlab.layers.residual.BasicBlock(256, 256): conv weights (BN not counted)")
def _resnet_two_3x3_weights():
    from ...layers.residual import BasicBlock

    return conv_weights(on_meta(lambda: BasicBlock(256, 256)))


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
    from ...layers.residual import Bottleneck

    return conv_weights(on_meta(lambda: Bottleneck(256, 64, groups=32, base_width=4)))


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
            lambda depth=depth: zoo_summary(f"resnet{depth}").total_params)


_register_resnet_table()


@claim(id="resnet34-worked-example", text="ResNet-34 has 21.3M parameters (the lesson's worked example)",
       source=LESSON, quote="FC 1000. Total: 21.3M params.", lecture_value=21_300_000, lecture_text="21.3M",
       unit="parameters", tolerance=0.005, note="rounded to 0.1M", method="resnet34: all parameters",
       explanation="ResNet-34 has 21.8M parameters, as the lesson's own table says; 21.3M is its count "
                   "without the final FC-1000 layer (513,000 parameters)")
def _resnet34_worked_example():
    return zoo_summary("resnet34").total_params


@claim(id="resnet-depths", text="ResNets for ImageNet are 34, 50, 101 or 152 layers deep", source=SLIDES_2019,
       quote="Total depths of 34, 50, 101, or 152 layers for ImageNet", lecture_value=(34, 50, 101, 152),
       lecture_text="34, 50, 101, 152", unit="weight layers", tolerance=0,
       method="resnet34/50/101/152: Conv2d + Linear modules, projection shortcuts not counted")
def _resnet_depths():
    return tuple(sum(weight_layer_counts(zoo_model(f"resnet{d}"))) for d in (34, 50, 101, 152))


@claim(id="se-block-share", text="An SE block on 512 channels (r=16) adds ~0.05% of ResNet-50's parameters",
       source=LESSON, quote="Extra params: 512×32 + 32×512 = 32,768 (~0.05% of ResNet-50)", lecture_value=0.05,
       lecture_text="~0.05%", unit="% of ResNet-50's parameters", tolerance=0.2,
       note="'~0.05%' is a rough figure",
       method="cnnlab.layers.SqueezeExcite(512, r=16): fc1 + fc2 weights / resnet50 parameters x 100",
       explanation="32,768 is 0.13% of ResNet-50's 25.6M parameters; 0.05% of 25.6M would be about 12.8K")
def _se_block_share():
    return 100 * _se_block_weights() / zoo_summary("resnet50").total_params


@claim(id="se-block-weights", text="An SE block on 512 channels with r=16 adds 32,768 weights", source=LESSON,
       quote="Extra params: 512×32 + 32×512 = 32,768", lecture_value=32_768, unit="weights", tolerance=0,
       method="cnnlab.layers.SqueezeExcite(512, reduction=16): fc1 + fc2 weights (biases not counted)")
def _se_block_weights():
    from ...layers import SqueezeExcite

    return conv_weights(on_meta(lambda: SqueezeExcite(512, reduction=16)))


# ======================================================================================
# ResNet-34 layer by layer (the lesson's worked example "ResNet-34 Structure")
# ======================================================================================

@lru_cache(maxsize=None)
def _resnet34_trace() -> dict[str, tuple[int, ...]]:
    """HxWxC after resnet34's stem conv, its max pool and each of its four stages (meta device, 224x224)."""
    model = zoo_model("resnet34").eval()
    with torch.no_grad():
        x = torch.zeros(1, 3, 224, 224, device="meta")
        shapes = {"conv1": hwc(model.conv1(x).shape)}
        x = model.forward_stem(x)
        shapes["maxpool"] = hwc(x.shape)
        for index in range(1, model.num_stages + 1):
            x = model.get_submodule(f"layer{index}")(x)
            shapes[f"layer{index}"] = hwc(x.shape)
    return shapes


@claim(id="resnet34-stem-conv", text="ResNet-34's stem, a 7x7 conv with stride 2, turns 224x224x3 into 112x112x64",
       source=LESSON, quote="Stem: 7×7 conv stride 2 → 112×112×64", lecture_value=(112, 112, 64), unit="HxWxC",
       tolerance=0, method="resnet34: traced output of conv1 on 1x3x224x224")
def _resnet34_stem_conv():
    return _resnet34_trace()["conv1"]


@claim(id="resnet34-stem-pool", text="Its 3x3 max pool then gives 56x56x64", source=LESSON,
       quote="then 3×3 max pool → 56×56×64", lecture_value=(56, 56, 64), unit="HxWxC", tolerance=0,
       method="resnet34: traced output of the stem (conv1, bn1, relu, maxpool)")
def _resnet34_stem_pool():
    return _resnet34_trace()["maxpool"]


def _stage(index: int) -> tuple[int, ...]:
    """(blocks, kernel, width of the main-path convs, H, W, C of the output) of resnet34's stage ``index``."""
    stage = zoo_model("resnet34").get_submodule(f"layer{index}")
    convs = {(first(m.kernel_size), m.out_channels) for name, m in stage.named_modules()
             if isinstance(m, nn.Conv2d) and "downsample" not in name.split(".")}
    if len(convs) != 1:
        raise RuntimeError(f"resnet34 layer{index} has convs of several sizes or widths: {sorted(convs)}")
    return (len(stage), *convs.pop(), *_resnet34_trace()[f"layer{index}"])


def _register_resnet34_stages() -> None:
    # "Stage 1: 3 blocks of [3×3, 64; 3×3, 64] + skip. Output: 56×56×64." and the three after it.
    for index, (blocks, width, size) in enumerate([(3, 64, 56), (4, 128, 28), (6, 256, 14), (3, 512, 7)], start=1):
        written = f"{blocks} blocks of [3×3, {width}; 3×3, {width}] + skip"
        quote = f"Stage {index}: {written}." + (" First block: stride 2." if index > 1 else "")
        claim(id=f"resnet34-stage{index}", text=f"ResNet-34 stage {index}: {written}, output {size}x{size}x{width}",
              source=LESSON, quote=f"{quote} Output: {size}×{size}×{width}.",
              lecture_value=(blocks, 3, width, size, size, width),
              lecture_text=f"{blocks} blocks of [3×3, {width}; 3×3, {width}], {size}×{size}×{width}",
              unit="blocks, kernel, width, H, W, C", tolerance=0,
              method=f"resnet34.layer{index}: its blocks, the kernel and width of its convs (projection not "
                     f"counted) and its traced output at 224x224")(lambda index=index: _stage(index))


_register_resnet34_stages()


@claim(id="resnet-stage-doubling", text="Each ResNet stage doubles the channels and halves the resolution",
       source=LESSON, quote="Each stage doubles the number of channels and halves the spatial resolution",
       lecture_value=(2, 0.5), lecture_text="2x channels, 1/2 resolution", unit="channel factor, resolution factor",
       tolerance=0, method="resnet34: ratios of consecutive stages' traced output shapes (the same at every step)")
def _resnet_stage_doubling():
    shapes = [_resnet34_trace()[f"layer{i}"] for i in range(1, 5)]
    steps = {(b[2] / a[2], b[0] / a[0]) for a, b in zip(shapes, shapes[1:])}
    if len(steps) != 1:
        raise RuntimeError(f"resnet34's stages change shape unevenly: {sorted(steps)}")
    return steps.pop()


@claim(id="resnet-projection-shortcut",
       text="Where the shape changes, the shortcut is a 1x1 conv with stride 2", source=LESSON,
       quote="When dimensions change, a 1×1 conv with stride 2 is applied to the skip connection to match dimensions",
       lecture_value=(1, 2), lecture_text="1×1, stride 2", unit="kernel, stride", tolerance=0,
       method="resnet34: kernel and stride of every conv in a block's downsample (one per stage 2-4)")
def _resnet_projection_shortcut():
    shortcuts = {(first(m.kernel_size), first(m.stride)) for name, m in zoo_model("resnet34").named_modules()
                 if isinstance(m, nn.Conv2d) and "downsample" in name.split(".")}
    if len(shortcuts) != 1:
        raise RuntimeError(f"resnet34's projection shortcuts differ: {sorted(shortcuts)}")
    return shortcuts.pop()


# The 2019 slides' bottleneck, on a 28x28x256 input: 1x1 to 64 maps, 3x3 on them, 1x1 back to 256.

_BOTTLENECK_INPUT = (256, 28, 28)


def _bottleneck() -> nn.Module:
    from ...layers.residual import Bottleneck

    return on_meta(lambda: Bottleneck(256, 64))


@claim(id="bottleneck-reduce-shape", text="A bottleneck's first 1x1 conv (64 filters) projects 28x28x256 to 28x28x64",
       source=SLIDES_2019, quote="1x1 conv, 64 filters to project to 28x28x64", lecture_value=(28, 28, 64),
       unit="HxWxC", tolerance=0, method="Bottleneck(256, 64).conv1: traced output on 1x256x28x28")
def _bottleneck_reduce_shape():
    return out_shape(_bottleneck().conv1, _BOTTLENECK_INPUT)


@claim(id="bottleneck-3x3-maps", text="Its 3x3 conv works on only 64 feature maps", source=SLIDES_2019,
       quote="3x3 conv operates over only 64 feature maps", lecture_value=64, unit="input maps", tolerance=0,
       method="Bottleneck(256, 64).conv2.in_channels")
def _bottleneck_3x3_maps():
    return _bottleneck().conv2.in_channels


@claim(id="bottleneck-restore-shape", text="Its last 1x1 conv (256 filters) projects back to 28x28x256",
       source=SLIDES_2019, quote="1x1 conv, 256 filters projects back to 256 feature maps (28x28x256)",
       lecture_value=(28, 28, 256), unit="HxWxC", tolerance=0,
       method="Bottleneck(256, 64): traced output of the whole block on 1x256x28x28")
def _bottleneck_restore_shape():
    return out_shape(_bottleneck(), _BOTTLENECK_INPUT)


# --- depth: the degradation experiment's nets and the 1202-layer one --------------------

def _depth(name: str) -> int:
    return sum(weight_layer_counts(zoo_model(name)))


@claim(id="plain-depths", text="The degradation experiment compares a 20-layer and a 56-layer plain net",
       source=LESSON, quote="a 56-layer network often performs worse than the 20-layer network",
       lecture_value=(20, 56), lecture_text="20, 56", unit="weight layers", tolerance=0,
       method="plain20 and plain56 (CIFAR nets without shortcuts): Conv2d + Linear modules")
def _plain_depths():
    return (_depth("plain20"), _depth("plain56"))


@claim(id="plain-extra-layers", text="The 56-layer net has 36 layers more than the 20-layer one", source=LESSON,
       quote="by setting the extra 36 layers to identity mappings", lecture_value=36, unit="weight layers",
       tolerance=0, method="weight layers of plain56 - weight layers of plain20")
def _plain_extra_layers():
    return _depth("plain56") - _depth("plain20")


@claim(id="resnet1202-depth", text="ResNets train without degrading at 1202 layers on CIFAR", source=SLIDES_2019,
       quote="(152 layers on ImageNet, 1202 on Cifar)", lecture_value=1202, unit="weight layers", tolerance=0,
       method="resnet1202 (CIFAR, n = 200): Conv2d + Linear modules (its shortcuts have no weights)")
def _resnet1202_depth():
    return _depth("resnet1202")


# --- ResNeXt's paths and SENet's depth --------------------------------------------------

def _resnext_block() -> nn.Module:
    from ...layers.residual import Bottleneck

    return on_meta(lambda: Bottleneck(256, 64, groups=32, base_width=4))


@claim(id="resnext-paths", text="A ResNeXt block (C = 32, d = 4) is 32 parallel paths, each 4 channels wide",
       source=LESSON, quote="32 parallel paths, each: 1×1 conv (256 → 4) → 3×3 conv (4 → 4) → 1×1 conv (4 → 256).",
       lecture_value=(32, 4), lecture_text="32 paths of width 4", unit="paths, width of each",
       tolerance=0, method="Bottleneck(256, 64, groups=32, base_width=4).conv2: groups, and channels per group")
def _resnext_paths():
    conv = _resnext_block().conv2
    return (conv.groups, conv.out_channels // conv.groups)


@claim(id="resnext-path-weights", text="Each of the 32 paths has 2,192 weights", source=LESSON,
       quote="Each path has 256×4 + 9×16 + 4×256 = 2,192 params.", lecture_value=2_192, unit="weights",
       tolerance=0, method="Bottleneck(256, 64, groups=32, base_width=4): conv weights / conv2.groups; the "
                           "grouped convs hold each path's weights side by side")
def _resnext_path_weights():
    block = _resnext_block()
    return conv_weights(block) / block.conv2.groups


@claim(id="senet-depth", text="SENet, the ILSVRC'17 winner, is 152 layers deep (lesson's ImageNet table)",
       source=LESSON, quote="2017SENet1522.3%", lecture_value=152, unit="weight layers", tolerance=0,
       note="the SE units' two FC layers are a side branch and not counted, as the SENet paper does not; the "
            "winning entry, SENet-154, is an SE-ResNeXt-152 (64x4d) whose 7x7 stem conv is replaced by three 3x3 "
            "convs, hence 154",
       method="se_resnet152: Conv2d + Linear modules on the main path (SE units and projections not counted)")
def _senet_depth():
    return _depth("se_resnet152")


# --- what ResNeXt's paths and SE's attention cost -----------------------------------------

@claim(id="resnext-vs-bottleneck", text="The ResNeXt block costs about what a ResNet bottleneck does (70,144 vs 69,632)",
       source=LESSON, quote="This is similar in cost to a standard ResNet bottleneck (69,632)", lecture_value=1.0,
       lecture_text="similar", unit="ResNeXt block / bottleneck weights", tolerance=0.01,
       note="'similar' read as within 1%",
       method="Bottleneck(256, 64, groups=32, base_width=4) conv weights / Bottleneck(256, 64) conv weights",
       explanation="the two blocks' weights are not within 1% of each other")
def _resnext_vs_bottleneck():
    return _resnext_block_weights() / _resnet_bottleneck_weights()


@claim(id="se-squeeze-width", text="An SE block on 512 channels with r = 16 squeezes them to 512/16 = 32",
       source=LESSON, quote="Excite: FC 512 → 32 (ReLU) → FC 32 → 512 (sigmoid)", lecture_value=32,
       unit="channels", tolerance=0, method="cnnlab.layers.SqueezeExcite(512, reduction=16): fc1.out_channels")
def _se_squeeze_width():
    from ...layers import SqueezeExcite

    return on_meta(lambda: SqueezeExcite(512, reduction=16)).fc1.out_channels


_SE_NEGLIGIBLE = "The cost is negligible: two small FC layers (reduction ratio r=16) per block."


@claim(id="se-cost-macs", text="SE blocks add a negligible cost: SE-ResNet-50's multiply-adds against ResNet-50's",
       source=LESSON, quote=_SE_NEGLIGIBLE, lecture_value=1.0, lecture_text="negligible",
       unit="SE-ResNet-50 / ResNet-50 multiply-adds", tolerance=0.01, note="'negligible' read as within 1%",
       method="se_resnet50 / resnet50: traced MACs at 224x224 (the SE units run on 1x1 pooled maps)",
       explanation="the SE units add more than 1% to ResNet-50's multiply-adds")
def _se_cost_macs():
    return zoo_summary("se_resnet50").total_macs / zoo_summary("resnet50").total_macs


@claim(id="se-cost-params", text="SE blocks add a negligible cost: SE-ResNet-50's parameters against ResNet-50's",
       source=LESSON, quote=_SE_NEGLIGIBLE, lecture_value=1.0, lecture_text="negligible",
       unit="SE-ResNet-50 / ResNet-50 parameters", tolerance=0.01, note="'negligible' read as within 1%",
       method="se_resnet50 / resnet50: all parameters",
       explanation="in parameters the cost is not negligible: the SE units of the 16 blocks add about 10% to "
                   "ResNet-50 (2.5M; the SENet paper says the same), most of it in the last stage's 2048-channel "
                   "blocks; in multiply-adds they add almost nothing")
def _se_cost_params():
    return zoo_summary("se_resnet50").total_params / zoo_summary("resnet50").total_params
