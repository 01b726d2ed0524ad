"""Transfer learning (lectures 7 and 9): start from another run's or torchvision's weights.

``weights`` names the source: a cnnlab run folder (its best, else last, checkpoint), a
``.safetensors`` or torch state_dict file (torchvision's layout loads into the
torchvision-compatible models), or ``torchvision:NAME[.WEIGHTS]`` (torchvision's published
weights, e.g. ``torchvision:resnet18``: downloaded with their hash checked, or read from
torch's hub cache when offline). Every tensor whose name and shape fit is loaded; the
classification head is replaced for the new classes.

``transfer`` is the strategy, the lecture's 2x2 table of data size against similarity:

=================  ========================================  ===================================
strategy           what trains                               when (the lecture's table)
=================  ========================================  ===================================
``linear-probe``   the new head only                         little data, similar to the source
``fine-tune-last`` the head and the last stage               more data, similar; or a start for
                                                             little data of another kind
``fine-tune-all``  everything; the pretrained layers at      a lot of data (of any kind)
                   ``backbone_lr_scale`` (0.1) of the rate
``auto``           one of the above, chosen from the         and printed with its reasons
                   training images per class and how the
                   data resembles the source
=================  ========================================  ===================================

BatchNorm layers of frozen parts stay in eval mode (their running statistics are part of
what was transferred); :func:`freeze_norm_statistics` is called after every ``model.train()``.
"""
from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ..errors import CnnlabError, unknown_name
from ..runs import TRANSFER_STRATEGIES as STRATEGIES
from ..weights import read_state_dict

__all__ = ["STRATEGIES", "apply_strategy", "choose_strategy", "freeze_norm_statistics", "last_stage",
           "load_pretrained", "prepare_transfer", "read_source"]

#: Fewer training images per class than this is "little data" in the lecture's table.
LITTLE_DATA_PER_CLASS = 100
#: At least this many per class is "a lot of data": every layer can be fine-tuned.
LOTS_OF_DATA_PER_CLASS = 1000


def read_source(source: str) -> tuple[dict[str, torch.Tensor], str]:
    """The state dict of a weights source and a description of it."""
    if source.startswith("torchvision:"):
        return _torchvision_weights(source.split(":", 1)[1])
    path = Path(source).expanduser()
    if path.is_dir():
        for tag in ("best", "last"):
            file = path / f"{tag}.safetensors"
            if file.is_file():
                return read_state_dict(file), f"the {tag} checkpoint of the run {path}"
        raise CnnlabError(f"{path} holds no best.safetensors or last.safetensors: not a cnnlab run folder")
    if not path.exists():
        raise CnnlabError(f"weights {source!r}: no such file or folder (give a run folder, a .safetensors or "
                          "torch state_dict file, or torchvision:NAME)")
    return read_state_dict(path), str(path)


def _torchvision_weights(spec: str) -> tuple[dict[str, torch.Tensor], str]:
    import torchvision

    name, _, which = spec.partition(".")
    try:
        enum = torchvision.models.get_model_weights(name)
    except (ValueError, KeyError):
        raise unknown_name("torchvision model", name, torchvision.models.list_models(module=torchvision.models),
                           "torchvision:NAME takes a torchvision classification model name") from None
    options = [member for member in enum.__members__ if member != "DEFAULT"]
    if which and which not in enum.__members__:
        raise unknown_name(f"weights of {name}", which, options)
    weights = enum[which or "DEFAULT"]
    filename = weights.url.rsplit("/", 1)[-1]
    cached = Path(torch.hub.get_dir()) / "checkpoints" / filename
    try:
        state = weights.get_state_dict(progress=False, check_hash=True)
    except Exception as error:  # no network, a proxy error, a bad hash: one message
        raise CnnlabError(f"cannot get torchvision's {weights} weights ({type(error).__name__}: {error}); offline, "
                          f"put {filename} (from {weights.url}) at {cached} or pass the file's path as --weights"
                          ) from None
    return state, f"torchvision's {weights} ({cached})"


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> dict:
    """Load every tensor of ``state`` whose name and shape fit ``model``, except its classifier.

    The classifier (``model.classifier_name``) stays freshly initialised for the new classes.
    Anything else that does not fit is an error listing the keys: weights of another
    architecture are not transfer learning, they are a mistake.
    """
    own = model.state_dict()
    head = getattr(model, "classifier_name", None)
    in_head = (lambda key: key.startswith(head + ".")) if head else (lambda key: False)
    missing = [k for k in own if k not in state and not in_head(k)]
    unexpected = [k for k in state if k not in own and not in_head(k)]
    wrong_shape = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                   if k in state and not in_head(k) and state[k].shape != own[k].shape]
    if missing or unexpected or wrong_shape:
        def listing(keys):
            return ", ".join(keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")
        parts = [f"{label}: {listing(keys)}" for label, keys in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong_shape)) if keys]
        raise CnnlabError(f"the weights of {source} do not fit {type(model).__name__} (" + "; ".join(parts) +
                          "): weights of another architecture; pick the model they were trained for")
    loaded = {k: v for k, v in state.items() if k in own and not in_head(k)}
    model.load_state_dict(loaded, strict=False)
    return {"loaded": len(loaded), "head": head}


