"""Inverted dropout and stochastic depth (drop path)."""
from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import stochastic_depth

# torch's nn.Dropout *is* inverted dropout (Srivastava et al. 2014, as taught in the
# lectures): surviving activations are scaled by 1/(1-p) during training, so the
# network needs no rescaling at test time. Re-exported under the lecture's name.
InvertedDropout = nn.Dropout


class DropPath(nn.Module):
    """Stochastic depth (Huang et al. 2016): drop a residual branch for whole samples.

    During training each sample's branch output is zeroed with probability ``drop_prob``
    and the survivors are scaled by ``1/(1-drop_prob)``; in eval mode it is the identity.
    Wraps ``torchvision.ops.stochastic_depth`` in "row" (per-sample) mode.
    """

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        if not 0.0 <= drop_prob < 1.0:
            from ..errors import CnnlabError

            raise CnnlabError(f"drop path probability must be in [0, 1), got {drop_prob}")
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        return stochastic_depth(x, self.drop_prob, "row", training=True)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"
