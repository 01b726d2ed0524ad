"""Claims about AlexNet and ZFNet: the 2019 slides' layer-by-layer shapes, weights and totals.

AlexNet's numbers are read off the zoo's ``alexnet_paper`` (the lecture's 227x227 input,
the 2012 paper's two GPU towers; with ``towers=1`` the slides' simplified list, which the
lesson's tables count), ZFNet's off ``zfnet``, the 2025 slides' filter bank off
torchvision's single-tower ``alexnet``.
"""
from __future__ import annotations

from torch import nn

from .core import LESSON, REFERENCES, SLIDES_2019, SLIDES_2025, claim, format_value
from .measure import distinct_kernel_sizes, hwc, layers_of, param_count, weight_layer_counts, zoo_model, zoo_summary


# alexnet_paper is the lecture's layer list: 227x227 input, CONV1 96 11x11/4 pad 0, the
# 2012 paper's two GPU towers (grouped CONV2/4/5), LRN after POOL1/POOL2.

def _alexnet_rows() -> list:
    """alexnet_paper's CONV and POOL layers in order: CONV1, POOL1, CONV2, POOL2, CONV3-5, POOL3."""
    rows = layers_of(zoo_summary("alexnet_paper"), ("Conv2d", "MaxPool2d"))
    if len(rows) != 8:
        raise RuntimeError(f"alexnet_paper has {len(rows)} conv/pool layers, expected the lecture's 8")
    return rows


_ALEXNET_ROW = {"conv1": 0, "pool1": 1, "conv2": 2, "pool2": 3, "conv3": 4, "conv4": 5, "conv5": 6, "pool3": 7}


@claim(id="alexnet-conv1-shape", text="AlexNet CONV1 (96 11x11 filters, stride 4, on 227x227x3) outputs 55x55x96",
       source=SLIDES_2019, quote="Output volume [55x55x96]", lecture_value=(55, 55, 96), unit="HxWxC",
       tolerance=0, method="alexnet_paper, traced output of features.0")
def _alexnet_conv1_shape():
    return hwc(_alexnet_rows()[_ALEXNET_ROW["conv1"]].output_shape)


@claim(id="alexnet-conv1-weights", text="AlexNet CONV1 has (11*11*3)*96 weights, about 35K",
       source=SLIDES_2019, quote="Parameters: (11*11*3)*96 = 35K", lecture_value=35_000, lecture_text="35K",
       unit="weights", tolerance=0.05, note="the slide rounds to thousands; biases not counted",
       method="alexnet_paper: features.0.weight.numel()")
def _alexnet_conv1_weights():
    return zoo_model("alexnet_paper").features[0].weight.numel()


@claim(id="alexnet-pool1-shape", text="AlexNet POOL1 (3x3, stride 2) turns 55x55x96 into 27x27x96",
       source=SLIDES_2019, quote="Output volume: 27x27x96", lecture_value=(27, 27, 96), unit="HxWxC",
       tolerance=0, method="alexnet_paper, traced output of features.2")
def _alexnet_pool1_shape():
    return hwc(_alexnet_rows()[_ALEXNET_ROW["pool1"]].output_shape)


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
            lambda index=index: hwc(_alexnet_rows()[index].output_shape))


_register_alexnet_list()


@claim(id="alexnet-layers", text="AlexNet has 8 weight layers: 5 conv + 3 FC", source=LESSON,
       quote="8 (5 conv + 3 FC)", lecture_value=(5, 3), lecture_text="5 conv + 3 FC", unit="conv, FC layers",
       tolerance=0, method="alexnet_paper: Conv2d and Linear modules")
def _alexnet_layers():
    return weight_layer_counts(zoo_model("alexnet_paper"))


def _alexnet_params() -> int:
    return zoo_summary("alexnet_paper").total_params


def alexnet_simplified_params() -> int:
    """Parameters of the 2019 slides' "Full (simplified)" AlexNet: the 227-px layer list without the two-GPU split."""
    return param_count(zoo_model("alexnet_paper", towers=1))


# Which AlexNet a number means decides its verdict. The CS231n notes' "~60M" is the
# paper's net (two towers: 61.0M); the lesson's tables' "62M" is the slides' simplified
# layer list, where CONV2, CONV4 and CONV5 see all the previous layer's maps (62.4M).
claim(id="alexnet-params-60m", text="AlexNet has about 60M parameters", source=REFERENCES,
      quote="and ~60M parameters", lecture_value=60_000_000, lecture_text="~60M", unit="parameters",
      tolerance=0.05, note="'~60M' is a round figure",
      method="alexnet_paper (2012 two-tower layer list, biases included)",
      explanation="the 2012 two-tower AlexNet does not have about 60M parameters")(_alexnet_params)

