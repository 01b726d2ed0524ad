"""Claims about LeNet-5: the 2019 slides' review of its filter and subsampling sizes."""
from __future__ import annotations

from torch import nn

from .core import SLIDES_2019, claim
from .measure import zoo_model


def _unique(pairs: list[tuple[int, int]]) -> tuple[int, ...]:
    # One (kernel, stride) pair when every layer shares it, all pairs otherwise.
    return pairs[0] if len(set(pairs)) == 1 else tuple(v for pair in pairs for v in pair)


@claim(id="lenet5-conv", text="LeNet-5's conv filters are 5x5, applied at stride 1", source=SLIDES_2019,
       quote="Conv filters were 5x5, applied at stride 1", lecture_value=(5, 1), lecture_text="5x5 stride 1",
       unit="kernel, stride", tolerance=0, method="lenet5: kernel and stride of every Conv2d")
def _lenet5_conv():
    return _unique([(m.kernel_size[0], m.stride[0]) for m in zoo_model("lenet5").modules() if isinstance(m, nn.Conv2d)])


@claim(id="lenet5-pool", text="LeNet-5's subsampling layers are 2x2, applied at stride 2", source=SLIDES_2019,
       quote="Subsampling (Pooling) layers were 2x2 applied at stride 2", lecture_value=(2, 2),
       lecture_text="2x2 stride 2", unit="kernel, stride", tolerance=0,
       method="lenet5: kernel and stride of every pooling layer")
def _lenet5_pool():
    pools = [m for m in zoo_model("lenet5").modules() if isinstance(m, (nn.AvgPool2d, nn.MaxPool2d))]
    return _unique([(_first(m.kernel_size), _first(m.stride)) for m in pools])


def _first(value) -> int:
    # Pooling layers store a kernel or stride as an int or as an (h, w) pair.
    return int(value if isinstance(value, int) else value[0])
