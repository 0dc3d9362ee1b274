"""A diagram of a model's data flow, drawn from its shape walk (``musicvae explain --diagram``).

Boxes are the stages of :func:`musicvae.models.explain.shape_walk`, labelled with their real
shapes; a hierarchical decoder is drawn as the conductor over its bars, each bar's core decoder
starting from its own embedding.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from musicvae.configs import Config
from musicvae.families import family_of
from musicvae.io import atomic_write_bytes


def render_diagram(config: Config, dpi: int = 110) -> bytes:
    """PNG bytes of ``config``'s data flow."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    from musicvae.models.explain import shape_walk

    walk = {s.name: s.shape for s in shape_walk(config, batch=1)}
    fig = Figure(figsize=(11, 5.2))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 11)
    ax.set_ylim(0, 5.2)
    ax.axis("off")

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.04", fc=color, ec="0.3"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=8.5)

    def arrow(a: tuple[float, float], b: tuple[float, float]) -> None:
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=10, color="0.3"))

    def shape(name: str) -> str:
        return "(" + ", ".join(str(d) for d in walk[name][1:]) + ")"

    box(0.2, 2.2, 1.8, 0.9, f"input window\n{shape('encoder input')}", "#dde8f5")
    box(2.4, 2.2, 1.8, 0.9, f"BiLSTM encoder\nsummary {shape('encoder summary')}", "#dde8f5")
    box(4.6, 2.2, 1.4, 0.9, f"z ~ q(z|x)\n{shape('z')}", "#f5e6d0")
    arrow((2.0, 2.65), (2.4, 2.65))
    arrow((4.2, 2.65), (4.6, 2.65))
    if "bar embeddings" in walk:
        bars = walk["bar embeddings"][1]
        reads = "z" if walk["conductor input"][-1] == walk["z"][-1] else "zeros"
        box(6.4, 3.9, 4.4, 0.9, f"conductor LSTM: one step per bar, reading {reads}\n{bars} bar "
            f"embeddings {shape('bar embeddings')[1:-1].split(', ')[-1]}-d", "#e3f0dc")  # fmt: skip
        arrow((6.0, 2.9), (6.4, 4.2))
        shown = min(bars, 4)
        width = 4.4 / shown
        for i in range(shown):
            x = 6.4 + i * width
            label = f"bar {i + 1}" if i < shown - 1 or shown == bars else f"... bar {bars}"
            box(x + 0.05, 1.9, width - 0.15, 1.1, f"{label}\ncore LSTM\n16 steps", "#e3f0dc")
            arrow((x + width / 2, 3.9), (x + width / 2, 3.05))
            if i:
                arrow((x - 0.12, 2.45), (x + 0.05, 2.45))
        ax.text(8.6, 1.55, "each bar starts from its embedding; its first input is the previous "
                "bar's last step", ha="center", fontsize=8)  # fmt: skip
    else:
        box(6.4, 2.2, 4.4, 0.9, f"LSTM decoder over all {walk['decoder output'][1]} steps\n"
            f"input per step {shape('decoder input per step')}: previous step | z", "#e3f0dc")  # fmt: skip
        arrow((6.0, 2.65), (6.4, 2.65))
    box(6.4, 0.3, 4.4, 0.8, f"output {shape('decoder output')}:\n"
        f"{family_of(config).output_layout}", "#f0dcdc")  # fmt: skip
    arrow((8.6, 1.45), (8.6, 1.15))
    ax.text(0.2, 4.85, f"{config.name}", fontsize=11, weight="bold")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def write_diagram(config: Config, path: str | os.PathLike) -> Path:
    return atomic_write_bytes(path, render_diagram(config))
