"""airbench94 (K. Jordan, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU", 2024): a speed-run net.

The lectures' recipe pushed to its limit on time rather than accuracy: a small VGG-like net
(three conv-pool blocks, 64/256/256 channels, ~2M parameters, ~118M multiply-adds at 32x32)
whose every design choice buys accuracy per second of training:

- the first layer is a fixed 2x2 *patch-whitening* convolution, set from the training data
  before training (lecture 7's "whitening" of inputs, done on patches, as in Coates & Ng
  2011): its filters are the eigenvectors of the 2x2 patch covariance scaled by
  1/sqrt(eigenvalue), in both signs so that the nonlinearity after it loses nothing;
- each block is conv -> 2x2 max-pool -> BN -> GELU -> conv -> BN -> GELU, pooling *before*
  normalising so that BN and GELU run on a quarter of the positions;
- BN learns only its shift (the scale stays 1), with a short memory (momentum 0.4) so that
  the running statistics follow the fast-moving weights of a short run;
- convolutions start as partial identities (Dirac init of the first ``in_channels`` filters);
- the logits are scaled by 1/9, which tempers the classifier's effective learning rate.

The model is the paper's; the training recipe that goes with it in this project is the
``fast-cifar10`` recipe (``cnnlab recipes``).
"""
from __future__ import annotations

import torch
from torch import nn

from ..errors import CnnlabError
from ..registry import Paper, register_model
from ._base import ClassifierModel

__all__ = ["AirbenchNet", "PatchWhitening", "airbench94", "freeze_whitening_bias"]

AIRBENCH_PAPER = Paper(
    title="94% on CIFAR-10 in 3.29 Seconds on a Single GPU",
    authors="K. Jordan",
    venue="arXiv:2404.00498",
    year=2024,
)

# The paper's widths, BN memory and logit scale.
AIRBENCH94_WIDTHS = (64, 256, 256)
BN_MOMENTUM = 0.4  # PyTorch's convention: the weight of the new batch (the paper's 0.6 is the old statistics')
LOGIT_SCALE = 1 / 9
WHITENING_EPS = 5e-4


class PatchWhitening(nn.Module):
    """A fixed ``patch_size`` x ``patch_size`` convolution that whitens the input's patches.

    :meth:`init_from_data` sets its ``2 * in_chans * patch_size**2`` filters from images:
    the eigenvectors of the (centred) covariance of all their patches, each divided by the
    square root of its eigenvalue plus ``eps``, then the same filters negated. On that data
    the first half of the outputs has (close to) identity covariance. The weights are not
    trained (``requires_grad`` is off); the bias is.
    """

    def __init__(self, in_chans: int = 3, patch_size: int = 2, eps: float = WHITENING_EPS):
        super().__init__()
        self.patch_size = patch_size
        self.eps = eps
        self.dims = in_chans * patch_size * patch_size
        self.conv = nn.Conv2d(in_chans, 2 * self.dims, patch_size, bias=True)
        self.conv.weight.requires_grad_(False)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def patches(self, images: torch.Tensor) -> torch.Tensor:
        """Every ``patch_size`` x ``patch_size`` patch of ``images`` as a row (in the conv weight's C, kh, kw order)."""
        p = self.patch_size
        unfolded = images.unfold(2, p, 1).unfold(3, p, 1)  # N, C, H', W', p, p
        return unfolded.permute(0, 2, 3, 1, 4, 5).reshape(-1, self.dims)

    @torch.no_grad()
    def init_from_data(self, images: torch.Tensor) -> None:
        """Set the whitening filters from ``images`` (a normalised float batch N x C x H x W)."""
        if images.dim() != 4 or images.shape[1] * self.patch_size ** 2 != self.dims:
            raise CnnlabError(f"patch whitening needs images N x {self.dims // self.patch_size ** 2} x H x W, "
                              f"got shape {tuple(images.shape)}")
        # The patch covariance, accumulated in float64 over chunks of images: all 2x2 patches
        # of 5,000 CIFAR images at once would be ~0.5 GB (twice that once centred).
        total = torch.zeros(self.dims, dtype=torch.float64)
        outer = torch.zeros(self.dims, self.dims, dtype=torch.float64)
        count = 0
        for chunk in images.detach().split(256):
            patches = self.patches(chunk.to(torch.float64))
            total += patches.sum(dim=0)
            outer += patches.T @ patches
            count += patches.shape[0]
        mean = total / count
        covariance = outer / count - torch.outer(mean, mean)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + self.eps)[:, None]
        filters = filters.reshape(self.dims, -1, self.patch_size, self.patch_size)
        self.conv.weight.copy_(torch.cat([filters, -filters]).to(self.conv.weight))
        self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _shift_only_bn(channels: int) -> nn.BatchNorm2d:
    norm = nn.BatchNorm2d(channels, eps=1e-12, momentum=BN_MOMENTUM)
    norm.weight.requires_grad_(False)  # the scale stays 1: only the shift is learned
    return norm


