"""Network in Network (Lin, Chen & Yan, ICLR 2014): mlpconv layers and global average pooling.

Each "mlpconv" layer slides a small MLP over the image: a spatial convolution followed
by two 1x1 convolutions (the paper's "cascaded cross channel parametric pooling",
hence the ``cccp`` names), each with a ReLU. The last mlpconv outputs one feature map
per class and global average pooling turns each map into a logit, with no fully
connected layer at all. Both ideas (1x1 convs and the GAP head) were taken up by
GoogLeNet, as the lectures point out.
"""
from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import get_activation
from ..layers.weight_init import init_he_fan_out
from ..registry import Paper, register_model
from ._base import ClassifierModel

NIN_PAPER = Paper(
    title="Network In Network",
    authors="M. Lin, Q. Chen, S. Yan",
    venue="ICLR",
    year=2014,
)


class MlpConvConfig(NamedTuple):
    """One mlpconv layer: spatial conv geometry and the widths of its three convolutions.

    ``widths`` is ``(spatial conv, cccp1, cccp2)``; the last layer of a network gives
    ``None`` for cccp2, whose width is the number of classes.
    """

    kernel_size: int
    stride: int
    padding: int
    widths: tuple[int, int, int | None]


class MlpConv(nn.Module):
    """The paper's mlpconv layer: a KxK conv and two 1x1 convs, each followed by an activation.

    Equivalent to a 3-layer MLP (shared weights) applied to every KxK patch. Children
    ``conv``, ``act1``, ``cccp1``, ``act2``, ``cccp2``, ``act3``. :meth:`forward_hidden`
    stops before ``cccp2``, so the network can treat the last ``cccp2`` as its classifier.
    """

    def __init__(self, in_channels: int, widths: Sequence[int], kernel_size: int, stride: int = 1,
                 padding: int = 0, act: str = "relu", final_act: bool = True):
        super().__init__()
        spatial, hidden, out = widths
        self.conv = nn.Conv2d(in_channels, spatial, kernel_size, stride=stride, padding=padding)
        self.act1 = get_activation(act, inplace=True)
        self.cccp1 = nn.Conv2d(spatial, hidden, kernel_size=1)
        self.act2 = get_activation(act, inplace=True)
        self.cccp2 = nn.Conv2d(hidden, out, kernel_size=1)
        self.act3 = get_activation(act if final_act else None, inplace=True)
        self.out_channels = out

    def forward_hidden(self, x: torch.Tensor) -> torch.Tensor:
        """The spatial conv and the first 1x1 conv (the MLP's hidden layers)."""
        return self.act2(self.cccp1(self.act1(self.conv(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act3(self.cccp2(self.forward_hidden(x)))


class NetworkInNetwork(ClassifierModel):
    """Stacked mlpconv layers with pooling + dropout between them and a global-average-pool head.

    Children ``block1`` .. ``blockN`` (:class:`MlpConv`), ``pool1``/``drop1`` ..
    ``pool{N-1}``/``drop{N-1}`` between them (3x3 stride-2 pools, ``nn.Identity`` where
    the dropout is 0) and ``global_pool``. The classifier is the last 1x1 conv,
    ``blockN.cccp2``, with ``num_classes`` output maps; each logit is the spatial mean of
    its map. Pools round up (``ceil_mode``) as Caffe, in which the authors' models are
    defined, does.

    ``final_act`` keeps the ReLU after the last 1x1 conv, as in the paper (every mlpconv
    layer ends in a ReLU) and the authors' released models; logits are then
    non-negative. ``forward_head(x, pre_logits=True)`` returns the globally pooled
    features of the last hidden layer (what is left after ``reset_classifier(0)``).
    """

    def __init__(
        self,
        blocks: Sequence[MlpConvConfig],
        pools: Sequence[str],
        dropouts: Sequence[float],
        num_classes: int = 1000,
        in_chans: int = 3,
        act: str = "relu",
        final_act: bool = True,
    ):
        super().__init__()
        self._check_sizes(num_classes, in_chans)
        if not blocks:
            raise CnnlabError("NetworkInNetwork needs at least one mlpconv block")
        if len(pools) != len(blocks) - 1 or len(dropouts) != len(blocks) - 1:
            raise CnnlabError(f"NetworkInNetwork: {len(blocks)} blocks need {len(blocks) - 1} pools and dropouts "
                              f"(one between each pair), got {len(pools)} and {len(dropouts)}")
        for p in dropouts:
            if not 0.0 <= p < 1.0:
                raise CnnlabError(f"NetworkInNetwork: dropout must be in [0, 1), got {p}")
        for kind in pools:
            if kind not in ("max", "avg"):
                raise CnnlabError(f"NetworkInNetwork: pool must be 'max' or 'avg', got {kind!r}")
        self.num_classes = num_classes
        self.num_blocks = len(blocks)
        self.classifier_name = f"block{self.num_blocks}.cccp2"

        channels = in_chans
        for index, cfg in enumerate(blocks, start=1):
            last = index == self.num_blocks
            widths = tuple(cfg.widths)
            if len(widths) != 3 or (widths[2] is None) != last:
                raise CnnlabError(f"NetworkInNetwork: block {index} widths must be (conv, cccp1, cccp2)"
                                  f"{' with cccp2=None (the class maps)' if last else ''}, got {widths}")
            if last:
                widths = (widths[0], widths[1], num_classes)
            if any(w < 1 for w in widths):
                raise CnnlabError(f"NetworkInNetwork: block {index} widths must be positive, got {widths}")
            self.add_module(f"block{index}", MlpConv(channels, widths, cfg.kernel_size, cfg.stride,
                                                     cfg.padding, act=act, final_act=final_act or not last))
            channels = widths[2]
            if not last:
                pool_cls = nn.MaxPool2d if pools[index - 1] == "max" else nn.AvgPool2d
                self.add_module(f"pool{index}", pool_cls(kernel_size=3, stride=2, ceil_mode=True))
                p = dropouts[index - 1]
                self.add_module(f"drop{index}", nn.Dropout(p) if p > 0 else nn.Identity())
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        # He initialisation (fan_out): the paper (pre-BatchNorm) used hand-tuned Gaussians
        # per layer; He init makes the 9-12 ReLU layers trainable without that tuning.
        init_he_fan_out(self)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image -> the hidden maps of the last mlpconv, just before its class-map 1x1 conv."""
        for index in range(1, self.num_blocks):
            x = getattr(self, f"block{index}")(x)
            x = getattr(self, f"drop{index}")(getattr(self, f"pool{index}")(x))
        return getattr(self, f"block{self.num_blocks}").forward_hidden(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        if not pre_logits:
            last = getattr(self, f"block{self.num_blocks}")
            x = last.act3(last.cccp2(x))
        return torch.flatten(self.global_pool(x), 1)


# The Caffe Model Zoo NIN ImageNet model by the paper's first author (gist
# mavenlin/d802a5849de39225bcc6); the paper itself reports no ImageNet result.
# 224x224 -> 54 -> pool 27 -> pool 13 -> pool 6 -> global pool.
NIN_IMAGENET_BLOCKS = (
    MlpConvConfig(11, 4, 0, (96, 96, 96)),
    MlpConvConfig(5, 1, 2, (256, 256, 256)),
    MlpConvConfig(3, 1, 1, (384, 384, 384)),
    MlpConvConfig(3, 1, 1, (1024, 1024, None)),
)

# The paper's CIFAR-10 experiment (widths from the authors' released definition, gist
# mavenlin/e56253735ef32c3c296d): 32x32 -> pool 16 -> pool 8 -> global pool.
NIN_CIFAR10_BLOCKS = (
    MlpConvConfig(5, 1, 2, (192, 160, 96)),
    MlpConvConfig(5, 1, 2, (192, 192, 192)),
    MlpConvConfig(3, 1, 1, (192, 192, None)),
)


@register_model(
    family="nin",
    paper=NIN_PAPER,
    weight_layers=12,
    reference_top1=59.36,
    reference_note=("Not from the paper, which has no ImageNet experiment: ILSVRC-2012 val top-1 59.36% "
                    "reported for the authors' NIN ImageNet model in the Caffe Model Zoo "
                    "(gist mavenlin/d802a5849de39225bcc6), single 224 crop."),
)
def nin(num_classes: int = 1000, in_chans: int = 3, dropout: float = 0.5, **kwargs) -> NetworkInNetwork:
    """NIN for ImageNet, the Caffe Model Zoo configuration (7.6M parameters).

    mlpconv 11x11/4 96-96-96, max-pool; 5x5 256-256-256, max-pool; 3x3 384-384-384,
    max-pool, dropout; 3x3 1024-1024-classes; global average pool. Dropout only before
    the last block, as in that model.
    """
    return NetworkInNetwork(NIN_IMAGENET_BLOCKS, pools=("max", "max", "max"), dropouts=(0.0, 0.0, dropout),
                            num_classes=num_classes, in_chans=in_chans, **kwargs)


@register_model(
    family="nin",
    paper=NIN_PAPER,
    input_size=(3, 32, 32),
    num_classes=10,
    dataset="cifar10",
    weight_layers=9,
    reference_top1=round(100 - 10.41, 2),
    reference_note=("CIFAR-10 test error 10.41% without data augmentation (paper Table 1, NIN + Dropout); "
                    "8.81% with translation and horizontal flipping."),
)
def nin_cifar10(num_classes: int = 10, in_chans: int = 3, dropout: float = 0.5, **kwargs) -> NetworkInNetwork:
    """NIN for CIFAR-10 as in the paper: three mlpconv layers, dropout 0.5 after the first two (0.97M parameters).

    mlpconv 5x5 192-160-96, 3x3/2 max-pool, dropout; 5x5 192-192-192, 3x3/2 pool, dropout;
    3x3 192-192-10; global average pool. The paper's text says max pooling; the
    authors' released Caffe definition (which reproduces the paper's 89.6%) averages in
    the second pool, and so does this model.
    """
    return NetworkInNetwork(NIN_CIFAR10_BLOCKS, pools=("max", "avg"), dropouts=(dropout, dropout),
                            num_classes=num_classes, in_chans=in_chans, **kwargs)