def _has_parameters(module: nn.Module) -> bool:
    return any(True for _ in module.parameters())


def _has_weight_layer(module: nn.Module) -> bool:
    return any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in module.modules())


def _last_block(prefix: str, module: nn.Module) -> list[str]:
    """The last child of ``module`` with a convolution or linear layer, with the normalisation
    layers after it (DenseNet's ``norm5``)."""
    children = [(n, m) for n, m in module.named_children() if _has_parameters(m)]
    tail = []
    for name, child in reversed(children):
        tail.insert(0, f"{prefix}.{name}")
        if _has_weight_layer(child):
            return tail
    return [prefix]


def last_stage(model: nn.Module) -> list[str]:
    """The names of the modules of the network's last stage before its classifier.

    The last top-level child with parameters before the one holding the classifier (ResNet's
    ``layer4``), auxiliary heads (GoogLeNet's ``aux1``/``aux2``) left out; where that child is
    one long body (``features``), its last block; where the head block holds weight layers
    besides the classifier (VGG's ``classifier``), those are the last stage.
    """
    head = getattr(model, "classifier_name", "")
    head_child = head.split(".")[0]
    children = [(name, child) for name, child in model.named_children() if _has_parameters(child)]
    head_block = dict(children).get(head_child)
    extra = []
    if head_block is not None and head != head_child:
        others = [(f"{head_child}.{n}", m) for n, m in head_block.named_children()
                  if f"{head_child}.{n}" != head and _has_parameters(m)]
        if any(_has_weight_layer(m) for _, m in others):
            return [n for n, _ in others]
        extra = [n for n, _ in others]  # a norm before the classifier (ConvNeXt): trained with the last stage
    body = [(name, child) for name, child in children if name != head_child and not name.startswith("aux")]
    if not body:
        return extra
    name, child = body[-1]
    if len(body) == 1 or name == "features":  # one long body: its last block
        return _last_block(name, child) + extra
    return [name] + extra


