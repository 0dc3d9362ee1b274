"""Benchmark: Magenta's own ``music_vae_train`` beside ``musicvae train``, alternating, on this CPU.

Magenta does not install on a current system, so this needs a Python 3.11 environment with
TensorFlow 2.12 set up by hand and a checkout of magenta/magenta; it runs Magenta's source
unmodified. ``/work/shared/tools/magenta-env.sh VENV`` builds that environment (TF 2.12, the
pins that work, a librosa stub in ``VENV/stubs``). What worked (2026-12-02, 2-core Intel Xeon):

    python3.11 -m venv tfenv
    tfenv/bin/pip install tensorflow-cpu==2.12.0 tensorflow-probability==0.20.1 tf_slim \\
        pydub bokeh IPython tensorflow_datasets pretty_midi intervaltree "pandas<2.1"
    tfenv/bin/pip install --no-deps note-seq==0.0.5
    tfenv/bin/pip install "numpy==1.23.5" "protobuf<5"
    mkdir stubs && touch stubs/librosa.py   # note_seq imports librosa for audio only

    python benchmarks/magenta.py --python tfenv/bin/python --magenta magenta-src \\
        --pythonpath stubs [--contend 1]

Melodies: ``--config`` names a melody config (hierdec-mel_16bar, flat-mel_16bar,
cat-mel_2bar_small...) and both trainers read the folk tunes of ``--melodies`` (default
``data/folk.parquet``, from ``musicvae data folk -o data/folk.parquet``), its train split
written here as a NoteSequence TFRecord by our own writer (seconds, where ``musicvae data folk
-o X.tfrecord`` parses the ABC again). Our CPU-sized configs have no Magenta name: for
mel_16bar_hierdec and mel_16bar_flat Magenta runs hierdec-mel_16bar and flat-mel_16bar with
our sizes as ``--hparams`` overrides (``enc_rnn_size=[256],dec_rnn_size=[256,256]``), and the
JSON's ``parameters`` checks that Magenta's checkpoint holds exactly the variables, names and
shapes, that our model maps to. Magenta's full-size 16-bar models (a 2x2048 bidirectional
encoder, 176 M parameters for hierdec-mel_16bar) are slow and large on a CPU even at a small
batch: on a 2-core AMD EPYC beside other jobs (load 5-9), hierdec-mel_16bar at batch 8 took
Magenta over 10 minutes a step and 17 GB of peak RSS (its weights and Adam slots are 2.1 GB;
mind the machine's memory), ours 5.6 minutes and 4.9 GB. Give them few steps, and ``--warmup
1`` so that ours, like Magenta's, leaves out only the first:

    python benchmarks/magenta.py --python tfenv/bin/python --magenta magenta-src \\
        --pythonpath tfenv/stubs --config hierdec-mel_16bar --batch-size 8 --steps 3 --warmup 1
    python benchmarks/magenta.py ... --config mel_16bar_hierdec        # batch 64, its own

Each round runs Magenta's trainer on ``--config`` for ``--steps`` steps at ``--batch-size``
(default: the config's own; Magenta's defaults otherwise: its tf.data pipeline, checkpoints
every 60 s), then the real ``musicvae train`` for as many steps; the machine's speed drifts over
minutes, so the rounds alternate. Magenta's rate is taken from its own log: the time from the
end of step 1 to the start of its last checkpoint, less the checkpoints it saved in between
(every 60 s; with minute-long steps, after every step: ``checkpoint_s`` lists them), so graph
building and start-up are left out as our first ``--warmup`` steps are, and neither side's
rate pays for writing checkpoints. Peak RSS is each child's ``VmHWM``. Grooves: both read the
whole GMD as a NoteSequence TFRecord, made by our ``convert_dir_to_note_sequences``; Magenta's
converter then runs inside its pipeline, and ours reads the same file. ``--contend N`` adds
runs of both beside N busy processes. Prints one JSON object, with the load average before and
after (other programs on the machine slow both sides).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from train import GMD, cpu_name, run_beside, trainer_run

from musicvae.configs import Config, HParams, get_config
from musicvae.cpu import usable_cores

ROOT = Path(__file__).resolve().parents[1]
FOLK = ROOT / "data" / "folk.parquet"

# absl's log prefix: I1202 06:04:56.437464 <thread> <file>:<line>] <message>
LOG_LINE = re.compile(r"^[IWE]\d{4} (\d\d:\d\d:\d\d\.\d+) .*?\] (.*)$")
SAVE_START = re.compile(r"Saving checkpoints for (\d+) into ")
SAVE_END = re.compile(r"Calling checkpoint listeners after saving checkpoint (\d+)")

# Our configs that are a Magenta config at other sizes: Magenta trains its own with overrides.
MAGENTA_BASE = {"mel_16bar_hierdec": "hierdec-mel_16bar", "mel_16bar_flat": "flat-mel_16bar"}
# The hparams Magenta's HParams know (ours add more, which Magenta cannot be told).
MAGENTA_HPARAMS = frozenset(
    [
        "max_seq_len",
        "z_size",
        "free_bits",
        "max_beta",
        "beta_rate",
        "batch_size",
        "grad_clip",
        "clip_mode",
        "grad_norm_clip_to_zero",
        "learning_rate",
        "decay_rate",
        "min_learning_rate",
        "conditional",
        "enc_rnn_size",
        "dec_rnn_size",
        "dropout_keep_prob",
        "sampling_schedule",
        "sampling_rate",
        "residual_encoder",
        "residual_decoder",
        "nade_num_hidden",
    ]
)


def magenta_config(name: str) -> tuple[str, str]:
    """Magenta's config name for our config ``name`` and the ``--hparams`` overrides (batch
    size aside) that give it our sizes; raises SystemExit where Magenta has no equivalent."""
    base_name = MAGENTA_BASE.get(name, name)
    ours, base = get_config(name), get_config(base_name)
    if replace(ours, name=base.name, hparams=base.hparams) != base:
        raise SystemExit(f"{name} differs from Magenta's {base_name} beyond its hparams")
    overrides = []
    for f in fields(HParams):
        value = getattr(ours.hparams, f.name)
        if f.name == "batch_size" or value == getattr(base.hparams, f.name):
            continue
        if f.name not in MAGENTA_HPARAMS:
            raise SystemExit(f"{name}: Magenta has no hparam {f.name}")
        overrides.append(f"{f.name}={hparam_text(value)}")
    return base_name, ",".join(overrides)


def hparam_text(value: Any) -> str:
    """A value as Magenta's HParams.parse reads it: lists in brackets, booleans lower-case."""
    if isinstance(value, tuple | list):
        return "[" + ",".join(hparam_text(v) for v in value) + "]"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def magenta_command(
    args: argparse.Namespace, examples: Path, run_dir: Path, config: str, hparams: str
) -> list[str]:
    """The ``music_vae_train`` command line of one Magenta run."""
    overrides = f"batch_size={args.batch_size}" + (f",{hparams}" if hparams else "")
    cmd = [args.python, "-m", "magenta.models.music_vae.music_vae_train"]
    cmd += [f"--config={config}", f"--run_dir={run_dir}", "--mode=train"]
    cmd += [f"--examples_path={examples}", f"--hparams={overrides}"]
    return cmd + [f"--num_steps={args.steps}"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="the Python of a TensorFlow 2.12 environment")
    p.add_argument("--magenta", required=True, help="a checkout of magenta/magenta (its root)")
    p.add_argument("--pythonpath", default="", help="more import paths for Magenta (stubs)")
    p.add_argument("--examples", help="NoteSequence TFRecord (default: the GMD or --melodies)")
    p.add_argument(
        "--melodies",
        type=Path,
        default=FOLK,
        help="melody configs: the dataset whose train split both read (default data/folk.parquet)",
    )
    p.add_argument("--config", default="groovae_4bar", help="config, in both (default %(default)s)")
    p.add_argument("--batch-size", type=int, help="examples per step (default: the config's)")
    p.add_argument("--steps", type=int, default=14, help="steps of each run (default 14)")
    p.add_argument("--warmup", type=int, default=2, help="our first steps left untimed (2)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    p.add_argument("--contend", type=int, nargs="*", default=[], help="busy processes, per run")
    args = p.parse_args()
    config = get_config(args.config)
    args.batch_size = args.batch_size or config.hparams.batch_size
    if args.steps <= max(1, args.warmup):
        p.error("--steps must exceed --warmup and 1 (the untimed first steps)")
    their_config, their_hparams = magenta_config(args.config)
    load_before = os.getloadavg()
    parameters: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="musicvae-magenta-") as tmp:
        examples = Path(args.examples) if args.examples else default_examples(config, args, tmp)
        ours = argparse.Namespace(
            config=args.config,
            batch_size=args.batch_size,
            hparams="",
            trainer_steps=args.steps,
            trainer_warmup=args.warmup,
            device="cpu",
            threads=None,
            no_fused_lstm=False,
        )
        runs: dict[str, list[dict]] = {}
        for n in [0, *args.contend]:
            for r in range(args.rounds):
                key = "quiet" if n == 0 else f"contended_{n}"
                run_dir = Path(tmp) / f"m{n}_{r}"
                cmd = magenta_command(args, examples, run_dir, their_config, their_hparams)
                runs.setdefault(f"magenta_{key}", []).append(magenta_run(args, cmd, n))
                if not parameters:
                    parameters = compare_variables(config, run_dir / "train")
                shutil.rmtree(run_dir, ignore_errors=True)  # full-size checkpoints: GBs each
                run_dir = Path(tmp) / f"o{n}_{r}"
                runs.setdefault(f"musicvae_{key}", []).append(
                    trainer_run(ours, examples, run_dir, competitors=n)
                )
                shutil.rmtree(run_dir, ignore_errors=True)
    rates = {k: [run["examples_per_s"] for run in v] for k, v in runs.items()}
    ratio = [o / m for o, m in zip(rates["musicvae_quiet"], rates["magenta_quiet"], strict=True)]
    print(
        json.dumps(
            {
                "benchmark": "magenta_train",
                "config": args.config,
                "magenta_config": their_config,
                "magenta_hparams": f"batch_size={args.batch_size}"
                + (f",{their_hparams}" if their_hparams else ""),
                "batch_size": args.batch_size,
                "steps": args.steps,
                "cpu": cpu_name(),
                "cores": usable_cores(),
                "load_average_before": [round(x, 2) for x in load_before],
                "load_average_after": [round(x, 2) for x in os.getloadavg()],
                "examples": str(examples),
                "parameters": parameters,
                "examples_per_s": rates,
                "ratio_quiet": [round(x, 2) for x in ratio],
                "runs": runs,
            },
            indent=2,
        )
    )


