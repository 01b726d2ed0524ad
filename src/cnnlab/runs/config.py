"""A training run's configuration as plain values, and the YAML recipes that fill it in.

nanoGPT's habit: every knob of a run is a plain value in one place. :class:`TrainConfig`
is that place; a recipe (``src/cnnlab/recipes/<name>.yaml``) is a dict of some of its
fields, and ``cnnlab train --set key=value`` or a flag changes any of them. Keys that
are not fields are refused with the list of valid ones, so a typo never silently
trains the default.
"""
from __future__ import annotations

import dataclasses
import math
import os
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..data import parse_augment
from ..device import precision_name
from ..errors import CnnlabError, UnknownNameError, close_names, unknown_name
from ..layers import init_scheme_name

DEFAULT_RECIPE = "lenet5-digits"

# The per-iteration schedules of train.schedule, plus the per-epoch reduce-on-plateau.
SCHEDULES = ("constant", "step", "cosine", "onecycle", "plateau")
# The one-cycle schedule's shapes (torch's OneCycleLR anneal_strategy).
ANNEAL_STRATEGIES = ("cos", "linear")

# torch.compile's modes: "reduce-overhead" replays the step as CUDA graphs, which removes
# the per-kernel launch cost that dominates small CIFAR nets on a GPU.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

# Test-time augmentation the trainer's evaluations can do (``cnnlab eval`` has more: 10crop, multiscale).
TRAIN_TTA_MODES = ("none", "flip", "translate")

# Fields that say where and how fast a run computes, not what it computes: the only ones a
# resumed run may change (e.g. continue a GPU run on a CPU, or turn TensorBoard on). The
# evaluation batch is one of them: in eval mode BN uses its running statistics, so the
# batch size does not change what is computed.
#: Transfer-learning strategies (cnnlab.train.transfer): what trains of a pretrained model.
TRANSFER_STRATEGIES = ("linear-probe", "fine-tune-last", "fine-tune-all", "auto")

RUNTIME_KEYS = ("device", "compile", "fuse_bn_relu", "num_workers", "tensorboard", "cpu_threads", "eval_batch_size")


