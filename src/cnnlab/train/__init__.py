"""Building blocks of the trainer: optimisers, LR schedules, initialisation, checkpoints, precision, seeding."""
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
]
