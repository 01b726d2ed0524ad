"""AlexNet (Krizhevsky et al. 2012) in two forms, and ZFNet (Zeiler & Fergus 2014)."""
from __future__ import annotations

from torch import nn

from ..errors import CnnlabError
from ..layers import get_norm
from ..registry import Paper, register_model
from ._base import FCHeadModel, fc_head

ALEXNET_PAPER = Paper(
    title="ImageNet Classification with Deep Convolutional Neural Networks",
    authors="A. Krizhevsky, I. Sutskever, G. E. Hinton",
    venue="NeurIPS",
    year=2012,
)
ONE_WEIRD_TRICK_PAPER = Paper(
    title="One weird trick for parallelizing convolutional neural networks",
    authors="A. Krizhevsky",
    venue="arXiv:1404.5997",
    year=2014,
)
ZFNET_PAPER = Paper(
    title="Visualizing and Understanding Convolutional Networks",
    authors="M. D. Zeiler, R. Fergus",
    venue="ECCV",
    year=2014,
)


class AlexNet(FCHeadModel):
    """AlexNet as a sequence of ``features``, ``avgpool`` and ``classifier`` (FC6-FC8).

    Used for torchvision's single-tower variant (``alexnet``), the lecture's two-tower
    layer list (``alexnet_paper``) and ZFNet, which differ only in their ``features``.
    ``avgpool`` is adaptive to 6x6 so that other input sizes still reach FC6.
    """

    classifier_name = "classifier.6"

    def __init__(self, features: nn.Sequential, feature_channels: int, num_classes: int = 1000,
                 dropout: float = 0.5, dropout_first: bool = True):
        super().__init__()
        self.num_classes = num_classes
        self.features = features
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = fc_head(feature_channels * 6 * 6, num_classes, dropout, dropout_first)


def _torchvision_features(in_chans: int) -> nn.Sequential:
    # Krizhevsky's 2014 single-GPU variant: 64-192-384-256-256 filters, no LRN.
    return nn.Sequential(
        nn.Conv2d(in_chans, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
    )


def _paper_features(in_chans: int, conv1_kernel: int, conv1_stride: int, conv1_padding: int,
                    conv2_stride: int, conv2_padding: int, widths: tuple[int, int, int],
                    towers: int, ceil_mode: bool) -> nn.Sequential:
    """CONV1-POOL1-NORM1-CONV2-POOL2-NORM2-CONV3-CONV4-CONV5-POOL3, the lecture's layer list.

    ``towers=2`` reproduces the two-GPU split of the 2012 paper: CONV2, CONV4 and CONV5
    see only the half of the previous layer's maps that lived on their own GPU, which a
    grouped convolution with ``groups=2`` computes exactly.
    """
    conv3, conv4, conv5 = widths
    return nn.Sequential(
        nn.Conv2d(in_chans, 96, kernel_size=conv1_kernel, stride=conv1_stride, padding=conv1_padding),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil_mode),
        get_norm("lrn", 96),
        nn.Conv2d(96, 256, kernel_size=5, stride=conv2_stride, padding=conv2_padding, groups=towers),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil_mode),
        get_norm("lrn", 256),
        nn.Conv2d(256, conv3, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(conv3, conv4, kernel_size=3, padding=1, groups=towers), nn.ReLU(inplace=True),
        nn.Conv2d(conv4, conv5, kernel_size=3, padding=1, groups=towers), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=ceil_mode),
    )


@register_model(
    family="alexnet",
    paper=ONE_WEIRD_TRICK_PAPER,
    weight_layers=8,
    reference_top1=59.3,
    reference_top5=81.8,
    reference_note="ILSVRC-2012 val, one CNN, from the 2012 AlexNet paper (Table 2: 40.7%/18.2% error); "
    "the 2014 single-tower paper reports no directly comparable single-model number",
    torchvision_name="alexnet",
)
def alexnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """torchvision's AlexNet: the single-tower 64-192-384-256-256 variant, weight-compatible."""
    return AlexNet(_torchvision_features(in_chans), 256, num_classes, dropout, dropout_first=True)


@register_model(
    family="alexnet",
    paper=ALEXNET_PAPER,
    input_size=(3, 227, 227),
    weight_layers=8,
    reference_top1=59.3,
    reference_top5=81.8,
    reference_note="ILSVRC-2012 val, one CNN (paper Table 2: 40.7% top-1, 18.2% top-5 error)",
)
def alexnet_paper(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, towers: int = 2) -> AlexNet:
    """AlexNet as the lecture lists it: 227x227 input, CONV1 96 11x11/4 pad 0 -> 55x55x96.

    LRN (n=5, alpha=1e-4, beta=0.75, k=2) follows POOL1 and POOL2 in the lecture's order
    (the paper normalises before pooling; the two orders give the same shapes and
    parameters). CONV2/4/5 are split in two towers as on the paper's two GPUs; dropout
    0.5 follows FC6 and FC7. ``towers=1`` gives the 2019 slides' "Full (simplified)"
    list, where every conv sees all the previous layer's maps (62.4M parameters, the
    figure the lesson's tables quote, against the two-tower net's 61.0M).
    """
    if towers not in (1, 2):
        raise CnnlabError(f"alexnet_paper towers must be 1 (the slides' simplified list) or 2 (the paper's "
                          f"two GPUs), got {towers!r}")
    features = _paper_features(in_chans, conv1_kernel=11, conv1_stride=4, conv1_padding=0,
                               conv2_stride=1, conv2_padding=2, widths=(384, 384, 256), towers=towers,
                               ceil_mode=False)
    return AlexNet(features, 256, num_classes, dropout, dropout_first=False)


@register_model(
    family="alexnet",
    paper=ZFNET_PAPER,
    weight_layers=8,
    reference_top1=62.5,
    reference_top5=84.0,
    reference_note="ILSVRC-2012 val, one convnet with layers 3,4,5 of 512/1024/512 maps "
    "(paper Table 2: 37.5% top-1, 16.0% top-5 error)",
)
def zfnet(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5) -> AlexNet:
    """ZFNet: AlexNet with CONV1 7x7 stride 2 (not 11x11/4), CONV2 stride 2, CONV3-5 512/1024/512.

    224x224 input; 110x110x96 after CONV1, then 55 -> 26 -> 13 -> 6 as in the paper's
    Figure 3 (its pools round up, hence ``ceil_mode``). One tower: the model was trained
    on a single GPU.
    """
    features = _paper_features(in_chans, conv1_kernel=7, conv1_stride=2, conv1_padding=1,
                               conv2_stride=2, conv2_padding=0, widths=(512, 1024, 512), towers=1,
                               ceil_mode=True)
    return AlexNet(features, 512, num_classes, dropout, dropout_first=False)
