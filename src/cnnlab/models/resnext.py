"""ResNet's successors that change only its bottleneck: ResNeXt, Wide ResNet, SE-ResNet.

Three answers to "what next after depth?" from the lecture, each a one-line change to
:class:`~cnnlab.layers.Bottleneck`, so all of them are :class:`~cnnlab.models.resnet.ResNet`
instances built by the same builder:

- **ResNeXt** (Xie et al. 2017): split the 3x3 conv into ``cardinality`` parallel paths
  of ``width_per_group`` channels each (a grouped conv); at equal cost, more paths beat
  more depth or width.
- **Wide ResNet** (Zagoruyko & Komodakis 2016): make the bottleneck's inner width twice
  ResNet's; 50 wide layers beat 152 thin ones.
- **SE-ResNet / SE-ResNeXt** (Hu et al. 2018): rescale each block's output channels by
  a squeeze-and-excitation unit before the addition.

ResNeXt and Wide ResNet have torchvision's module names and parameter counts, so
``torchvision.models.resnext*`` / ``wide_resnet*`` checkpoints load unchanged.
"""
from __future__ import annotations

from ..errors import CnnlabError
from ..registry import Paper, register_model
from .resnet import ResNet, _resnet

RESNEXT_PAPER = Paper(
    title="Aggregated Residual Transformations for Deep Neural Networks",
    authors="S. Xie, R. Girshick, P. Dollár, Z. Tu, K. He",
    venue="CVPR",
    year=2017,
)
WIDE_RESNET_PAPER = Paper(
    title="Wide Residual Networks",
    authors="S. Zagoruyko, N. Komodakis",
    venue="BMVC",
    year=2016,
)
SENET_PAPER = Paper(
    title="Squeeze-and-Excitation Networks",
    authors="J. Hu, L. Shen, G. Sun",
    venue="CVPR",
    year=2018,
)

# The reduction ratio r of every SE-ResNet/ResNeXt in the SE paper ("we set r=16 in all our models"):
# its ablation found it the best balance of accuracy and added parameters.
SE_REDUCTION = 16


def _check_cardinality(cardinality: int, width_per_group: int) -> None:
    if isinstance(cardinality, bool) or not isinstance(cardinality, int) or cardinality < 1:
        raise CnnlabError(f"cardinality (the number of paths C) must be an integer >= 1, got {cardinality!r}")
    if isinstance(width_per_group, bool) or not isinstance(width_per_group, int) or width_per_group < 1:
        raise CnnlabError(
            f"width_per_group (the bottleneck width d of each path) must be an integer >= 1, got {width_per_group!r}"
        )


def _resnext(depth: int, cardinality: int, width_per_group: int, num_classes: int, in_chans: int,
             **kwargs) -> ResNet:
    """ResNeXt-``depth`` (C x d): the ResNet bottlenecks with a grouped 3x3 conv of C groups of d channels.

    In the first stage the grouped conv has ``C * d`` channels (128 for 32x4d), doubling
    with every stage like ResNet's widths; d = 64, C = 1 gives back ResNet. ``groups``,
    :class:`~cnnlab.models.resnet.ResNet`'s name for C, overrides ``cardinality``.
    """
    kwargs.setdefault("groups", cardinality)
    _check_cardinality(kwargs["groups"], width_per_group)
    return _resnet(depth, num_classes, in_chans, width_per_group=width_per_group, **kwargs)


def _se_resnet(depth: int, num_classes: int, in_chans: int, se_reduction: int = SE_REDUCTION,
               cardinality: int = 1, width_per_group: int = 64, **kwargs) -> ResNet:
    """SE-ResNet / SE-ResNeXt: the same nets with a squeeze-and-excitation unit in every block."""
    return _resnext(depth, cardinality, width_per_group, num_classes, in_chans, se_reduction=se_reduction, **kwargs)


# --------------------------------------------------------------------------- ResNeXt

_TORCHVISION_ACCURACY = ("torchvision's documented ImageNet-1K val accuracy of its IMAGENET1K_V1 weights "
                         "(single 224 crop of a 256-resized image)")


@register_model(
    family="resnext", paper=RESNEXT_PAPER, weight_layers=50, torchvision_name="resnext50_32x4d",
    reference_top1=77.8, reference_top5=None,
    reference_note="ResNeXt paper Table 3: ImageNet-1K val top-1 error 22.2% (single 224x224 crop), at the "
                   "complexity of ResNet-50 (23.9%); the table gives no top-5 error.",
)
def resnext50_32x4d(num_classes: int = 1000, in_chans: int = 3, cardinality: int = 32, width_per_group: int = 4,
                    **kwargs) -> ResNet:
    """ResNeXt-50 (32x4d): ResNet-50's stages with 32 paths of width 4 in each first-stage bottleneck."""
    return _resnext(50, cardinality, width_per_group, num_classes, in_chans, **kwargs)


