"""Benchmark: the peak memory and time of importing a published-size Magenta checkpoint.

Writes a TF checkpoint of ``--config``'s variables at the config's own (published) sizes, with
random values, into a temporary folder (deleted after): the names and shapes come from
``variable_map`` of the config's model, as Magenta's ``Saver`` would write them; ``--form tar``
packs it as an uncompressed ``.tar`` like Magenta's published files. ``--adam`` also writes
Adam's two slots per variable and ``beta1_power``/``beta2_power``, as a training checkpoint
holds them: a file three times the model's size (``hierdec-trio_16bar``: 2.6 GB), whose slots
the import skips without reading them. Then a child process
imports it, as ``load()`` and ``musicvae generate --checkpoint`` do (``--step load``:
``read_magenta_model``) or as ``musicvae import-magenta`` does (``--step import-magenta``: the
same, then a ``.pt`` written). The child imports torch and musicvae first; its baseline is its
resident set then (``/proc/self/statm``), and the import's peak is ``resource.getrusage``'s peak
RSS after the import minus that baseline (Linux). The writing runs in a child process of its
own and this one imports no more than the standard library: a child's peak RSS starts from its
parent's resident set at the fork. Prints one JSON object: the model's float32 size, each run's
peak, its ratio to the model size, and wall time.

    python benchmarks/import_magenta.py                          # hierdec-mel_16bar, ~700 MiB
    python benchmarks/import_magenta.py --config nade-drums_2bar_full --form prefix
    python benchmarks/import_magenta.py --config hierdec-trio_16bar --adam --step both  # 881 MiB
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

MIB = 1 << 20


def write_published_size(
    config_name: str, folder: Path, seed: int = 0, adam: bool = False
) -> tuple[Path, int, int]:
    """``(prefix, bytes of its model variables, the model's parameter count)`` of a checkpoint
    of ``config_name`` at its own sizes, random values, written one variable at a time (with
    ``adam``, each followed by its ``/Adam`` and ``/Adam_1`` slots)."""
    import numpy as np
    import torch

    from musicvae.configs import get_config
    from musicvae.interop.magenta import variable_map
    from musicvae.interop.tf_checkpoint import write_bundle
    from musicvae.models import build_model

    with torch.device("meta"):  # shapes only: the parent never holds the model either
        model = build_model(get_config(config_name))
    shapes = {name: var.shape for name, var in variable_map(model).items()}
    rng = np.random.default_rng(seed)

    def tensors():
        for name, shape in shapes.items():
            for suffix in ("", "/Adam", "/Adam_1") if adam else ("",):
                yield name + suffix, (rng.standard_normal(shape, dtype=np.float32) * 0.05)
        if adam:
            yield "beta1_power", np.array(0.9, np.float32)
            yield "beta2_power", np.array(0.999, np.float32)
        yield "global_step", np.array(1234, np.int64)

    prefix = folder / f"{config_name}.ckpt"
    write_bundle(prefix, tensors())
    params = sum(p.numel() for p in model.parameters())
    return prefix, sum(4 * int(np.prod(s)) for s in shapes.values()), params


def pack_tar(prefix: Path) -> Path:
    """The bundle as Magenta publishes it: an uncompressed tar, its files at the top level."""
    archive = prefix.parent / f"{prefix.name.removesuffix('.ckpt')}.tar"
    with tarfile.open(archive, "w") as tar:
        for f in sorted(prefix.parent.glob(f"{prefix.name}.*")):
            tar.add(f, arcname=f.name)
            f.unlink()  # keep one copy on disk
    return archive


def child(path: str, config_name: str, step: str, out_dir: str) -> None:
    """Import ``path`` and print one JSON line with this process's figures."""
    import resource

    import torch

    from musicvae.cli.import_magenta import import_checkpoint
    from musicvae.configs import get_config
    from musicvae.interop.magenta import read_magenta_model

    def peak_rss() -> int:  # Linux reports KiB
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    config = get_config(config_name)
    with open("/proc/self/statm") as f:
        baseline = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    start = time.perf_counter()
    if step == "load":
        read_magenta_model(path, config)
    else:
        import_checkpoint(path, config_name, Path(out_dir) / "imported.pt")
    wall = time.perf_counter() - start
    peak = peak_rss()
    print(
        json.dumps(
            {
                "baseline_rss_mib": round(baseline / MIB, 1),
                "peak_rss_mib": round(peak / MIB, 1),
                "import_peak_mib": round((peak - baseline) / MIB, 1),
                "wall_s": round(wall, 2),
                "torch_threads": torch.get_num_threads(),
            }
        )
    )


def run_child(*args: str) -> dict:
    """This script with ``args`` in a fresh process; the last line it prints, as JSON."""
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="hierdec-mel_16bar", help="config (default %(default)s)")
    p.add_argument(
        "--form",
        choices=("prefix", "tar", "both"),
        default="both",
        help="import the checkpoint prefix, the .tar, or both (default %(default)s)",
    )
    p.add_argument(
        "--step",
        choices=("load", "import-magenta", "both"),
        default="load",
        help="read_magenta_model (load, generate) or the import-magenta command (default load)",
    )
    p.add_argument(
        "--adam",
        action="store_true",
        help="also write Adam's slots, as a training checkpoint has them (3x the file size)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--write-to", help=argparse.SUPPRESS)
    p.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args.child, args.config, args.step, args.out_dir)
        return
    if args.write_to:
        prefix, tf_bytes, params = write_published_size(
            args.config, Path(args.write_to), adam=args.adam
        )
        print(json.dumps({"prefix": str(prefix), "bytes": tf_bytes, "parameters": params}))
        return
    with tempfile.TemporaryDirectory(prefix="musicvae-import-bench-") as tmp:
        folder = Path(tmp) / "ckpt"
        folder.mkdir()
        start = time.perf_counter()
        adam = ["--adam"] if args.adam else []
        written = run_child("--write-to", str(folder), "--config", args.config, *adam)
        write_s = time.perf_counter() - start
        prefix, tf_bytes = Path(written["prefix"]), written["bytes"]
        file_bytes = sum(f.stat().st_size for f in folder.glob(f"{prefix.name}.*"))
        runs = {}
        forms = ("prefix", "tar") if args.form == "both" else (args.form,)
        steps = ("load", "import-magenta") if args.step == "both" else (args.step,)
        for form in forms:
            path = pack_tar(prefix) if form == "tar" else prefix
            for step in steps:
                argv = ["--child", str(path), "--config", args.config, "--step", step]
                runs[f"{form}/{step}"] = run_child(*argv, "--out-dir", tmp)
        model_mib = 4 * written["parameters"] / MIB
        for r in runs.values():
            r["ratio"] = round(r["import_peak_mib"] / model_mib, 3)
        print(
            json.dumps(
                {
                    "config": args.config,
                    "model_float32_mib": round(model_mib, 1),
                    "checkpoint_variables_mib": round(tf_bytes / MIB, 1),
                    "checkpoint_file_mib": round(file_bytes / MIB, 1),
                    "adam_slots": args.adam,
                    "write_s": round(write_s, 2),
                    "cpu_count": os.cpu_count(),
                    "runs": runs,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
