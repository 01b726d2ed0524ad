"""Training: the Trainer and its parts (loss, optimisers, LR schedules, seeding, logging, reports).

``train(load_recipe("lenet5-digits"))`` runs a whole recipe; :class:`Trainer` is the loop
itself; :class:`TrainConfig` holds every setting as a plain value. The names a training
script needs from elsewhere (the run format of :mod:`cnnlab.runs`, the device and precision
choice of :mod:`cnnlab.device`, initialisation from :mod:`cnnlab.layers`, the evaluation
loop of :mod:`cnnlab.eval`) are importable from here too.
"""
from .callbacks import Callback
from .logger import RunLogger, is_main_process
from .loss import classification_loss
from .optim import OPTIMIZER_NAMES, build_optimizer, param_groups, scaled_lr
from .report import METRIC_COLUMNS, plot_curves, read_metrics_csv
from .run import check_config, train
from .schedule import SCHEDULE_NAMES, LRSchedule, ReduceOnPlateau, build_schedule
from .seed import seed_everything
from .trainer import Trainer

# Re-exported for training scripts.
from ..device import (PRECISIONS, Precision, autocast_context, build_grad_scaler, cpu_native_bf16,
                      resolve_channels_last, resolve_device, resolve_precision)
from ..eval.loop import evaluate, predict_logits
from ..layers import INIT_SCHEMES, init_weights
from ..registry import build_model
from ..runs import (BEST, DEFAULT_RECIPE, LAST, TrainConfig, capture_rng_state, checkpoint_tags, field_names,
                    list_recipes, load_checkpoint, load_into, load_recipe, parse_set, recipe_names,
                    restore_rng_state, save_checkpoint)

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
    "check_config",
    "classification_loss",
]