@register_model(
    family="resnext", paper=RESNEXT_PAPER, weight_layers=101, torchvision_name="resnext101_32x8d",
    reference_top1=79.312, reference_top5=94.526,
    reference_note="The ResNeXt paper has no 32x8d row; these are " + _TORCHVISION_ACCURACY + ".",
)
def resnext101_32x8d(num_classes: int = 1000, in_chans: int = 3, cardinality: int = 32, width_per_group: int = 8,
                     **kwargs) -> ResNet:
    """ResNeXt-101 (32x8d): ResNet-101's stages, 32 paths of width 8 (twice the paper's 32x4d width)."""
    return _resnext(101, cardinality, width_per_group, num_classes, in_chans, **kwargs)


@register_model(
    family="resnext", paper=RESNEXT_PAPER, weight_layers=101, torchvision_name="resnext101_64x4d",
    reference_top1=79.6, reference_top5=94.7,
    reference_note="ResNeXt paper Table 4 (2x the complexity of ResNet-101): ImageNet-1K val error 20.4% "
                   "top-1 / 5.3% top-5, single 224x224 crop; better than going deeper (ResNet-200, 21.7%) "
                   "or wider (ResNet-101 1x100d, 21.3%).",
)
def resnext101_64x4d(num_classes: int = 1000, in_chans: int = 3, cardinality: int = 64, width_per_group: int = 4,
                     **kwargs) -> ResNet:
    """ResNeXt-101 (64x4d): doubling the cardinality of ResNeXt-101 (32x4d), the paper's best single model."""
    return _resnext(101, cardinality, width_per_group, num_classes, in_chans, **kwargs)


# --------------------------------------------------------------------------- Wide ResNet (ImageNet)


@register_model(
    family="wide_resnet", paper=WIDE_RESNET_PAPER, weight_layers=50, torchvision_name="wide_resnet50_2",
    reference_top1=78.1, reference_top5=93.97,
    reference_note="WRN paper, ImageNet table: WRN-50-2-bottleneck val error 21.9% top-1 / 6.03% top-5, "
                   "single 224 crop, 68.9M parameters; better than ResNet-152 (22.16% / 6.16%) at 3x fewer layers.",
)
def wide_resnet50_2(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Wide ResNet-50-2: ResNet-50 with every bottleneck's inner width doubled (128, 256, 512, 1024)."""
    kwargs.setdefault("width_per_group", 128)
    return _resnet(50, num_classes, in_chans, **kwargs)


@register_model(
    family="wide_resnet", paper=WIDE_RESNET_PAPER, weight_layers=101, torchvision_name="wide_resnet101_2",
    reference_top1=78.848, reference_top5=94.284,
    reference_note="The WRN paper reports no WRN-101-2; these are " + _TORCHVISION_ACCURACY + ".",
)
def wide_resnet101_2(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """Wide ResNet-101-2: ResNet-101 with every bottleneck's inner width doubled."""
    kwargs.setdefault("width_per_group", 128)
    return _resnet(101, num_classes, in_chans, **kwargs)


# --------------------------------------------------------------------------- SE-ResNet, SE-ResNeXt

_SE_NOTE = ("Single 224 center crop ImageNet-1K val error of the authors' released models (SENet repository, "
            "Table 1: {err}); they were retrained and beat the paper's Table 2, whose errors are slightly higher. "
            "The authors' models put the stride on the first 1x1 conv; this one, like torchvision's ResNets, "
            "on the 3x3 conv.")


def _register_se(depth: int, top1: float, top5: float):
    err = f"{100 - top1:.2f}% top-1 / {100 - top5:.2f}% top-5"
    return register_model(family="senet", paper=SENET_PAPER, weight_layers=depth, reference_top1=top1,
                          reference_top5=top5, reference_note=_SE_NOTE.format(err=err))


@_register_se(50, 77.63, 93.64)
def se_resnet50(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-50: ResNet-50 with an SE unit (r=16) on every bottleneck's output, ~10% more parameters."""
    return _se_resnet(50, num_classes, in_chans, **kwargs)


@_register_se(101, 78.25, 94.28)
def se_resnet101(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-101: ResNet-101 with an SE unit (r=16) in every bottleneck."""
    return _se_resnet(101, num_classes, in_chans, **kwargs)


@_register_se(152, 78.66, 94.46)
def se_resnet152(num_classes: int = 1000, in_chans: int = 3, **kwargs) -> ResNet:
    """SE-ResNet-152: ResNet-152 with an SE unit (r=16) in every bottleneck."""
    return _se_resnet(152, num_classes, in_chans, **kwargs)


@_register_se(50, 79.03, 94.46)
def se_resnext50_32x4d(num_classes: int = 1000, in_chans: int = 3, cardinality: int = 32, width_per_group: int = 4,
                       **kwargs) -> ResNet:
    """SE-ResNeXt-50 (32x4d): ResNeXt-50 with an SE unit (r=16) in every block; the base of SENet-154."""
    return _se_resnet(50, num_classes, in_chans, cardinality=cardinality, width_per_group=width_per_group, **kwargs)