def default_examples(config: Config, args: argparse.Namespace, tmp: str) -> Path:
    if config.converter == "melody":
        if not args.melodies.exists():
            raise SystemExit(
                f"{args.melodies}: no melody dataset; make one with "
                f"`musicvae data folk -o {args.melodies}` or pass --melodies or --examples"
            )
        return melody_tfrecord(args.melodies, Path(tmp) / "melodies.tfrecord")
    if config.converter not in ("groove", "drums"):
        raise SystemExit(f"{config.name}: pass --examples (a NoteSequence TFRecord it reads)")
    return gmd_tfrecord(Path(tmp))


def melody_tfrecord(source: Path, out: Path, split: str = "train") -> Path:
    """The ``split`` sequences of a dataset file, as a NoteSequence TFRecord Magenta reads."""
    from musicvae.data.dataset import read_dataset
    from musicvae.data.tfrecord import write_note_sequences

    sequences = read_dataset(source, split)
    if not sequences:
        raise SystemExit(f"{source}: no {split} sequences")
    write_note_sequences(sequences, out)
    return out


def gmd_tfrecord(tmp: Path) -> Path:
    out = tmp / "gmd.tfrecord"
    tool = Path(sys.executable).with_name("convert_dir_to_note_sequences")
    cmd = [str(tool), "--input_dir", str(GMD), "--output_file", str(out), "--recursive"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def compare_variables(config: Config, train_dir: Path) -> dict[str, Any]:
    """Magenta's model variables (from its checkpoint) against those our model maps to: their
    parameter counts, and SystemExit unless the names and shapes are the same."""
    from musicvae.interop.magenta import _meta_model, is_ignored, variable_map
    from musicvae.interop.tf_checkpoint import list_variables

    theirs = {
        name: shape
        for name, (shape, _) in list_variables(train_dir).items()
        if not is_ignored(name)
    }
    model = _meta_model(config)  # shapes only, no storage
    ours = {name: var.shape for name, var in variable_map(model).items()}
    if theirs != ours:
        diff = sorted(
            f"{name}: Magenta {theirs.get(name)}, ours {ours.get(name)}"
            for name in theirs.keys() | ours.keys()
            if theirs.get(name) != ours.get(name)
        )
        raise SystemExit("the two models differ:\n" + "\n".join(diff[:20]))
    return {
        "magenta": sum(math.prod(s) for s in theirs.values()),
        "musicvae_in_magenta_layout": sum(math.prod(s) for s in ours.values()),
        "musicvae_torch": sum(p.numel() for p in model.parameters()),
        "variables_match": True,
    }


def magenta_run(args: argparse.Namespace, cmd: list[str], competitors: int) -> dict:
    """One run of Magenta's trainer: its rate from its log, and its peak RSS."""
    paths = [args.magenta, *filter(None, args.pythonpath.split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "TF_CPP_MIN_LOG_LEVEL": "1"}
    returncode, text, peak = run_beside(cmd, competitors, env)
    if returncode:
        raise SystemExit(f"Magenta's trainer failed ({returncode}):\n{text[-3000:]}")
    timing = log_timing(text, args.steps)
    return {
        "competitors": competitors,
        "steps_timed": args.steps - 1,
        "examples_per_s": float(f"{args.batch_size * (args.steps - 1) / timing['seconds']:.4g}"),
        "checkpoint_s": timing["checkpoint_s"],
        "peak_rss_mib": peak,
    }


def log_timing(text: str, steps: int) -> dict[str, Any]:
    """From Magenta's log: the seconds from the end of step 1 to the start of the final
    checkpoint (step ``steps``), less the checkpoints saved between them, and those saves."""
    first = last = None
    saving: dict[int, datetime] = {}
    saves: list[float] = []
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        when, message = datetime.strptime(m.group(1), "%H:%M:%S.%f"), m.group(2)
        if message.startswith("global_step = 1,"):
            first = when
        elif start := SAVE_START.match(message):
            step = int(start.group(1))
            if step == steps:
                last = when
            elif first is not None:
                saving[step] = when
        elif (end := SAVE_END.match(message)) and int(end.group(1)) in saving:
            saves.append(_seconds(saving.pop(int(end.group(1))), when))
    if first is None or last is None:
        raise SystemExit("Magenta's log has no step-1 line or no final checkpoint line")
    return {
        "seconds": _seconds(first, last) - sum(saves),
        "checkpoint_s": [round(s, 1) for s in saves],
    }


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() % 86400  # a run across midnight


if __name__ == "__main__":
    main()
