"""Helpers of the torchvision-parity tests: parameter counts, BN layers that are not the identity, and the
parity check itself (same keys, strict load, same logits)."""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torchvision
from torch import nn

import cnnlab


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise_bn_stats(model: nn.Module, generator: torch.Generator) -> None:
    """Give every BatchNorm distinct statistics and affine parameters.

    Fresh BN layers are the identity in eval mode, which would hide a swapped or
    misplaced BN; with distinct values, equal logits test the whole key mapping.
    """
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                c = module.num_features
                module.running_mean.copy_(torch.randn(c, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(c, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(c, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(c, generator=generator) * 0.1)


def torchvision_parity(
    name: str,
    inputs: Sequence[torch.Tensor] = (),
    *,
    reference: nn.Module | None = None,
    bn_seed: int | None = None,
    params: int | None = None,
    on_meta: bool = False,
    overrides: dict | None = None,
    rtol: float = 1e-5,
    atol: float = 1e-5,
) -> tuple[nn.Module, nn.Module]:
    """Check that ``create_model(name)`` is torchvision's model of the same name under the same keys.

    Builds both (``reference`` replaces torchvision's fresh ``weights=None`` model: one a
    fixture caches, or one with custom random weights; ``bn_seed`` randomises its BN layers
    with :func:`randomise_bn_stats`), asserts the same state_dict keys in the same order
    with the same shapes, loads torchvision's tensors into ours with ``strict=True``,
    asserts equal parameter counts (and ``params`` when given), and compares the eval-mode
    logits of every tensor in ``inputs``. ``on_meta`` builds ours on the meta device and
    takes torchvision's tensors with ``assign=True``: the same strict check without
    initialising a large model twice. Returns ``(ours, reference)``, both in eval mode.
    """
    if reference is None:
        reference = getattr(torchvision.models, name)(weights=None)
    if bn_seed is not None:
        randomise_bn_stats(reference, torch.Generator().manual_seed(bn_seed))
    if on_meta:
        with torch.device("meta"):
            model = cnnlab.create_model(name, **(overrides or {}))
    else:
        model = cnnlab.create_model(name, **(overrides or {}))
    ours, theirs = model.state_dict(), reference.state_dict()
    assert list(ours) == list(theirs)
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}
    model.load_state_dict(theirs, strict=True, assign=on_meta)
    assert n_params(model) == n_params(reference)
    if params is not None:
        assert n_params(model) == params
    model.eval(), reference.eval()
    with torch.no_grad():
        for x in inputs:
            torch.testing.assert_close(model(x), reference(x), rtol=rtol, atol=atol)
    return model, reference
