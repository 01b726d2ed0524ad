"""Hooks into the training loop, for code that watches or stops a run without changing it."""
from __future__ import annotations


class Callback:
    """Hooks into the loop; override what you need. ``trainer.step``/``trainer.epoch`` say where it is.

    Raising ``KeyboardInterrupt`` from a hook stops the run as Ctrl-C does: the state after
    the step just completed is saved as the resumable ``last`` checkpoint.
    """

    def on_step_end(self, trainer) -> None:
        pass

    def on_epoch_end(self, trainer, row: dict) -> None:
        pass
