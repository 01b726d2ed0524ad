"""Claims about ResNet and its family: block weights, the lesson's parameter table, depths, SE blocks.

Block counts come from cnnlab's residual layers built on the meta device (convolution
weights only, as the lesson counts them), whole-net counts and depths from the zoo's
``resnet*`` models.
"""
from __future__ import annotations

from .core import LESSON, SLIDES_2019, claim
from .measure import conv_weights, on_meta, weight_layer_counts, zoo_model, zoo_summary


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
