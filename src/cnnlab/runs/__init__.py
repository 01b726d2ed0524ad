"""What a run folder holds, for the code that writes it (train) and the code that reads it (eval).

- :mod:`.config`: :class:`TrainConfig`, every setting of a run as a plain value, and the
  shipped YAML recipes that fill it in.
- :mod:`.checkpoint`: the ``<tag>.safetensors`` weights and ``<tag>.state.pt`` state of a
  checkpoint, written atomically and read back strictly, with the random-generator states.
"""
from .checkpoint import (BEST, LAST, STATE_SUFFIX, WEIGHTS_SUFFIX, capture_rng_state, checkpoint_tags,
                         load_checkpoint, load_into, restore_rng_state, save_checkpoint)
from .config import (DEFAULT_RECIPE, RUNTIME_KEYS, TRANSFER_STRATEGIES, TrainConfig, field_names, list_recipes, load_recipe, parse_set,
                     recipe_names, to_yaml)

__all__ = ["TRANSFER_STRATEGIES", "BEST", "DEFAULT_RECIPE", "LAST", "RUNTIME_KEYS", "STATE_SUFFIX", "TrainConfig", "WEIGHTS_SUFFIX",
           "capture_rng_state", "checkpoint_tags", "field_names", "list_recipes", "load_checkpoint", "load_into",
           "load_recipe", "parse_set", "recipe_names", "restore_rng_state", "save_checkpoint", "to_yaml"]
