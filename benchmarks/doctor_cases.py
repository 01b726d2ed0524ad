"""``cnnlab doctor`` on a healthy recipe and on deliberately broken ones: which check catches what.

The recipe is ``lenet5-digits`` (or ``--recipe``); the broken variants are made the way
such bugs arise in practice:

- shuffled labels: the training labels permuted (images and labels no longer match);
- outputs at the wrong scale: every weight of the fresh network multiplied by 4 (an
  initialisation far too large);
- a frozen network: every parameter with ``requires_grad=False``;
- a learning rate far too low: 1e-7.

    python benchmarks/doctor_cases.py [--recipe lenet5-digits] [--json OUT]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from cnnlab.train import load_recipe
from cnnlab.train.doctor import Doctor


def shuffled_labels(doctor: Doctor) -> None:
    loader = doctor.trainer.train_loader
    permutation = torch.randperm(len(loader.labels), generator=torch.Generator().manual_seed(0))
    loader.labels = loader.labels[permutation.to(loader.labels.device)]
    doctor.trainer.train_set.labels = doctor.trainer.train_set.labels[permutation]


def _wrap(doctor: Doctor, change) -> None:
    build = doctor.new_model

    def broken():
        model = build()
        change(model)
        return model

    doctor.new_model = broken


def wrong_scale(doctor: Doctor) -> None:
    def scale(model):
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(4.0)

    _wrap(doctor, scale)


def frozen(doctor: Doctor) -> None:
    _wrap(doctor, lambda model: [p.requires_grad_(False) for p in model.parameters()])


def tiny_lr(doctor: Doctor) -> None:
    doctor.config = doctor.config.updated({"lr": 1e-7})


CASES = {"healthy": None, "shuffled labels": shuffled_labels, "outputs at the wrong scale": wrong_scale,
         "frozen network": frozen, "learning rate 1e-7": tiny_lr}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="lenet5-digits")
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    results = {}
    for case, breaking in CASES.items():
        with Doctor(load_recipe(args.recipe, device="cpu", seed=0)) as doctor:
            if breaking is not None:
                breaking(doctor)
            checks = doctor.run()
        results[case] = [{"name": c.name, "passed": c.passed, "summary": c.summary, "advice": c.advice}
                         for c in checks]
        marks = " | ".join(("pass" if c.passed else "FAIL") for c in checks)
        print(f"{case:28s} | {marks}")
        for c in checks:
            print(f"    {c.name}: {c.summary}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
