"""ConvNeXt (Liu et al., "A ConvNet for the 2020s", CVPR 2022).

The paper's question: how much of a vision Transformer's edge comes from attention, and
how much from the design choices around it? Starting from ResNet-50 it applies those
choices one at a time: Swin's stage ratio (3, 3, 9, 3), a "patchify" stem (a 4x4
stride-4 conv, like ViT's patch embedding), depthwise convolutions with 7x7 kernels,
inverted bottlenecks, GELU, fewer activations and norms, LayerNorm instead of BatchNorm
and separate downsampling layers. The result is a pure ConvNet that matches Swin
Transformers. ``ConvNeXt`` has torchvision's module names, so its state_dicts load
into ``torchvision.models.convnext_*`` and back.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from ..errors import CnnlabError
from ..layers import ConvNormActSequential, LayerNorm2d
from ..layers.convnext_block import ConvNeXtBlock
from ..registry import Paper, register_model
from ._base import ClassifierModel

CONVNEXT_PAPER = Paper(
    title="A ConvNet for the 2020s",
    authors="Z. Liu, H. Mao, C.-Y. Wu, C. Feichtenhofer, T. Darrell, S. Xie",
    venue="CVPR",
    year=2022,
)

# Blocks per stage and stage widths (paper, section 3 "Results"); the variants differ
# only in these. XL exists only in the paper (ImageNet-22K pre-training), not in torchvision.
_CONFIGS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "tiny": ((3, 3, 9, 3), (96, 192, 384, 768)),
    "small": ((3, 3, 27, 3), (96, 192, 384, 768)),
    "base": ((3, 3, 27, 3), (128, 256, 512, 1024)),
    "large": ((3, 3, 27, 3), (192, 384, 768, 1536)),
    "xlarge": ((3, 3, 27, 3), (256, 512, 1024, 2048)),
}


def linear_drop_path_rates(drop_path_rate: float, num_blocks: int) -> list[float]:
    """Stochastic-depth rates rising linearly from 0 (first block) to ``drop_path_rate`` (last).

    ConvNeXt's (and torchvision's) schedule, ``linspace(0, rate, L)``: unlike the
    ResNet helper's ``l / L`` rule the first block is never dropped and the last one is
    dropped at exactly ``drop_path_rate``.
    """
    if not 0.0 <= drop_path_rate < 1.0:
        raise CnnlabError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    if num_blocks == 1:
        return [0.0]
    return [drop_path_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def _check_config(depths: Sequence[int], dims: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    depths, dims = tuple(depths), tuple(dims)
    if not depths or len(depths) != len(dims):
        raise CnnlabError(f"depths and dims must be non-empty and of equal length (one entry per stage), "
                          f"got depths={depths} and dims={dims}")
    if any(not isinstance(d, int) or d < 1 for d in depths):
        raise CnnlabError(f"depths must be positive block counts, one per stage, got {depths}")
    if any(not isinstance(c, int) or c < 1 for c in dims):
        raise CnnlabError(f"dims must be positive channel counts, one per stage, got {dims}")
    return depths, dims


def _init_weights(model: nn.Module) -> None:
    # The paper's code (and torchvision): truncated normal std 0.02 for every conv and
    # linear layer, zero biases, the ViT/Swin initialisation the training recipe assumes.
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(module.weight, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)


class ConvNeXt(ClassifierModel):
    """ConvNeXt-T/S/B/L/XL with torchvision's module names.

    ``features`` is an ``nn.Sequential``: ``0`` the patchify stem (4x4/4 conv with bias,
    then LayerNorm2d; children ``0``/``1`` as in torchvision's ``Conv2dNormActivation``),
    then for each stage its blocks (:class:`~cnnlab.layers.convnext_block.ConvNeXtBlock`)
    at indices 1, 3, 5, 7, separated by downsampling layers at 2, 4, 6 (LayerNorm2d, then
    a 2x2 stride-2 conv that doubles the width: the paper found a norm before each
    resolution change necessary for stable training). ``avgpool`` pools globally and
    ``classifier`` is LayerNorm2d, Flatten, Linear.

    ``drop_path_rate`` is the stochastic-depth rate of the last block; the rates rise
    linearly from 0 over all blocks. ``layer_scale`` is the initial per-channel scale of
    every residual branch (1e-6; ``None`` disables it).
    """

    classifier_name = "classifier.2"

    def __init__(
        self,
        depths: Sequence[int],
        dims: Sequence[int],
        num_classes: int = 1000,
        in_chans: int = 3,
        drop_path_rate: float = 0.0,
        layer_scale: float | None = 1e-6,
    ):
        super().__init__()
        depths, dims = _check_config(depths, dims)
        rates = iter(linear_drop_path_rates(drop_path_rate, sum(depths)))
        self.num_classes = num_classes
        self.num_features = dims[-1]

        # Non-overlapping 4x4 patches, as ViT's patch embedding (Swin uses 4x4 too).
        layers: list[nn.Module] = [ConvNormActSequential(in_chans, dims[0], kernel_size=4, stride=4, padding=0,
                                                         norm="layernorm", act=None, bias=True, eps=1e-6)]
        for index, (depth, dim) in enumerate(zip(depths, dims)):
            if index > 0:
                layers.append(nn.Sequential(LayerNorm2d(dims[index - 1], eps=1e-6),
                                            nn.Conv2d(dims[index - 1], dim, kernel_size=2, stride=2)))
            layers.append(nn.Sequential(*[ConvNeXtBlock(dim, layer_scale=layer_scale, drop_path=next(rates))
                                          for _ in range(depth)]))
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(LayerNorm2d(dims[-1], eps=1e-6), nn.Flatten(1),
                                        nn.Linear(dims[-1], num_classes))
        _init_weights(self)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        # The final LayerNorm acts on the pooled vector (as a 1x1 map), as in torchvision.
        x = self.classifier[1](self.classifier[0](self.avgpool(x)))
        return x if pre_logits else self.classifier[2](x)


def _convnext(variant: str, num_classes: int, in_chans: int, drop_path_rate: float, **kwargs) -> ConvNeXt:
    depths, dims = _CONFIGS[variant]
    return ConvNeXt(depths, dims, num_classes=num_classes, in_chans=in_chans, drop_path_rate=drop_path_rate,
                    **kwargs)


# weight_layers: the paper gives no layer count; ours counts every conv and linear layer
# on the path, as the ResNet paper does: the stem, three per block (7x7 depthwise and the
# two pointwise), the three downsampling convs and the classifier, 1 + 3 * 18 + 3 + 1 = 59
# for ConvNeXt-T and 1 + 3 * 36 + 3 + 1 = 113 for the (3, 3, 27, 3) variants.
def _register_1k(variant: str, weight_layers: int, top1: float, torchvision_top1: float):
    note = (f"ConvNeXt paper Table 1 (a): ImageNet-1K trained, 224x224, ImageNet val top-1 {top1}%; the paper "
            f"reports no top-5. torchvision's own retrained weights document {torchvision_top1}% top-1.")
    return register_model(family="convnext", paper=CONVNEXT_PAPER, weight_layers=weight_layers,
                          torchvision_name=f"convnext_{variant}", reference_top1=top1, reference_note=note)


@_register_1k("tiny", 59, 82.1, 82.52)
def convnext_tiny(num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.1, **kwargs) -> ConvNeXt:
    """ConvNeXt-T: C = (96, 192, 384, 768), B = (3, 3, 9, 3); Swin-T's size, 4.5 GFLOPs."""
    return _convnext("tiny", num_classes, in_chans, drop_path_rate, **kwargs)


@_register_1k("small", 113, 83.1, 83.616)
def convnext_small(num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.4, **kwargs) -> ConvNeXt:
    """ConvNeXt-S: C = (96, 192, 384, 768), B = (3, 3, 27, 3); Swin-S's size, 8.7 GFLOPs."""
    return _convnext("small", num_classes, in_chans, drop_path_rate, **kwargs)


@_register_1k("base", 113, 83.8, 84.062)
def convnext_base(num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.5, **kwargs) -> ConvNeXt:
    """ConvNeXt-B: C = (128, 256, 512, 1024), B = (3, 3, 27, 3); Swin-B's size, 15.4 GFLOPs."""
    return _convnext("base", num_classes, in_chans, drop_path_rate, **kwargs)


@_register_1k("large", 113, 84.3, 84.414)
def convnext_large(num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.5, **kwargs) -> ConvNeXt:
    """ConvNeXt-L: C = (192, 384, 768, 1536), B = (3, 3, 27, 3); 198M parameters, 34.4 GFLOPs."""
    return _convnext("large", num_classes, in_chans, drop_path_rate, **kwargs)


@register_model(
    family="convnext", paper=CONVNEXT_PAPER, weight_layers=113,
    reference_top1=87.0,
    reference_note=("ConvNeXt paper Table 1 (b): ImageNet-22K pre-trained, fine-tuned on ImageNet-1K at 224x224, "
                    "ImageNet val top-1 87.0% (87.8% at 384x384); the paper trains no ImageNet-1K-only XL. "
                    "torchvision has no ConvNeXt-XL."),
)
def convnext_xlarge(num_classes: int = 1000, in_chans: int = 3, drop_path_rate: float = 0.2, **kwargs) -> ConvNeXt:
    """ConvNeXt-XL: C = (256, 512, 1024, 2048), B = (3, 3, 27, 3); 350M parameters, 60.9 GFLOPs.

    The default stochastic-depth rate 0.2 is the paper's setting for XL's ImageNet-22K
    pre-training, the only way the paper trains it.
    """
    return _convnext("xlarge", num_classes, in_chans, drop_path_rate, **kwargs)
