"""What the trainer tests share: a run small enough to train in about a second, and a Ctrl-C stand-in."""
from cnnlab.train import Callback, TrainConfig, load_checkpoint, load_recipe


def tiny(**changes) -> TrainConfig:
    """LeNet-5 on the digits, 2 short epochs: a whole run in about a second."""
    values = dict(epochs=2, batch_size=64, lr=0.05, schedule="cosine", warmup_epochs=0.5, deterministic=True,
                  augment="crop(pad=2), mixup(0.4)", label_smoothing=0.1, device="cpu")
    values.update(changes)
    return load_recipe("lenet5-digits", **values)


class StopAt(Callback):
    """Raises KeyboardInterrupt, as Ctrl-C would, after optimiser step ``step``."""

    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer):
        if trainer.step == self.step:
            raise KeyboardInterrupt


def weights(directory, tag="last"):
    return load_checkpoint(directory, tag)[0]
