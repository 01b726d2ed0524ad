"""The Trainer: the lectures' training loop around any model of the zoo, with checkpoints, resume and logs.

One epoch is :meth:`Trainer._train_epoch`, which reads on one screen: batches from the
loader, forward under autocast, :func:`~cnnlab.train.loss.classification_loss`, backward,
optimiser and schedule steps. :meth:`Trainer._end_epoch` then evaluates on the validation
split with the one evaluation loop (:func:`cnnlab.eval.evaluate`), logs the epoch and saves
``last`` (and ``best`` by validation top-1); :meth:`Trainer.fit` ends with the test split
and the report.

What the model computes stays in the model; everything around it (device, precision,
data, optimiser, schedule, checkpoints, logging) is here (Lightning's separation).
Output goes through one :class:`~cnnlab.train.logger.RunLogger`, which only acts on
rank 0. Under ``torchrun`` every process runs this same loop on its share of each global
batch (:class:`~cnnlab.train.distributed.DataParallel`: DDP, micro-batches, agreement on
stopping); rank 0 alone evaluates, logs and saves.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import Iterator, Sequence

import torch
from torch import nn

from ..data import channel_stats, init_sample, load_dataset, parse_augment
from ..data.loader import build_loader, epoch_generator
from ..device import autocast_context, build_grad_scaler, resolve_precision
from ..errors import CnnlabError, MissingSplitError, first_line, is_out_of_memory
from ..eval.loop import evaluate
from ..models.airbench import freeze_whitening_bias
from ..registry import build_model, model_info
from ..runs import BEST, LAST, RUNTIME_KEYS, TrainConfig, checkpoint_tags, load_checkpoint, restore_rng_state, to_yaml
from .callbacks import Callback
from .distributed import DataParallel, check_batch_split
from .interrupt import Preempted, graceful_stop
from .logger import RunLogger
from .averaging import Lookahead, ModelEMA
from .fusion import fuse_for_training
from .loss import classification_loss
from .optim import build_optimizer, scaled_lr
from .report import describe_device, library_versions
from .run import check_config, default_out_dir, existing_run, remove
from .schedule import schedule_from_config
from .transfer import CachedFeatures, apply_strategy, freeze_norm_statistics, prepare_transfer
from .seed import seed_everything

STATE_VERSION = 1
FINITE_CHECK_EVERY_GPU = 50  # steps between checks that the training loss is finite, on a GPU


class _Stop(Exception):
    """Internal: a stop was requested (Ctrl-C or a callback) at a step boundary."""


class Trainer:
    """Train ``config``'s model on ``config``'s data, writing the run into ``out_dir``.

    ``Trainer(config, out_dir).fit()`` runs it and returns the report (also written as
    ``report.json``); ``Trainer.resume(out_dir).fit()`` continues an interrupted run.
    ``out_dir`` defaults to ``runs/<recipe>-<timestamp>``; a directory that already holds a
    run is refused unless ``overwrite=True``. ``quiet`` hides the per-epoch lines and the
    progress bar; ``callbacks`` are :class:`Callback` objects.
    """

    def __init__(self, config: TrainConfig, out_dir: str | Path | None = None, *, overwrite: bool = False,
                 quiet: bool = False, callbacks: Sequence[Callback] = (), console=None,
                 _resume_state: dict | None = None):
        if not isinstance(config, TrainConfig):
            raise CnnlabError(f"config must be a TrainConfig (see cnnlab.train.load_recipe), "
                              f"got {type(config).__name__}")
        self.config = check_config(dataclasses.replace(config))
        self.parallel = DataParallel.setup(self.config.device)  # joins torchrun's process group, if any
        check_batch_split(self.config.batch_size, self.parallel.world_size, self.config.accumulate)
        if out_dir is None:
            out_dir = self.parallel.from_rank_zero(default_out_dir(config.recipe))  # one folder for all processes
        self.out_dir = Path(out_dir)
        self.callbacks = list(callbacks)
        self._resume_state = _resume_state
        # Checked now, removed only once the new run has been set up: a mistake in the new
        # config never costs the old run.
        old_run = existing_run(self.out_dir, overwrite) if _resume_state is None else []
        self.logger = RunLogger(self.out_dir, quiet=quiet, tensorboard=self.config.tensorboard, console=console)
        self.epoch = 0  # epochs completed
        self.batch = 0  # batches completed in the current epoch
        self.step = 0  # optimiser steps completed in all
        self.history: list[dict] = []
        self.best = {"epoch": None, "val_top1": None}
        self._sums = None
        self._wall_before = 0.0  # wall time of earlier sessions of this run
        self._stop_requested = self._agreed_stop = False
        self._signal = None  # the signal that asked for the stop: "Ctrl-C" or "SIGTERM"
        self._phase = "setting up"  # then "training" or "evaluating": what a memory error is reported against
        with self._out_of_memory_hint():
            self._setup()
        if self.logger.main:
            remove(old_run)
        self.logger.write_text("config.yaml", to_yaml(self.config))

    # ------------------------------------------------------------------ construction

    @classmethod
    def resume(cls, out_dir: str | Path, *, overrides: dict | None = None, quiet: bool = False,
               callbacks: Sequence[Callback] = (), console=None) -> "Trainer":
        """Continue the run in ``out_dir`` from its ``last`` checkpoint, with its saved config.

        Only the runtime settings (``device``, ``compile``, ``num_workers``, ``tensorboard``,
        ``cpu_threads``, ``eval_batch_size``) may be changed through ``overrides``; anything else would make the
        continued run a different experiment, so it raises :class:`CnnlabError`.
        """
        out_dir = Path(out_dir)
        if not out_dir.is_dir():
            raise CnnlabError(f"cannot resume: {str(out_dir)!r} is not a directory")
        if LAST not in checkpoint_tags(out_dir):
            found = checkpoint_tags(out_dir)
            raise CnnlabError(f"cannot resume: {str(out_dir)!r} holds no 'last' checkpoint"
                              + (f" (it has {', '.join(found)})" if found else "")
                              + "; a run writes one at the end of every epoch and on Ctrl-C")
        _, state = load_checkpoint(out_dir, LAST)
        if state.get("trainer_state_version") != STATE_VERSION:
            raise CnnlabError(f"{str(out_dir)!r}/last was not written by cnnlab's Trainer; cannot resume from it")
        config = TrainConfig.from_dict(state["config"], where=f"the config saved in {out_dir}/last")
        if overrides:
            new = config.updated(overrides, where="the resume overrides")
            changed = [f.name for f in dataclasses.fields(TrainConfig)
                       if getattr(new, f.name) != getattr(config, f.name) and f.name not in RUNTIME_KEYS]
            if changed:
                raise CnnlabError(
                    f"a resumed run keeps the config it started with; these would change: {', '.join(changed)}. "
                    f"Only {', '.join(RUNTIME_KEYS)} may change on --resume; start a new run (--out) to change more")
            config = new
        return cls(config, out_dir, quiet=quiet, callbacks=callbacks, console=console, _resume_state=state)

    def _setup(self) -> None:
        config = self.config
        self._started = time.perf_counter()
        threads = self.parallel.threads(config.cpu_threads)  # under torchrun on CPUs: the cores shared out
        if threads is not None:
            torch.set_num_threads(threads)
        seed_everything(config.seed, deterministic=config.deterministic)
        self.device = self.parallel.device
        # How often the loop checks that the loss is finite: each step costs nothing on a CPU;
        # on a GPU each check waits for the GPU to finish, so it is done every few steps.
        self._finite_check_every = 1 if self.device.type == "cpu" else FINITE_CHECK_EVERY_GPU
        if self.device.type == "cuda" and not config.deterministic:
            # Every step has the same shapes, so cuDNN's autotuner pays for itself after a
            # few steps (timm and torchvision's reference scripts do the same).
            torch.backends.cudnn.benchmark = True
        self.precision = resolve_precision(self.device, config.precision, config.channels_last)
        self._setup_data()
        config = self.config  # with the statistics _setup_data computed: they must reach the saved config
        self.model = self.parallel.prepare(build_model(config, num_classes=self.num_classes, in_chans=self.in_chans),
                                           config.sync_bn, note=self.logger.info)
        self.model.to(self.device)
        if self.precision.channels_last:
            self.model.to(memory_format=torch.channels_last)
        state = self._resume_state
        self.trains = None  # what a transfer strategy leaves trainable
        if state is not None:
            load_checkpoint(self.out_dir, LAST, model=self.model)  # strict: same architecture
            if config.weights:
                self.trains = apply_strategy(self.model, config.transfer)  # resolved when the run started
        elif config.weights:
            self.config, self.trains, lines = prepare_transfer(self.model, config, self.train_set, self.in_chans)
            config = self.config
            self._transfer_lines = lines
        elif hasattr(self.model, "init_from_data"):
            # Data-dependent initialisation (airbench's patch whitening): from the training images,
            # normalised as the model will see them; a resumed run has these weights already.
            self.model.init_from_data(init_sample(self.train_set, self.config.mean, self.config.std).to(self.device))
        self.fused = fuse_for_training(self.model, config.fuse_bn_relu, self.device, self.precision, config.compile,
                                       self.logger.info)
        self.lr = scaled_lr(config.lr, config.batch_size, config.reference_batch) if config.scale_lr else config.lr
        self.optimizer = build_optimizer(
            self.model, config.optimizer, self.lr, momentum=config.momentum, nesterov=config.nesterov,
            weight_decay=config.weight_decay, betas=config.betas, no_decay_norm_and_bias=config.no_decay_norm_and_bias,
            norm_bias_lr_scale=config.norm_bias_lr_scale, head=self.trains["head"] if self.trains else (),
            backbone_lr_scale=config.backbone_lr_scale if config.weights and config.transfer == "fine-tune-all"
            else None)
        self._setup_schedule()
        self.ema = ModelEMA(self.model, decay=config.ema_decay) if config.ema_decay else None
        self.lookahead = None
        if config.lookahead_every:
            self.lookahead = Lookahead(self.model, every=config.lookahead_every, decay=config.lookahead_decay,
                                       total_steps=self.steps_per_epoch * config.epochs)
        self.scaler = build_grad_scaler(self.device, self.precision)
        # torch.compile wraps the module; the weights and checkpoints stay those of self.model.
        mode = (config.compile if isinstance(config.compile, str) else "default") if config.compile else None
        self.forward = torch.compile(self.model, mode=mode) if mode else self.model
        self.train_forward = self.parallel.wrap(self.model, self.forward, mode)  # DDP under torchrun
        self.probe = self._cache_features() if config.probe_features else None
        if state is not None:
            self._load_state(state)

    def _setup_data(self) -> None:
        config = self.config

        def load(split):
            try:
                return load_dataset(config.data, split, root=config.data_root, download=config.download,
                                    val_fraction=config.val_fraction, seed=config.split_seed,
                                    image_size=config.image_size, in_memory=config.in_memory)
            except MissingSplitError:
                if split == "train":
                    raise
                return None

        self.train_set, self.val_set, self.test_set = load("train"), load("val"), load("test")
        self.num_classes = len(self.train_set.classes)
        first = self.train_set.images[0] if hasattr(self.train_set, "images") else self.train_set.load_image(0)
        self.in_chans = first.shape[0]
        # The size the images are stored at (before augmentation); unknown for a streamed folder
        # of mixed sizes without image_size. Recorded with the run, for evaluating and predicting.
        self.image_size = list(first.shape[-2:]) if hasattr(self.train_set, "images") or config.image_size else None
        declared = model_info(config.model) if config.weights and config.mean is None else None
        if declared is not None and declared.mean is not None and len(declared.mean) == self.in_chans:
            # Pretrained weights expect the statistics they were trained with (ImageNet's).
            self.config = config = dataclasses.replace(config, mean=list(declared.mean), std=list(declared.std))
        if config.mean is None:
            # Lecture 7: normalise every split with the training split's statistics, computed once
            # and stored with the run, so a resumed or evaluated run uses the very same numbers.
            mean, std = channel_stats(self.train_set)
            self.config = config = dataclasses.replace(config, mean=[round(m, 6) for m in mean],
                                                       std=[round(s, 6) for s in std])
        if len(config.mean) not in (1, self.in_chans):
            raise CnnlabError(f"mean/std have {len(config.mean)} values but the images have {self.in_chans} channels")
        self.pipeline = parse_augment(config.augment, num_classes=self.num_classes)
        if config.label_smoothing and any(a.name == "label_smoothing" for a in self.pipeline.target_augmentations):
            raise CnnlabError("label smoothing is set twice (label_smoothing and label_smoothing(...) in augment); "
                              "keep one")

        def loader(dataset, train: bool):
            if dataset is None:
                return None
            return build_loader(dataset, config.batch_size if train else config.evaluation_batch_size, train=train,
                                augment=self.pipeline, mean=config.mean, std=config.std, device=self.device,
                                seed=config.seed, drop_last=config.drop_last, num_workers=config.num_workers,
                                channels_last=self.precision.channels_last, rank=self.parallel.rank if train else 0,
                                world_size=self.parallel.world_size if train else 1)

        self.train_loader = loader(self.train_set, train=True)
        self.val_loader, self.test_loader = loader(self.val_set, train=False), loader(self.test_set, train=False)
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise CnnlabError(f"the training split has {len(self.train_set)} images, fewer than one batch of "
                              f"{config.batch_size} with drop_last; lower batch_size")

    def _cache_features(self) -> CachedFeatures | None:
        """probe_features: the frozen layers run once over the training images (see CachedFeatures)."""
        config = self.config
        if config.transfer != "linear-probe":
            self.logger.info(f"probe_features: not used: transfer auto chose {config.transfer}, which trains more "
                             "than the head")
            return None
        if self.parallel.world_size > 1:
            raise CnnlabError("probe_features trains one linear layer in one process; drop it, or run without torchrun")
        started = time.perf_counter()
        loader = build_loader(self.train_set, config.evaluation_batch_size, train=False, augment=self.pipeline,
                              mean=config.mean, std=config.std, device=self.device,
                              channels_last=self.precision.channels_last)
        probe = CachedFeatures(self.model, loader, autocast=lambda: autocast_context(self.device, self.precision))
        self.train_forward = probe.head  # each step: the head alone, on cached features
        self.logger.info(f"probe_features: {probe.features.shape[1]} features of {len(probe):,} training images "
                         f"cached in {time.perf_counter() - started:.1f}s (no augmentation); the head trains on them")
        return probe

    def _setup_schedule(self) -> None:
        if self.config.schedule == "plateau" and self.val_loader is None:
            raise CnnlabError("schedule: plateau watches the validation loss, but this run has no validation "
                              "split; set val_fraction > 0 or choose another schedule")
        self.schedule, self.plateau = schedule_from_config(self.optimizer, self.config, self.steps_per_epoch)

    # ------------------------------------------------------------------ state

    def state_dict(self) -> dict:
        """Everything besides the weights that a resume needs (what goes into ``<tag>.state.pt``)."""
        sums = self._sums or {}
        return {
            "trainer_state_version": STATE_VERSION,
            "config": self.config.to_dict(),
            "world_size": self.parallel.world_size,
            "epoch": self.epoch, "batch": self.batch, "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "plateau": self.plateau.state_dict() if self.plateau is not None else None,
            "scaler": self.scaler.state_dict(),
            "lookahead": self.lookahead.state_dict() if self.lookahead is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "partial_epoch": {k: float(v) for k, v in sums.items()} if self.batch else None,
            "history": self.history,
            "best": self.best,
            "wall_seconds": self._wall_before + (time.perf_counter() - self._started),
            "data": {"mean": self.config.mean, "std": self.config.std, "num_classes": self.num_classes,
                     "in_chans": self.in_chans, "image_size": self.image_size,
                     "classes": list(self.train_set.classes)},
        }

    def _load_state(self, state: dict) -> None:
        try:
            self.optimizer.load_state_dict(state["optimizer"])
            self.schedule.load_state_dict(state["schedule"])
            if self.plateau is not None:
                self.plateau.load_state_dict(state["plateau"])
            if state["scaler"]:
                self.scaler.load_state_dict(state["scaler"])
            if self.lookahead is not None:
                self.lookahead.load_state_dict(state["lookahead"])
            if self.ema is not None:
                self.ema.load_state_dict(state["ema"])
        except (KeyError, ValueError, RuntimeError, TypeError) as error:
            raise CnnlabError(f"the checkpoint in {self.out_dir} does not fit this run: {error}") from None
        self.epoch, self.batch, self.step = int(state["epoch"]), int(state["batch"]), int(state["step"])
        self.history = [dict(row) for row in state["history"]]
        self.best = dict(state["best"])
        self._wall_before = float(state["wall_seconds"])
        partial = state.get("partial_epoch")
        self._sums = dict(partial) if partial else None
        self._rng_state = state["rng"]
        self.logger.rewrite_metrics(self.history)

    def _save(self, tag: str) -> None:
        self._stop_if_weights_not_finite()
        self.logger.save_checkpoint(tag, self.model, self.state_dict())
        if tag == LAST:
            self._saved_step = (self.epoch, self.batch, self.step)

    # ------------------------------------------------------------------ the loop

    def fit(self) -> dict:
        """Train to ``config.epochs``, evaluate on the test split, write the report; return it.

        Ctrl-C or SIGTERM (or ``KeyboardInterrupt`` from a callback) stops at the end of the
        current optimiser step, saves that state as ``last`` (the last *completed step*;
        resuming replays the rest of the epoch exactly) and raises ``KeyboardInterrupt``
        (:class:`~cnnlab.train.interrupt.Preempted` for SIGTERM). A second signal aborts at
        once without saving; the previous ``last`` stays intact.

        A NaN or infinite training loss (or weights), or running out of memory, raises
        :class:`CnnlabError` naming the step or the batch size to change, and saves nothing:
        ``last`` and ``best`` keep the last state saved before it.
        """
        config, log = self.config, self.logger
        resumed = self._resume_state is not None
        if resumed:
            restore_rng_state(self._rng_state)  # last of all: the run continues with the saved random streams
            saved, now = self._resume_state.get("world_size", 1), self.parallel.world_size
            log.info(f"resuming {self.out_dir} at epoch {self.epoch + 1}, step {self.step}" + (
                f" (saved by {saved} processes, continued by {now}: the data is re-sharded, the global batch "
                f"stays {config.batch_size})" if saved != now else ""))
        else:
            log.info(f"training {config.model} on {self.train_set.name} ({len(self.train_set):,} train, "
                     f"{self._images(self.val_set):,} val, {self._images(self.test_set):,} test images) for {config.epochs} epochs "
                     f"on {self.device} ({self.precision.reason}); writing {self.out_dir}")
            for line in getattr(self, "_transfer_lines", ()):
                log.info(line)
        if self.epoch >= config.epochs:
            log.info(f"{self.out_dir} has already finished its {config.epochs} epochs; writing its report again")
        try:
            with graceful_stop(self._on_signal), self._out_of_memory_hint():
                while self.epoch < config.epochs:
                    self._train_epoch()
                    self._end_epoch()
        except _Stop:
            self._save_on_interrupt()
            self.parallel.close()
            raise (Preempted if self._signal == "SIGTERM" else KeyboardInterrupt) from None
        finally:
            log.close()
        with self._out_of_memory_hint():
            report = self._finish()
        self.parallel.close()
        return report

    def _train_epoch(self) -> None:
        """Train the rest of the current epoch: the lectures' training step, batch after batch."""
        config, model, optimizer = self.config, self.model, self.optimizer
        model.train()
        freeze_norm_statistics(model)  # BN of layers a transfer strategy froze keeps its statistics
        if config.whiten_bias_epochs is not None:
            freeze_whitening_bias(model, self.epoch >= config.whiten_bias_epochs, distributed=self.parallel.enabled)
        self._start_counting()
        for images, targets in self._training_batches():
            optimizer.zero_grad(set_to_none=True)
            parts, count = [], min(config.batch_size, len(self.train_set) - self.batch * config.batch_size)
            # This process's share of the global batch, in `accumulate` micro-batches, each loss weighted
            # by its share of the global batch (DDP averages the gradients over the processes).
            for chunk, chunk_targets, weight, context in self.parallel.micro_batches(images, targets, count,
                                                                                     config.accumulate):
                with context:
                    with autocast_context(self.device, self.precision):
                        outputs = self.train_forward(chunk)
                    loss, logits = classification_loss(outputs, chunk_targets, label_smoothing=config.label_smoothing,
                                                       aux_weight=config.aux_loss_weight)
                    self.scaler.scale(loss * weight if weight != 1 else loss).backward()
                parts.append((loss, logits))
            loss, logits = self.parallel.joined(parts)
            if config.grad_clip_norm is not None:
                self.scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip_norm)
            self.scaler.step(optimizer)
            self.scaler.update()
            self.schedule.step()
            self.step, self.batch = self.step + 1, self.batch + 1
            if self.lookahead is not None:
                self.lookahead.after_step(self.step)
            if self.ema is not None:
                self.ema.update(self.step)
            self._count_step(loss, logits, targets)  # metrics, NaN check, progress, callbacks, Ctrl-C
        self._stop_if_diverged()
        self._add_counts()

    def _training_batches(self) -> Iterator:
        """The rest of the current epoch's batches. A loader that fails after Ctrl-C was pressed
        (DataLoader workers catch the signal too) stops the run as the Ctrl-C asked."""
        if self.probe is not None:
            order = torch.randperm(len(self.probe), generator=epoch_generator(self.config.seed, self.epoch))
            batches = self.probe.epoch_batches(order, self.config.batch_size, self.steps_per_epoch, skip=self.batch)
        else:
            batches = self.train_loader.epoch_batches(self.epoch, skip=self.batch)
        while True:
            try:
                yield next(batches)
            except StopIteration:
                return
            except Exception:
                if self._stop_requested:
                    raise _Stop from None
                raise

    # ------------------------------------------------------------------ counting an epoch

    def _start_counting(self) -> None:
        """Zero this session's device-side sums of the epoch; the sums of the epoch's earlier
        sessions (a resumed run) are ``self._sums``."""
        self._phase = "training"
        if self._sums is None:
            self._sums = {"loss": 0.0, "correct": 0.0, "images": 0.0, "seconds": 0.0}
        self._loss_sum = torch.zeros((), device=self.device)
        self._correct = torch.zeros((), device=self.device)
        self._images_seen = 0
        # A NaN or infinite loss makes _loss_sum NaN or infinite too, so reading it tells
        # whether every step since the last read was finite: every step on a CPU, every few
        # steps on a GPU (a read waits for the GPU), and always before anything is saved.
        self._finite_until = self.step
        self.logger.start_epoch(self.epoch + 1, self.config.epochs, self.steps_per_epoch, self.batch)
        self._session_started = time.perf_counter()

    def _count_step(self, loss: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor) -> None:
        labels = targets.argmax(dim=1) if targets.dim() == 2 else targets
        count = labels.shape[0]
        self._loss_sum += loss.detach().float() * count
        self._correct += (logits.detach().argmax(dim=1) == labels).sum()
        self._images_seen += count
        if self.step % self._finite_check_every == 0:
            self._stop_if_diverged()
        if self.logger.wants_update():
            seconds = self._sums["seconds"] + time.perf_counter() - self._session_started
            total = self._sums["images"] + self._images_seen
            self.logger.update_step(self.batch, (self._sums["loss"] + float(self._loss_sum)) / total,
                                    100.0 * (self._sums["correct"] + float(self._correct)) / total,
                                    total / max(seconds, 1e-9))
        for callback in self.callbacks:
            try:
                callback.on_step_end(self)
            except KeyboardInterrupt:
                self._stop_requested = True
        if self._stop_requested and not self.parallel.enabled:  # under torchrun: agreed at the next check
            self._stop_if_diverged()
        if self._stopping:
            self._add_counts()
            raise _Stop

    @property
    def _stopping(self) -> bool:
        """A stop asked for (in a single process) or agreed on by all processes (under torchrun)."""
        return self._agreed_stop if self.parallel.enabled else self._stop_requested

    def _add_counts(self) -> None:
        """Add this session's device-side sums to the epoch's (one read from the device)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        loss, correct, images = self.parallel.sum([float(self._loss_sum), float(self._correct), self._images_seen])
        self._sums["loss"] += loss
        self._sums["correct"] += correct
        self._sums["images"] += images
        self._sums["seconds"] += time.perf_counter() - self._session_started

    def _stop_if_diverged(self) -> None:
        """Stop the run, saving nothing, once a training loss has been NaN or infinite.

        Lecture idea (babysitting the learning process): a loss that explodes, or turns NaN,
        almost always means too high a learning rate. The weights are no good from that
        step on, so the run stops without saving: ``last`` keeps its last good state.
        """
        finite, self._agreed_stop = self.parallel.agree(self._loss_sum, self._stop_requested)  # all processes
        if finite:
            self._finite_until = self.step
            return
        first = self._finite_until + 1
        epoch, batch = divmod(first - 1, self.steps_per_epoch)
        position = f"epoch {epoch + 1}, batch {batch + 1} of {self.steps_per_epoch}"
        if first == self.step:
            self._diverged(f"the training loss became NaN or infinite at step {first}", position)
        self._diverged(f"the training loss became NaN or infinite between steps {first} and {self.step}",
                       f"from {position}")

    def _stop_if_weights_not_finite(self) -> None:
        """Never save weights that are NaN or infinite: a step can break them (an infinite
        gradient norm under clipping, say) while its own loss, computed before it, was finite."""
        tensors = [t for t in (*self.model.parameters(), *self.model.buffers()) if t.is_floating_point()]
        if not tensors or bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()):
            return
        self._diverged(f"the model's weights became NaN or infinite by step {self.step}",
                       "while the training losses were finite")

    def _diverged(self, what: str, detail: str) -> None:
        """Raise the error of a diverged run: ``what`` happened (``detail``), nothing is saved."""
        self.logger.end_progress()
        if LAST in checkpoint_tags(self.out_dir):
            kept = f"its last checkpoint ({self.out_dir / LAST}.*, from before that step) is unchanged"
        else:
            kept = "no checkpoint had been written yet"
        raise CnnlabError(
            f"{what} ({detail}; learning rate {self.optimizer.param_groups[0]['lr']:.4g}), so the run stopped "
            f"without saving; {kept}. A loss that explodes usually means the learning rate is too high: try a smaller --lr, a "
            f"warm-up (--set warmup_epochs=1), gradient clipping (--set grad_clip_norm=1) or --set precision=fp32")

    def _end_epoch(self) -> None:
        epoch_started = time.perf_counter()
        val = self.evaluate("val") if self.val_loader is not None else None
        if self._stopping:
            raise _Stop
        sums = self._sums
        row = {
            "epoch": self.epoch + 1,
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "train_loss": sums["loss"] / max(sums["images"], 1),
            "train_top1": 100.0 * sums["correct"] / max(sums["images"], 1),
            "val_loss": val["loss"] if val else None,
            "val_top1": val["top1"] if val else None,
            "val_top5": val["top5"] if val else None,
            "images_per_second": sums["images"] / max(sums["seconds"], 1e-9),
            "seconds": sums["seconds"] + time.perf_counter() - epoch_started,
        }
        if self.plateau is not None:
            self.plateau.step(self.parallel.from_rank_zero(row["val_loss"]))  # only rank 0 evaluates
        self.history.append(row)
        self.logger.log_epoch(row, self.history, self.config.epochs)
        self.epoch, self.batch, self._sums = self.epoch + 1, 0, None
        is_best = val is not None and (self.best["val_top1"] is None or val["top1"] > self.best["val_top1"])
        if is_best:
            self.best = {"epoch": row["epoch"], "val_top1": val["top1"]}
        # "last" first: the most recent state is never older on disk than "best".
        self._save(LAST)
        if is_best:
            self._save(BEST)
        for callback in self.callbacks:
            try:
                callback.on_epoch_end(self, row)
            except KeyboardInterrupt:
                self._stop_requested = True
        if self._stopping and self.epoch < self.config.epochs:
            raise _Stop

    def evaluate(self, split: str = "val") -> dict | None:
        """Loss, top-1 and top-5 (percent) of the current model on ``"val"`` or ``"test"`` (``None`` if
        absent, and on processes other than rank 0, which alone evaluates)."""
        loader = {"val": self.val_loader, "test": self.test_loader}.get(split, KeyError)
        if loader is KeyError:
            raise CnnlabError(f"split must be 'val' or 'test', got {split!r}")
        if loader is None or not self.parallel.is_main:
            return None
        # Left as "evaluating" if the evaluation fails, so that a memory error names its batch size.
        previous, self._phase = self._phase, "evaluating"
        # With a weight EMA, the averaged model is the one evaluated (and reported).
        model = self.ema.module if self.ema is not None else self.forward
        result = evaluate(model, loader.epoch_batches(0), precision=self.precision,
                          num_classes=self.num_classes, tta=self.config.tta)
        self._phase = previous
        return result

    # ------------------------------------------------------------------ interruption

    @contextlib.contextmanager
    def _out_of_memory_hint(self):
        """Turn running out of memory into a message that says which batch to shrink; nothing is saved."""
        try:
            yield
        except (RuntimeError, MemoryError, OSError) as error:
            if not is_out_of_memory(error):
                raise
            self.logger.end_progress()
            batch, eval_batch = self.config.batch_size, self.config.evaluation_batch_size
            if self._phase == "setting up":
                advice = (f"while setting up the run (loading {self.config.data!r}, building {self.config.model!r}): "
                          f"an image folder too large for memory can be streamed from disk with --set "
                          f"in_memory=false; otherwise try a smaller model or --set image_size")
            elif self._phase == "evaluating":
                advice = (f"while evaluating with batch size {eval_batch}: try --set eval_batch_size="
                          f"{max(1, eval_batch // 2)}")
            elif self._resume_state is not None:
                advice = (f"while training with batch size {batch}: a resumed run keeps its batch size, so resume "
                          f"on a device with more memory, or start a new run with e.g. --batch-size "
                          f"{max(1, batch // 2)}")
            else:
                advice = (f"while training with batch size {batch}: try a smaller batch, e.g. --batch-size "
                          f"{max(1, batch // 2)} (with --lr scaled by the same factor, the linear scaling rule)")
            kept = (f"; the last checkpoint ({self.out_dir / LAST}.*) is unchanged"
                    if LAST in checkpoint_tags(self.out_dir) else "")
            raise CnnlabError(f"out of memory on {getattr(self, 'device', self.config.device)} {advice}{kept} "
                              f"({first_line(error)})") from None

    def _on_signal(self, name: str) -> None:
        """The first Ctrl-C or SIGTERM: stop after the current step (all processes, under torchrun)."""
        self._stop_requested, self._signal = True, name
        self.logger.end_progress()
        self.logger.info(f"{name}: stopping after this step and saving a resumable checkpoint "
                         f"({name} again to stop at once without saving)", always=True)

    def _save_on_interrupt(self) -> None:
        self.logger.end_progress()
        if getattr(self, "_saved_step", None) != (self.epoch, self.batch, self.step):
            self._save(LAST)
        where = (f"epoch {self.epoch + 1}, after batch {self.batch}/{self.steps_per_epoch}" if self.batch
                 else f"the end of epoch {self.epoch}")
        self.logger.info(f"interrupted at step {self.step} ({where}); saved the state after the last completed "
                         f"step to {self.out_dir / LAST}.*\ncontinue with: cnnlab train --resume {self.out_dir}"
                         + (f" --nproc {self.parallel.world_size}" if self.parallel.world_size > 1 else ""),
                         always=True)

    # ------------------------------------------------------------------ the end

    @staticmethod
    def _images(dataset) -> int:
        return 0 if dataset is None else len(dataset)

    def _finish(self) -> dict:
        config = self.config
        if self.ema is not None:
            self.logger.save_checkpoint("ema", self.ema.module, self.state_dict())  # for `cnnlab eval --tag ema`
        test = self.evaluate("test")
        test_split = "test"
        if test is None and self.val_loader is not None:
            test, test_split = self.evaluate("val"), "val (the data set has no test split)"
        last = self.history[-1] if self.history else {}
        speeds = sorted(row["images_per_second"] for row in self.history)
        wall = self._wall_before + (time.perf_counter() - self._started)
        report = {
            "model": config.model,
            "dataset": self.train_set.name,
            "data_source": self.train_set.source,
            "recipe": config.recipe,
            "epochs": config.epochs,
            "steps": self.step,
            "train_loss": last.get("train_loss"),
            "train_top1": last.get("train_top1"),
            "val_top1": last.get("val_top1"),
            "best_val_top1": self.best["val_top1"],
            "best_epoch": self.best["epoch"],
            "test_loss": test["loss"] if test else None,
            "test_top1": test["top1"] if test else None,
            "test_top5": test["top5"] if test else None,
            "test_split": test_split if test else None,
            "test_tta": config.tta,
            "test_weights": ("ema (the moving average of the weights, saved as ema.safetensors)" if self.ema is not None
                             else "last (the weights after the final epoch)"),
            "wall_seconds": wall,
            "images_per_second": speeds[len(speeds) // 2] if speeds else None,  # median over epochs
            "seed": config.seed,
            "versions": library_versions(self.device.type),
            "device": describe_device(self.device),
            "precision": self.precision.as_dict(),
            "compile": config.compile,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "data": {"train_images": len(self.train_set), "val_images": self._images(self.val_set),
                     "test_images": self._images(self.test_set), "num_classes": self.num_classes,
                     "classes": list(self.train_set.classes), "mean": config.mean, "std": config.std,
                     "augment": self.pipeline.spec},
            "lr": {"base": config.lr, "used": self.lr, "scaled": config.scale_lr},
            "files": {"report": str(self.out_dir / "report.json"), "curves": str(self.out_dir / "curves.png"),
                      "metrics": str(self.out_dir / "metrics.csv"), "last": str(self.out_dir / f"{LAST}.safetensors"),
                      "best": str(self.out_dir / f"{BEST}.safetensors") if self.best["epoch"] else None,
                      "config": str(self.out_dir / "config.yaml")},
            "config": config.to_dict(),
        }
        self.logger.write_report(report, self.history, f"{config.model} on {self.train_set.name} ({config.recipe})")
        if test:
            top5 = f", top-5 {test['top5']:.2f}%" if test["top5"] is not None else ""
            label = "test" if test_split == "test" else f"test on {test_split}"
            best = (f"best val top-1 {self.best['val_top1']:.2f}% at epoch {self.best['epoch']}; "
                    if self.best["val_top1"] is not None else "")
            self.logger.info(f"{label}: top-1 {test['top1']:.2f}%{top5}, loss {test['loss']:.4f}; {best}"
                             f"{wall:.1f} s", always=True)
        files = report["files"]
        self.logger.info(f"report:     {files['report']}\ncurves:     {files['curves']}\n"
                         f"metrics:    {files['metrics']}\ncheckpoint: {files['last']}"
                         + (f" (best: {files['best']})" if files["best"] else ""), always=True)
        return report
