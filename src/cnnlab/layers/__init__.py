"""Building blocks shared by every model family (timm's ``layers`` idea)."""
from .activations import activation_names, get_activation
from .conv_norm_act import ConvNormAct, ConvNormActSequential
from .dropout import DropPath, InvertedDropout
from .norm import LayerNorm2d, get_norm, norm_names
from .residual import BasicBlock, Bottleneck, PreActBasicBlock, PreActBottleneck, ZeroPadShortcut
from .squeeze_excite import SqueezeExcite
from .inception import InceptionAux, InceptionModule, NaiveInceptionModule

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
]
