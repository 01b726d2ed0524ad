"""The lecture's transfer-learning matrix, measured: data size x similarity x strategy.

1. Pretrain ResNet-20 on CIFAR-10's classes 0-4 (airplane, automobile, bird, cat, deer;
   the lossless CIFAR-10 from the data root, ``CNNLAB_DATA``, else ``../shared/data``).
2. Transfer it to two targets, each with 1%, 10% and 100% of its training images:
   - similar: CIFAR-10's classes 5-9 (dog, frog, horse, ship, truck), natural photos like
     the source's;
   - different: scikit-learn's handwritten digits, upscaled to 32x32 (greyscale strokes on
     black; read as RGB like any image folder), nothing like the source; 5%, 10% and
     100% of its 1,437 training images (1% would leave about one image a class).
3. For every cell: ``linear-probe``, ``fine-tune-last``, ``fine-tune-all`` (from the
   pretrained run) and training from scratch, scored on the target's whole test split; and
   the advisor's choice (``transfer: auto``) for the cell, checked against the best.

The targets are written once as image-folder trees under ``--work`` (PNG, lossless). Each
run is a folder there; finished runs are skipped and interrupted ones resumed, so the
script can be run in pieces. Epochs per run grow as the data shrinks, and the batch shrinks
with the smallest cells (to at least 8 steps an epoch, the learning rate scaled with it), so
that the small cells still take a few hundred steps.

    python benchmarks/transfer_matrix.py [--work runs/transfer-matrix] [--pretrain-epochs 30]
        [--epochs 15] [--out benchmarks/results/transfer-matrix]
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from rich.console import Console

from cnnlab.data import channel_stats, load_dataset
from cnnlab.data.splits import stratified_split
from cnnlab.train import Trainer, checkpoint_tags, load_recipe
from cnnlab.train.transfer import choose_strategy

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FRACTIONS = (0.01, 0.1, 1.0)
STRATEGIES = ("linear-probe", "fine-tune-last", "fine-tune-all", "scratch")


def write_tree(root: Path, splits: dict[str, tuple[torch.Tensor, torch.Tensor]], classes: list[str]) -> Path:
    """An image-folder tree ``root/<split>/<class>/<i>.png`` of uint8 C x H x W images."""
    if (root / ".complete").is_file():
        return root
    for split, (images, labels) in splits.items():
        for index, (image, label) in enumerate(zip(images, labels.tolist())):
            folder = root / split / classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            array = image.permute(1, 2, 0).numpy()
            Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array).save(folder / f"{index:05d}.png")
    (root / ".complete").write_text("")
    return root


MAX_PER_CLASS = None  # --max-per-class: a quick trial of the whole pipeline on a few images


def subset(images, labels, keep_classes, fraction, seed=0):
    mask = torch.isin(labels, torch.tensor(keep_classes))
    images, labels = images[mask], labels[mask]
    if MAX_PER_CLASS is not None:
        first = torch.cat([torch.nonzero(labels == c)[:MAX_PER_CLASS, 0] for c in keep_classes])
        images, labels = images[first], labels[first]
    labels = torch.tensor([keep_classes.index(int(v)) for v in labels])
    if fraction < 1.0:
        _, kept = stratified_split(labels, fraction, seed)  # the held-out part is the fraction kept
        images, labels = images[kept], labels[kept]
    return images, labels


def upscale_digits(images: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.interpolate(images.float(), size=(32, 32), mode="bilinear",
                                           align_corners=False).round().clamp(0, 255).to(torch.uint8)


def run(config, folder: Path) -> dict:
    """Train ``config`` in ``folder`` (resuming a partial run, skipping a finished one); its report."""
    if (folder / "report.json").is_file():
        return json.loads((folder / "report.json").read_text())
    quiet = Console(file=io.StringIO())
    if "last" in checkpoint_tags(folder):
        return Trainer.resume(folder, quiet=True, console=quiet).fit()
    return Trainer(config, folder, overwrite=True, quiet=True, console=quiet).fit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="runs/transfer-matrix")
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=15, help="epochs of a 100%% run (10%%: 2x, 1%%: 4x)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default="benchmarks/results/transfer-matrix")
    parser.add_argument("--max-per-class", type=int, default=None,
                        help="at most this many images a class in every split (a quick trial run)")
    args = parser.parse_args(argv)
    global MAX_PER_CLASS
    MAX_PER_CLASS = args.max_per_class
    if not os.environ.get("CNNLAB_DATA") and SHARED_DATA.is_dir():
        os.environ["CNNLAB_DATA"] = str(SHARED_DATA)
    work = Path(args.work)
    cifar_train, cifar_test = load_dataset("cifar10", "train", val_fraction=0), load_dataset("cifar10", "test")
    digits_train, digits_test = load_dataset("digits", "train", val_fraction=0), load_dataset("digits", "test")
    names = cifar_train.classes
    source = write_tree(work / "data" / "cifar-0-4", {
        "train": subset(cifar_train.images, cifar_train.labels, [0, 1, 2, 3, 4], 1.0),
        "test": subset(cifar_test.images, cifar_test.labels, [0, 1, 2, 3, 4], 1.0)}, names[:5])
    targets = {}
    for fraction in FRACTIONS:
        tag = f"{round(fraction * 100)}pct"
        targets["similar", fraction] = write_tree(work / "data" / f"cifar-5-9-{tag}", {
            "train": subset(cifar_train.images, cifar_train.labels, [5, 6, 7, 8, 9], fraction),
            "test": subset(cifar_test.images, cifar_test.labels, [5, 6, 7, 8, 9], 1.0)}, names[5:])
        # The digits have 1,437 training images: 1% would leave about one a class, so the
        # smallest cell is 5% (about 7 a class, as CIFAR's 1% cell has 50).
        digits_fraction = max(fraction, 0.05)
        digit_images, digit_labels = subset(digits_train.images, digits_train.labels, list(range(10)),
                                            digits_fraction)
        targets["different", digits_fraction] = write_tree(
            work / "data" / f"digits-{round(digits_fraction * 100)}pct", {
            "train": (upscale_digits(digit_images), digit_labels),
            "test": (upscale_digits(digits_test.images), digits_test.labels)}, digits_train.classes)

    common = {"device": "cpu", "cpu_threads": args.threads, "val_fraction": 0.1, "schedule": "cosine",
              "milestones": [], "warmup_epochs": 0.0}
    pretrained = work / "pretrain-resnet20-cifar-0-4"
    report = run(load_recipe("resnet20-cifar10", data=str(source), epochs=args.pretrain_epochs, **common), pretrained)
    print(f"pretrained ResNet-20 on CIFAR-10 classes 0-4: test top-1 {report['test_top1']:.2f}%", flush=True)

    rows = []
    for (kind, fraction), data in targets.items():
        tag = f"{kind}-{round(fraction * 100)}pct"
        epochs = args.epochs * (1 if fraction == 1.0 else 2 if fraction >= 0.05 else 4)
        train_set = load_dataset(str(data), "train", val_fraction=0.1)
        source_stats = json.loads((pretrained / "report.json").read_text())["data"]
        mean, std = channel_stats(train_set)
        advised, reasons = choose_strategy(len(train_set), len(train_set.classes), source_stats["mean"],
                                           source_stats["std"], mean, std, 3, 3)
        row = {"target": kind, "fraction": fraction, "train_images": len(train_set), "epochs": epochs,
               "advised": advised, "advice": reasons}
        # A small cell keeps at least about 8 steps an epoch: a smaller batch, the learning rate
        # scaled with it (the linear scaling rule). At batch 128, 129 digits are 2 steps an epoch,
        # and training from scratch at lr 0.1 diverged in its second epoch.
        batch_size = min(128, max(16, len(train_set) // 8))
        row["batch_size"] = batch_size
        for strategy in STRATEGIES:
            changes = dict(common, data=str(data), epochs=epochs, batch_size=batch_size,
                           lr=0.1 * batch_size / 128)
            if strategy != "scratch":
                changes.update(weights=str(pretrained), transfer=strategy)
            result = run(load_recipe("resnet20-cifar10", **changes), work / f"{tag}-{strategy}")
            row[strategy] = result["test_top1"]
            print(f"{tag:22s} {strategy:15s} test top-1 {result['test_top1']:.2f}%", flush=True)
        row["best"] = max(STRATEGIES, key=lambda s: row[s])
        rows.append(row)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(f"{out}.json").write_text(json.dumps({"pretrain_test_top1": report["test_top1"], "rows": rows},
                                              indent=2) + "\n")
    plot(rows, Path(f"{out}.png"))
    print("| target | train images | epochs | " + " | ".join(STRATEGIES) + " | advisor's choice | best |")
    print("| --- | --- | --- | " + " | ".join("---" for _ in STRATEGIES) + " | --- | --- |")
    for row in rows:
        cells = " | ".join(f"{row[s]:.2f}%" for s in STRATEGIES)
        print(f"| {row['target']} {row['fraction']:.0%} | {row['train_images']} | {row['epochs']} | {cells} | "
              f"{row['advised']} | {row['best']} |")
    return 0


def plot(rows: list[dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(11, 4), dpi=100)
    FigureCanvasAgg(figure)
    for index, kind in enumerate(("similar", "different"), 1):
        axes = figure.add_subplot(1, 2, index)
        cells = [r for r in rows if r["target"] == kind]
        width = 0.2
        for offset, strategy in enumerate(STRATEGIES):
            xs = np.arange(len(cells)) + (offset - 1.5) * width
            axes.bar(xs, [r[strategy] for r in cells], width, label=strategy)
        axes.set_xticks(np.arange(len(cells)), [f"{r['fraction']:.0%}\n({r['train_images']} images)" for r in cells])
        axes.set_ylabel("test top-1 (%)")
        axes.set_ylim(0, 100)
        axes.set_title({"similar": "similar target: CIFAR-10 classes 5-9",
                        "different": "different target: digits"}[kind])
    handles, labels = axes.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(STRATEGIES), fontsize=9)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, format="png")


if __name__ == "__main__":
    sys.exit(main())
