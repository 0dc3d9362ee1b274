"""The README's commands run as written: the workflow block on a few real GMD files, the Python
block against the bundled models, and every flag named in the docs' inline commands exists."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
from pathlib import Path

import pytest

from musicvae.cli import convert, generate, train
from musicvae.cli.main import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
GMD_FILES = (
    "drummer1/session1/1_funk_80_beat_4-4.mid",
    "drummer1/session1/100_neworleans-secondline_94_beat_4-4.mid",
    "drummer1/session1/126_funk-fast_125_beat_4-4.mid",
)
MAGENTA_FORMS = {
    "convert_dir_to_note_sequences": convert,
    "music_vae_train": train,
    "music_vae_generate": generate,
}


def fenced_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def shell_commands(block: str) -> list[list[str]]:
    """Each command of a shell block as argv: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def workflow() -> list[list[str]]:
    blocks = fenced_blocks(README.read_text(), "bash")
    return [argv for argv in shell_commands(blocks[1]) if argv]


def test_the_workflow_block_is_what_this_test_runs():
    heads = [" ".join(a[:2]) for a in workflow()]
    assert heads == [
        "musicvae data",
        "musicvae convert",
        "convert_dir_to_note_sequences --input_dir",
        "musicvae dataset",
        "musicvae train",
        "music_vae_train --config=groovae_4bar",
        "musicvae plot",
        "musicvae generate",
        "music_vae_generate --config=groovae_4bar",
        "musicvae render",
        "musicvae render",
    ]


def _sized_for_a_test(argv: list[str], tmp: Path) -> list[str] | None:
    """The README command with its budget cut to a test's, or None to only parse it."""
    argv = [a.replace("~/.cache/musicvae/groove", "groove") for a in argv]
    if argv[:3] == ["musicvae", "data", "download"]:
        return None  # the network; tests/data/test_download.py covers it offline
    if argv[0] == "musicvae" and argv[1] == "train":
        argv = [a.replace("batch_size=128", "batch_size=8") for a in argv]
        return [*argv[: argv.index("--num-steps") + 1], "2", "--eval-every", "0"]
    if argv[0] == "music_vae_train":
        return [*argv, "--num_steps=3"]  # Magenta's form trains until stopped
    if argv[0] == "musicvae" and argv[1] == "render":
        first = sorted((tmp / "generated").glob("*.mid"))[0]
        argv = [str(first) if a == "generated/some.mid" else a for a in argv]
        if "--soundfont" in argv:
            pytest.importorskip("tinysoundfont")
            from tests.helpers_sf2 import build_sf2

            (tmp / "kit.sf2").write_bytes(build_sf2())
            argv[argv.index("--soundfont") + 1] = str(tmp / "kit.sf2")
    return argv


def _run(argv: list[str]) -> int:
    if argv[0] == "musicvae":
        return main(argv[1:])
    return MAGENTA_FORMS[argv[0]].magenta_main(argv[1:])


def test_workflow_runs(groove_dir, tmp_path, monkeypatch, capsys):
    for rel in GMD_FILES:
        dest = tmp_path / "groove" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(groove_dir / rel, dest)
    rows = (groove_dir / "info.csv").read_text().splitlines()
    keep = [rows[0], *(r for r in rows[1:] if any(f",{rel}," in r for rel in GMD_FILES))]
    (tmp_path / "groove" / "info.csv").write_text("\n".join(keep) + "\n")
    monkeypatch.chdir(tmp_path)
    for argv in workflow():
        sized = _sized_for_a_test(argv, tmp_path)
        if sized is None:
            build_parser().parse_args(argv[1:])
            continue
        assert _run(sized) == 0, f"{' '.join(sized)}: {capsys.readouterr().err}"
    assert (tmp_path / "gmd.parquet").is_file()
    assert (tmp_path / "notesequences.tfrecord").read_bytes()[:8] != b"PAR1" + b"\0" * 4
    assert (tmp_path / "runs/g4/train/model.ckpt-3.pt").is_file()  # the Magenta form resumed
    assert len(list((tmp_path / "generated").glob("*.mid"))) == 10  # both generate forms
    assert len(list((tmp_path / "generated").glob("*.wav"))) == 5  # --audio
    assert (tmp_path / "some.wav").read_bytes()[:4] == b"RIFF"


def test_python_block_runs(groove_dir, tmp_path, monkeypatch):
    from musicvae.generation.api import bundled_available

    if not bundled_available("groovae_4bar"):
        pytest.skip("no bundled models in this copy")
    shutil.copy(groove_dir / GMD_FILES[0], tmp_path / "beat.mid")
    shutil.copy(groove_dir / GMD_FILES[1], tmp_path / "taps.mid")
    monkeypatch.chdir(tmp_path)
    (block,) = fenced_blocks(README.read_text(), "python")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert len(scope["grooves"]) == 5 and len(scope["steps"]) == 7
    assert scope["z"].shape == (2, 256)
    assert (tmp_path / "played.mid").is_file() and len(scope["drums"]) > 0


def _parsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found = {f"musicvae {name}": p for name, p in sub.choices.items()}
    found |= {name: module.magenta_parser() for name, module in MAGENTA_FORMS.items()}
    return found


def inline_commands() -> list[tuple[str, str]]:
    spans = []
    for doc in DOCS:
        for span in re.findall(
            r"`((?:musicvae|music_vae_\w+|convert_dir_to_note_sequences) [^`]*)`", doc.read_text()
        ):
            spans.append((doc.name, span))
    return spans


@pytest.mark.parametrize(("doc", "span"), inline_commands())
def test_inline_command_flags_exist(doc, span):
    parsers = _parsers()
    words = span.split()
    key = words[0] if words[0] in parsers else " ".join(words[:2])
    assert key in parsers, f"{doc}: `{span}` names no command"
    parser, rest = parsers[key], words[len(key.split()) :]
    for action in parser._actions:  # `dataset stats`, `data download`: the nested command
        if isinstance(action, argparse._SubParsersAction) and rest and rest[0] in action.choices:
            parser = action.choices[rest[0]]
    known = {s for a in parser._actions for s in a.option_strings}
    flags = {w.strip("[]").split("=")[0] for w in words if w.strip("[]").startswith("--")}
    assert flags <= known, f"{doc}: `{span}` uses unknown flags {sorted(flags - known)}"
