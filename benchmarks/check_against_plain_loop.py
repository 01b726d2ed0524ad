"""Same recipe, two implementations: cnnlab's trainer against a hand-written torchvision loop.

Trains ResNet-20 on the shared CIFAR-10 JPEG tree for a few epochs at a constant
learning rate, once with ``cnnlab.train.Trainer`` (the ``resnet20-cifar10`` recipe with
``schedule: constant`` and all 50,000 training images) and once with the loop everybody
writes first (torchvision ``ImageFolder`` + ``RandomCrop(32, padding=4)`` +
``RandomHorizontalFlip`` + ``Normalize``, ``DataLoader``, SGD 0.1 / momentum 0.9 / weight
decay 1e-4, batch 128), then prints both runs' training and test top-1 per epoch. If
cnnlab's data path, augmentation, normalisation or BN handling were off, the two would
part early; they agree within the run-to-run noise of a few tenths of a point.

    python benchmarks/check_against_plain_loop.py [--epochs 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torchvision import transforms

import cnnlab
from cnnlab.train import Trainer, load_recipe

MEAN = (0.4913, 0.4821, 0.4465)
STD = (0.2452, 0.2428, 0.2606)
DEFAULT_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpg.tar.gz"


def cnnlab_run(archive: Path, out: Path, epochs: int, threads: int) -> dict:
    config = load_recipe("resnet20-cifar10", overrides={
        "data": str(archive), "download": False, "epochs": epochs, "milestones": [], "schedule": "constant",
        "val_fraction": 0.0, "cpu_threads": threads, "device": "cpu"})
    report = Trainer(config, out, quiet=True).fit()
    rows = [line.split(",") for line in (out / "metrics.csv").read_text().splitlines()[1:]]
    return {"train_top1": [float(r[3]) for r in rows], "test_top1": report["test_top1"]}


def plain_run(tree: Path, epochs: int, threads: int) -> dict:
    torch.manual_seed(0)
    train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                   transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    test_tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    train = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(str(tree / "train"), train_tf),
                                        batch_size=128, shuffle=True, num_workers=threads)
    test = torch.utils.data.DataLoader(torchvision.datasets.ImageFolder(str(tree / "test"), test_tf),
                                       batch_size=256, num_workers=threads)
    model = cnnlab.create_model("resnet20")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    train_top1, test_top1 = [], None
    for _ in range(epochs):
        model.train()
        correct = seen = 0
        for images, labels in train:
            logits = model(images)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        train_top1.append(100 * correct / seen)
        model.eval()
        correct = seen = 0
        with torch.no_grad():
            for images, labels in test:
                correct += (model(images).argmax(1) == labels).sum().item()
                seen += len(labels)
        test_top1 = 100 * correct / seen
    return {"train_top1": train_top1, "test_top1": test_top1}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(DEFAULT_ARCHIVE))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (and DataLoader workers) per run")
    args = parser.parse_args(argv)
    archive = Path(args.archive)
    if not archive.is_file():
        print(f"error: {archive} not found (the shared CIFAR-10 JPEG tree)", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}; ResNet-20, {args.epochs} epochs at lr 0.1, "
          f"{args.threads} thread(s) per run")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        started = time.perf_counter()
        ours = cnnlab_run(archive, scratch / "run", args.epochs, args.threads)
        ours_seconds = time.perf_counter() - started
        with tarfile.open(archive) as tar:
            tar.extractall(scratch / "tree", filter="data")
        tree = next(p.parent for p in (scratch / "tree").rglob("train") if p.is_dir())
        started = time.perf_counter()
        plain = plain_run(tree, args.epochs, args.threads)
        plain_seconds = time.perf_counter() - started
    for name, run, seconds in (("cnnlab Trainer", ours, ours_seconds), ("hand-written loop", plain, plain_seconds)):
        per_epoch = ", ".join(f"{v:.2f}" for v in run["train_top1"])
        print(f"  {name:18s} train top-1 per epoch: {per_epoch}; test top-1 {run['test_top1']:.2f}% "
              f"({seconds / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
