"""``cnnlab doctor``: the first steps of lecture 7's hyper-parameter recipe, run as checks.

Before any long training run, the lecture's recipe is:

1. **Check the initial loss.** With a softmax over C classes and small random weights the
   network predicts about uniformly, so the loss starts near ln C (2.30 for 10 classes);
   adding regularisation must make the loss go up. A loss far from ln C means a bad
   initialisation (outputs too large) or a bug in the loss.
2. **Overfit a small sample.** With regularisation off, the network must reach ~100%
   training accuracy on 20-50 images within a few hundred steps; if it cannot, something is
   broken (labels, loss, a frozen or mis-wired model, a learning rate far off).
3. **Find a learning rate that makes the loss go down** (the range test of Smith 2017, as
   fastai's ``lr_find``): the learning rate grows exponentially step by step over real
   augmented batches; the loss curve is drawn, and the learning rate where the smoothed
   loss falls fastest is suggested. A loss that falls at no learning rate points at the
   data (labels that do not match the images) or a network that does not learn.

Each check returns pass or fail, its numbers, and on failure the lecture's advice.
"""
from __future__ import annotations

import dataclasses
import io
import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.console import Console

from ..device import autocast_context
from ..errors import CnnlabError
from ..figures import save_figure
from ..registry import build_model
from ..runs import TrainConfig
from .optim import build_optimizer
from .trainer import Trainer

__all__ = ["Check", "Doctor"]


