"""The README's commands run as written: the workflow block on a few real GMD files, the Python
block against the bundled models in an empty folder, the melody page's block on a few folk tunes,
and every flag named in the docs' inline commands exists."""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import wave
from pathlib import Path

import pytest

from musicvae.cli import convert, generate, train
from musicvae.cli.main import build_parser, main
from musicvae.data.dataset import read_dataset, write_dataset
from musicvae.data.midi import read_midi

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MELODIES = ROOT / "docs" / "melodies.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
# The pages the README must link to: what moved out of it.
PAGES = ("models", "evaluation", "speed", "magenta", "melodies", "hierarchical-decoder")
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
        "musicvae dataset",
        "musicvae train",
        "musicvae plot",
        "musicvae generate",
        "musicvae render",
        "musicvae render",
        "musicvae render",
        "convert_dir_to_note_sequences --input_dir",
        "musicvae convert",
        "music_vae_train --config=groovae_4bar",
        "music_vae_generate --config=groovae_4bar",
    ]


def _flag(argv: list[str], name: str) -> str | None:
    """The value of ``--name VALUE`` or ``--name=VALUE`` in ``argv``."""
    for i, a in enumerate(argv):
        if a == name and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith(f"{name}="):
            return a.split("=", 1)[1]
    return None


def test_each_train_form_has_its_own_cpu_sized_run():
    (ours,) = [a for a in workflow() if a[:2] == ["musicvae", "train"]]
    (magenta,) = [a for a in workflow() if a[0] == "music_vae_train"]
    # A shared run folder resumes the other form's run with Magenta's batch and 200,000 steps.
    assert _flag(ours, "--run-dir") != _flag(magenta, "--run_dir")
    for argv, steps in ((ours, "--num-steps"), (magenta, "--num_steps")):
        assert 0 < int(_flag(argv, steps) or 0) <= 10_000, argv
        hparams = dict(kv.split("=") for kv in (_flag(argv, "--hparams") or "").split(",") if kv)
        assert 0 < int(hparams.get("batch_size", 512)) <= 128, argv
    (generate,) = [a for a in workflow() if a[0] == "music_vae_generate"]
    assert _flag(generate, "--run_dir") == _flag(magenta, "--run_dir")
    # It trains on a dataset with splits, not on a TFRecord (which has none).
    assert not _flag(magenta, "--examples_path").endswith(".tfrecord")


def test_the_readme_says_what_a_tfrecord_lacks_and_how_to_keep_splits():
    text = " ".join(README.read_text().split())
    assert "test files included" in text and "--split-by-hash" in text
    assert "--from-tfrecord" in text and "docs/magenta.md#example-counts" in text
    magenta = " ".join((ROOT / "docs" / "magenta.md").read_text().split())
    assert "19,367" in magenta and "19,421" in magenta and "control change 4" in magenta


def test_the_readme_is_short_and_links_the_pages_that_hold_the_rest():
    text = README.read_text()
    assert len(text.splitlines()) < 300 and len(text.encode()) < 30_000
    for page in PAGES:
        assert f"](docs/{page}.md)" in text, page
        assert (ROOT / "docs" / f"{page}.md").is_file(), page
    assert "CC BY 4.0" in text.split("## Data credit")[1]  # the GMD's credit stays here
    for doc in DOCS:  # every relative link and picture points at a file that exists
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", doc.read_text()):
            assert (doc.parent / target).exists(), f"{doc.name}: {target}"


def test_magenta_page_lists_magentas_configs_and_which_are_registered():
    from musicvae.configs import CONFIGS

    text = (ROOT / "docs" / "magenta.md").read_text()
    rows = _table_rows(text, "Magenta's configs, and which are registered here")
    listed = {}
    for names, _, registered, _ in rows:
        for name in re.findall(r"`([^`]+)`", names):
            listed[name] = registered.startswith("yes")
    assert len(listed) == 23  # Magenta's CONFIG_MAP
    assert {n for n, yes in listed.items() if yes} <= set(CONFIGS)
    assert not {n for n, yes in listed.items() if not yes} & set(CONFIGS)
    ours = (ROOT / "docs" / "models.md").read_text()
    for name in set(CONFIGS) - set(listed):  # the rest are ours, on the models page
        assert f"`{name}`" in ours or name == "groovae_2bar_hits_control", name


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table under ``## heading`` whose rows start with a code span."""
    section = text.split(f"\n## {heading}\n")[1].split("\n## ")[0]
    table = section[section.index("\n|") + 1 :].split("\n\n")[0]
    return [
        [cell.strip() for cell in line.split("|")[1:-1]]
        for line in table.splitlines()
        if line.startswith("| `")
    ]


@pytest.mark.parametrize(("doc", "heading"), [("README.md", "Models"), ("models.md", "Families")])
def test_family_tables_follow_the_family_table(doc, heading):
    from musicvae.families import FAMILIES

    path = README if doc == "README.md" else ROOT / "docs" / doc
    rows = {row[0].strip("`"): row for row in _table_rows(path.read_text(), heading)}
    assert sorted(rows) == sorted(FAMILIES)
    for name, family in FAMILIES.items():
        assert rows[name][3].startswith(", ".join(family.modes)), (doc, name)


