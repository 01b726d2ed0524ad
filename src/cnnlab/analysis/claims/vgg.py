"""Claims about VGG-16: the 2019 slides' memory and parameter table, its totals, and why 3x3.

The table's rows are read off the traced ``vgg16`` (output values and weight tensors per
conv / pool / FC layer); "why 3x3" compares three stacked 3x3 convs with one 7x7 conv,
by receptive field (closed form and traced) and by weight count.
"""
from __future__ import annotations

import math
from functools import lru_cache

from torch import nn

from ..receptive_field import receptive_field, stacked_receptive_field
from .core import LESSON, PRACTICE, SLIDES_2019, claim, claims_of_one_number
from .measure import (conv_weights, distinct_kernel_sizes, first, layers_of, on_meta, param_count,
                      weight_layer_counts, zoo_model, zoo_summary)


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
    model, summary = zoo_model("vgg16"), zoo_summary("vgg16")
    modules = dict(model.named_modules())
    layers = layers_of(summary, ("Conv2d", "MaxPool2d", "Linear"))
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
    summary = zoo_summary("vgg16")
    bytes_per_value = summary.input_bytes // summary.input_values
    return _vgg16_total_memory() * bytes_per_value / 1e6


def _vgg16_params() -> int:
    return zoo_summary("vgg16").total_params


claims_of_one_number(_vgg16_params, unit="parameters", statements=[
    dict(id="vgg16-total-params", text="VGG-16 has 138M parameters in total", source=SLIDES_2019,
         quote="TOTAL params: 138M parameters", lecture_value=138_000_000, lecture_text="138M", tolerance=0.005,
         note="138M is rounded to the nearest million",
         method="vgg16: all parameters (biases included; without them 138.34M)"),
    dict(id="vgg16-params-140m", text="VGG-16 has roughly 140 million parameters", source=PRACTICE,
         quote="roughly 140 million parameters", lecture_value=140_000_000, lecture_text="~140M", tolerance=0.05,
         note="'roughly 140 million' is a round figure", method="vgg16: all parameters"),
])


@claim(id="vgg16-fc-params", text="VGG-16's 3 FC layers hold ~124M of its 138M parameters", source=LESSON,
       quote="The 3 FC layers alone account for ~124M of VGG-16", lecture_value=124_000_000,
       lecture_text="~124M", unit="parameters", tolerance=0.005, note="rounded to the nearest million",
       method="vgg16: parameters of its Linear layers (biases included)")
def _vgg16_fc_params():
    return sum(param_count(m) for m in zoo_model("vgg16").modules() if isinstance(m, nn.Linear))


@claim(id="vgg16-macs", text="VGG-16 costs 15.5 billion FLOPs (multiply-adds) per forward pass", source=LESSON,
       quote="138 million parameters and 15.5 billion FLOPs", lecture_value=15_500_000_000,
       lecture_text="15.5B", unit="multiply-adds", tolerance=0.005,
       note="the lesson's 'FLOPs' count one multiply-add each; 15.5B is rounded to 0.1B",
       method="vgg16: traced MACs of all convs and FC layers at 224x224")
def _vgg16_macs():
    return zoo_summary("vgg16").total_macs


@claim(id="vgg16-weights-mib", text="VGG-16 needs ~528 MB just to store its weights", source=LESSON,
       quote="VGG-16 requires ~528 MB just to store the model weights", lecture_value=528,
       lecture_text="~528 MB", unit="MiB (2^20 bytes, float32)", tolerance=0.005,
       note="528 is in MiB (2^20 bytes); in 10^6-byte MB the same weights are 553 MB",
       method="vgg16: parameter bytes at float32 / 2^20",
       explanation="the float32 size of VGG-16's parameters is not 528 MiB")
def _vgg16_weights_mib():
    return zoo_summary("vgg16").param_bytes / 2**20


@claim(id="vgg-depths", text="VGG nets are 16 - 19 layers deep (VGG-16, VGG-19)", source=SLIDES_2019,
       quote="-> 16 - 19 layers (VGG16Net)", lecture_value=(16, 19), lecture_text="16 - 19", unit="weight layers",
       tolerance=0, method="vgg16 and vgg19: number of Conv2d + Linear modules")
def _vgg_depths():
    return tuple(sum(weight_layer_counts(zoo_model(name))) for name in ("vgg16", "vgg19"))


@claim(id="vgg16-layers", text="VGG-16 has 16 weight layers: 13 conv + 3 FC", source=LESSON,
       quote="16 (13 conv + 3 FC)", lecture_value=(13, 3), lecture_text="13 conv + 3 FC", unit="conv, FC layers",
       tolerance=0, method="vgg16: Conv2d and Linear modules")
def _vgg16_layers():
    return weight_layer_counts(zoo_model("vgg16"))


def _unique(values: list[tuple[int, ...]]) -> tuple[int, ...]:
    # One tuple when every layer shares it; every layer's values otherwise, so a stray layer shows.
    return values[0] if len(set(values)) == 1 else tuple(v for value in values for v in value)


@claim(id="vgg16-conv-geometry", text="Every VGG-16 conv is 3x3 with stride 1 and pad 1", source=SLIDES_2019,
       quote="Only 3x3 CONV stride 1, pad 1", lecture_value=(3, 1, 1), lecture_text="3x3, stride 1, pad 1",
       unit="kernel, stride, pad", tolerance=0, method="vgg16: kernel, stride and padding of all 13 Conv2d layers")