@dataclass
class TrainConfig:
    """Every setting of a training run; a recipe's keys are exactly these fields.

    Lecture idea (training in practice): a run is fully described by its model, data,
    optimiser, schedule, regularisation and seed, written down in one place. Units:
    epochs for ``epochs``, ``milestones`` and ``warmup_epochs`` (the trainer converts them
    to optimiser steps); fractions for ``val_fraction`` and ``label_smoothing``; 0-1
    pixel scale for ``mean``/``std``.
    """

    # -- what the run is
    recipe: str = "custom"  # the recipe's name (set by load_recipe); names the default output folder
    description: str = ""  # one line for `cnnlab recipes`

    # -- model
    model: str = "lenet5"
    model_args: dict = field(default_factory=dict)  # extra constructor arguments, e.g. {widths: [64, 128, 256]}
    dropout: float | None = None  # None: the model's own default (only for models that take `dropout`)
    drop_path_rate: float | None = None  # stochastic depth (only for models that take `drop_path_rate`)
    init: str = "default"  # kaiming | xavier | normal | default (keep the constructor's initialisation)
    # transfer learning: start from a run folder, a weights file or torchvision:NAME, the head replaced
    weights: str | None = None
    transfer: str = "auto"  # linear-probe | fine-tune-last | fine-tune-all | auto (the lecture's table)
    backbone_lr_scale: float = 0.1  # fine-tune-all: the pretrained layers' share of the learning rate
    probe_features: bool = False  # linear-probe: run the frozen layers once, train the head on cached features
    init_std: float = 0.01  # standard deviation of init: normal
    zero_init_residual: bool = False  # start every residual block as the identity (Goyal et al. 2017)

    # -- data
    data: str = "digits"  # a data set name (cifar10, mnist, digits, ...) or a folder / archive path
    data_root: str | None = None  # where named data sets are (default $CNNLAB_DATA)
    download: bool = False  # fetch a named data set that is missing
    image_size: int | str | None = None  # resize every image first, e.g. 32 or "224x224"
    in_memory: bool | None = None  # image folders: None decides by size, False streams files through workers
    val_fraction: float = 0.1  # held out of the training split when the data set has no val split
    split_seed: int = 0  # chooses the held-out validation images (fixed, so runs with other seeds compare)
    augment: str = ""  # batched augmentation spec, e.g. "flip, crop(pad=4)"; see cnnlab.data.parse_augment
    mean: list[float] | None = None  # per-channel normalisation; None: computed on the training split
    std: list[float] | None = None
    num_workers: int = 4  # DataLoader workers, for streamed image folders only
    drop_last: bool = False  # drop the last incomplete training batch of each epoch

    # -- optimisation
    epochs: int = 10
    batch_size: int = 128  # the global batch: under torchrun, split between the processes
    # gradient accumulation: each optimiser step's batch in this many micro-batches (the same
    # gradient as the whole batch at once, in 1/accumulate of the activation memory)
    accumulate: int = 1
    eval_batch_size: int | None = None  # default: 2 x batch_size
    tta: str = "none"  # test-time augmentation of the val and test evaluations: none | flip | translate
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])  # AdamW
    weight_decay: float = 5e-4
    no_decay_norm_and_bias: bool = True  # no weight decay on normalisation parameters and biases
    scale_lr: bool = False  # linear scaling rule: lr x batch_size / reference_batch
    reference_batch: int = 256
    schedule: str = "step"  # constant | step | cosine | onecycle | plateau
    milestones: list[float] = field(default_factory=list)  # step: epochs at which lr *= gamma ([] = 50%, 75%)
    gamma: float = 0.1  # step and plateau: the factor at each decay
    warmup_epochs: float = 0.0  # linear warm-up in front of the schedule (not one-cycle: it has its own)
    warmup_start_factor: float = 0.1
    min_lr: float = 0.0  # cosine: the final learning rate; plateau: the floor
    pct_start: float = 0.3  # one-cycle: fraction of the steps spent rising
    div_factor: float = 25.0  # one-cycle: start at lr / div_factor
    final_div_factor: float = 1e4  # one-cycle: end at lr / (div_factor x final_div_factor)
    # one-cycle: momentum (AdamW: beta1) cycles 0.95 -> 0.85 -> 0.95 against the lr, as in
    # Smith's policy; false keeps `momentum` (or betas) fixed for the whole run
    cycle_momentum: bool = True
    # one-cycle: the shape of both phases, "cos" (Smith's, torch's default) or "linear"
    # (airbench94's triangle: straight up to the peak, straight down)
    anneal_strategy: str = "cos"
    plateau_patience: int = 5  # plateau: epochs without improvement of the val loss before lr *= gamma
    plateau_threshold: float = 1e-4
    label_smoothing: float = 0.0
    aux_loss_weight: float = 0.3  # GoogLeNet's auxiliary classifiers
    grad_clip_norm: float | None = None  # clip the global gradient norm (None: no clipping)
    # learning-rate multiplier of normalisation shifts (airbench94: 64); if decayed (no_decay_norm_and_bias:
    # false), their decay is divided by it, so each step shrinks them like any other weight
    norm_bias_lr_scale: float = 1.0
    # lookahead / EMA of the weights pulled back into the network every N steps (airbench94: 5; 0: off)
    lookahead_every: int = 0
    lookahead_decay: float = 0.95  # per-step decay of the slow weights, ramped in by training progress cubed
    # exponential moving average of the weights, evaluated instead of them (timm's model EMA; 0: off)
    ema_decay: float = 0.0
    # airbench94's progressive freezing: train the patch-whitening layer's bias for this many
    # epochs, then freeze it, which spares the first convolution its input gradient (null: never)
    whiten_bias_epochs: int | None = None

    # -- how it runs
    seed: int = 0
    deterministic: bool = False  # deterministic kernels (slower on GPUs)
    device: str = "auto"  # auto (CUDA if present, else CPU) | cpu | cuda | cuda:1 | mps
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    channels_last: bool | str = "auto"
    # BN -> ReLU (and BN -> add -> ReLU) as one CPU kernel while training: auto | true | false
    # (auto: on a CPU in fp32 with channels_last and no compile; cnnlab.layers.fused_bn_relu)
    fuse_bn_relu: bool | str = "auto"
    compile: bool | str = False  # torch.compile the model: true (default mode) or a mode, e.g. reduce-overhead
    cpu_threads: int | None = None  # torch.set_num_threads; None: torch's default (under torchrun: cores / processes)
    sync_bn: bool = False  # under torchrun: batch norm over the global batch (SyncBatchNorm), not each process's share
    tensorboard: bool = False  # also log to TensorBoard (needs the tensorboard package)

    # ------------------------------------------------------------------ helpers

    def to_dict(self) -> dict:
        """The configuration as a plain dict (what recipes, checkpoints and reports hold)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, where: str = "config") -> "TrainConfig":
        """Build a config from a recipe-like dict; unknown keys and wrong types raise :class:`CnnlabError`."""
        return cls().updated(values, where=where)

    def updated(self, values: dict | None = None, *, where: str = "override", **kwargs) -> "TrainConfig":
        """A copy with some fields changed, each value checked and converted to the field's type."""
        changes = dict(values or {})
        changes.update(kwargs)
        if not isinstance(changes, dict):
            raise CnnlabError(f"{where} must be a mapping of keys to values")
        _reject_unknown(changes, where)
        hints = _field_types()
        converted = {key: _coerce(key, value, hints[key]) for key, value in changes.items()}
        return dataclasses.replace(self, **converted)

    @property
    def evaluation_batch_size(self) -> int:
        """The batch size of validation, test and prediction: ``eval_batch_size``, else twice
        the training batch (no gradients or optimiser state to hold, so twice fits)."""
        return self.eval_batch_size or 2 * self.batch_size

    def validate(self) -> "TrainConfig":
        """Check the values that the library's builders would otherwise only reject later
        (the trainer also runs its optimiser and schedule builders on them:
        :func:`cnnlab.train.run.check_config`)."""
        _positive_int("epochs", self.epochs)
        _positive_int("batch_size", self.batch_size)
        _positive_int("accumulate", self.accumulate)
        if self.batch_size % self.accumulate:
            raise CnnlabError(f"batch_size {self.batch_size} does not split into accumulate={self.accumulate} equal "
                              f"micro-batches; choose a batch size divisible by {self.accumulate}")
        if self.eval_batch_size is not None:
            _positive_int("eval_batch_size", self.eval_batch_size)
        _positive_int("reference_batch", self.reference_batch)
        if self.num_workers < 0:
            raise CnnlabError(f"num_workers must be 0 or more, got {self.num_workers}")
        if self.cpu_threads is not None:
            _positive_int("cpu_threads", self.cpu_threads)
        if self.tta not in TRAIN_TTA_MODES:
            raise CnnlabError(f"unknown tta {self.tta!r}; choose one of {', '.join(TRAIN_TTA_MODES)}")
        if self.schedule not in SCHEDULES:
            raise CnnlabError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        if not 0 <= self.val_fraction < 1:
            raise CnnlabError(f"val_fraction must be at least 0 and below 1, got {self.val_fraction}")
        if not 0 <= self.label_smoothing < 1:
            raise CnnlabError(f"label_smoothing must be at least 0 and below 1, got {self.label_smoothing}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise CnnlabError(f"warmup_epochs must be in [0, epochs) = [0, {self.epochs}), got {self.warmup_epochs}")
        if self.warmup_epochs and self.schedule == "onecycle":
            raise CnnlabError("the one-cycle schedule has its own warm-up (its first pct_start of training); "
                              "set pct_start instead of warmup_epochs")
        if self.anneal_strategy not in ANNEAL_STRATEGIES:
            raise CnnlabError(f"unknown anneal_strategy {self.anneal_strategy!r}; choose one of "
                              f"{', '.join(ANNEAL_STRATEGIES)}")
        if self.anneal_strategy != "cos" and self.schedule != "onecycle":
            raise CnnlabError(f"anneal_strategy only applies to schedule: onecycle, not {self.schedule!r}")
        if self.milestones and self.schedule != "step":
            raise CnnlabError(f"milestones only apply to schedule: step, not {self.schedule!r}")
        bad = [m for m in self.milestones if not self.warmup_epochs < m < self.epochs]
        if bad:
            raise CnnlabError(f"milestones are epochs and must lie in (warmup_epochs, epochs) = "
                              f"({self.warmup_epochs:g}, {self.epochs}), got {bad}; when you change epochs, set "
                              "milestones too (e.g. --set milestones=[30,60]), or --set milestones=[] to decay at "
                              "50% and 75% of training")
        if list(self.milestones) != sorted(set(self.milestones)):
            raise CnnlabError(f"milestones must be strictly increasing, got {self.milestones}")
        for name in ("dropout", "drop_path_rate"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < 1:
                raise CnnlabError(f"{name} must be in [0, 1) or null (the model's default), got {value}")
        for name in ("lr", "init_std"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) > 0):
                raise CnnlabError(f"{name} must be a positive number, got {getattr(self, name)}")
        if self.lookahead_every < 0:
            raise CnnlabError(f"lookahead_every must be 0 (off) or a number of steps, got {self.lookahead_every}")
        if self.transfer not in TRANSFER_STRATEGIES:
            raise unknown_name("transfer strategy", self.transfer, TRANSFER_STRATEGIES)
        if self.probe_features and not self.weights:
            raise CnnlabError("probe_features caches the features of pretrained layers: give weights (--weights)")
        if self.probe_features and self.transfer not in ("linear-probe", "auto"):
            raise CnnlabError(f"probe_features is the linear probe's fast path; transfer {self.transfer!r} trains "
                              "frozen layers too: use --transfer linear-probe, or drop probe_features")
        if not 0 < self.backbone_lr_scale <= 1:
            raise CnnlabError(f"backbone_lr_scale must lie in (0, 1], got {self.backbone_lr_scale}")
        if self.whiten_bias_epochs is not None and self.whiten_bias_epochs < 0:  # the loader checked the type
            raise CnnlabError(f"whiten_bias_epochs must be a number of epochs (0 or more) or null, "
                              f"got {self.whiten_bias_epochs!r}")
        if not 0 <= self.ema_decay < 1:
            raise CnnlabError(f"ema_decay must be 0 (off) or lie in (0, 1), e.g. 0.999, got {self.ema_decay}")
        if not 0 < self.lookahead_decay < 1:
            raise CnnlabError(f"lookahead_decay must lie in (0, 1), got {self.lookahead_decay}")
        if self.grad_clip_norm is not None and not self.grad_clip_norm > 0:
            raise CnnlabError(f"grad_clip_norm must be positive or null, got {self.grad_clip_norm}")
        if isinstance(self.compile, str) and self.compile not in COMPILE_MODES:
            raise CnnlabError(f"compile must be true, false or one of {', '.join(COMPILE_MODES)}, got {self.compile!r}")
        if isinstance(self.channels_last, str) and self.channels_last != "auto":
            raise CnnlabError(f"channels_last must be auto, true or false, got {self.channels_last!r}")
        if self.fuse_bn_relu not in ("auto", True, False):
            raise CnnlabError(f"fuse_bn_relu must be auto, true or false, got {self.fuse_bn_relu!r}")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None and (not value or any(not math.isfinite(v) for v in value)):
                raise CnnlabError(f"{name} must be a list of per-channel numbers (0-1 scale) or null")
        if (self.mean is None) != (self.std is None):
            raise CnnlabError("give both mean and std, or neither (then they are computed on the training split)")
        if self.std is not None and min(self.std) <= 0:
            raise CnnlabError(f"std must be positive, got {self.std}")
        # Names checked by their own modules, with their own messages, before any data loads.
        precision_name(self.precision)
        init_scheme_name(self.init)
        parse_augment(self.augment)
        return self


def _positive_int(name: str, value: int) -> None:
    if value < 1:
        raise CnnlabError(f"{name} must be at least 1, got {value}")


def field_names() -> list[str]:
    """The valid keys of a recipe (and of ``--set``), in declaration order."""
    return [f.name for f in dataclasses.fields(TrainConfig)]


def _reject_unknown(values: dict, where: str) -> None:
    valid = field_names()
    unknown = [key for key in values if key not in valid]
    if not unknown:
        return
    hints = []
    for key in unknown:
        close = close_names(key, valid, n=1, cutoff=0.6)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise UnknownNameError(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)} in {where}. "
                           f"Valid keys: {', '.join(valid)}")


