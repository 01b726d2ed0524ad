"""Residual blocks (He et al. 2015/2016): the "add the input back" unit of lecture 6's ResNets.

``BasicBlock`` and ``Bottleneck`` are the post-activation units of "Deep Residual
Learning for Image Recognition" (CVPR 2016) with torchvision's child names, so that a
torchvision ResNet checkpoint loads unchanged. ``PreActBasicBlock`` and
``PreActBottleneck`` are the pre-activation units of "Identity Mappings in Deep
Residual Networks" (ECCV 2016). ``WideBasicBlock`` is the pre-activation unit with
dropout between its convolutions of "Wide Residual Networks" (BMVC 2016).
``ZeroPadShortcut`` is the paper's parameter-free shortcut "option A" used by the
CIFAR-10 networks.

Every block takes the same arguments, ``(inplanes, planes, stride, downsample, groups,
base_width, dilation, norm, act, drop_path, shortcut)``, so a network builder can swap
one for another; ``groups`` (ResNeXt's cardinality) and ``base_width`` are the ResNeXt
and Wide-ResNet knobs, and ``se_reduction`` adds a squeeze-and-excitation unit to the
post-activation blocks (SE-ResNet, SE-ResNeXt).
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import CnnlabError
from .activations import get_activation
from .dropout import DropPath
from .norm import get_norm
from .squeeze_excite import SqueezeExcite


def _conv3x3(in_planes: int, out_planes: int, stride: int = 1, groups: int = 1, dilation: int = 1) -> nn.Conv2d:
    # No bias: every conv in a ResNet is followed (or, pre-activation, preceded by) a
    # normalisation whose shift makes a bias redundant.
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=dilation,
                     groups=groups, dilation=dilation, bias=False)


def _conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def _inner_width(planes: int, groups: int, base_width: int, block: str) -> int:
    # ResNeXt's "cardinality x bottleneck width" (C x d): 64 is the width ResNet-50 has
    # per group in its first stage, so groups=1, base_width=64 gives back ``planes``.
    # Wide-ResNet-50-2 is groups=1, base_width=128.
    if not isinstance(groups, int) or groups < 1:
        raise CnnlabError(f"{block} cardinality (groups) must be an integer >= 1, got groups={groups}")
    if base_width < 1:
        raise CnnlabError(f"{block} width per group (base_width) must be >= 1, got base_width={base_width}")
    per_group = int(planes * (base_width / 64.0))
    if per_group < 1:
        raise CnnlabError(
            f"{block} with planes={planes} and base_width={base_width} leaves {planes * base_width / 64:g} "
            "channels per group; base_width must be at least 64 / planes"
        )
    return per_group * groups


def _check_block_args(inplanes: int, out_planes: int, stride: int, downsample: nn.Module | None,
                      shortcut: bool, dilation: int, block: str, groups: int = 1,
                      grouped: tuple[int, int] | None = None) -> None:
    # ``grouped`` holds the input and output channels of the block's grouped conv: a
    # grouped conv splits both into ``groups`` equal slices, so both must divide evenly.
    if grouped is not None and (grouped[0] % groups or grouped[1] % groups):
        raise CnnlabError(
            f"{block} cardinality groups={groups} must divide the channels of its grouped conv "
            f"({grouped[0]} -> {grouped[1]}); choose a common divisor of both"
        )
    if inplanes < 1 or out_planes < 1:
        raise CnnlabError(f"{block} needs positive channel counts, got inplanes={inplanes}, planes={out_planes}")
    if stride < 1 or dilation < 1:
        raise CnnlabError(f"{block} stride and dilation must be at least 1, got stride={stride}, dilation={dilation}")
    if not shortcut and downsample is not None:
        raise CnnlabError(f"{block} with shortcut=False (a plain net) cannot take a downsample module")
    if shortcut and downsample is None and (stride != 1 or inplanes != out_planes):
        raise CnnlabError(
            f"{block} changes the shape ({inplanes}->{out_planes} channels, stride {stride}) so its "
            "identity shortcut needs a downsample module (a 1x1 projection or ZeroPadShortcut)"
        )


def _squeeze_excite(channels: int, reduction: int | None) -> nn.Module | None:
    # None (not an Identity) when off, so a block without SE keeps torchvision's children.
    if reduction is None:
        return None
    if isinstance(reduction, bool) or not isinstance(reduction, int) or reduction < 1:
        raise CnnlabError(f"se_reduction (the SE ratio r) must be an integer >= 1 or None, got {reduction!r}")
    return SqueezeExcite(channels, reduction=reduction)


def _drop_path(rate: float) -> nn.Module:
    # Identity when off, so that a model without stochastic depth prints (and traces) as the paper's.
    return DropPath(rate) if rate > 0.0 else nn.Identity()


class ZeroPadShortcut(nn.Module):
    """Shortcut "option A" of the ResNet paper (section 3.3): identity with zero-padded new channels.

    When a stage halves the resolution and widens the features, the shortcut keeps every
    ``stride``-th pixel of the input and appends ``out_channels - in_channels`` channels of
    zeros, so the residual connection adds no parameter. The paper's CIFAR-10 networks
    (section 4.2) use it for every shortcut, which is why ResNet-20 has exactly as many
    parameters as the plain 20-layer net.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        if in_channels < 1 or out_channels < in_channels:
            raise CnnlabError(
                f"ZeroPadShortcut can only keep or add channels, got {in_channels} -> {out_channels}"
            )
        if stride < 1:
            raise CnnlabError(f"ZeroPadShortcut stride must be at least 1, got {stride}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            # Subsampling (not pooling) keeps it an identity on the surviving pixels; it
            # picks the same pixel grid as a 3x3/stride-2/pad-1 conv, sizes included.
            x = x[:, :, :: self.stride, :: self.stride]
        extra = self.out_channels - self.in_channels
        if extra:
            # F.pad's last pair pads dim 1 (channels): 0 before, ``extra`` after.
            x = F.pad(x, (0, 0, 0, 0, 0, extra))
        return x

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}"