@dataclass
class Check:
    """One check's outcome: ``passed``, what was measured, and the advice when it failed."""

    name: str
    passed: bool
    summary: str
    advice: str = ""
    values: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Doctor:
    """The checks on one training configuration. Builds the run's data and model as the
    trainer does (in a scratch folder); each check starts from a freshly built model
    (:meth:`new_model`, which a caller may replace to examine a model of its own)."""

    def __init__(self, config: TrainConfig):
        self.config = config
        self._scratch = tempfile.TemporaryDirectory(prefix="cnnlab-doctor-")
        quiet_console = Console(file=io.StringIO())
        self.trainer = Trainer(dataclasses.replace(config, epochs=1, tensorboard=False),
                               Path(self._scratch.name) / "run", quiet=True, console=quiet_console)
        self.device = self.trainer.device
        self.num_classes = self.trainer.num_classes

    def close(self) -> None:
        self._scratch.cleanup()

    def __enter__(self) -> "Doctor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ parts

    def new_model(self) -> torch.nn.Module:
        """A freshly initialised model, as the trainer would start it."""
        trainer = self.trainer
        model = build_model(self.config, num_classes=self.num_classes, in_chans=trainer.in_chans).to(self.device)
        if trainer.precision.channels_last:
            model = model.to(memory_format=torch.channels_last)
        if hasattr(model, "init_from_data"):
            from ..data import init_sample

            model.init_from_data(init_sample(trainer.train_set, trainer.config.mean, trainer.config.std)
                                 .to(self.device))
        return model.train()

    def _forward_loss(self, model, images, targets) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast_context(self.device, self.trainer.precision):
            outputs = model(images)
        logits = (outputs[0] if isinstance(outputs, (tuple, list)) else outputs).float()
        return F.cross_entropy(logits, targets), logits

    def _plain_batches(self, count: int):
        """The first ``count`` training images and labels, normalised, without augmentation."""
        from ..data import build_loader

        trainer = self.trainer
        loader = build_loader(trainer.train_set, max(1, count), train=False, augment=trainer.pipeline,
                              mean=trainer.config.mean, std=trainer.config.std, device=self.device,
                              channels_last=trainer.precision.channels_last)
        images, labels = next(iter(loader.epoch_batches(0)))
        return images[:count], labels[:count]

    # ------------------------------------------------------------------ the checks

    @torch.no_grad()
    def initial_loss(self, batches: int = 4) -> Check:
        """Step 1: the loss of the untrained network against ln C; and more regularisation, more loss."""
        model = self.new_model()
        chance = math.log(self.num_classes)
        losses = []
        for index, (images, targets) in enumerate(self.trainer.train_loader.epoch_batches(0)):
            if index == batches:
                break
            labels = targets.argmax(dim=1) if targets.dim() == 2 else targets
            losses.append(float(self._forward_loss(model, images, labels)[0]))
        loss = sum(losses) / len(losses)
        squared = sum(float(p.float().pow(2).sum()) for p in model.parameters() if p.dim() > 1)
        decay = self.config.weight_decay or 5e-4
        with_decay = [loss + 0.5 * strength * squared for strength in (decay, 10 * decay, 100 * decay)]
        rises = all(b > a for a, b in zip([loss] + with_decay, with_decay))
        # Within a quarter of ln C either way: uniform-ish predictions, as small random weights give.
        near = 0.75 * chance <= loss <= 1.25 * chance
        values = {"loss": loss, "ln_classes": chance, "with_weight_decay": dict(zip(("1x", "10x", "100x"), with_decay))}
        summary = (f"initial loss {loss:.3f} against ln {self.num_classes} = {chance:.3f}; with weight decay "
                   f"{decay:g} x 1, 10, 100 the loss is {', '.join(f'{v:.3f}' for v in with_decay)}")
        if near and rises:
            return Check("initial loss", True, summary, values=values)
        if not near:
            advice = ("the untrained network should predict about uniformly: a loss far above ln C means outputs "
                      "that are too large (a bad initialisation: use He/Kaiming init, BatchNorm, or scale the "
                      "last layer down) or a loss computed wrongly (the wrong scale, labels out of range)")
        else:
            advice = "regularisation does not raise the loss: the weight penalty is not part of what is optimised"
        return Check("initial loss", False, summary, advice, values)

    def overfit_small_sample(self, images: int = 32, max_steps: int = 300) -> Check:
        """Step 2: no regularisation, one small fixed batch: training accuracy must reach 100%."""
        model = self.new_model()
        if not any(p.requires_grad for p in model.parameters()):
            return _frozen("overfit a small sample")
        batch, labels = self._plain_batches(images)
        config = self.config
        optimizer = build_optimizer(model, config.optimizer, config.lr, momentum=config.momentum,
                                    nesterov=config.nesterov, weight_decay=0.0, betas=config.betas)
        accuracy, loss, step = 0.0, float("nan"), 0
        for step in range(1, max_steps + 1):
            loss_tensor, logits = self._forward_loss(model, batch, labels)
            optimizer.zero_grad(set_to_none=True)
            loss_tensor.backward()
            optimizer.step()
            loss = float(loss_tensor.detach())
            accuracy = 100.0 * float((logits.argmax(dim=1) == labels).float().mean())
            if not math.isfinite(loss) or accuracy == 100.0:
                break
        values = {"images": int(labels.numel()), "steps": step, "train_top1": accuracy, "loss": loss}
        summary = (f"{labels.numel()} images, regularisation off, lr {config.lr:g}: training accuracy "
                   f"{accuracy:.1f}% after {step} steps (loss {loss:.4g})")
        if accuracy == 100.0:
            return Check("overfit a small sample", True, summary, values=values)
        if not math.isfinite(loss):
            advice = "the loss blew up on a handful of images: the learning rate is far too high"
        else:
            advice = ("a working network memorises a few dozen images: check that labels match images, that the "
                      "loss is cross-entropy on logits, that the layers are trainable (not frozen) and wired up; "
                      "try a higher or lower learning rate")
        return Check("overfit a small sample", False, summary, advice, values)

    def lr_range_test(self, steps: int = 100, start_lr: float = 1e-6, end_lr: float = 10.0,
                      plot: str | Path | None = None) -> Check:
        """Step 3: the learning rate grows exponentially from ``start_lr`` to ``end_lr`` over
        ``steps`` augmented batches; the steepest fall of the smoothed loss is the suggestion."""
        if not 0 < start_lr < end_lr:
            raise CnnlabError(f"the range test needs 0 < start_lr < end_lr, got {start_lr} and {end_lr}")
        model = self.new_model()
        if not any(p.requires_grad for p in model.parameters()):
            return _frozen("learning-rate range test")
        config = self.config
        optimizer = build_optimizer(model, config.optimizer, start_lr, momentum=config.momentum,
                                    nesterov=config.nesterov, weight_decay=config.weight_decay, betas=config.betas,
                                    no_decay_norm_and_bias=config.no_decay_norm_and_bias)
        factor = (end_lr / start_lr) ** (1.0 / max(1, steps - 1))
        lrs, smoothed, raw = [], [], []
        average, best = 0.0, math.inf
        batches = self._repeating_batches()
        for step in range(steps):
            lr = start_lr * factor ** step
            for group in optimizer.param_groups:
                group["lr"] = lr
            images, targets = next(batches)
            loss_tensor, _ = self._forward_loss(model, images, targets.argmax(dim=1) if targets.dim() == 2 else targets)
            optimizer.zero_grad(set_to_none=True)
            loss_tensor.backward()
            optimizer.step()
            loss = float(loss_tensor.detach())
            if not math.isfinite(loss):
                break
            average = 0.9 * average + 0.1 * loss  # fastai smooths with beta 0.98 over more steps
            value = average / (1 - 0.9 ** (step + 1))
            lrs.append(lr), raw.append(loss), smoothed.append(value)
            best = min(best, value)
            if value > 4 * best and step > 5:
                break  # diverged: the rest of the range says nothing more
        if len(smoothed) < 3:
            return Check("learning-rate range test", False, "the loss blew up at once",
                         "lower start_lr, or check the data and the loss")
        slopes = [(smoothed[i + 1] - smoothed[i]) / math.log(lrs[i + 1] / lrs[i]) for i in range(len(smoothed) - 1)]
        steepest = min(range(len(slopes)), key=lambda i: slopes[i])
        suggestion = lrs[steepest]
        lowest = min(range(len(smoothed)), key=lambda i: smoothed[i])
        fell = smoothed[lowest] < 0.8 * smoothed[0]
        values = {"suggested_lr": suggestion, "min_loss_lr": lrs[lowest], "start_loss": smoothed[0],
                  "min_loss": smoothed[lowest], "lrs": lrs, "losses": raw, "smoothed": smoothed}
        if plot is not None:
            values["plot"] = str(_plot_range_test(lrs, raw, smoothed, suggestion, plot))
        summary = (f"{len(lrs)} steps from lr {start_lr:g}: the smoothed loss fell from {smoothed[0]:.3f} to "
                   f"{smoothed[lowest]:.3f} (at lr {lrs[lowest]:.3g}); steepest fall at lr {suggestion:.3g} "
                   f"(the recipe's: {config.lr:g})")
        if fell:
            return Check("learning-rate range test", True, summary, values=values)
        return Check("learning-rate range test", False, summary,
                     "the loss goes down at no learning rate: the labels may not match the images, or the network "
                     "does not learn (frozen layers, a detached loss)", values)

    def _repeating_batches(self):
        epoch = 0
        while True:
            yield from self.trainer.train_loader.epoch_batches(epoch)
            epoch += 1

    def run(self, *, sample: int = 32, overfit_steps: int = 300, range_steps: int = 100,
            plot: str | Path | None = None) -> list[Check]:
        """All three checks, in the lecture's order."""
        return [self.initial_loss(), self.overfit_small_sample(sample, overfit_steps),
                self.lr_range_test(range_steps, plot=plot)]


def _frozen(name: str) -> Check:
    return Check(name, False, "the model has no trainable parameters: nothing can learn",
                 "the network is frozen: unfreeze its layers (requires_grad=True), or check the transfer strategy")


def _plot_range_test(lrs, raw, smoothed, suggestion, path) -> Path:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(lrs, raw, color="tab:blue", alpha=0.3, label="loss")
    axes.plot(lrs, smoothed, color="tab:blue", label="smoothed")
    axes.axvline(suggestion, color="tab:red", linestyle="--", label=f"steepest fall: {suggestion:.2g}")
    axes.set_xscale("log")
    axes.set_ylim(0, 1.5 * smoothed[0])  # the descent, not the blow-up at the end
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.set_title("learning-rate range test")
    axes.legend()
    figure.tight_layout()
    return save_figure(figure, path)
