"""Building blocks shared by every model family (timm's ``layers`` idea)."""
from .activations import activation_names, get_activation
from .conv_norm_act import ConvNormAct, ConvNormActSequential
from .dropout import DropPath, InvertedDropout
from .norm import LayerNorm2d, get_norm, norm_names
from .residual import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ZeroPadShortcut
from .squeeze_excite import SqueezeExcite
from .inception import InceptionAux, InceptionModule, NaiveInceptionModule
from .residual import WideBasicBlock
from .separable import DepthwiseSeparableConv
from .inverted_residual import InvertedResidual, MBConv, make_divisible
from .dense import DenseBlock, DenseLayer, Transition, compressed_channels
from .fractal import FractalBlock, FractalConv, FractalJoin
from .convnext_block import ConvNeXtBlock, Permute
from .weight_init import INIT_SCHEMES, init_he_fan_out, init_scheme_name, init_weights
from .nas_cells import FactorizedReduction, NasPool, ReLUConvBN, SeparableConv2d, StackedSeparableConv

__all__ = [
    "ConvNormAct",
    "ConvNormActSequential",
    "SqueezeExcite",
    "DropPath",
    "InvertedDropout",
    "LayerNorm2d",
    "activation_names",
    "get_activation",
    "get_norm",
    "norm_names",
    "BasicBlock",
    "Bottleneck",
    "PreActBasicBlock",
    "PreActBottleneck",
    "ZeroPadShortcut",
    "InceptionAux",
    "InceptionModule",
    "NaiveInceptionModule",
    "WideBasicBlock",
    "DepthwiseSeparableConv",
    "InvertedResidual",
    "MBConv",
    "make_divisible",
    "DenseBlock",
    "DenseLayer",
    "Transition",
    "compressed_channels",
    "FractalBlock",
    "FractalConv",
    "FractalJoin",
    "ConvNeXtBlock",
    "Permute",
    "FactorizedReduction",
    "NasPool",
    "ReLUConvBN",
    "SeparableConv2d",
    "StackedSeparableConv",
    "init_he_fan_out",
    "INIT_SCHEMES",
    "init_scheme_name",
    "init_weights",
]
