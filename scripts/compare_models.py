"""Side-by-side evaluation of trained models on one split, as a Markdown table, JSON and a plot.

Made for the flat-versus-hierarchical comparison in ``docs/hierarchical-decoder.md``:

    .venv/bin/python scripts/compare_models.py --examples gmd.parquet --split test \\
        --model groovae_4bar --model groovae_16bar.safetensors \\
        --model groovae_16bar_hierdec.safetensors \\
        --json docs/hierdec-comparison.json --plot docs/hierdec_structure.png

Each model is evaluated on its own windows of the split (``musicvae evaluate``'s figures:
teacher-forced and free-running reconstruction, latent use, interpolation smoothness, prior
samples' structure), plus, for a hierarchical model, how well its conductor's bar embeddings
follow the grooves' own bar similarity, and how well it continues the first 4 bars of real 16-bar
windows (``musicvae.evaluation.continuation``: the studio's Continue). The plot shows hit
similarity of bar i and bar i + lag in prior samples of each model against the real windows.

``--reports FILE`` puts the models of an earlier run's ``--json`` first in the table, so a new
model joins a comparison without retraining the others (their reports are kept as they were). A
``--model`` named as one of them is evaluated again in its place.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

MAX_LAG = 15
PRIOR_SAMPLES = 512


def _f(x, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def melody_lag_curve(melodies: np.ndarray, steps_per_bar: int) -> list[float]:
    """Share of equal steps between bars ``lag`` apart, for lags 1..MAX_LAG, of one-hot
    melodies."""
    from musicvae.evaluation.melody import bar_similarity, events

    classes = events(melodies)
    bars = melodies.shape[1] // steps_per_bar
    return [
        bar_similarity(classes, steps_per_bar, lag) for lag in range(1, min(MAX_LAG, bars - 1) + 1)
    ]


def lag_curve(grooves: np.ndarray, steps_per_bar: int) -> list[float]:
    from musicvae.evaluation.metrics import HIT_THRESHOLD, split_channels
    from musicvae.evaluation.realism import bar_similarity

    hit = split_channels(np.asarray(grooves, np.float64))[0] > HIT_THRESHOLD
    bars = grooves.shape[1] // steps_per_bar
    return [bar_similarity(hit, steps_per_bar, lag) for lag in range(1, min(MAX_LAG, bars - 1) + 1)]


def long_windows(examples: str, split: str | None) -> np.ndarray | None:
    """The split's 16-bar windows (N, 256, 27), which every model continues, or None if the
    split has none."""
    from musicvae.configs import get_config
    from musicvae.errors import MusicVAEError
    from musicvae.evaluation.evaluate import load_split

    try:
        windows, _, _ = load_split(examples, get_config("groovae_16bar"), split)
    except MusicVAEError:
        return None
    return windows.outputs.numpy()


def evaluate_model(
    name: str,
    examples: str,
    split: str | None,
    seed: int,
    long: np.ndarray | None = None,
    trained=None,
) -> dict:
    from musicvae.evaluation.conductor import structure_agreement
    from musicvae.evaluation.continuation import continuation_report
    from musicvae.evaluation.evaluate import evaluate, load_split
    from musicvae.generation import load

    trained = load(name) if trained is None else trained
    t0 = time.monotonic()
    report = evaluate(trained, examples, split, seed=seed, progress=False)
    windows, _, _ = load_split(examples, trained.config, split)
    spb = trained.converter.steps_per_bar
    samples = trained.sample_tensors(PRIOR_SAMPLES, 1.0, seed)
    real = windows.outputs.numpy()
    melody = trained.family.name == "melody"
    curve = melody_lag_curve if melody else lag_curve
    extra = {
        "model": name,
        "step": trained.step,
        "metadata_training": trained.metadata.get("training", ""),
        "lag_similarity": {"samples": curve(samples, spb), "real": curve(real, spb)},
        "seconds": 0.0,
    }
    if melody:  # the structure and continuation figures below read drum hits
        extra["seconds"] = round(time.monotonic() - t0, 1)
        report["comparison"] = extra
        return report
    if trained.config.decoder == "hierarchical":
        _, mu, _ = trained.encode_tensors(windows.inputs.numpy())
        extra["conductor"] = structure_agreement(trained.model, mu, real, spb)
    if long is not None and not trained.config.data.transforms_input:
        extra["continuation"] = continuation_report(trained, long, seed=seed)
    extra["seconds"] = round(time.monotonic() - t0, 1)
    report["comparison"] = extra
    return report


def _active(r: dict) -> str:
    usage = r.get("latent")
    return f"{usage['active_units']} of {usage['z_size']}" if usage else "n/a"


ROWS = [
    ("test windows", lambda r: str(r["num_windows"])),
    ("bars per window", lambda r: str(r["window_steps"] // 16)),
    ("training steps", lambda r: str(r["comparison"]["step"])),
    ("KL (bits per window)", lambda r: _f(r["elbo"]["overall"]["kl_bits"], 1)),
    ("latent dimensions in use (variance of mu > 0.01)", _active),
    ("teacher-forced hit F1", lambda r: _f(r["teacher_forced"]["overall"]["f1"])),
    ("… with another window's z", lambda r: _f(r["other_z"]["overall"]["f1"])),
    (
        "F1 gap (what z carries)",
        lambda r: _f(r["teacher_forced"]["overall"]["f1"] - r["other_z"]["overall"]["f1"]),
    ),
    ("teacher-forced velocity MAE", lambda r: _f(r["teacher_forced"]["overall"]["velocity_mae"], 1)),
    ("teacher-forced timing MAE (ms)", lambda r: _f(r["teacher_forced"]["overall"]["timing_mae_ms"], 1)),
    ("free-running hit F1", lambda r: _f(r["sampled"]["overall"]["f1"])),
    ("free-running velocity MAE", lambda r: _f(r["sampled"]["overall"]["velocity_mae"], 1)),
    ("free-running timing MAE (ms)", lambda r: _f(r["sampled"]["overall"]["timing_mae_ms"], 1)),
]  # fmt: skip


def _realism(key: str, digits: int = 3):
    return lambda r: (
        f"{_f(r['prior']['realism']['generated'][key], digits)} "
        f"({_f(r['prior']['realism']['real'][key], digits)})"
    )


def _continuation(key: str, digits: int = 3):
    def get(r: dict) -> str:
        c = r["comparison"].get("continuation")
        if c is None:
            return "–"
        real = c.get(f"real_{key}")
        return _f(c[key], digits) + ("" if real is None else f" ({_f(real, digits)})")

    return get


PRIOR_ROWS = [
    ("prior: bar-to-bar similarity (real)", _realism("bar_similarity")),
    ("prior: bar i vs i+4 similarity (real)", _realism("bar_similarity_lag4")),
    ("prior: backbeat on 2 and 4 (real)", _realism("backbeat_share")),
    ("prior: notes per bar (real)", _realism("notes_per_bar", 1)),
    ("prior: timing spread, steps (real)", _realism("offset_std_steps")),
    (
        "prior: per-class hit rate, mean abs. error",
        lambda r: _f(
            float(
                np.mean(
                    [
                        abs(g["hit_rate"] - d["hit_rate"])
                        for g, d in zip(
                            r["prior"]["realism"]["generated"]["per_class"].values(),
                            r["prior"]["realism"]["real"]["per_class"].values(),
                            strict=True,
                        )
                    ]
                )
            ),
            4,
        ),
    ),
    ("interpolation: hits changed per bar per step", lambda r: _f(r["interpolation"]["hits_changed_per_bar"], 2)),
    ("interpolation: largest step's share (even 0.125)", lambda r: _f(r["interpolation"]["largest_step_share"], 2)),
    ("interpolation: path / direct", lambda r: _f(r["interpolation"]["path_excess"], 2)),
    (
        "conductor follows bar similarity (r)",
        lambda r: _f(r["comparison"].get("conductor", {}).get("correlation_mean"), 2),
    ),
    ("continue 4 bars: hit F1 against what was played", _continuation("f1")),
    ("… looping the prompt's last bar instead", _continuation("repeat_f1")),
    ("continue: new bars' similarity to the prompt (real)", _continuation("prompt_similarity")),
    ("continue: notes per bar (real)", _continuation("notes_per_bar", 1)),
]  # fmt: skip


def column_name(report: dict, reports: list[dict], renames: dict[str, str] | None = None) -> str:
    """A model's column name: its config, or, where two models share a config, its file name;
    then as ``renames`` (``--rename``) has it."""
    if sum(r["config"] == report["config"] for r in reports) == 1:
        name = report["config"]
    else:
        path = Path(report["comparison"]["model"])
        name = path.name.removesuffix(".safetensors")
        if name.startswith("model.ckpt-") and path.parent.name == "train":
            # RUN/train/model.ckpt-1300.pt: the run's name, at its step
            name = (
                f"{path.parent.parent.name}@{name.removeprefix('model.ckpt-').removesuffix('.pt')}"
            )
    return (renames or {}).get(name, name)


def _melody(block: str, key: str, digits: int = 3):
    def get(r: dict) -> str:
        value = r
        for part in (*block.split("."), key):
            value = value.get(part, {}) if isinstance(value, dict) else {}
        return _f(value if isinstance(value, float) else None, digits)

    return get


# Melody models: the paper's reconstruction accuracies, latent use, and how tune-like their
# interpolations and prior samples are beside the split's own windows.
MELODY_ROWS = [
    ("test windows", lambda r: str(r["num_windows"])),
    ("training steps", lambda r: str(r["comparison"]["step"])),
    ("KL (bits per window)", lambda r: _f(r["elbo"]["kl_bits"], 1)),
    ("latent dimensions in use (variance of mu > 0.01)", _active),
    ("teacher-forced accuracy", lambda r: _f(r["teacher_forced"]["accuracy"])),
    ("sampled accuracy (temperature 1)", lambda r: _f(r["sampled"]["accuracy"])),
    ("sampled accuracy (argmax)", lambda r: _f(r["free"]["accuracy"])),
    ("teacher-forced, another tune's z", lambda r: _f(r["other_z"]["accuracy"])),
    ("interpolation: events changed per move", lambda r: _f(r["interpolation"]["events_changed_per_step"])),
    *[
        (f"{where}: {label}", _melody(block, key))
        for where, block in (
            ("midpoints", "interpolation.midpoints"),
            ("prior", "prior.generated"),
            ("real", "prior.real"),
        )
        for label, key in (
            ("notes per bar", "notes_per_bar"),
            ("pitch range", "pitch_range"),
            ("in-key share", "in_key_share"),
            ("bar similarity lag 1", "bar_similarity_lag1"),
            ("bar similarity lag 4", "bar_similarity_lag4"),
            ("share over two octaves", "over_two_octaves"),
        )
    ],
]  # fmt: skip


def table(reports: list[dict], renames: dict[str, str] | None = None) -> str:
    names = [column_name(r, reports, renames) for r in reports]
    head = "| measure | " + " | ".join(names) + " |"
    lines = [head, "|---" * (len(reports) + 1) + "|"]
    melody = [r.get("family") == "melody" for r in reports]
    if any(melody) and not all(melody):
        from musicvae.errors import MusicVAEError

        raise MusicVAEError("compare models of one kind: melody models with melody models")
    for label, get in MELODY_ROWS if all(melody) else ROWS + PRIOR_ROWS:
        lines.append(f"| {label} | " + " | ".join(get(r) for r in reports) + " |")
    return "\n".join(lines)


def plot(reports: list[dict], path: Path, renames: dict[str, str] | None = None) -> None:
    from matplotlib.figure import Figure

    from musicvae.io import atomic_write_bytes

    fig = Figure(figsize=(7.5, 4))
    ax = fig.add_subplot()
    for r in reports:
        curve = r["comparison"]["lag_similarity"]["samples"]
        ax.plot(
            range(1, len(curve) + 1),
            curve,
            marker="o",
            ms=3,
            label=f"{column_name(r, reports, renames)} prior",
        )
    # The real windows' curve from the longest windows (shorter ones give its first lags).
    real = max((r["comparison"]["lag_similarity"]["real"] for r in reports), key=len)
    melody = all(r.get("family") == "melody" for r in reports)
    split = reports[0].get("split", "test")
    ax.plot(
        range(1, len(real) + 1),
        real,
        "k--",
        marker="s",
        ms=3,
        label=f"real {'melodies' if melody else 'grooves'} ({split})",
    )
    ax.set_xlabel("lag (bars)")
    ax.set_ylabel(
        "share of equal steps in bar i and bar i + lag"
        if melody
        else "hit similarity of bar i and bar i + lag (Jaccard)"
    )
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


SPLITS = ("train", "validation", "test", "all")


def read_reports(path: Path) -> list[dict]:
    """An earlier run's ``--json``: a list of reports, each with its config and comparison;
    one :class:`MusicVAEError` line naming the file otherwise."""
    from musicvae.errors import MusicVAEError

    try:
        reports = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MusicVAEError(f"{path}: no such reports file (an earlier run's --json)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise MusicVAEError(f"{path}: cannot read the reports ({e})") from None
    except ValueError as e:
        raise MusicVAEError(f"{path}: not JSON ({e}); give an earlier run's --json") from None
    if not isinstance(reports, list) or not all(
        isinstance(r, dict) and "config" in r and "model" in r.get("comparison", {})
        for r in reports
    ):
        raise MusicVAEError(
            f"{path}: not a list of compare_models reports; give an earlier run's --json"
        )
    return reports


def main(argv: list[str] | None = None) -> int:
    from musicvae.cli.args import Parser

    p = Parser(prog="compare_models.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--examples", required=True, help="dataset file (musicvae convert's Parquet)")
    p.add_argument(
        "--split", default="test", choices=SPLITS, help="split to evaluate on (default test)"
    )
    p.add_argument(
        "--model", action="append", default=[], help="a model (repeat): bundle, run, .pt"
    )
    p.add_argument(
        "--reports",
        type=Path,
        help="an earlier run's --json: its models come first in the table, as they were",
    )
    p.add_argument(
        "--rename",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="show column OLD as NEW (repeat)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of every sampled figure")
    p.add_argument("--json", help="write every report here (.json)")
    p.add_argument("--plot", help="write the lag-similarity plot here (PNG)")
    args = p.parse_args(argv)
    renames: dict[str, str] = {}
    for item in args.rename:
        old, sep, new = item.partition("=")
        if not sep:
            p.error(f"--rename takes OLD=NEW, got {item!r}")
        renames[old] = new
    if not args.model and args.reports is None:
        p.error("nothing to compare: give --model (repeat) or an earlier run's --reports")
    from musicvae.cli.main import run

    return run(lambda a: _compare(a, renames), args)


def _compare(args: argparse.Namespace, renames: dict[str, str]) -> int:
    from musicvae.errors import MusicVAEError
    from musicvae.io import check_output

    if not Path(args.examples).is_file():
        raise MusicVAEError(f"{args.examples}: no such dataset file")
    split = None if args.split == "all" else args.split
    inputs = [args.examples, args.reports, *args.model]
    for flag, suffix, kind in (("json", ".json", "JSON"), ("plot", ".png", "a PNG picture")):
        if getattr(args, flag) is not None:  # before the work: a bad name fails now
            setattr(args, flag, check_output(getattr(args, flag), inputs, suffix=suffix, kind=kind))
    reports = read_reports(args.reports) if args.reports else []
    from musicvae.generation import load

    models = {name: load(name) for name in args.model}  # a bad one fails before any work
    long = long_windows(args.examples, split) if args.model else None
    for name, trained in models.items():
        print(f"evaluating {name} ...", file=sys.stderr, flush=True)
        report = evaluate_model(name, args.examples, split, args.seed, long, trained)
        print(f"  {report['comparison']['seconds']} s", file=sys.stderr, flush=True)
        stored = [i for i, r in enumerate(reports) if r["comparison"]["model"] == name]
        if stored:
            reports[stored[0]] = report
        else:
            reports.append(report)
    if not reports:
        raise MusicVAEError(f"{args.reports}: holds no reports; give --model to evaluate one")
    print(table(reports, renames))
    if args.json:
        from musicvae.io import atomic_write_bytes

        atomic_write_bytes(args.json, json.dumps(reports, indent=1, default=float).encode())
    if args.plot:
        plot(reports, args.plot, renames)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