_TYPE_CACHE: dict[str, Any] = {}


def _field_types() -> dict[str, Any]:
    if not _TYPE_CACHE:
        _TYPE_CACHE.update(typing.get_type_hints(TrainConfig))
    return _TYPE_CACHE


def _describe(hint) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(arg) for arg in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is list:
        return f"a list of {_describe(typing.get_args(hint)[0])}s" if typing.get_args(hint) else "a list"
    if origin is dict or hint is dict:
        return "a mapping"
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string"}.get(hint, str(hint))


class _Mismatch(Exception):
    pass


def _convert(value, hint):
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None:
            if type(None) in args:
                return None
            raise _Mismatch
        # Try the exact type first, so 32 stays an int and "32x32" a string in `int | str`.
        for arg in args:
            plain = arg is not type(None) and typing.get_origin(arg) is None
            if plain and isinstance(value, arg) and not (arg is int and isinstance(value, bool)):
                return value
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg)
            except _Mismatch:
                continue
        raise _Mismatch
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "false", "no", "off"):
            return value.lower() in ("true", "yes", "on")
        raise _Mismatch
    if hint in (int, float):
        if isinstance(value, bool):
            raise _Mismatch
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                return hint(value)
            except ValueError:
                raise _Mismatch from None
        if hint is float and isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():  # 32.0 is the integer 32
            return int(value)
        raise _Mismatch
    if hint is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise _Mismatch
    if origin is list:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise _Mismatch
        (item,) = typing.get_args(hint)
        return [_convert(v, item) for v in value]
    if hint is dict or origin is dict:
        if not isinstance(value, dict):
            raise _Mismatch
        return dict(value)
    raise _Mismatch


