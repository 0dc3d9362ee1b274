"""Training curves of a run folder as one PNG, read from its TensorBoard event files.

Six panels: total loss, reconstruction loss, KL (bits), KL beta, accuracy and learning rate (each
model family logs its own accuracy, ``musicvae.families``: hit accuracy for grooves, step
accuracy for melodies and one-hot drums);
train curves from ``RUN/train``, evaluation points from ``RUN/eval``. Several runs can share one
figure (``musicvae plot RUN1 RUN2 -o both.png``) to compare them step by step. Rendered with matplotlib's Agg
backend (no display needed) and written atomically.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from musicvae.errors import MusicVAEError
from musicvae.io import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PANELS: tuple[tuple[str, str], ...] = (
    ("loss", "loss"),
    ("losses/r_loss", "reconstruction loss"),
    ("losses/kl_bits", "KL (bits)"),
    ("losses/kl_beta", "KL beta"),
    ("metrics/hit_accuracy", "hit accuracy"),  # or the runs' own family's accuracy
    ("learning_rate", "learning rate"),
)
ACCURACY_PANEL = 4
# Above this many points a raw train curve is drawn faint, with an exponential moving average.
SMOOTH_ABOVE = 50
SMOOTHING = 0.8
# Schedules are exact functions of the step: smoothing them would only draw a lagging copy.
UNSMOOTHED = frozenset({"losses/kl_beta", "learning_rate"})

Series = dict[str, tuple[np.ndarray, np.ndarray]]


def read_scalars(log_dir: str | os.PathLike) -> Series:
    """Every scalar tag of the event files in ``log_dir``: ``{tag: (steps, values)}``."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    log_dir = Path(log_dir)
    if not log_dir.is_dir() or not any(p.name.startswith("events.") for p in log_dir.iterdir()):
        return {}
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    out: Series = {}
    for tag in acc.Tags().get("scalars", []):
        events = acc.Scalars(tag)
        steps = np.array([e.step for e in events], np.int64)
        values = np.array([e.value for e in events], np.float64)
        order = np.argsort(steps, kind="stable")
        out[tag] = (steps[order], values[order])
    return out


def _ema(values: np.ndarray, weight: float) -> np.ndarray:
    out = np.empty_like(values)
    acc = values[0]
    for i, v in enumerate(values):
        acc = weight * acc + (1 - weight) * v
        out[i] = acc
    return out


def render(train: Series, eval_: Series, title: str = "") -> bytes:
    """The PNG bytes of the six-panel figure of one run."""
    return render_runs([("", train, eval_)], title)


def _draw(
    ax: Axes, tag: str, steps: np.ndarray, values: np.ndarray, color: str, label: str
) -> None:
    if len(values) > SMOOTH_ABOVE and tag not in UNSMOOTHED:
        ax.plot(steps, values, color=color, alpha=0.3, linewidth=0.8)
        ax.plot(steps, _ema(values, SMOOTHING), color=color, label=label)
    else:
        marker = "." if len(values) < 20 else None
        ax.plot(steps, values, color=color, marker=marker, label=label)


def panels(runs: list[tuple[str, Series, Series]]) -> list[tuple[str, str]]:
    """:data:`PANELS` with the accuracy panel showing the first family accuracy the runs log."""
    from musicvae.families import FAMILIES

    out = list(PANELS)
    for family in FAMILIES.values():
        tag = f"metrics/{family.accuracy_key}"
        if any(tag in series for _, train, eval_ in runs for series in (train, eval_)):
            out[ACCURACY_PANEL] = (tag, family.accuracy_label)
            break
    return out


def render_runs(runs: list[tuple[str, Series, Series]], title: str = "") -> bytes:
    """The six-panel figure of one or more ``(name, train, eval)`` runs on shared axes: one run
    draws train in blue and eval in orange; several runs get a colour each, train solid and
    eval dashed with markers."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True)
    single = len(runs) == 1
    for ax, (tag, label) in zip(axes.flat, panels(runs), strict=True):
        drawn = []
        for k, (name, train, eval_) in enumerate(runs):
            prefix = "" if single else f"{name} "
            if tag in train:
                steps, values = train[tag]
                _draw(ax, tag, steps, values, "C0" if single else f"C{k}", f"{prefix}train")
                drawn.append(values)
            if tag in eval_:
                steps, values = eval_[tag]
                color, style = ("C1", "-") if single else (f"C{k}", "--")
                ax.plot(steps, values, style, color=color, marker="o", markersize=3,
                        label=f"{prefix}eval")  # fmt: skip
                drawn.append(values)
        ax.set_title(label)
        ax.set_xlabel("step")
        ax.grid(True, alpha=0.3)
        # beta sits at 0.2 in float32; an offset axis would label it "1e-8 + 2e-1".
        ax.ticklabel_format(axis="y", useOffset=False)
        if not drawn:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            continue
        values = np.concatenate(drawn)
        lo, hi = float(values.min()), float(values.max())
        if hi - lo <= 1e-6 * max(abs(lo), abs(hi), 1e-12):
            # A constant (up to float32 noise): centre it rather than zoom into the noise.
            pad = 0.1 * abs(hi) or 1.0
            ax.set_ylim(lo - pad, hi + pad)
        if tag == "learning_rate" and values.min() > 0 and values.max() / values.min() > 10:
            ax.set_yscale("log")
        ax.legend(loc="best", fontsize="small")
    if title:
        fig.suptitle(title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()


def _read_run(run_dir: Path) -> tuple[Series, Series, int]:
    if not run_dir.is_dir():
        raise MusicVAEError(f"{run_dir}: no such run folder")
    train = read_scalars(run_dir / "train")
    eval_ = read_scalars(run_dir / "eval")
    if not train and not eval_:
        raise MusicVAEError(f"{run_dir}: no TensorBoard event files in train/ or eval/")
    last = max(int(s[-1]) for s, _ in (*train.values(), *eval_.values()) if len(s))
    return train, eval_, last


def plot_runs(run_dirs: list[str | os.PathLike], output: str | os.PathLike) -> Path:
    """Write the curves of several run folders, overlaid, to ``output``; return the path."""
    runs, titles = [], []
    for d in map(Path, run_dirs):
        train, eval_, last = _read_run(d)
        runs.append((d.name, train, eval_))
        titles.append(f"{d.name} (step {last})")
    return _write(Path(output), render_runs(runs, title=" vs ".join(titles)))


def _write(output: Path, png: bytes) -> Path:
    try:
        atomic_write_bytes(output, png)
    except OSError as e:
        raise MusicVAEError(f"{output}: cannot write ({e.strerror or e})") from None
    return output


def plot_run(run_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> Path:
    """Write the curves of ``run_dir`` to ``output`` (default ``RUN/curves.png``); return the path."""
    run_dir = Path(run_dir)
    train, eval_, last = _read_run(run_dir)
    output = Path(output) if output is not None else run_dir / "curves.png"
    return _write(output, render(train, eval_, title=f"{run_dir.name} (step {last})"))