class ConvPoolBlock(nn.Sequential):
    """conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU (airbench's block)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = _shift_only_bn(out_channels)
        self.act1 = nn.GELU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.norm2 = _shift_only_bn(out_channels)
        self.act2 = nn.GELU()
        for conv in (self.conv1, self.conv2):
            # The first in_channels filters start as the identity (the rest keep PyTorch's default).
            nn.init.dirac_(conv.weight.data[: conv.in_channels])


class AirbenchNet(ClassifierModel):
    """``whiten`` (fixed 2x2 patch whitening) + GELU, ``block1..block3`` (:class:`ConvPoolBlock`), global max-pool, ``fc``.

    At 32x32 the maps are 31 -> 15 -> 7 -> 3 -> 1. ``fc`` has no bias and its output is
    multiplied by ``logit_scale``. Call :meth:`init_from_data` with normalised training
    images before training (the trainer does) to set the whitening filters.
    """

    classifier_name = "fc"

    def __init__(self, widths: tuple[int, int, int] | list[int] = AIRBENCH94_WIDTHS, num_classes: int = 10,
                 in_chans: int = 3, logit_scale: float = LOGIT_SCALE):
        super().__init__()
        widths = tuple(widths)
        if len(widths) != 3 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1 for w in widths):
            raise CnnlabError(f"airbench widths must be three positive integers, got {widths!r}")
        if not logit_scale > 0:
            raise CnnlabError(f"airbench logit_scale must be > 0, got {logit_scale}")
        self.num_classes = num_classes
        self.logit_scale = logit_scale
        self.whiten = PatchWhitening(in_chans)
        self.act = nn.GELU()
        self.block1 = ConvPoolBlock(self.whiten.out_channels, widths[0])
        self.block2 = ConvPoolBlock(widths[0], widths[1])
        self.block3 = ConvPoolBlock(widths[1], widths[2])
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.fc = nn.Linear(widths[2], num_classes, bias=False)

    def init_from_data(self, images: torch.Tensor) -> None:
        """Data-dependent initialisation: the whitening filters from normalised training images."""
        self.whiten.init_from_data(images)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.whiten(x))
        return self.block3(self.block2(self.block1(x)))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = torch.flatten(self.pool(x), 1)
        return x if pre_logits else self.fc(x) * self.logit_scale


def freeze_whitening_bias(model: nn.Module, frozen: bool, *, distributed: bool = False) -> None:
    """airbench94's progressive freezing: the whitening layer's bias trains for the first
    epochs only (``whiten_bias_epochs: 3``). Frozen, nothing before the first block needs a
    gradient, so backpropagation stops at the first convolution's weights: the same accuracy,
    a shorter backward pass."""
    layers = [m for m in model.modules() if isinstance(m, PatchWhitening)]
    if not layers:
        raise CnnlabError(f"whiten_bias_epochs needs a model with a patch-whitening layer (airbench94); "
                          f"{type(model).__name__} has none: remove whiten_bias_epochs from the recipe")
    if distributed:
        raise CnnlabError("whiten_bias_epochs is not supported under torchrun (DistributedDataParallel expects "
                          "the same parameters to train in every step); remove it from the recipe")
    for layer in layers:
        layer.conv.bias.requires_grad_(not frozen)


@register_model(
    family="airbench", paper=AIRBENCH_PAPER, input_size=(3, 32, 32), num_classes=10, dataset="cifar10",
    weight_layers=8, reference_top1=94.01,
    reference_note="airbench paper: airbench94 reaches 94.01% mean CIFAR-10 test accuracy (with flip and "
                   "translation test-time augmentation) after 9.9 epochs, 3.29 s on one A100; trained with "
                   "its own recipe (whitening init, Nesterov SGD, label smoothing 0.2, lookahead).",
)
def airbench94(num_classes: int = 10, in_chans: int = 3, **kwargs) -> AirbenchNet:
    """airbench94: whitening 2x2 stem, conv-pool blocks of 64/256/256 channels, 1.97M parameters."""
    return AirbenchNet(num_classes=num_classes, in_chans=in_chans, **kwargs)
