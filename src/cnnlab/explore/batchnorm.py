"""The batch-normalization panel: what a real BN layer does to the activations it receives.

Batch normalization (Ioffe and Szegedy 2015; CS231n lecture 6): in training, each channel
is normalised with the mean and variance of the current batch, ``x_hat = (x - mu_B) /
sqrt(var_B + eps)``, then scaled and shifted, ``y = gamma * x_hat + beta``; at test time
the running averages collected in training replace the batch statistics. The panel feeds
real images through an initialised zoo model or a trained run up to one of its BN layers
(or draws synthetic activations), and runs that very layer in both modes with the gamma
and beta of the sliders, beside the batch-size-1 case, where the statistics come from one
image alone.
"""
from __future__ import annotations

import copy
import threading
from collections import OrderedDict
from functools import lru_cache

import torch
from torch import nn

from ..analysis.tracing import MetaInitShortcut
from ..errors import CnnlabError
from ..eval.run import load_run
from ..registry import create_model, list_models, model_info
from .images import ImageSources, to_network_input
from .runs import RunsFolder, finite

BINS = 40
# Initialised networks offered: the zoo's 32x32 models with BN, up to this many parameters
# (ResNet-1202's 19M would make every slider move slow).
MAX_INIT_PARAMS = 2_000_000
MAX_INIT_DEPTH = 110
SYNTHETIC_CHANNELS, SYNTHETIC_SIZE = 16, 8
SHOWN_CHANNELS = 32


class _Stop(Exception):
    """Raised by the hook once the BN layer's input is captured: the rest of the network is not run."""


def _bn_layers(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]


def _histogram(values: torch.Tensor) -> dict:
    values = values.flatten().double()
    low, high = float(values.min()), float(values.max())
    if high <= low:
        high = low + 1e-6
    counts = torch.histc(values, bins=BINS, min=low, max=high)
    return {"low": low, "high": high, "counts": [int(c) for c in counts.tolist()],
            "mean": float(values.mean()), "std": float(values.std(unbiased=False)) if values.numel() > 1 else 0.0}


@lru_cache(maxsize=1)
def _init_models() -> tuple[str, ...]:
    names = []
    for name in list_models():
        info = model_info(name)
        # The depth first, from the registry: ResNet-1202 is not even built.
        if tuple(info.input_size[1:]) != (32, 32) or info.weight_layers > MAX_INIT_DEPTH:
            continue
        with torch.device("meta"), MetaInitShortcut():  # structure only, no weights drawn
            model = create_model(name)
        if _bn_layers(model) and sum(p.numel() for p in model.parameters()) <= MAX_INIT_PARAMS:
            names.append(name)
    return tuple(names)


