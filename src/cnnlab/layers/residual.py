"""Residual blocks (He et al. 2015/2016): the "add the input back" unit of lecture 6's ResNets.

``BasicBlock`` and ``Bottleneck`` are the post-activation units of "Deep Residual
Learning for Image Recognition" (CVPR 2016) with torchvision's child names, so that a
torchvision ResNet checkpoint loads unchanged. ``PreActBasicBlock`` and
``PreActBottleneck`` are the pre-activation units of "Identity Mappings in Deep
Residual Networks" (ECCV 2016). ``WideBasicBlock`` is the pre-activation unit with
dropout between its convolutions of "Wide Residual Networks" (BMVC 2016).
``ZeroPadShortcut`` is the paper's parameter-free shortcut "option A" used by the
CIFAR-10 networks.

Every block is a :class:`ResidualBlock` and takes its arguments, ``(inplanes, planes,
stride, downsample, groups, base_width, dilation, norm, act, drop_path, shortcut,
se_reduction)``, so a network builder can swap one for another; ``groups`` (ResNeXt's
cardinality) and ``base_width`` are the ResNeXt and Wide-ResNet knobs, and
``se_reduction`` adds a squeeze-and-excitation unit (SE-ResNet, SE-ResNeXt).
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


class ResidualBlock(nn.Module):
    """What every residual unit shares: its arguments, their checks and the addition that ends it.

    The ResNet idea, ``out = F(x) + x``: a subclass builds its residual branch ``F`` in
    :meth:`_make_branch` and runs it in ``forward``, which ends with :meth:`_add_shortcut`.
    That tail rescales the branch's channels with a :class:`SqueezeExcite` unit when
    ``se_reduction=r`` is given (the SE-ResNet module, SE paper Fig. 3; ``None``, the
    default, adds no module and no state_dict key), applies stochastic depth
    (``drop_path``, the rate of dropping the whole branch) and adds the identity, or
    ``downsample(x)`` where the shape changes (a ``Sequential(conv1x1, bn)`` projection,
    option B, a bare 1x1 conv in pre-activation nets, or :class:`ZeroPadShortcut`,
    option A). ``shortcut=False`` drops the identity path, giving the "plain" net of the
    degradation experiment (ResNet paper, Fig. 4). ``groups``/``base_width`` set the width
    of the grouped 3x3 conv (ResNeXt's cardinality and Wide-ResNet's wider units; the
    defaults give torchvision's blocks, parameter for parameter). ``branch_options`` go to
    :meth:`_make_branch` (the pre-activation units' ``preact`` and ``dropout``).
    """

    expansion: int = 1
    # A bottleneck groups its middle conv (width -> width); a basic unit its first (inplanes -> width).
    bottleneck: bool = False
    # The branch's last layer: zeroing its weight makes the branch output zero (zero_init_last).
    last_layer: str = "bn2"

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
        **branch_options,
    ):
        super().__init__()
        name = type(self).__name__
        out_planes = planes * self.expansion
        width = _inner_width(planes, groups, base_width, name)
        _check_block_args(inplanes, out_planes, stride, downsample, shortcut, dilation, name, groups,
                          grouped=(width, width) if self.bottleneck else (inplanes, width))
        self._make_branch(inplanes, width, out_planes, stride, groups, dilation, norm, act, **branch_options)
        self.se = _squeeze_excite(out_planes, se_reduction)
        self.downsample = downsample
        self.drop_path = _drop_path(drop_path)
        self.has_shortcut = shortcut
        self.stride = stride

    def _make_branch(self, inplanes: int, width: int, out_planes: int, stride: int, groups: int, dilation: int,
                     norm: str | None, act: str) -> None:
        raise NotImplementedError

    def _add_shortcut(self, out: torch.Tensor, x: torch.Tensor, projected: torch.Tensor) -> torch.Tensor:
        """The branch ``out`` (SE-rescaled, drop-path applied) plus the identity ``x`` or ``downsample(projected)``."""
        if self.se is not None:
            out = self.se(out)
        if not self.has_shortcut:
            return out
        identity = x if self.downsample is None else self.downsample(projected)
        return self.drop_path(out) + identity

    def zero_init_last(self) -> None:
        """Zero the branch's last layer so the unit starts as the identity (Goyal et al. 2017).

        The last BN's scale in a post-activation unit; in a pre-activation unit, where no BN
        follows the last conv, that conv's weight.
        """
        last = self.get_submodule(self.last_layer)
        if getattr(last, "weight", None) is not None:
            nn.init.zeros_(last.weight)


class BasicBlock(ResidualBlock):
    """The two-3x3-conv residual unit of ResNet-18/34 and the CIFAR nets (ResNet paper, Fig. 2).

    ``out = relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``; the stride sits on
    ``conv1``, and ``groups``/``base_width`` widen or group its output. The other
    arguments as in :class:`ResidualBlock`.
    """

    def _make_branch(self, inplanes: int, width: int, out_planes: int, stride: int, groups: int, dilation: int,
                     norm: str | None, act: str) -> None:
        self.conv1 = _conv3x3(inplanes, width, stride, groups=groups, dilation=dilation)
        self.bn1 = get_norm(norm, width)
        self.relu = get_activation(act, inplace=True)
        self.conv2 = _conv3x3(width, out_planes, dilation=dilation)
        self.bn2 = get_norm(norm, out_planes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(self._add_shortcut(out, x, x))


class Bottleneck(ResidualBlock):
    """The 1x1-3x3-1x1 bottleneck unit of ResNet-50/101/152 (ResNet paper, Fig. 5 right).

    The 1x1 convs shrink the channels to ``width`` and expand them back to
    ``planes * 4``, so the costly 3x3 conv works on a quarter of the channels. As in
    torchvision ("ResNet v1.5") the stride sits on the 3x3 conv, not on the first 1x1
    conv as in the paper: the 1x1/stride-2 conv would ignore three quarters of its input.
    ``groups`` and ``base_width`` make it ResNeXt's aggregated transform (grouped 3x3)
    or Wide-ResNet's wider bottleneck. SE, when on, rescales the output of ``bn3``.
    """

    expansion: int = 4
    bottleneck = True
    last_layer = "bn3"

    def _make_branch(self, inplanes: int, width: int, out_planes: int, stride: int, groups: int, dilation: int,
                     norm: str | None, act: str) -> None:
        self.conv1 = _conv1x1(inplanes, width)
        self.bn1 = get_norm(norm, width)
        self.conv2 = _conv3x3(width, width, stride, groups=groups, dilation=dilation)
        self.bn2 = get_norm(norm, width)
        self.conv3 = _conv1x1(width, out_planes)
        self.bn3 = get_norm(norm, out_planes)
        self.relu = get_activation(act, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(self._add_shortcut(out, x, x))


def _pre_activation(norm: str | None, inplanes: int, preact: bool) -> nn.Module:
    # ``preact=False`` (the first unit after the stem, whose input is already normalised and
    # activated) keeps the name ``bn1`` but makes it an identity.
    return get_norm(norm, inplanes) if preact else nn.Identity()


class PreActBasicBlock(ResidualBlock):
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

    last_layer = "conv2"

    def _make_branch(self, inplanes: int, width: int, out_planes: int, stride: int, groups: int, dilation: int,
                     norm: str | None, act: str, preact: bool = True, dropout: float = 0.0) -> None:
        if not 0.0 <= dropout < 1.0:
            raise CnnlabError(f"{type(self).__name__} dropout must be in [0, 1), got {dropout}")
        self.bn1 = _pre_activation(norm, inplanes, preact)
        self.relu = get_activation(act, inplace=True)
        self.conv1 = _conv3x3(inplanes, width, stride, groups=groups, dilation=dilation)
        self.bn2 = get_norm(norm, width)
        # Identity when off, like drop_path: no dropout module in a net that has none.
        self.dropout = nn.Dropout(dropout) if dropout > 0.0 else nn.Identity()
        self.conv2 = _conv3x3(width, out_planes, dilation=dilation)
        self.preact = preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x)) if self.preact else x
        out = self.conv1(pre)
        out = self.conv2(self.dropout(self.relu(self.bn2(out))))
        return self._add_shortcut(out, x, pre)


class PreActBottleneck(ResidualBlock):
    """Pre-activation bottleneck unit (He et al. 2016, "Identity Mappings", Fig. 1b).

    BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride here, as in :class:`Bottleneck`),
    BN-ReLU-conv1x1, then the identity (or the projection of the pre-activated input)
    is added and nothing follows. ``preact=False`` as in :class:`PreActBasicBlock`.
    """

    expansion: int = 4
    bottleneck = True
    last_layer = "conv3"

    def _make_branch(self, inplanes: int, width: int, out_planes: int, stride: int, groups: int, dilation: int,
                     norm: str | None, act: str, preact: bool = True) -> None:
        self.bn1 = _pre_activation(norm, inplanes, preact)
        self.relu = get_activation(act, inplace=True)
        self.conv1 = _conv1x1(inplanes, width)
        self.bn2 = get_norm(norm, width)
        self.conv2 = _conv3x3(width, width, stride, groups=groups, dilation=dilation)
        self.bn3 = get_norm(norm, width)
        self.conv3 = _conv1x1(width, out_planes)
        self.preact = preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pre = self.relu(self.bn1(x)) if self.preact else x
        out = self.conv1(pre)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return self._add_shortcut(out, x, pre)


class WideBasicBlock(PreActBasicBlock):
    """The "wide-dropout" unit of Wide Residual Networks (Zagoruyko & Komodakis 2016, Fig. 1d).

    BN-ReLU-conv3x3 (stride here), BN-ReLU-dropout-conv3x3, plus the identity, or where
    the shape changes a bare 1x1 projection of the *pre-activated* input (the authors'
    code). WRN's point is that the unit is wide (``planes`` = 16k, 32k, 64k for widening
    factor k), so few of them are needed; the dropout between the two convs (rate 0.3 on
    CIFAR in the paper) regularises the many parameters width brings. Every unit
    pre-activates, the first one included: WRN has no BN-ReLU after its stem conv. The
    other arguments as in :class:`ResidualBlock`.
    """

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None,
                 dropout: float = 0.0, **kwargs):
        # The dropout rate is the unit's own argument, right after the shape ones.
        super().__init__(inplanes, planes, stride, downsample, dropout=dropout, **kwargs)