class BasicBlock(nn.Module):
    """The two-3x3-conv residual unit of ResNet-18/34 and the CIFAR nets (ResNet paper, Fig. 2).

    ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the stride sits on
    ``conv1``. ``downsample`` is the shortcut when the shape changes (a
    ``Sequential(conv1x1, bn)`` projection, option B, or :class:`ZeroPadShortcut`, option
    A); ``shortcut=False`` drops the identity path, giving the "plain" net of the
    degradation experiment (Fig. 4). ``drop_path`` is the stochastic-depth rate of the
    residual branch. ``groups``/``base_width`` widen or group the first conv's output
    (the defaults give torchvision's block, parameter for parameter). ``se_reduction=r``
    rescales the residual branch's channels with a :class:`SqueezeExcite` unit (ratio
    ``r``) before the addition, as in the SE-ResNet module (SE paper, Fig. 3); ``None``
    (the default) adds no module and no state_dict key.
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path: float = 0.0,
        shortcut: bool = True,
        se_reduction: int | None = None,
    ):
        super().__init__()
        out_planes = planes * self.expansion
        width = _inner_width(planes, groups, base_width, "BasicBlock")
        _check_block_args(inplanes, out_planes, stride, downsample, shortcut, dilation, "BasicBlock",
                          groups, grouped=(inplanes, width))
        self.conv1 = _conv3x3(inplanes, width, stride, groups=groups, dilation=dilation)
        self.bn1 = get_norm(norm, width)
        self.relu = get_activation(act, inplace=True)
        self.conv2 = _conv3x3(width, out_planes, dilation=dilation)
        self.bn2 = get_norm(norm, out_planes)
        self.se = _squeeze_excite(out_planes, se_reduction)
        self.downsample = downsample
        self.drop_path = _drop_path(drop_path)
        self.has_shortcut = shortcut
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.se is not None:
            out = self.se(out)
        if self.has_shortcut:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.drop_path(out) + identity
        return self.relu(out)

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so the block starts as the identity (Goyal et al. 2017)."""
        if getattr(self.bn2, "weight", None) is not None:
            nn.init.zeros_(self.bn2.weight)


class Bottleneck(nn.Module):
    """The 1x1-3x3-1x1 bottleneck unit of ResNet-50/101/152 (ResNet paper, Fig. 5 right).

    The 1x1 convs shrink the channels to ``width`` and expand them back to
    ``planes * 4``, so the costly 3x3 conv works on a quarter of the channels. As in
    torchvision ("ResNet v1.5") the stride sits on the 3x3 conv, not on the first 1x1
    conv as in the paper: the 1x1/stride-2 conv would ignore three quarters of its input.
    ``groups`` and ``base_width`` make it ResNeXt's aggregated transform (grouped 3x3)
    or Wide-ResNet's wider bottleneck. ``downsample``, ``drop_path``, ``shortcut`` and
    ``se_reduction`` (SE applied to the output of ``bn3``, before the addition) as in
    :class:`BasicBlock`.
    """

    expansion: int = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path: float = 0.0,
        shortcut: bool = True,
        se_reduction: int | None = None,
    ):
        super().__init__()
        out_planes = planes * self.expansion
        width = _inner_width(planes, groups, base_width, "Bottleneck")
        _check_block_args(inplanes, out_planes, stride, downsample, shortcut, dilation, "Bottleneck",
                          groups, grouped=(width, width))
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = get_norm(norm, width)
        self.conv2 = _conv3x3(width, width, stride, groups=groups, dilation=dilation)
        self.bn2 = get_norm(norm, width)
        self.conv3 = _conv1x1(width, out_planes)
        self.bn3 = get_norm(norm, out_planes)
        self.se = _squeeze_excite(out_planes, se_reduction)
        self.relu = get_activation(act, inplace=True)
        self.downsample = downsample
        self.drop_path = _drop_path(drop_path)
        self.has_shortcut = shortcut
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.se is not None:
            out = self.se(out)
        if self.has_shortcut:
            identity = x if self.downsample is None else self.downsample(x)
            out = self.drop_path(out) + identity
        return self.relu(out)

    def zero_init_last(self) -> None:
        """Zero the last BN's scale so the block starts as the identity (Goyal et al. 2017)."""
        if getattr(self.bn3, "weight", None) is not None:
            nn.init.zeros_(self.bn3.weight)