class BatchNormExplorer:
    """Networks (built or loaded once) and captured layer inputs (kept for the last few settings)."""

    def __init__(self, images: ImageSources, runs: RunsFolder):
        self.images = images
        self.runs = runs
        self._models: dict[str, tuple[nn.Module, dict]] = {}
        self._inputs: OrderedDict = OrderedDict()
        # One forward at a time: the capture hook and the momentum switch act on a shared model.
        self._forward_lock = threading.Lock()
        self._lock = threading.Lock()

    def init_models(self) -> list[str]:
        """The zoo models offered initialised: 32x32 inputs, BN layers, at most 2M parameters."""
        return _init_models()

    def networks(self) -> list[dict]:
        options = [{"id": "synthetic", "label": "synthetic activations (a Gaussian per channel)"}]
        options += [{"id": name, "label": f"{name}, initialised"} for name in self.init_models()]
        options += [{"id": f"run:{run['name']}", "label": f"{run['name']} ({run['model']}, trained)"}
                    for run in self.runs.listing() if run["checkpoints"]]
        return options

    def _network(self, network: str) -> tuple[nn.Module, dict]:
        with self._lock:
            if network in self._models:
                return self._models[network]
        if network.startswith("run:"):
            path = self.runs.resolve(network[4:])
            run = load_run(path, device="cpu")
            size = run.image_size or tuple(model_info(run.config.model).input_size[1:])
            meta = {"kind": "trained", "model": run.config.model, "channels": run.in_chans, "size": int(size[0]),
                    "mean": run.mean, "std": run.std, "upstream": "eval"}
            model = run.model
        else:
            if network not in self.init_models():
                raise CnnlabError(f"network {network!r} is not offered: use 'synthetic', 'run:NAME' or one of "
                                  f"{', '.join(self.init_models())}")
            torch.manual_seed(0)  # the same initial weights on every start
            model = create_model(network)
            info = model_info(network)
            meta = {"kind": "initialised", "model": network, "channels": info.input_size[0],
                    "size": info.input_size[1], "mean": None, "std": None, "upstream": "train"}
        if not _bn_layers(model):
            raise CnnlabError(f"{network}: the model {meta['model']} has no BatchNorm2d layer")
        with self._lock:
            self._models[network] = (model, meta)
        return model, meta

    def _capture(self, network: str, layer: str | None, batch_size: int, seed: int, shift: float, scale: float):
        """The input of the chosen BN layer for a batch of real images (or the synthetic draw)."""
        key = (network, layer, batch_size, seed, shift if network == "synthetic" else None,
               scale if network == "synthetic" else None)
        with self._lock:
            if key in self._inputs:
                self._inputs.move_to_end(key)
                return self._inputs[key]
        if network == "synthetic":
            generator = torch.Generator().manual_seed(seed)
            offsets = torch.randn(1, SYNTHETIC_CHANNELS, 1, 1, generator=generator)
            x = shift + scale * (offsets + torch.randn(batch_size, SYNTHETIC_CHANNELS, SYNTHETIC_SIZE,
                                                       SYNTHETIC_SIZE, generator=generator))
            bn = nn.BatchNorm2d(SYNTHETIC_CHANNELS)
            result = (x, bn, ["synthetic"], "synthetic", {"kind": "synthetic", "upstream": None,
                                                           "images": f"{batch_size} x {SYNTHETIC_CHANNELS} x "
                                                                     f"{SYNTHETIC_SIZE} x {SYNTHETIC_SIZE} draws of "
                                                                     f"N({shift:g} + offset, {scale:g}^2), one "
                                                                     "offset per channel"})
        else:
            model, meta = self._network(network)
            names = _bn_layers(model)
            layer = layer or names[min(len(names) // 2, len(names) - 1)]
            if layer not in names:
                raise CnnlabError(f"{meta['model']} has no BN layer {layer!r}; it has {', '.join(names[:6])}, ...")
            source = self.images.get("cifar10" if "cifar10" in self.images.names() else self.images.default())
            images, _, _ = source.pick(batch_size, seed)
            x = to_network_input(images, meta["channels"], meta["size"])
            if meta["mean"] is not None:
                mean, std = torch.tensor(meta["mean"]).view(1, -1, 1, 1), torch.tensor(meta["std"]).view(1, -1, 1, 1)
            else:  # an initialised net: standardise with the batch's own channel statistics
                mean, std = x.mean(dim=(0, 2, 3), keepdim=True), x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-3)
            x = (x - mean) / std
            bn = model.get_submodule(layer)
            try:
                captured = self._layer_input(model, bn, x, train=meta["upstream"] == "train")
            except (RuntimeError, ValueError) as error:
                raise CnnlabError(f"{network} cannot run on a batch of {batch_size}: "
                                  f"{str(error).splitlines()[0]}") from None
            result = (captured, bn, names, layer, {**meta, "images": f"{batch_size} {source.description} "
                                                                          f"images at {meta['size']}x{meta['size']}"})
        with self._lock:
            self._inputs[key] = result
            while len(self._inputs) > 16:
                self._inputs.popitem(last=False)
        return result

    def _layer_input(self, model: nn.Module, bn: nn.Module, x: torch.Tensor, train: bool) -> torch.Tensor:
        """What ``bn`` receives when ``model`` runs on ``x``; the layers after it are not run.

        An initialised net runs as in training (batch statistics upstream), a trained one as at
        inference. Momentum 0 leaves every running statistic as it was; one forward at a time,
        since the hook and the momentum switch act on the shared model."""
        captured = {}

        def hook(module, inputs):
            captured["x"] = inputs[0].detach().clone()
            raise _Stop

        norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d))]
        with self._forward_lock:
            handle = bn.register_forward_pre_hook(hook)
            momenta = [m.momentum for m in norms]
            was_training = model.training
            try:
                for m in norms:
                    m.momentum = 0.0
                model.train(train)
                with torch.no_grad():
                    model(x)
            except _Stop:
                pass
            finally:
                handle.remove()
                for m, momentum in zip(norms, momenta):
                    m.momentum = momentum
                model.train(was_training)
        return captured["x"]

    def explore(self, network: str, layer: str | None, batch_size: int, gamma: float | None, beta: float | None,
                seed: int, shift: float, scale: float, channel: int | None) -> dict:
        """Histograms before and after the layer (train and eval mode), per-channel statistics
        and the batch-size-1 comparison, for the layer's own affine parameters or ``gamma``/``beta``."""
        x, layer_module, names, layer, meta = self._capture(network, layer, batch_size, seed, shift, scale)
        if channel is not None and channel >= x.shape[1]:
            raise CnnlabError(f"channel {channel} does not exist: the layer has {x.shape[1]} channels (0-{x.shape[1] - 1})")
        bn = copy.deepcopy(layer_module)
        with torch.no_grad():
            if gamma is not None and bn.weight is not None:
                bn.weight.fill_(gamma)
            if beta is not None and bn.bias is not None:
                bn.bias.fill_(beta)
            running_mean, running_var = bn.running_mean.clone(), bn.running_var.clone()
            train_out = copy.deepcopy(bn).train()(x)
            eval_out = copy.deepcopy(bn).eval()(x)
            single_note = None
            try:
                single = copy.deepcopy(bn).train()(x[:1])
                single_diff = float((single[0] - train_out[0]).abs().max())
            except ValueError as error:  # one value per channel: no variance to divide by
                single, single_diff, single_note = None, None, str(error)
        pick = (lambda t: t[:, channel]) if channel is not None else (lambda t: t)
        batch_mean = x.mean(dim=(0, 2, 3))
        batch_var = x.var(dim=(0, 2, 3), unbiased=False)
        shown = min(x.shape[1], SHOWN_CHANNELS)
        weight = bn.weight.detach() if bn.weight is not None else torch.ones(x.shape[1])
        bias = bn.bias.detach() if bn.bias is not None else torch.zeros(x.shape[1])
        return finite({
            "network": network,
            "layer": layer,
            "layers": names,
            "source": meta,
            "shape": list(x.shape),
            "channel": channel,
            "eps": bn.eps,
            "gamma": [float(v) for v in weight[:shown]],
            "beta": [float(v) for v in bias[:shown]],
            "raw": _histogram(pick(x)),
            "train": _histogram(pick(train_out)),
            "eval": _histogram(pick(eval_out)),
            "channels": {
                "batch_mean": batch_mean[:shown].tolist(),
                "batch_var": batch_var[:shown].tolist(),
                "running_mean": running_mean[:shown].tolist(),
                "running_var": running_var[:shown].tolist(),
                "train_out_mean": train_out.mean(dim=(0, 2, 3))[:shown].tolist(),
                "eval_out_mean": eval_out.mean(dim=(0, 2, 3))[:shown].tolist(),
            },
            "batch_of_one": {
                "single": None if single is None else _histogram(pick(single)),
                "max_difference": single_diff,
                "note": single_note or ("image 1 normalised alone (its own mean and variance over "
                                        f"{x.shape[2]}x{x.shape[3]} positions) against within the batch of "
                                        f"{x.shape[0]}: its outputs differ by up to {single_diff:.3g}"),
            },
        })
