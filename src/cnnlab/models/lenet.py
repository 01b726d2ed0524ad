"""LeNet-5 (LeCun et al. 1998): CONV-POOL-CONV-POOL-FC-FC, the lectures' first CNN."""
from __future__ import annotations

import torch
from torch import nn

from ..layers import get_activation
from ..registry import Paper, register_model
from ._base import ClassifierModel

LENET_PAPER = Paper(
    title="Gradient-Based Learning Applied to Document Recognition",
    authors="Y. LeCun, L. Bottou, Y. Bengio, P. Haffner",
    venue="Proceedings of the IEEE",
    year=1998,
)


class LeNet5(ClassifierModel):
    """LeNet-5 on 32x32 inputs: 5x5 convolutions (stride 1) and 2x2 subsampling (stride 2).

    C1: 6@28x28, S2: 6@14x14, C3: 16@10x10, S4: 16@5x5, C5: 120 (a 5x5 conv on a 5x5 map,
    i.e. fully connected), F6: 84, output. As in the paper the activations are tanh and
    the subsampling layers average; C3 is fully connected to S2 (the paper's sparse
    connection table was a 1998 compute trick) and the output layer is a plain linear
    layer instead of Euclidean RBF units.
    """

    classifier_name = "fc3"

    def __init__(self, num_classes: int = 10, in_chans: int = 1, act: str = "tanh", pool: str = "avg"):
        super().__init__()
        if pool not in ("avg", "max"):
            from ..errors import CnnlabError

            raise CnnlabError(f"LeNet-5 pool must be 'avg' or 'max', got {pool!r}")
        pool_layer = nn.AvgPool2d if pool == "avg" else nn.MaxPool2d
        self.num_classes = num_classes
        self.conv1 = nn.Conv2d(in_chans, 6, kernel_size=5)
        self.act1 = get_activation(act)
        self.pool1 = pool_layer(kernel_size=2, stride=2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.act2 = get_activation(act)
        self.pool2 = pool_layer(kernel_size=2, stride=2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.act3 = get_activation(act)
        self.fc2 = nn.Linear(120, 84)
        self.act4 = get_activation(act)
        self.fc3 = nn.Linear(84, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.act1(self.conv1(x)))
        return self.pool2(self.act2(self.conv2(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(x, 1)
        x = self.act4(self.fc2(self.act3(self.fc1(x))))
        return x if pre_logits else self.fc3(x)


@register_model(
    family="lenet",
    paper=LENET_PAPER,
    input_size=(1, 32, 32),
    num_classes=10,
    dataset="mnist",
    weight_layers=5,
    reference_top1=99.05,
    reference_note="MNIST test error 0.95% without distortions (paper, section III.C)",
)
def lenet5(num_classes: int = 10, in_chans: int = 1, **kwargs) -> LeNet5:
    """LeNet-5 at the paper's configuration (tanh, average subsampling, 32x32 input)."""
    return LeNet5(num_classes=num_classes, in_chans=in_chans, **kwargs)