class PreActBasicBlock(nn.Module):
    """Pre-activation basic unit (He et al. 2016, "Identity Mappings", Fig. 1b / 4e).

    ``out = conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut``: normalisation and ReLU
    come *before* each conv and nothing follows the addition, so the identity path from
    any block to any later one is a pure sum, the paper's point. When the shape changes
    the projection ``downsample`` (a bare 1x1 conv) reads the pre-activated input
    ``relu(bn1(x))``, as in the authors' code. ``preact=False`` skips ``bn1``/ReLU for
    the first unit after the stem, whose input is already normalised and activated
    ("we adopt the first activation right after conv1", section 4.1). ``dropout`` is the
    rate of a dropout between the two convs (0: none), as in :class:`WideBasicBlock`.
    """

    expansion: int = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path: float = 0.0,
        shortcut: bool = True,
        preact: bool = True,
        dropout: float = 0.0,
    ):
        super().__init__()
        out_planes = planes * self.expansion
        name = type(self).__name__
        width = _inner_width(planes, groups, base_width, name)
        _check_block_args(inplanes, out_planes, stride, downsample, shortcut, dilation, name,
                          groups, grouped=(inplanes, width))
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"{name} dropout must be in [0, 1), got {dropout}")
        self.bn1 = get_norm(norm, inplanes) if preact else nn.Identity()
        self.relu = get_activation(act, inplace=True)
        self.conv1 = _conv3x3(inplanes, width, stride, groups=groups, dilation=dilation)
        self.bn2 = get_norm(norm, width)
        # Identity when off, like drop_path: no dropout module in a net that has none.
        self.dropout = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()
        self.conv2 = _conv3x3(width, out_planes, dilation=dilation)
        self.downsample = downsample
        self.drop_path = _drop_path(drop_path)
        self.has_shortcut = shortcut
        self.preact = preact
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x)) if self.preact else x
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        if not self.has_shortcut:
            return out
        identity = x if self.downsample is None else self.downsample(pre)
        return self.drop_path(out) + identity

    def zero_init_last(self) -> None:
        """Zero the last conv so the unit starts as the identity (no BN follows it here)."""
        nn.init.zeros_(self.conv2.weight)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck unit (He et al. 2016, "Identity Mappings", Fig. 1b).

    BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride here, as in :class:`Bottleneck`),
    BN-ReLU-conv1x1, then the identity (or the projection of the pre-activated input)
    is added and nothing follows. ``preact=False`` as in :class:`PreActBasicBlock`.
    """

    expansion: int = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        groups: int = 1,
        base_width: int = 64,
        dilation: int = 1,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path: float = 0.0,
        shortcut: bool = True,
        preact: bool = True,
    ):
        super().__init__()
        out_planes = planes * self.expansion
        width = _inner_width(planes, groups, base_width, "PreActBottleneck")
        _check_block_args(inplanes, out_planes, stride, downsample, shortcut, dilation, "PreActBottleneck",
                          groups, grouped=(width, width))
        self.bn1 = get_norm(norm, inplanes) if preact else nn.Identity()
        self.relu = get_activation(act, inplace=True)
        self.conv1 = _conv1x1(inplanes, width)
        self.bn2 = get_norm(norm, width)
        self.conv2 = _conv3x3(width, width, stride, groups=groups, dilation=dilation)
        self.bn3 = get_norm(norm, width)
        self.conv3 = _conv1x1(width, out_planes)
        self.downsample = downsample
        self.drop_path = _drop_path(drop_path)
        self.has_shortcut = shortcut
        self.preact = preact
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x)) if self.preact else x
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if not self.has_shortcut:
            return out
        identity = x if self.downsample is None else self.downsample(pre)
        return self.drop_path(out) + identity

    def zero_init_last(self) -> None:
        """Zero the last conv so the unit starts as the identity (no BN follows it here)."""
        nn.init.zeros_(self.conv3.weight)


class WideBasicBlock(PreActBasicBlock):
    """The "wide-dropout" unit of Wide Residual Networks (Zagoruyko & Komodakis 2016, Fig. 1d).

    BN-ReLU-conv3x3 (stride here), BN-ReLU-dropout-conv3x3, plus the identity, or where
    the shape changes a bare 1x1 projection of the *pre-activated* input (the authors'
    code). WRN's point is that the unit is wide (``planes`` = 16k, 32k, 64k for widening
    factor k), so few of them are needed; the dropout between the two convs (rate 0.3 on
    CIFAR in the paper) regularises the many parameters width brings. It always
    pre-activates: WRN has no BN-ReLU after its stem conv.
    """

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dropout: float = 0.0,
        norm: str | None = "batchnorm",
        act: str = "relu",
        drop_path: float = 0.0,
    ):
        super().__init__(inplanes, planes, stride, downsample, norm=norm, act=act, drop_path=drop_path,
                         preact=True, dropout=dropout)
