"""The trainer and its building blocks: optimisers, LR schedules, initialisation, checkpoints, precision, seeding.

``train(load_recipe("lenet5-digits"))`` runs a whole recipe; :class:`Trainer` is the loop
itself; :class:`TrainConfig` holds every setting as a plain value.
"""
from .checkpoint import (
    BEST,
    LAST,
    capture_rng_state,
    checkpoint_tags,
    load_checkpoint,
    load_into,
    restore_rng_state,
    save_checkpoint,
)
from .init import INIT_SCHEMES, init_weights
from .optim import OPTIMIZER_NAMES, build_optimizer, param_groups, scaled_lr
from .precision import (
    PRECISIONS,
    Precision,
    autocast_context,
    build_grad_scaler,
    cpu_native_bf16,
    resolve_channels_last,
    resolve_precision,
)
from .schedule import SCHEDULE_NAMES, LRSchedule, ReduceOnPlateau, build_schedule
from .seed import seed_everything
from .config import DEFAULT_RECIPE, TrainConfig, field_names, list_recipes, load_recipe, parse_set, recipe_names
from .logger import RunLogger, is_main_process
from .report import METRIC_COLUMNS, plot_curves, read_metrics_csv
from .trainer import Callback, Trainer, build_model, evaluate, predict_logits, resolve_device, train

__all__ = [
    "BEST",
    "LAST",
    "capture_rng_state",
    "checkpoint_tags",
    "load_checkpoint",
    "load_into",
    "restore_rng_state",
    "save_checkpoint",
    "INIT_SCHEMES",
    "init_weights",
    "OPTIMIZER_NAMES",
    "build_optimizer",
    "param_groups",
    "scaled_lr",
    "PRECISIONS",
    "Precision",
    "autocast_context",
    "build_grad_scaler",
    "cpu_native_bf16",
    "resolve_channels_last",
    "resolve_precision",
    "SCHEDULE_NAMES",
    "LRSchedule",
    "ReduceOnPlateau",
    "build_schedule",
    "seed_everything",
    "DEFAULT_RECIPE",
    "TrainConfig",
    "field_names",
    "list_recipes",
    "load_recipe",
    "parse_set",
    "recipe_names",
    "RunLogger",
    "is_main_process",
    "METRIC_COLUMNS",
    "plot_curves",
    "read_metrics_csv",
    "Callback",
    "Trainer",
    "build_model",
    "evaluate",
    "predict_logits",
    "resolve_device",
    "train",
]
