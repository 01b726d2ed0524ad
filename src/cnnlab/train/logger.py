"""The one place where a run talks to the outside world: console, progress bar, files, checkpoints.

Everything a run writes goes through :class:`RunLogger`, and the logger does nothing
unless :func:`is_main_process` is true. With ``torchrun`` data parallelism every process
runs the same training loop and only rank 0 prints, logs and saves, so the trainer needs
no other change for that.
"""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..atomic import atomic_write_text
from ..errors import CnnlabError
from ..runs.checkpoint import save_checkpoint
from .report import plot_curves, write_json, write_metrics_csv


def is_main_process() -> bool:
    """Whether this process is rank 0 (always true without ``torch.distributed``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank() == 0
    return int(os.environ.get("RANK", "0")) == 0


class RunLogger:
    """Console output, the rich progress bar, ``metrics.csv``, TensorBoard, checkpoints and the report.

    ``quiet=True`` prints only warnings and the final summary; the progress bar appears only
    when the console is a terminal. Every method is a no-op on processes other than rank 0.
    """

    REFRESH_SECONDS = 0.5  # progress-bar updates (each one reads the loss off the device)

    def __init__(self, out_dir: str | os.PathLike, *, quiet: bool = False, tensorboard: bool = False,
                 console: Console | None = None, main: bool | None = None):
        self.out_dir = Path(out_dir)
        self.main = is_main_process() if main is None else main
        self.quiet = quiet
        self.console = console or Console(stderr=False)
        self.show_progress = self.main and not quiet and self.console.is_terminal
        self._progress: Progress | None = None
        self._task = None
        self._last_refresh = 0.0
        self._writer = None
        self._writer_class = None
        if tensorboard and self.main:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise CnnlabError("--tensorboard needs the tensorboard package: pip install 'cnnlab[tensorboard]' "
                                  "(or pip install tensorboard), or leave TensorBoard off") from None
            self._writer_class = SummaryWriter  # opened at the first epoch, when the run is set up

    # ------------------------------------------------------------------ console

    def info(self, message: str, *, always: bool = False) -> None:
        """A line for the user (hidden by ``quiet`` unless ``always``)."""
        if self.main and (always or not self.quiet):
            # markup=False: a path or class name in brackets is printed as it is, not read as a style.
            self.console.print(message, highlight=False, soft_wrap=True, markup=False)

    def warn(self, message: str) -> None:
        if self.main:
            Console(stderr=True).print(f"[yellow]warning:[/yellow] {escape(message)}", highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ progress

    def start_epoch(self, epoch: int, epochs: int, steps: int, done: int = 0) -> None:
        """Open the progress bar of epoch ``epoch`` (1-based) of ``epochs``, ``done`` of ``steps`` already run."""
        if not self.show_progress:
            return
        self._progress = Progress(
            TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[speed]} img/s"),
            TextColumn("ETA"), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self._progress.start()
        self._task = self._progress.add_task("train", total=steps, completed=done, epoch=f"{epoch}/{epochs}",
                                             loss="-", acc="-", speed="-")
        self._last_refresh = time.perf_counter()

    def wants_update(self) -> bool:
        """Whether it is time to refresh the bar (so the trainer reads metrics off the device only then)."""
        return self._progress is not None and time.perf_counter() - self._last_refresh >= self.REFRESH_SECONDS

    def update_step(self, completed: int, loss: float | None = None, top1: float | None = None,
                    images_per_second: float | None = None) -> None:
        if self._progress is None:
            return
        fields = {}
        if loss is not None:
            fields["loss"] = f"{loss:.4f}"
        if top1 is not None:
            fields["acc"] = f"{top1:.2f}%"
        if images_per_second is not None:
            fields["speed"] = f"{images_per_second:,.0f}"
        self._progress.update(self._task, completed=completed, **fields)
        self._last_refresh = time.perf_counter()

    def end_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # ------------------------------------------------------------------ per-epoch record

    def log_epoch(self, row: dict, history: list[dict], epochs: int) -> None:
        """Print the epoch's line, rewrite ``metrics.csv`` and send the scalars to TensorBoard."""
        self.end_progress()
        if not self.main:
            return
        self._ensure_dir()
        with self._writing("metrics.csv"):
            write_metrics_csv(self.out_dir / "metrics.csv", history)
        if self._writer is None and self._writer_class is not None:
            self._writer = self._writer_class(log_dir=str(self.out_dir / "tensorboard"))
        if self._writer is not None:
            for key, value in row.items():
                if key != "epoch" and value is not None:
                    self._writer.add_scalar(key, value, row["epoch"])
            self._writer.flush()

        def fmt(value, spec):
            return "-" if value is None else format(value, spec)

        self.info(f"epoch {row['epoch']:>{len(str(epochs))}}/{epochs}  lr {row['lr']:.4g}  "
                  f"train loss {fmt(row['train_loss'], '.4f')} top-1 {fmt(row['train_top1'], '.2f')}%  "
                  f"val loss {fmt(row['val_loss'], '.4f')} top-1 {fmt(row['val_top1'], '.2f')}%  "
                  f"{row['images_per_second']:,.0f} img/s  {row['seconds']:.1f}s")

    def rewrite_metrics(self, history: list[dict]) -> None:
        """Make ``metrics.csv`` match ``history`` exactly (on resume: drop rows written after the checkpoint)."""
        if self.main and history:
            with self._writing("metrics.csv"):
                write_metrics_csv(self.out_dir / "metrics.csv", history)

    # ------------------------------------------------------------------ files

    @contextlib.contextmanager
    def _writing(self, name: str):
        """A run file that cannot be written (a full disk, no permission) becomes a clear error;
        the files are written atomically, so the previous version of each stays intact."""
        try:
            yield
        except OSError as error:
            raise CnnlabError(f"cannot write {str(self.out_dir / name)!r}: {error.strerror or error}; free some "
                              f"space or choose another --out (the run's earlier files are intact)") from None

    def _ensure_dir(self) -> None:
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CnnlabError(f"cannot create the run directory {str(self.out_dir)!r}: {error}") from None

    def save_checkpoint(self, tag: str, model: torch.nn.Module, state: dict) -> None:
        if self.main:
            save_checkpoint(self.out_dir, tag, model, state)

    def write_text(self, name: str, text: str) -> None:
        if self.main:
            self._ensure_dir()
            with self._writing(name):
                atomic_write_text(self.out_dir / name, text)

    def write_report(self, report: dict, history: list[dict], title: str) -> None:
        if not self.main:
            return
        with self._writing("report.json"):
            write_json(self.out_dir / "report.json", report)
        if history:
            with self._writing("curves.png"):
                plot_curves(self.out_dir / "curves.png", history, title)

    def close(self) -> None:
        self.end_progress()
        if self._writer is not None:
            self._writer.close()
            self._writer = None


