"""The degradation figure of the ResNet paper (Fig. 6) from cnnlab runs: plain nets vs residual nets.

Reads the ``metrics.csv`` of the four runs made by ``run_resnet_cifar.py`` and draws
training error (thin lines) and validation error (bold) against iterations, plain-20/56
on the left and ResNet-20/56 on the right. The paper's observation: the deeper plain
net has the *higher* training error (degradation, not overfitting), while the deeper
residual net has the lower one. The script prints the final errors it plots, so the
figure's claim can be checked as numbers. A panel with none of its runs in the folder is
left out (``benchmarks/cpu-runs`` holds only the two ResNets).

    python benchmarks/plot_degradation.py runs/resnet-cifar [--out degradation.png]
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import matplotlib
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from cnnlab.train.report import read_metrics_csv  # noqa: E402

PANELS = (("plain", ("plain20-cifar10", "plain56-cifar10")), ("ResNet", ("resnet20-cifar10", "resnet56-cifar10")))
COLOURS = {"20": "tab:orange", "56": "tab:red"}
STEPS_PER_EPOCH = 352  # 45,000 training images in batches of 128, the last one partial


def data_label(run: Path) -> str:
    """Which CIFAR-10 a run trained on, from its saved config: every figure names its data."""
    config = run / "config.yaml"
    data = str(yaml.safe_load(config.read_text()).get("data", "")) if config.is_file() else ""
    if "jpg" in data.lower() or "jpeg" in data.lower():
        return "CIFAR-10 (JPEG q75)"
    if data == "cifar10" or "cifar-10-python" in data:
        return "CIFAR-10 (lossless)"
    return data or "unknown data (no config.yaml)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", help="folder with one run folder per recipe (run_resnet_cifar.py --out)")
    parser.add_argument("--out", default=None, help="PNG to write (default: RUNS/degradation.png)")
    args = parser.parse_args(argv)
    runs = Path(args.runs)
    out = Path(args.out) if args.out else runs / "degradation.png"
    metrics = {recipe: runs / recipe / "metrics.csv" for _, recipes in PANELS for recipe in recipes}
    missing = [recipe for recipe, path in metrics.items() if not path.is_file()]
    # A folder may hold only some of the four runs (the CPU runs have no plain nets):
    # draw the panels that have at least one run, and name the runs left out.
    panels = [(title, recipes) for title, recipes in PANELS if any(r not in missing for r in recipes)]
    if not panels:
        print(f"error: no run folder with a metrics.csv in {runs} (expected {', '.join(missing)})",
              file=sys.stderr)
        return 1
    labels = {data_label(runs / recipe) for recipe in metrics if recipe not in missing}
    if len(labels) > 1:
        print(f"error: the runs in {runs} trained on different data ({', '.join(sorted(labels))}); "
              "a figure compares runs on one data set", file=sys.stderr)
        return 1
    (label,) = labels
    print(f"data: {label}")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels) + 0.5, 4.2), sharey=True,
                             squeeze=False)
    axes = axes[0]
    for ax, (title, recipes) in zip(axes, panels):
        for recipe in recipes:
            if recipe in missing:
                continue
            rows = read_metrics_csv(metrics[recipe])
            depth = re.sub(r"\D", "", recipe.split("-")[0])
            iterations = [row["epoch"] * STEPS_PER_EPOCH / 1e4 for row in rows]
            train_error = [100.0 - row["train_top1"] for row in rows]
            val_error = [100.0 - row["val_top1"] for row in rows]
            name = f"{title}-{depth}"
            ax.plot(iterations, train_error, color=COLOURS[depth], linewidth=0.9, linestyle="--",
                    label=f"{name} train")
            ax.plot(iterations, val_error, color=COLOURS[depth], linewidth=2.2, label=f"{name} val")
            print(f"{name:10s} {len(rows):3d} epochs: final training error {train_error[-1]:5.2f}%, "
                  f"validation error {val_error[-1]:5.2f}%")
        ax.set_title(f"{title} networks on {label}")
        ax.set_xlabel("iterations (1e4)")
        ax.set_ylim(0, 20)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("error (%)")
    depths = {re.sub(r"\D", "", recipe.split("-")[0]) for recipe in metrics if recipe not in missing}
    if len(panels) == 2 and len(depths) == 2:
        fig.suptitle("Degradation: deeper plain nets train worse, deeper residual nets train better "
                     "(He et al. 2016, Fig. 6)", fontsize=10)
    else:  # say what is missing rather than claim what the runs cannot show
        shown = " and ".join(f"the {title} panel" for title, _ in panels)
        fig.suptitle(f"He et al. 2016, Fig. 6: {shown}, {'/'.join(sorted(depths))} layers only", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")
    if missing:
        print(f"not plotted (no metrics.csv): {', '.join(missing)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
