"""CIFAR-10 from the shared JPEG tree: first decode into the cache, and cnnlab's pipeline vs torchvision's.

1. First decode: ``load_dataset`` on the .tar.gz with an empty cache (read, decode, write
   the cache), next to the time of decoding the same JPEG bytes alone (``decode_jpeg`` in
   batches, no Python per-file work). Their ratio says how much beyond JPEG decoding the
   first load costs. Then the cached load.
2. Augmented epochs over the 50,000 training images with flip + 4-pixel pad-crop +
   16-pixel cutout + normalisation, measured side by side:
   - cnnlab: cached uint8 tensor, ``InMemoryLoader`` on ONE CPU thread;
   - torchvision: ``ImageFolder`` over the extracted tree + ``transforms.v2``
     (RandomHorizontalFlip, RandomCrop(32, padding=4), RandomErasing of a fixed 16x16
     square standing in for cutout, ToDtype, Normalize) + ``DataLoader`` with 2 workers.

    python benchmarks/bench_data_pipeline.py [--archive ../shared/data/cifar10-jpg.tar.gz] [--epochs 3]
    python benchmarks/bench_data_pipeline.py --first-loads 3      # only: cold first loads, median
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torchvision.transforms import v2

import cnnlab
from cnnlab.data import load_dataset
from cnnlab.data.loader import InMemoryLoader

MEAN = (0.4913, 0.4821, 0.4465)
STD = (0.2452, 0.2428, 0.2606)
AUGMENT = "flip, crop(pad=4), cutout(16)"


def decode_only_seconds(archive: Path) -> tuple[float, int]:
    """Time to decode every JPEG of the archive from bytes already in memory."""
    from torchvision.io import ImageReadMode, decode_jpeg

    blobs = []
    with tarfile.open(archive) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith(".jpg"):
                blobs.append(torch.frombuffer(bytearray(tar.extractfile(member).read()), dtype=torch.uint8))
    start = time.perf_counter()
    for i in range(0, len(blobs), 512):
        decode_jpeg(blobs[i:i + 512], mode=ImageReadMode.RGB)
    return time.perf_counter() - start, len(blobs)


def cnnlab_epochs(dataset, epochs: int, batch_size: int) -> list[float]:
    torch.set_num_threads(1)
    loader = InMemoryLoader(dataset.images, dataset.labels, batch_size, augment=AUGMENT, mean=MEAN, std=STD)
    rates = []
    for epoch in range(epochs + 1):  # the first epoch warms up and is not counted
        start, count = time.perf_counter(), 0
        for images, _ in loader:
            count += images.shape[0]
        if epoch:
            rates.append(count / (time.perf_counter() - start))
    return rates


def torchvision_epochs(root: Path, epochs: int, batch_size: int, workers: int) -> list[float]:
    transform = v2.Compose([
        v2.PILToTensor(),
        v2.RandomHorizontalFlip(),
        v2.RandomCrop(32, padding=4),
        v2.ToDtype(torch.float32, scale=True),
        v2.RandomErasing(p=1.0, scale=(0.25, 0.25), ratio=(1.0, 1.0)),  # a 16x16 square in a 32x32 image
        v2.Normalize(MEAN, STD),
    ])
    dataset = torchvision.datasets.ImageFolder(str(root), transform=transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         persistent_workers=True)
    rates = []
    for epoch in range(epochs + 1):
        start, count = time.perf_counter(), 0
        for images, _ in loader:
            count += images.shape[0]
        if epoch:
            rates.append(count / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"
                                               / "cifar10-jpg.tar.gz"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--first-loads", type=int, default=0,
                        help="only time this many cold first loads of the training split (empty cache each time)")
    args = parser.parse_args(argv)
    archive = Path(args.archive)
    if not archive.is_file():
        print(f"error: {archive} not found (the shared CIFAR-10 JPEG tree)", file=sys.stderr)
        return 2
    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}")

    if args.first_loads:
        times = []
        for _ in range(args.first_loads):
            with tempfile.TemporaryDirectory() as scratch:
                start = time.perf_counter()
                load_dataset(archive, "train", val_fraction=0, cache_dir=Path(scratch))
                times.append(time.perf_counter() - start)
        print(f"cold first loads (read, decode, cache all 60,000 images): "
              + ", ".join(f"{t:.2f}" for t in times) + f" s; median {statistics.median(times):.2f} s")
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        start = time.perf_counter()
        train = load_dataset(archive, "train", val_fraction=0, cache_dir=cache)
        test = load_dataset(archive, "test", cache_dir=cache)
        first = time.perf_counter() - start
        decode, files = decode_only_seconds(archive)
        start = time.perf_counter()
        load_dataset(archive, "train", val_fraction=0, cache_dir=cache)
        load_dataset(archive, "test", cache_dir=cache)
        cached = time.perf_counter() - start
        print(f"first load of {len(train) + len(test):,} images into the cache: {first:.2f} s; "
              f"decoding the {files:,} JPEGs alone from memory: {decode:.2f} s "
              f"({decode / first:.0%} of the first load)")
        print(f"cached load of both splits: {cached:.2f} s")

        ours = cnnlab_epochs(train, args.epochs, args.batch_size)
        torch.set_num_threads(os.cpu_count() or 1)
        tree = Path(scratch) / "tree"
        with tarfile.open(archive) as tar:
            tar.extractall(tree, filter="data")
        roots = [p for p in tree.rglob("train") if p.is_dir()]
        theirs = torchvision_epochs(roots[0], args.epochs, args.batch_size, args.workers)

    ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
    print(f"augmented epochs ({AUGMENT}), batch {args.batch_size}, {len(train):,} images:")
    print(f"  cnnlab InMemoryLoader, 1 thread: " + ", ".join(f"{r:,.0f}" for r in ours)
          + f" images/s; median {ours_median:,.0f}")
    print(f"  torchvision ImageFolder + v2 + DataLoader({args.workers} workers): "
          + ", ".join(f"{r:,.0f}" for r in theirs) + f" images/s; median {theirs_median:,.0f}")
    print(f"  ratio cnnlab / torchvision: {ours_median / theirs_median:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
