"""``musicvae evaluate``: ELBO terms, hit / velocity / timing metrics and prior statistics of a
trained model on one split of a dataset file, as tables or (``--json``) as JSON."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from musicvae.cli import args as types


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "evaluate",
        help="metrics of a trained model on a dataset split (ELBO, accuracy, prior samples)",
        description="Evaluate a model on one split of a dataset file: ELBO terms at z = mu; how "
        "many latent dimensions the encoder uses (their mean varies across windows: none means "
        "every window gets the same code); the "
        "model family's accuracy, teacher-forced and decoded from mu (grooves: hit accuracy, "
        "precision, recall and F1, velocity MAE (0-127) and timing MAE (ms) per drum class, and "
        "performance errors for humanize / tap configs; melodies, trios and other one-of-N "
        "models: Magenta's step accuracy, also at another window's z and sampled); and prior "
        "samples compared with the split.",
    )
    p.add_argument(
        "--checkpoint",
        "--run-dir",
        dest="checkpoint",
        help="run folder (--run-dir is the same flag), .pt checkpoint, .safetensors bundle, Magenta checkpoint or bundled "
        "model name (default: the bundled groovae_4bar)",
    )
    p.add_argument(
        "--config", help="config of a Magenta checkpoint (others store their own config)"
    )
    p.add_argument(
        "--examples",
        required=True,
        type=Path,
        help="dataset file (Parquet from `musicvae convert`, or a NoteSequence TFRecord)",
    )
    p.add_argument(
        "--split",
        default="test",
        choices=("train", "validation", "test", "all"),
        help="which split to evaluate (default test; 'all' for every row)",
    )
    p.add_argument("--batch-size", type=int, default=64, help="windows per batch (default 64)")
    p.add_argument(
        "--num-prior-samples",
        # Bounded like generate's --num-outputs: the samples are drawn as one batch.
        type=types.bounded_int(1, types.MAX_OUTPUTS, "the samples are drawn at once"),
        help="prior samples to compare with the data (default: as many as windows, at most 512)",
    )
    p.add_argument(
        "--seed", type=types.seed, default=0, help="random seed for sampling (default 0)"
    )
    p.add_argument(
        "--device", type=types.device, default="cpu", help=f"{types.DEVICE_HELP} (default cpu)"
    )
    p.add_argument(
        "--protocol",
        choices=("haki2022",),
        help="score on a published protocol's own windows instead: haki2022 is Haki et al. "
        "(NIME 2022), 2-bar 4/4 GMD beats, cell-wise hit accuracy, velocity / offset MSE and "
        "timing accuracy beside hit F1 and MAE on hits",
    )
    p.add_argument("--json", action="store_true", help="print the full report as JSON")
    # A string: Path would drop the trailing slash of "--output rep/".
    p.add_argument("--output", help="also write the JSON report to this file (.json)")
    types.add_which(p)
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args: argparse.Namespace) -> int:
    from musicvae.errors import MusicVAEError
    from musicvae.evaluation.classes import format_classes
    from musicvae.evaluation.evaluate import evaluate
    from musicvae.evaluation.metrics import json_safe
    from musicvae.generation import load
    from musicvae.io import atomic_write_bytes, check_output

    if args.batch_size < 1:
        raise MusicVAEError(f"--batch-size must be at least 1, got {args.batch_size}")
    if not args.examples.exists():
        raise MusicVAEError(f"{args.examples}: no such dataset file")
    if args.output is not None:  # before the work: a bad name fails now, not after it
        inputs = [args.examples, args.checkpoint]
        args.output = check_output(args.output, inputs, suffix=".json", kind="a JSON report")
    model = load(args.checkpoint, device=args.device, config=args.config, which=args.which)
    split = None if args.split == "all" else args.split
    if args.protocol:
        from musicvae.evaluation.evaluate import check_protocol
        from musicvae.evaluation.protocols import run_protocol

        check_protocol(args.protocol, model.config)
        # A protocol scores its own windows: the report holds its block, not evaluate's.
        block = run_protocol(
            model, args.protocol, args.examples, split, batch_size=args.batch_size, seed=args.seed
        )
        report = {
            "checkpoint": model.source,
            "config": model.config.name,
            "examples": str(args.examples),
            "split": split,
            "protocol": block,
        }
        formatter = format_protocol
    else:
        report = evaluate(
            model,
            args.examples,
            split,
            batch_size=args.batch_size,
            num_prior_samples=args.num_prior_samples,
            seed=args.seed,
        )
        formatter = format_report if "family" not in report else format_classes
    text = json.dumps(json_safe(report), indent=2)
    if args.output:
        atomic_write_bytes(args.output, (text + "\n").encode())
    print(text if args.json else formatter(report))
    return 0


def _f(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if isinstance(x, int):
        return str(x)
    return f"{x:.{digits}f}"


def _table(title: str, rows: list[tuple[str, dict]], cols: list[tuple[str, str]]) -> list[str]:
    width = max(len(r[0]) for r in rows)
    lines = [title, f"{'':<{width}}  " + "  ".join(f"{h:>9}" for h, _ in cols)]
    for name, d in rows:
        lines.append(f"{name:<{width}}  " + "  ".join(f"{_f(d.get(k)):>9}" for _, k in cols))
    return [*lines, ""]


def _rows(block: dict) -> list[tuple[str, dict]]:
    return [*block["per_class"].items(), ("overall", block["overall"])]


def format_report(r: dict) -> str:
    """The report as plain-text tables."""
    lines = [
        f"{r['config']} on {r['examples']} (split {r['split'] or 'all'}): "
        f"{r['num_windows']} windows of {r['window_steps']} steps from "
        f"{r['num_sequences']} sequences",
        "",
    ]
    o = r["elbo"]["overall"]
    lines.append(
        f"ELBO at z = mu: {o['elbo']:.3f} nats (reconstruction {o['r_loss']:.3f} nats, "
        f"KL {o['kl_nats']:.3f} nats)"
    )
    lines.append(f"latent use: KL {o['kl_bits']:.1f} bits per window")
    if "latent" in r:
        from musicvae.evaluation.metrics import latent_line

        lines.append(latent_line(r["latent"]))
    lines += _table(
        "reconstruction loss per window",
        _rows(r["elbo"]),
        [
            ("hits", "hits_loss"),
            ("velocity", "velocities_loss"),
            ("offset", "offsets_loss"),
            ("total", "r_loss"),
        ],
    )
    hit_cols = [
        ("accuracy", "accuracy"),
        ("precision", "precision"),
        ("recall", "recall"),
        ("F1", "f1"),
        ("vel MAE", "velocity_mae"),
        ("time ms", "timing_mae_ms"),
    ]
    for key in ("teacher_forced", "other_z", "sampled"):
        lines += _table(f"{key.replace('_', '-')}: {r[key]['decoding']}", _rows(r[key]), hit_cols)
    for key in ("performance", "performance_kept_hits"):
        if key not in r:
            continue
        lines += _table(
            f"performance vs the real one ({r[key]['decoding']}; baseline: {r[key]['baseline']})",
            _rows(r[key]),
            [
                ("vel MAE", "velocity_mae"),
                ("base vel", "baseline_velocity_mae"),
                ("time ms", "timing_mae_ms"),
                ("base ms", "baseline_timing_mae_ms"),
                ("W1 vel", "velocity_wasserstein"),
                ("W1 ms", "offset_wasserstein_ms"),
            ],
        )
        if "lookup_velocity_mae" in r[key]:
            ov = r[key]["overall"]
            lines.append(
                f"velocity MAE {_f(ov['velocity_mae'], 1)} against {_f(r[key]['lookup_velocity_mae'], 1)}"
                f" for a per-class, per-position lookup table (train split) and "
                f"{_f(ov['baseline_velocity_mae'], 1)} for a flat velocity; correlation with the "
                f"real velocities {_f(r[key]['velocity_correlation'], 2)}"
            )
            lines += ["", *_realism(r[key]["realism"], "performance vs the real one")]
    if "interpolation" in r:
        ip = r["interpolation"]
        lines += [
            f"interpolation ({ip['decoding']}): {_f(ip.get('hits_changed_per_bar'), 2)} hits "
            f"changed per bar per step; largest step {_f(ip.get('largest_step_share'), 2)} of a "
            f"path's changes (even: {_f(1 / (ip['num_steps'] - 1), 2)}); path / direct "
            f"{_f(ip.get('path_excess'), 2)}; ends {_f(ip.get('endpoint_hits_per_bar'), 1)} hits "
            "per bar apart",
            "",
        ]
    p = r["prior"]
    s, d = p["samples"], p["data"]
    lines.append(
        f"prior samples ({p['num_samples']} at temperature {p['temperature']:g}) vs data: "
        f"notes per bar {_f(s['notes_per_bar_mean'], 2)} +- {_f(s['notes_per_bar_std'], 2)} "
        f"vs {_f(d['notes_per_bar_mean'], 2)} +- {_f(d['notes_per_bar_std'], 2)}"
    )
    rows = []
    for name in [*s["per_class"], "overall"]:
        a = s["overall"] if name == "overall" else s["per_class"][name]
        b = d["overall"] if name == "overall" else d["per_class"][name]
        rows.append(
            (
                name,
                {
                    "hr_s": a["hit_rate"],
                    "hr_d": b["hit_rate"],
                    "v_s": a["velocity_std"],
                    "v_d": b["velocity_std"],
                    "o_s": a["offset_std_steps"],
                    "o_d": b["offset_std_steps"],
                },
            )
        )
    lines += _table(
        "per class: hit rate, velocity std (0-127), offset std (steps); sample vs data",
        rows,
        [
            ("hits smp", "hr_s"),
            ("hits data", "hr_d"),
            ("vel smp", "v_s"),
            ("vel data", "v_d"),
            ("off smp", "o_s"),
            ("off data", "o_d"),
        ],
    )
    if "realism" in p:
        lines += _realism(
            p["realism"], f"prior samples at temperature {p['temperature']:g} vs data"
        )
    return "\n".join(lines).rstrip()


PROTOCOL_ROWS = (
    ("hit accuracy (cell-wise)", "hit_accuracy"),
    ("silent-grid hit accuracy", "silent_grid_hit_accuracy"),
    ("velocity MSE (all cells)", "velocity_mse"),
    ("offset MSE (all cells)", "offset_mse"),
    ("timing accuracy (steps)", "timing_accuracy"),
    ("real timing accuracy", "real_timing_accuracy"),
    ("timing accuracy ratio", "timing_accuracy_ratio"),
    ("hit precision", "hit_precision"),
    ("hit recall", "hit_recall"),
    ("hit F1", "hit_f1"),
    ("velocity MAE on hits", "velocity_mae_on_hits"),
    ("timing MAE on hits (ms)", "timing_mae_on_hits_ms"),
)


def format_protocol(r: dict) -> str:
    """A protocol report: window counts beside the published ones, then the metrics."""
    p = r["protocol"]
    lines = [
        f"{r['config']} on {r['examples']}: protocol {p['name']} ({p['reference']})",
        f"subset: {p['subset']}",
        "",
    ]
    counts = [
        (s, {"o": p["windows"][s], "t": p["their_windows"][s], "d": p["window_difference"][s]})
        for s in p["their_windows"]
    ]
    lines += _table(
        "windows: ours vs theirs", counts, [("ours", "o"), ("theirs", "t"), ("diff", "d")]
    )
    names = list(p["metrics"])
    rows = [(label, {n: p["metrics"][n][k] for n in names}) for label, k in PROTOCOL_ROWS]
    lines += _table(
        f"split {p['split'] or 'all'}, {p['metrics'][names[0]]['num_windows']} windows; "
        f"{p['decoding']}; offsets as a {p['offset_units']}",
        rows,
        [(n.replace("_", " "), n) for n in names],
    )
    a = p["anchors"]
    lines.append(
        f"anchors: GrooVAE Tap2Drum (Magenta's checkpoint) {a['groovae_tap2drum_test_hit_accuracy']:.2%}"
        f" on test; their best transformer {a['rosy_durian_248_validation_hit_accuracy']:.1%} "
        "on validation"
    )
    return "\n".join(lines).rstrip()


REALISM_ROWS = (
    ("velocity mean (0-127)", "velocity_mean"),
    ("quiet hits (<= 10)", "quiet_share"),
    ("accents (>= 100) per bar", "accents_per_bar"),
    ("notes per bar", "notes_per_bar"),
    ("offset std (steps)", "offset_std_steps"),
    ("bar-to-bar similarity", "bar_similarity"),
    ("bar i vs i+4 similarity", "bar_similarity_lag4"),
    ("backbeat on 2 and 4", "backbeat_share"),
)


def _realism(rep: dict, title: str) -> list[str]:
    """A realism report as a table of generated, real and their ratio."""
    g, d, q = rep["generated"], rep["real"], rep["ratio"]
    rows = [(label, {"g": g[k], "d": d[k], "q": q[k]}) for label, k in REALISM_ROWS]
    rows += [
        (
            f"{name} velocity mean",
            {
                "g": g["group_velocity_mean"][name],
                "d": d["group_velocity_mean"][name],
                "q": q["group_velocity_mean"][name],
            },
        )
        for name in g["group_velocity_mean"]
    ]
    return _table(f"realism: {title}", rows, [("generated", "g"), ("real", "d"), ("ratio", "q")])