def _sized_for_a_test(argv: list[str], tmp: Path) -> list[str] | None:
    """The README command with its budget cut to a test's, or None to only parse it."""
    argv = [a.replace("~/.cache/musicvae/groove", "groove") for a in argv]
    if argv[:3] == ["musicvae", "data", "download"]:
        return None  # the network; tests/data/test_download.py covers it offline
    argv = [a.replace("batch_size=128", "batch_size=8") for a in argv]
    if argv[0] == "musicvae" and argv[1] == "train":
        return [*argv[: argv.index("--num-steps") + 1], "2", "--eval-every", "0"]
    if argv[0] == "music_vae_train":
        return [*argv, "--num_steps=3"]
    # render reads the file the README names, as written; a SoundFont is made for the test.
    if argv[0] == "musicvae" and argv[1] == "render" and "--soundfont" in argv:
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
    assert (tmp_path / "runs/g4/train/model.ckpt-2.pt").is_file()
    assert not (tmp_path / "runs/g4/train/model.ckpt-3.pt").exists()  # its own run folder
    assert (tmp_path / "runs/magenta_g4/train/model.ckpt-3.pt").is_file()
    splits = {ns.filename: ns.meta["split"] for ns in read_dataset(tmp_path / "gmd.parquet")}
    via_tfrecord = read_dataset(tmp_path / "gmd-splits.parquet")
    assert {ns.filename: ns.meta["split"] for ns in via_tfrecord} == splits  # info.csv's
    assert len(list((tmp_path / "generated").glob("*.mid"))) == 10  # both generate forms
    assert len(list((tmp_path / "generated").glob("*.wav"))) == 5  # --audio
    assert (tmp_path / "some.wav").read_bytes()[:4] == b"RIFF"
    with wave.open(str(tmp_path / "loop.wav")) as loop:  # 4 bars at 120 BPM, to the sample
        assert loop.getnframes() == 8 * 44_100


def test_python_block_runs(tmp_path, monkeypatch, capsys):
    from musicvae.generation.api import bundled_available

    if not bundled_available("groovae_4bar"):
        pytest.skip("no bundled models in this copy")
    monkeypatch.chdir(tmp_path)  # an empty folder: the block makes its own inputs
    (block,) = fenced_blocks(README.read_text(), "python")
    scope: dict = {}
    exec(compile(block, "README.md", "exec"), scope)  # noqa: S102 - our own README
    assert len(scope["grooves"]) == 5 and len(scope["steps"]) == 7
    assert scope["z"].shape == (2, 256)
    assert int(capsys.readouterr().out.split()[0]) == len(scope["grooves"][0])
    played = read_midi(tmp_path / "played.mid")
    assert len(played) == len(scope["beat"])  # every hit kept
    assert len(scope["drums"]) > 0 and (tmp_path / "groove.mid").is_file()


def _sized_melody_command(argv: list[str], tmp: Path) -> list[str] | None:
    """A melodies.md command cut to a test's budget, or None to skip it (pip)."""
    if argv[0] == "pip":
        return None
    if argv[1:3] == ["data", "folk"]:
        return [*argv, "--limit", "3", "--workers", "1"]  # music21 reads a tune in 0.2 s
    if argv[1] == "train":
        argv = [a.replace("batch_size=64", "batch_size=8") for a in argv]
        cut = argv.index("--max-time")
        argv = [*argv[:cut], *argv[cut + 2 :]]
        return [*argv, "--num-steps", "2", "--eval-every", "0"]
    samples = sorted((tmp / "mel").glob("*.mid"))
    names = {"A.mid": str(samples[0]) if samples else "A.mid"}
    names["B.mid"] = str(samples[-1]) if samples else "B.mid"
    return [names.get(a, a) for a in argv]


def _folk_tunes_in_three_splits(magenta_dir: Path, path: Path) -> None:
    """The 24 folk tunes of Magenta's melody fixtures as a dataset, a third in each split."""
    tunes = sorted((magenta_dir / "melody" / "melodies").glob("*.mid"))
    rows = [read_midi(midi, filename=midi.name) for midi in tunes]
    for i, ns in enumerate(rows):
        ns.meta["split"] = ("train", "validation", "test")[i % 3]
    write_dataset(rows, path)


def test_melody_page_runs(magenta_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("music21")
    monkeypatch.chdir(tmp_path)
    text = MELODIES.read_text()
    (block,) = fenced_blocks(text, "bash")
    inline = [
        shlex.split(span)
        for span in re.findall(r"`(musicvae (?:generate|render) [^`]*)`", " ".join(text.split()))
        if "A.mid" in span
    ]
    assert [a[a.index("--mode") + 1] for a in inline if "--mode" in a] == [
        "interpolate",
        "reconstruct",
    ]
    for argv in [argv for argv in shell_commands(block) if argv] + inline:
        sized = _sized_melody_command(argv, tmp_path)
        if sized is not None:
            assert _run(sized) == 0, f"{' '.join(sized)}: {capsys.readouterr().err}"
        if sized and sized[1:3] == ["data", "folk"]:  # it ran; train on more tunes than 3
            assert read_dataset(tmp_path / "folk.parquet")
            _folk_tunes_in_three_splits(magenta_dir, tmp_path / "folk.parquet")
    assert len(list((tmp_path / "mel").glob("*.wav"))) == 5
    assert len(list((tmp_path / "mel-interp").glob("*.mid"))) == 5
    assert list((tmp_path / "mel-recon").glob("*.mid")) and (tmp_path / "A.wav").is_file()


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
