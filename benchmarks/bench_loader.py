"""Throughput of the in-memory loader with the CIFAR-10 augmentation, on one CPU core.

Synthetic uint8 data of CIFAR-10's training-set shape (50,000 x 3 x 32 x 32), augmentation
"flip, crop(pad=4), cutout(16)", normalisation with CIFAR-10's channel statistics. Prints
images/s for each epoch and the median, next to the same loader without augmentation
(measured side by side, so the ratio survives a noisy machine), and exits with status 1
when the augmented median is under the target (30,000 images/s by default): the data
path must never starve the model.

    python benchmarks/bench_loader.py [--epochs 5] [--batch-size 512] [--threads 1]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import torch

from cnnlab.data.loader import InMemoryLoader

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)


def epoch_rates(loader: InMemoryLoader, epochs: int) -> list[float]:
    """Images per second of each of ``epochs`` timed epochs, after one warm-up epoch."""

    def synchronize() -> None:
        if loader.device.type == "cuda":
            torch.cuda.synchronize()

    for _ in loader:  # warm-up (allocator, first-call overheads)
        pass
    rates = []
    for _ in range(epochs):
        synchronize()
        start = time.perf_counter()
        count = 0
        for batch, _targets in loader:
            count += batch.shape[0]
        synchronize()
        rates.append(count / (time.perf_counter() - start))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (the target is for 1)")
    parser.add_argument("--augment", default="flip, crop(pad=4), cutout(16)")
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target", type=float, default=30_000.0, help="minimum median images/s")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.randint(0, 10, (args.images,), generator=generator)
    common = dict(device=args.device, mean=CIFAR10_MEAN, std=CIFAR10_STD)
    augmented = InMemoryLoader(images, labels, args.batch_size, augment=args.augment, **common)
    plain = InMemoryLoader(images, labels, args.batch_size, **common)
    print(
        f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
        f"threads={torch.get_num_threads()}, device={args.device}"
    )
    print(f"{args.images} images 3x32x32 uint8, batch {args.batch_size}, augment {augmented.augment.spec!r}")

    rates = epoch_rates(augmented, args.epochs)
    for epoch, rate in enumerate(rates):
        print(f"epoch {epoch}: {rate:,.0f} images/s")
    median = statistics.median(rates)
    baseline = statistics.median(epoch_rates(plain, args.epochs))
    print(f"no augmentation (convert + normalise only): {baseline:,.0f} images/s")
    verdict = "PASS" if median >= args.target else "FAIL"
    print(
        f"median with augmentation: {median:,.0f} images/s, {median / baseline:.2f}x the plain loader "
        f"(target {args.target:,.0f}): {verdict}"
    )
    return 0 if median >= args.target else 1


if __name__ == "__main__":
    sys.exit(main())
