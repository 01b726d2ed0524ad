"""End-to-end training throughput of ResNet-20 on CIFAR-10: cnnlab's trainer vs synthetic batches vs a usual loop.

Three ways of training the same model (ResNet-20, SGD momentum 0.9, batch 128,
flip + 4-pixel pad-crop), measured side by side in one run over the same steps:

1. cnnlab: the real ``Trainer`` on the shared JPEG tree (cached uint8 tensor,
   ``InMemoryLoader`` with batched augmentation), timed between two of its steps;
2. synthetic: the same model, loss and optimiser on one pre-made normalised batch,
   repeated: the model's own speed with no data path at all (the upper bound);
3. usual: torchvision ``ImageFolder`` over the extracted tree + ``transforms``
   (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize) +
   ``DataLoader`` (2 workers) + a plain loop, as it is usually written.

The targets: cnnlab >= 90% of synthetic, and >= 1.5x the usual loop.

On a GPU (``--device cuda``) the trainer and the synthetic loop use the trainer's
defaults there (bf16 autocast and channels-last memory), while the usual loop is
written the usual way: fp32, ``pin_memory`` and ``non_blocking`` copies, ``--workers``
DataLoader workers. Every timed region ends with a device synchronisation.

``--compile MODE`` compiles the trainer's and the synthetic loop's model with that
``torch.compile`` mode (``reduce-overhead`` replays CUDA graphs); the usual loop stays eager.

    python benchmarks/bench_train_throughput.py [--steps 40] [--warmup 5] [--device cpu|cuda] [--workers 2] \
        [--compile MODE]
"""
from __future__ import annotations

import argparse
import contextlib
import os
import platform
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torchvision import transforms

import cnnlab
from cnnlab.train import Callback, Trainer, load_recipe
from cnnlab.device import autocast_context, resolve_precision

MEAN = (0.4913, 0.4821, 0.4465)
STD = (0.2452, 0.2428, 0.2606)
BATCH = 128


class StepTimer(Callback):
    """Times the trainer between step ``warmup`` and step ``warmup + steps``, then stops it."""

    def __init__(self, warmup: int, steps: int):
        self.warmup, self.steps, self.start, self.seconds = warmup, steps, None, None

    def on_step_end(self, trainer) -> None:
        if trainer.step in (self.warmup, self.warmup + self.steps):
            synchronize(trainer.device)
        if trainer.step == self.warmup:
            self.start = time.perf_counter()
        elif trainer.step == self.warmup + self.steps:
            self.seconds = time.perf_counter() - self.start
            raise KeyboardInterrupt  # the trainer saves `last` in the scratch folder and stops


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def cnnlab_rate(archive: Path, scratch: Path, warmup: int, steps: int, device: str, compile_mode) -> float:
    config = load_recipe("resnet20-cifar10", overrides={
        "data": str(archive), "download": False, "epochs": 1, "milestones": [], "cpu_threads": os.cpu_count(),
        "device": device, "compile": compile_mode or False})
    timer = StepTimer(warmup, steps)
    trainer = Trainer(config, scratch / "run", quiet=True, callbacks=[timer])
    try:
        trainer.fit()
    except KeyboardInterrupt:
        pass
    return steps * BATCH / timer.seconds


def plain_step(model, optimizer, images, labels, autocast=contextlib.nullcontext) -> None:
    with autocast():
        logits = model(images)
    loss = nn.functional.cross_entropy(logits.float(), labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def synthetic_rate(warmup: int, steps: int, device: str, compile_mode) -> float:
    """The model alone, in the precision, memory format and compile mode the trainer uses on ``device``."""
    precision = resolve_precision(device)
    model = cnnlab.create_model("resnet20").train().to(device)
    images, labels = torch.randn(BATCH, 3, 32, 32, device=device), torch.randint(0, 10, (BATCH,), device=device)
    if precision.channels_last:
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    if compile_mode:
        model = torch.compile(model, mode=compile_mode)
    autocast = lambda: autocast_context(torch.device(device), precision)  # noqa: E731
    for _ in range(warmup):
        plain_step(model, optimizer, images, labels, autocast)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        plain_step(model, optimizer, images, labels, autocast)
    synchronize(device)
    return steps * BATCH / (time.perf_counter() - start)


def usual_rate(tree: Path, warmup: int, steps: int, workers: int, device: str) -> float:
    transform = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                    transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
    dataset = torchvision.datasets.ImageFolder(str(tree), transform=transform)
    on_gpu = torch.device(device).type == "cuda"
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True, num_workers=workers,
                                         drop_last=True, pin_memory=on_gpu)
    model = cnnlab.create_model("resnet20").train().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for step, (images, labels) in enumerate(loader):
        if step == warmup:
            synchronize(device)
            start = time.perf_counter()
        if step == warmup + steps:
            synchronize(device)
            return steps * BATCH / (time.perf_counter() - start)
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        plain_step(model, optimizer, images, labels)
    raise RuntimeError("the data set is too small for the requested steps")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=str(Path(__file__).resolve().parents[1].parent / "shared" / "data"
                                               / "cifar10-jpg.tar.gz"))
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--compile", default=None, metavar="MODE",
                        help="torch.compile mode for the trainer and the synthetic loop (e.g. reduce-overhead)")
    args = parser.parse_args(argv)
    archive = Path(args.archive)
    if not archive.is_file():
        print(f"error: {archive} not found (the shared CIFAR-10 JPEG tree)", file=sys.stderr)
        return 2
    torch.set_num_threads(os.cpu_count() or 1)
    device_name = torch.cuda.get_device_name() if torch.device(args.device).type == "cuda" else "cpu"
    print(f"cnnlab {cnnlab.__version__}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}, device {device_name}; "
          f"compile {args.compile or 'off'}; ResNet-20, "
          f"batch {BATCH}, {args.steps} timed steps after {args.warmup} warm-up steps")
    # The trainer and the synthetic loop run in the trainer's defaults for this device; the usual loop in fp32.
    print(f"cnnlab and synthetic: {resolve_precision(torch.device(args.device)).reason}; usual loop: fp32, "
          f"channels-first")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        ours = cnnlab_rate(archive, scratch, args.warmup, args.steps, args.device, args.compile)
        synthetic = synthetic_rate(args.warmup, args.steps, args.device, args.compile)
        with tarfile.open(archive) as tar:
            tar.extractall(scratch / "tree", filter="data")
        tree = next(p for p in (scratch / "tree").rglob("train") if p.is_dir())
        usual = usual_rate(tree, args.warmup, args.steps, args.workers, args.device)
    print(f"  cnnlab Trainer (cached tensor, batched augmentation): {ours:,.0f} images/s")
    print(f"  same model on one synthetic batch (no data path):     {synthetic:,.0f} images/s")
    print(f"  usual loop (ImageFolder + transforms + DataLoader({args.workers} workers)): {usual:,.0f} images/s")
    print(f"  cnnlab / synthetic: {ours / synthetic:.0%} (target >= 90%); cnnlab / usual: {ours / usual:.2f}x "
          f"(target >= 1.5x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