claim(id="alexnet-params-62m", text="AlexNet has 62M parameters (lesson's AlexNet vs VGG-16 table)",
      source=LESSON, quote="Parameters62M138M", lecture_value=62_000_000, lecture_text="62M", unit="parameters",
      tolerance=0.5 / 62, note="right if the count rounds to 62M; the paper's two-tower net (grouped CONV2/4/5) "
                               "has 61.0M and torchvision's single-tower variant 61.1M, neither of which does",
      method="alexnet_paper(towers=1): the 2019 slides' simplified 227-px layer list, no two-GPU split "
             "(biases included)",
      explanation="the slides' simplified AlexNet does not have 62M parameters")(alexnet_simplified_params)


@claim(id="alexnet-gpu-split", text="AlexNet's CONV1 output is split across 2 GPUs, 55x55x48 on each",
       source=SLIDES_2019, quote="[55x55x48] x 2", lecture_value=(55, 55, 48, 2), lecture_text="[55x55x48] x 2",
       unit="HxWxC x GPUs", tolerance=0,
       method="alexnet_paper: CONV1's traced output, its maps divided among CONV2's groups (one per GPU)")
def _alexnet_gpu_split():
    height, width, maps = hwc(_alexnet_rows()[_ALEXNET_ROW["conv1"]].output_shape)
    conv2 = [m for m in zoo_model("alexnet_paper").features if isinstance(m, nn.Conv2d)][1]
    towers = conv2.groups  # CONV2 sees only the maps on its own GPU
    return (height, width, maps // towers, towers)


@claim(id="alexnet-filter-sizes", text="AlexNet's filters are 11x11, then 5x5, then 3x3", source=LESSON,
       quote="Filter sizes11×11, 5×5, 3×3All 3×3", lecture_value=(11, 5, 3), lecture_text="11×11, 5×5, 3×3",
       unit="kernel sizes, in order", tolerance=0,
       method="alexnet_paper: the distinct kernel sizes of its Conv2d layers, in network order")
def _alexnet_filter_sizes():
    return distinct_kernel_sizes(zoo_model("alexnet_paper"))


@claim(id="alexnet-conv1-filters-torchvision",
       text="The first-layer filter bank of (torchvision's) AlexNet is 64 x 3 x 11 x 11",
       source=SLIDES_2025, quote="64 x 3 x 11 x 11", lecture_value=(64, 3, 11, 11), unit="filters x C x H x W",
       tolerance=0, method="alexnet (torchvision's single-tower variant): features.0.weight.shape")
def _alexnet_conv1_filters_torchvision():
    return tuple(zoo_model("alexnet").features[0].weight.shape)


# ZFNet (2019 lecture 9): "AlexNet but: CONV1 ... CONV3,4,5 ..."

@claim(id="zfnet-conv1", text="ZFNet's CONV1 is 7x7 with stride 2 (AlexNet's was 11x11 stride 4)",
       source=SLIDES_2019, quote="CONV1: change from (11x11 stride 4) to (7x7 stride 2)", lecture_value=(7, 2),
       lecture_text="7x7 stride 2", unit="kernel, stride", tolerance=0, method="zfnet: features.0")
def _zfnet_conv1():
    conv = zoo_model("zfnet").features[0]
    return (conv.kernel_size[0], conv.stride[0])


@claim(id="zfnet-conv345", text="ZFNet's CONV3,4,5 have 512, 1024, 512 filters (AlexNet: 384, 384, 256)",
       source=SLIDES_2019, quote="CONV3,4,5: instead of 384, 384, 256 filters use 512, 1024, 512",
       lecture_value=(512, 1024, 512), lecture_text="512, 1024, 512", unit="filters", tolerance=0,
       method="zfnet: out_channels of its 3rd-5th Conv2d")
def _zfnet_conv345():
    convs = [m for m in zoo_model("zfnet").features if isinstance(m, nn.Conv2d)]
    return tuple(c.out_channels for c in convs[2:5])


@claim(id="zfnet-layers", text="ZFNet, the ILSVRC'13 winner, has 8 weight layers (lesson's ImageNet table)",
       source=LESSON, quote="2013ZFNet811.7%", lecture_value=8, unit="weight layers", tolerance=0,
       method="zfnet: Conv2d + Linear modules")
def _zfnet_layers():
    return sum(weight_layer_counts(zoo_model("zfnet")))