def _coerce(name: str, value, hint):
    try:
        return _convert(value, hint)
    except _Mismatch:
        raise CnnlabError(f"{name} must be {_describe(hint)}, got {value!r}") from None


# ---------------------------------------------------------------------- recipes


def _recipe_dir():
    return resources.files("cnnlab") / "recipes"


def list_recipes() -> list[dict]:
    """The recipes shipped with cnnlab: name, model, data, epochs and description of each, sorted by name."""
    rows = []
    for entry in sorted(_recipe_dir().iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        name = entry.name[: -len(".yaml")]
        config = _config_from_text(entry.read_text(encoding="utf-8"), name, f"recipe {name!r}")
        rows.append({"name": name, "model": config.model, "data": config.data, "epochs": config.epochs,
                     "description": config.description})
    return rows


def recipe_names() -> list[str]:
    """Names of the shipped recipes."""
    return sorted(e.name[: -len(".yaml")] for e in _recipe_dir().iterdir() if e.name.endswith(".yaml"))


def _config_from_text(text: str, name: str, where: str) -> TrainConfig:
    import yaml

    try:
        values = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise CnnlabError(f"{where} is not valid YAML: {error}") from None
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise CnnlabError(f"{where} must be a mapping of keys to values, got {type(values).__name__}")
    values.setdefault("recipe", name)
    return TrainConfig.from_dict(values, where=where)


def load_recipe(recipe: str | os.PathLike | None = None, overrides: dict | None = None, **kwargs) -> TrainConfig:
    """The :class:`TrainConfig` of a shipped recipe (by name) or a YAML file (by path), with overrides.

    ``recipe=None`` is the default recipe, ``lenet5-digits``. ``overrides`` (and keyword
    arguments) replace fields: ``load_recipe("resnet20-cifar10", epochs=2)``; a new ``epochs``
    without new ``milestones`` moves a step schedule's milestones with it, keeping their
    fractions of training (182 epochs at [91, 136] become 10 at [5.0, 7.473]). An unknown
    recipe, an unknown key or a value of the wrong type raises :class:`CnnlabError`.
    """
    recipe = DEFAULT_RECIPE if recipe is None else recipe
    text_path = Path(recipe).expanduser()
    looks_like_file = str(recipe).endswith((".yaml", ".yml")) or os.sep in str(recipe)
    if looks_like_file or (text_path.is_file() and str(recipe) not in recipe_names()):
        if not text_path.is_file():
            raise CnnlabError(f"recipe file {str(recipe)!r} does not exist")
        try:
            text = text_path.read_text(encoding="utf-8")
        except OSError as error:
            raise CnnlabError(f"cannot read recipe file {str(recipe)!r}: {error}") from None
        stem = text_path.name.rsplit(".", 1)[0]
        config = _config_from_text(text, stem, f"recipe file {str(recipe)!r}")
    else:
        name = str(recipe)
        names = recipe_names()
        if name not in names:
            raise unknown_name("recipe", name, names, f"Shipped recipes: {', '.join(names)} (`cnnlab recipes` "
                               "describes them), or give the path of a YAML file", n=3)
        text = (_recipe_dir() / f"{name}.yaml").read_text(encoding="utf-8")
        config = _config_from_text(text, name, f"recipe {name!r}")
    changes = dict(overrides or {})
    changes.update(kwargs)
    if "epochs" in changes and "milestones" not in changes and config.milestones:
        # The papers' step decays sit at fractions of training (the ResNet paper's 32k and 48k
        # of 64k iterations): a recipe run for other epochs keeps them at the same fractions.
        epochs = changes["epochs"]
        if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0 and epochs != config.epochs:
            changes["milestones"] = [round(m * epochs / config.epochs, 3) for m in config.milestones]
    if changes:
        config = config.updated(changes, where="overrides")
    return config


def parse_set(items: list[str] | None) -> dict:
    """``["lr=0.05", "milestones=[30, 60]"]`` -> ``{"lr": 0.05, "milestones": [30, 60]}`` (values read as YAML)."""
    import yaml

    values: dict = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise CnnlabError(f"--set takes key=value, got {item!r}")
        try:
            values[key] = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            values[key] = text
    _reject_unknown(values, "--set")
    return values


def to_yaml(config: TrainConfig) -> str:
    """The config as a YAML recipe (every field), e.g. a run's ``config.yaml``."""
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False, default_flow_style=None, width=100)