def _under(name: str, prefixes: list[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def apply_strategy(model: nn.Module, strategy: str) -> dict:
    """Freeze what ``strategy`` keeps fixed; return what trains (``head`` and ``trainable`` module names)."""
    if strategy not in STRATEGIES or strategy == "auto":
        raise CnnlabError(f"unknown transfer strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}")
    head = getattr(model, "classifier_name", None)
    if not head:
        raise CnnlabError(f"{type(model).__name__} names no classifier: transfer strategies need one")
    trainable = {"linear-probe": [head], "fine-tune-last": [head] + last_stage(model),
                 "fine-tune-all": [""]}[strategy]
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(strategy == "fine-tune-all" or _under(name, trainable))
    frozen = sorted({name for name, m in model.named_modules()
                     if isinstance(m, nn.modules.batchnorm._BatchNorm) and not any(
                         p.requires_grad for p in m.parameters(recurse=False))})
    model._cnnlab_frozen_norms = frozen  # read by freeze_norm_statistics
    return {"head": [head], "trainable": trainable if strategy != "fine-tune-all" else ["(every layer)"],
            "parameters": sum(p.numel() for p in model.parameters() if p.requires_grad)}


def freeze_norm_statistics(model: nn.Module) -> None:
    """Put the BatchNorm layers of frozen parts back into eval mode (after ``model.train()``)."""
    for name in getattr(model, "_cnnlab_frozen_norms", ()):
        model.get_submodule(name).eval()


def choose_strategy(train_images: int, num_classes: int, source_mean, source_std, data_mean, data_std,
                    source_channels: int, data_channels: int) -> tuple[str, list[str]]:
    """The lecture's 2x2 table: little or a lot of data, similar or different to the source."""
    per_class = train_images / max(1, num_classes)
    reasons = []
    similar = True
    if source_channels != data_channels:
        similar = False
        reasons.append(f"the data has {data_channels} channel(s), the source {source_channels}: a different kind")
    elif source_mean is not None and data_mean is not None:
        # Pixel statistics within a few standard deviations' tenths of the source's: the same
        # kind of images (natural photos); far off (digits, X-rays, sketches): another kind.
        gap = max(abs(a - b) / s for a, b, s in zip(data_mean, source_mean, source_std))
        spread = max(abs(math.log(a / b)) for a, b in zip(data_std, source_std))
        similar = gap < 0.5 and spread < 0.4
        reasons.append(f"pixel statistics {'close to' if similar else 'far from'} the source's (mean off by "
                       f"{gap:.2f} source standard deviations, spread ratio e^{spread:.2f})")
    else:
        reasons.append("no source statistics to compare with: taken as similar")
    size = ("little" if per_class < LITTLE_DATA_PER_CLASS else
            "a lot of" if per_class >= LOTS_OF_DATA_PER_CLASS else "a fair amount of")
    reasons.append(f"{per_class:.0f} training images per class: {size} data")
    if size == "a lot of":
        strategy = "fine-tune-all"
    elif size == "little":
        strategy = "linear-probe" if similar else "fine-tune-last"
    else:
        strategy = "fine-tune-last" if similar else "fine-tune-all"
    reasons.append(f"the lecture's table: {size} data, {'similar' if similar else 'different'} images -> {strategy}")
    return strategy, reasons


def _source_statistics(source: str, state: dict, model_name: str):
    """(mean, std, input channels) the source was trained with, as far as it says."""
    first_conv = next((t for t in state.values() if t.dim() == 4), None)
    channels = int(first_conv.shape[1]) if first_conv is not None else None
    path = Path(source).expanduser()
    if path.is_dir() and (path / "config.yaml").is_file():
        import yaml

        values = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        return values.get("mean"), values.get("std"), channels
    from ..registry import model_info

    info = model_info(model_name)
    return (list(info.mean) if info.mean else None), (list(info.std) if info.std else None), channels


def prepare_transfer(model: nn.Module, config, train_set, in_chans: int) -> tuple[object, dict, list[str]]:
    """Load ``config.weights`` into ``model``, resolve ``transfer: auto`` and freeze what the
    strategy keeps fixed. Returns the config (with the strategy chosen), what trains, and
    the lines to tell the user."""
    import dataclasses

    from ..data import channel_stats

    state, description = read_source(config.weights)
    loaded = load_pretrained(model, state, description)
    lines = [f"transfer: {loaded['loaded']} tensors from {description}; a new {loaded['head']} for "
             f"{len(train_set.classes)} classes"]
    strategy = config.transfer
    if strategy == "auto":
        source_mean, source_std, source_channels = _source_statistics(config.weights, state, config.model)
        data_mean, data_std = channel_stats(train_set)
        strategy, reasons = choose_strategy(len(train_set), len(train_set.classes), source_mean, source_std,
                                            data_mean, data_std, source_channels or in_chans, in_chans)
        lines += [f"transfer: auto: {reason}" for reason in reasons]
        config = dataclasses.replace(config, transfer=strategy)
    trains = apply_strategy(model, strategy)
    lines.append(f"transfer: {strategy}: training {', '.join(trains['trainable'])} "
                 f"({trains['parameters']:,} parameters)" + (f", the pretrained layers at "
                                                             f"{config.backbone_lr_scale:g}x the learning rate"
                                                             if strategy == "fine-tune-all" else ""))
    return config, trains, lines


class CachedFeatures:
    """The linear probe's fast path: the frozen network run once, the head trained on its features.

    Lecture 8's "use the CNN as a fixed feature extractor": with every layer but the new
    head frozen (and their BatchNorm in eval mode), the input of the head is the same
    each time an image is seen, so it is computed once over the unaugmented training
    images and each epoch trains only the head, a single linear layer, on those vectors:
    an epoch costs a matrix product instead of the network's forward and backward pass.
    What is given up is augmentation, which the frozen features would not see anyway
    except through the head. The head keeps its place in the model, so the run's
    checkpoints, evaluation and prediction are those of a plain linear-probe run.
    """

    def __init__(self, model: nn.Module, loader, *, autocast) -> None:
        self.head = model.get_classifier()
        captured, labels = [], []
        hook = self.head.register_forward_pre_hook(lambda module, args: captured.append(args[0].detach().float()))
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                for images, targets in loader:
                    with autocast():
                        model(images)
                    labels.append(targets)
        finally:
            hook.remove()
            model.train(was_training)
        self.features, self.labels = torch.cat(captured), torch.cat(labels)

    def __len__(self) -> int:
        return self.features.shape[0]

    def epoch_batches(self, order: torch.Tensor, batch_size: int, count: int, skip: int = 0):
        """Batches ``skip`` to ``count`` of (features, labels) in ``order`` (the epoch's permutation)."""
        order = order.to(self.features.device)
        for index in range(skip, count):
            chosen = order[index * batch_size: (index + 1) * batch_size]
            yield self.features.index_select(0, chosen), self.labels.index_select(0, chosen)

