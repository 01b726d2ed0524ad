"""The figures of a search: best accuracy against the number of children, and the best architecture drawn.

The first is how NAS papers compare searchers (Real et al. 2019, Figure 3; Zoph et al. 2018,
Figure 6: random search against the controller with the same budget). The second draws a
cell as NASNet's Figure 4 does, as a graph: the cell's two inputs, one node per block (the
sum of its two operations, each edge labelled with its operation) and the concatenation of
the blocks nothing else reads; a macro child as its stack of layers.
"""
from __future__ import annotations

from pathlib import Path

from ..figures import save_figure
from ..models.nas_macro import reduction_layers
from ..models.nasnet_cifar import loose_ends

__all__ = ["plot_architecture", "plot_progress"]

COLOURS = {"random": "tab:blue", "controller": "tab:orange"}
OP_COLOURS = {"sep3x3": "tab:blue", "sep5x5": "tab:purple", "sep7x7": "tab:pink", "max3x3": "tab:red",
              "avg3x3": "tab:orange", "identity": "tab:grey"}


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_progress(rows: list[dict], path: Path, title: str = "") -> None:
    """Each child's validation accuracy (dots) and the best so far (steps), per searcher, against
    the number of children sampled."""
    figure = _figure(7, 4.2)
    axes = figure.add_subplot(1, 1, 1)
    for name, colour in COLOURS.items():
        mine = sorted((r for r in rows if r["searcher"] == name), key=lambda r: r["child"])
        if not mine:
            continue
        xs = [r["child"] + 1 for r in mine]
        values = [r["val_top1"] for r in mine]
        best = [max(values[:i + 1]) for i in range(len(values))]
        axes.scatter(xs, values, s=14, color=colour, alpha=0.45)
        axes.step(xs, best, where="post", color=colour, label=f"{name}: best {best[-1]:.2f}%")
    axes.set_xlabel("children sampled")
    axes.set_ylabel("validation top-1 (%)")
    axes.set_title(title or "best child so far")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    save_figure(figure, path)


def _draw_cell(axes, blocks: list[list]) -> None:
    from matplotlib.patches import FancyArrowPatch

    count = len(blocks)
    axes.set_xlim(-0.6, count + 1.8)
    axes.set_ylim(-0.05, 1.05)
    axes.set_axis_off()
    position = {0: (0.0, 0.15), 1: (0.0, 0.85)}
    for j in range(count):
        position[2 + j] = (1.0 + j, 0.5 + (0.3 if j % 2 else -0.3))
    output = (count + 1.2, 0.5)
    names = {0: "h[i]", 1: "h[i-1]"}

    def node(xy, text, colour):
        axes.text(*xy, text, ha="center", va="center", fontsize=8, zorder=3,
                  bbox={"boxstyle": "round,pad=0.35", "facecolor": colour, "edgecolor": "black"})

    for j, (left_op, left_in, right_op, right_in) in enumerate(blocks):
        target = position[2 + j]
        for side, (op, source) in enumerate(((left_op, left_in), (right_op, right_in))):
            start = position[source]
            bend = 0.25 if side else -0.25
            axes.add_patch(FancyArrowPatch(start, target, arrowstyle="-|>", mutation_scale=10, shrinkA=14, shrinkB=12,
                                           connectionstyle=f"arc3,rad={bend}", color=OP_COLOURS.get(op, "black"),
                                           lw=1.4, zorder=1))
            # The label sits on the middle of the bent edge: matplotlib's arc3 bends in display
            # space, its control point rad x (dy, -dx) off the chord's middle, the curve half way.
            (x0, y0), (x1, y1) = axes.transData.transform([start, target])
            middle = ((x0 + x1) / 2 + 0.5 * bend * (y1 - y0), (y0 + y1) / 2 - 0.5 * bend * (x1 - x0))
            axes.text(*axes.transData.inverted().transform(middle), op, fontsize=7,
                      ha="center", va="center", color=OP_COLOURS.get(op, "black"), zorder=2,
                      bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "edgecolor": "none", "alpha": 0.8})
        node(target, f"b{j} (+)", "#e8f0ff")
    for state in loose_ends(blocks):
        axes.add_patch(FancyArrowPatch(position[state], output, arrowstyle="-|>", mutation_scale=10, shrinkA=14,
                                       shrinkB=16, color="black", lw=0.8, zorder=1))
    for state, text in names.items():
        node(position[state], text, "#fff3d6")
    node(output, "concat", "#e6f5e6")


def _draw_stack(axes, layers: list[list]) -> None:
    strided = reduction_layers(len(layers))
    entries = ["input"] + [f"{op}, {width}" + (", stride 2" if i in strided else "")
                           for i, (op, width) in enumerate(layers)] + ["avg pool, fc"]
    for i, text in enumerate(entries):
        y = len(entries) - 1 - i
        axes.text(0.5, y, text, ha="center", va="center", fontsize=9,
                  bbox={"boxstyle": "round,pad=0.4", "facecolor": "#e8f0ff" if 0 < i < len(entries) - 1 else "#fff3d6",
                        "edgecolor": "black"})
        if i:
            axes.annotate("", xy=(0.5, y + 0.3), xytext=(0.5, y + 0.7), arrowprops={"arrowstyle": "-|>"})
    axes.set_xlim(0, 1)
    axes.set_ylim(-0.7, len(entries) - 0.3)
    axes.set_axis_off()


def plot_architecture(space: str, model_args: dict, path: Path, title: str = "") -> None:
    """The cells (normal and reduction, side by side) or the layer stack of a child, as a PNG."""
    if space == "cells":
        width = 2 + 1.3 * len(model_args["normal"])
        figure = _figure(2 * width, 4.4)
        axes = [figure.add_subplot(1, 2, index + 1) for index in range(2)]
        axes[0].set_title("normal cell", fontsize=10)
        axes[1].set_title("reduction cell", fontsize=10)
    else:
        figure = _figure(4, 0.6 * len(model_args["layers"]) + 1.8)
        axes = [figure.add_subplot(1, 1, 1)]
        axes[0].set_title("layers", fontsize=10)
    for each in axes:
        each.set_axis_off()
    if title:
        figure.suptitle(title, fontsize=11)
    figure.tight_layout()  # first: the cell's edge labels are placed in the final display space
    if space == "cells":
        for index, cell in enumerate(("normal", "reduction")):
            _draw_cell(axes[index], model_args[cell])
    else:
        _draw_stack(axes[0], model_args["layers"])
    save_figure(figure, path)
