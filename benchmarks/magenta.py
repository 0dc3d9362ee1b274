"""Benchmark: Magenta's own ``music_vae_train`` beside ``musicvae train``, alternating, on this CPU.

Magenta does not install on a current system, so this needs a Python 3.11 environment with
TensorFlow 2.12 set up by hand and a checkout of magenta/magenta; it runs Magenta's source
unmodified. What worked (2026-12-02, 2-core Intel Xeon):

    python3.11 -m venv tfenv
    tfenv/bin/pip install tensorflow-cpu==2.12.0 tensorflow-probability==0.20.1 tf_slim \\
        pydub bokeh IPython tensorflow_datasets pretty_midi intervaltree "pandas<2.1"
    tfenv/bin/pip install --no-deps note-seq==0.0.5
    tfenv/bin/pip install "numpy==1.23.5" "protobuf<5"
    mkdir stubs && touch stubs/librosa.py   # note_seq imports librosa for audio only

    python benchmarks/magenta.py --python tfenv/bin/python --magenta magenta-src \\
        --pythonpath stubs [--contend 1]

Each round runs Magenta's trainer on groovae_4bar for ``--steps`` steps at ``--batch-size``
(Magenta's own defaults otherwise: its tf.data pipeline, checkpoints every 60 s), then the real
``musicvae train`` for as many steps; the machine's speed drifts over minutes, so the rounds
alternate. Magenta's rate is taken from its own log: the time from the end of step 1 to the last
checkpoint, so graph building and start-up are left out as our first steps are. Peak RSS is each
child's ``VmHWM``. Both read the whole GMD as a NoteSequence TFRecord, made by our
``convert_dir_to_note_sequences`` (Magenta's converter then runs inside its pipeline; ours reads
the same file). ``--contend N`` adds runs of both beside N busy processes. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from train import GMD, cpu_name, run_beside, trainer_run

from musicvae.cpu import usable_cores

# absl's log prefix: I1202 06:04:56.437464 <thread> <file>:<line>] <message>
LOG_LINE = re.compile(r"^[IWE]\d{4} (\d\d:\d\d:\d\d\.\d+) .*?\] (.*)$")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--python", required=True, help="the Python of a TensorFlow 2.12 environment")
    p.add_argument("--magenta", required=True, help="a checkout of magenta/magenta (its root)")
    p.add_argument("--pythonpath", default="", help="more import paths for Magenta (stubs)")
    p.add_argument("--examples", help="NoteSequence TFRecord (default: the GMD, converted)")
    p.add_argument("--config", default="groovae_4bar", help="config, in both (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=512, help="examples per step (512)")
    p.add_argument("--steps", type=int, default=14, help="steps of each run (default 14)")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    p.add_argument("--contend", type=int, nargs="*", default=[], help="busy processes, per run")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="musicvae-magenta-") as tmp:
        examples = Path(args.examples) if args.examples else tfrecord(Path(tmp))
        ours = argparse.Namespace(
            config=args.config,
            batch_size=args.batch_size,
            hparams="",
            trainer_steps=args.steps,
            trainer_warmup=2,
            device="cpu",
            threads=None,
        )
        runs: dict[str, list[dict]] = {}
        for n in [0, *args.contend]:
            for r in range(args.rounds):
                key = "quiet" if n == 0 else f"contended_{n}"
                run_dir = Path(tmp) / f"m{n}_{r}"
                runs.setdefault(f"magenta_{key}", []).append(
                    magenta_run(args, examples, run_dir, n)
                )
                run_dir = Path(tmp) / f"o{n}_{r}"
                runs.setdefault(f"musicvae_{key}", []).append(
                    trainer_run(ours, examples, run_dir, competitors=n)
                )
    rates = {k: [run["examples_per_s"] for run in v] for k, v in runs.items()}
    ratio = [o / m for o, m in zip(rates["musicvae_quiet"], rates["magenta_quiet"], strict=True)]
    print(
        json.dumps(
            {
                "benchmark": "magenta_train",
                "config": args.config,
                "batch_size": args.batch_size,
                "cpu": cpu_name(),
                "cores": usable_cores(),
                "examples": str(examples),
                "examples_per_s": rates,
                "ratio_quiet": [round(x, 2) for x in ratio],
                "runs": runs,
            },
            indent=2,
        )
    )


def tfrecord(tmp: Path) -> Path:
    out = tmp / "gmd.tfrecord"
    tool = Path(sys.executable).with_name("convert_dir_to_note_sequences")
    cmd = [str(tool), "--input_dir", str(GMD), "--output_file", str(out), "--recursive"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out


def magenta_run(args: argparse.Namespace, examples: Path, run_dir: Path, competitors: int) -> dict:
    """One run of Magenta's trainer: its rate from its log, and its peak RSS."""
    cmd = [args.python, "-m", "magenta.models.music_vae.music_vae_train"]
    cmd += [f"--config={args.config}", f"--run_dir={run_dir}", "--mode=train"]
    cmd += [f"--examples_path={examples}", f"--hparams=batch_size={args.batch_size}"]
    cmd += [f"--num_steps={args.steps}"]
    paths = [args.magenta, *filter(None, args.pythonpath.split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), "TF_CPP_MIN_LOG_LEVEL": "1"}
    returncode, text, peak = run_beside(cmd, competitors, env)
    if returncode:
        raise SystemExit(f"Magenta's trainer failed ({returncode}):\n{text[-3000:]}")
    first = last = None
    for line in text.splitlines():
        m = LOG_LINE.match(line)
        if not m:
            continue
        when = datetime.strptime(m.group(1), "%H:%M:%S.%f")
        if m.group(2).startswith("global_step = 1,"):
            first = when
        elif m.group(2).startswith(f"Saving checkpoints for {args.steps} "):
            last = when
    if first is None or last is None:
        raise SystemExit("Magenta's log has no step-1 line or no final checkpoint line")
    seconds = (last - first).total_seconds() % 86400  # a run across midnight
    return {
        "competitors": competitors,
        "steps_timed": args.steps - 1,
        "examples_per_s": round(args.batch_size * (args.steps - 1) / seconds, 1),
        "peak_rss_mib": peak,
    }


if __name__ == "__main__":
    main()