def _vgg16_conv_geometry():
    return _unique([(first(m.kernel_size), first(m.stride), first(m.padding))
                    for m in zoo_model("vgg16").modules() if isinstance(m, nn.Conv2d)])


@claim(id="vgg16-pool-geometry", text="Every VGG-16 max pool is 2x2 with stride 2", source=SLIDES_2019,
       quote="and 2x2 MAX POOL stride 2", lecture_value=(2, 2), lecture_text="2x2, stride 2", unit="kernel, stride",
       tolerance=0, method="vgg16: kernel and stride of all 5 MaxPool2d layers")
def _vgg16_pool_geometry():
    return _unique([(first(m.kernel_size), first(m.stride))
                    for m in zoo_model("vgg16").modules() if isinstance(m, nn.MaxPool2d)])


@claim(id="vgg16-filter-sizes", text="VGG-16's filters are all 3x3 (lesson's AlexNet vs VGG-16 table)",
       source=LESSON, quote="Filter sizes11×11, 5×5, 3×3All 3×3", lecture_value=(3,), lecture_text="All 3×3",
       unit="kernel sizes, in order", tolerance=0, method="vgg16: the distinct kernel sizes of its Conv2d layers")
def _vgg16_filter_sizes():
    return distinct_kernel_sizes(zoo_model("vgg16"))


# "Most memory is in early CONV, most params are in late FC": shares of the table's own
# columns. "Most" is read as more than half, i.e. a share between 0.5 and 1 (0.75 +- 1/3).
_EARLY_ROWS = ("conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2")
_FC_ROWS = ("fc6", "fc7", "fc8")


def _share(rows: tuple[str, ...], column: int) -> float:
    table = _vgg16_rows()  # every row of the table, the input and all 21 layers
    return sum(table[row][column] for row in rows) / sum(values[column] for values in table.values())


@claim(id="vgg16-memory-early-conv", text="Most of VGG-16's forward memory is in the early convs (blocks 1-2)",
       source=SLIDES_2019, quote="Most memory is in early CONV", lecture_value=0.75, lecture_text="most (> 1/2)",
       unit="share of the table's memory", tolerance=1 / 3,
       note="'most' read as more than half: any share from 0.5 to 1 agrees",
       method="vgg16: values output by conv1_1 .. pool2 (the first two of five blocks) / the table's 22 rows",
       explanation="the first two blocks do not hold most of the forward memory")
def _vgg16_memory_early_conv():
    return _share(_EARLY_ROWS, 0)


@claim(id="vgg16-params-late-fc", text="Most of VGG-16's parameters are in the late FC layers", source=SLIDES_2019,
       quote="Most params are in late FC", lecture_value=0.75, lecture_text="most (> 1/2)",
       unit="share of the weights", tolerance=1 / 3,
       note="'most' read as more than half: any share from 0.5 to 1 agrees",
       method="vgg16: weights of fc6, fc7, fc8 / weights of all 16 layers (biases not counted, as the table)",
       explanation="the FC layers do not hold most of the weights")
def _vgg16_params_late_fc():
    return _share(_FC_ROWS, 1)


# --- why 3x3: three stacked 3x3 convs vs one 7x7 ---------------------------------------

def _three_3x3(channels: int, count: int = 3) -> nn.Sequential:
    return nn.Sequential(*[nn.Conv2d(channels, channels, 3, padding=1, bias=False) for _ in range(count)])


def _rf_three_3x3_traced() -> int:
    fields = receptive_field(on_meta(lambda: _three_3x3(8)), (8, 32, 32))
    return fields[-1].size


def _register_three_3x3_receptive_field() -> None:
    # The slides' statement, checked twice: by the closed form and on a traced stack of convs.
    for claim_id, text, method, compute in [
        ("rf-three-3x3", "Three stacked 3x3 stride-1 convs have the receptive field of one 7x7 conv",
         "stacked_receptive_field([3, 3, 3]) (closed form)", lambda: stacked_receptive_field([3, 3, 3])),
        ("rf-three-3x3-traced", "Three stacked 3x3 stride-1 convs see a 7x7 input region (traced)",
         "receptive_field() of a traced nn.Sequential of three 3x3 pad-1 convs on 8x32x32", _rf_three_3x3_traced),
    ]:
        claim(id=claim_id, text=text, source=SLIDES_2019,
              quote="Stack of three 3x3 conv (stride 1) layers has same effective receptive field as one 7x7 "
                    "conv layer",
              lecture_value=7, lecture_text="7x7", unit="pixels (side)", tolerance=0, method=method)(compute)


_register_three_3x3_receptive_field()


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
    return conv_weights(on_meta(lambda: _three_3x3(channels))) / channels**2


@claim(id="one-7x7-weights", text="One 7x7 conv with C channels in and out has 49C^2 weights",
       source=LESSON, quote="72C2 = 49C2", lecture_value=49, lecture_text="49C^2", unit="C^2 weights",
       tolerance=0, method="conv weights of Conv2d(64, 64, 7) / 64^2")
def _one_7x7_weights():
    channels = 64
    return conv_weights(on_meta(lambda: nn.Conv2d(channels, channels, 7, padding=3, bias=False))) / channels**2
