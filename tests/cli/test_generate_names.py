"""``musicvae generate`` names files so that they sort (mode, model, index, seed) and never
replaces a file; ``--loop`` WAVs (and ``render --loop``) are exactly the grooves' bars long."""

from __future__ import annotations

import re
import wave

import pytest

from musicvae.cli import generate as gen_cli
from musicvae.cli.main import main
from tests.generation.helpers import debug_run, single_torch_thread

LOOP_FRAMES = 8 * 44_100  # 4 bars at 120 BPM, to the sample


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    with single_torch_thread():
        yield


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return debug_run(tmp_path_factory.mktemp("run"))


def _generate(run_dir, out, *extra: str) -> list[str]:
    before = set(p.name for p in out.iterdir()) if out.exists() else set()
    argv = ["generate", "--checkpoint", str(run_dir), "--output-dir", str(out), "--no-png"]
    assert main([*argv, *extra]) == 0
    return sorted(p.name for p in out.iterdir() if p.name not in before)


def _frames(path) -> int:
    with wave.open(str(path)) as w:
        return w.getnframes()


def test_names_sort_by_mode_model_index_and_seed(run_dir, tmp_path):
    out = tmp_path / "out"
    made = _generate(run_dir, out, "--num-outputs", "3", "--seed", "7")
    assert made == [f"sample_debug_{i:03d}_seed7.mid" for i in range(3)]
    first = (out / made[0]).read_bytes()
    # The same seed again: the same grooves, beside the first set, which stays as it was.
    again = _generate(run_dir, out, "--num-outputs", "3", "--seed", "7")
    assert again == [f"sample_debug_{i:03d}_seed7_run2.mid" for i in range(3)]
    assert (out / made[0]).read_bytes() == first == (out / again[0]).read_bytes()
    # No seed: a suffix drawn per run keeps runs apart.
    one = _generate(run_dir, out, "--num-outputs", "2")
    two = _generate(run_dir, out, "--num-outputs", "2")
    for run in (one, two):
        assert re.fullmatch(r"sample_debug_000_noseed-[0-9a-f]{4}\.mid", run[0]), run
        assert run[1] == run[0].replace("_000_", "_001_")
    assert one[0] != two[0]
    # A listing sorts by mode, model, index, then seed: each groove's takes side by side.
    listing = sorted(p.name for p in out.iterdir())
    assert len(listing) == 10 and listing[2:4] == [made[0], again[0]]


def test_a_file_of_the_users_is_never_replaced(run_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    mine = out / "sample_debug_001_seed1.wav"  # a WAV of the user's under a name the set wants
    mine.write_bytes(b"my own take")
    made = _generate(run_dir, out, "--num-outputs", "2", "--seed", "1", "--audio")
    assert made == [
        f"sample_debug_{i:03d}_seed1_run2{ext}" for i in range(2) for ext in (".mid", ".wav")
    ]
    assert mine.read_bytes() == b"my own take"


def test_sortable_names_widen_the_index_past_999(tmp_path):
    names = gen_cli.sortable_names(tmp_path, "sample", "g4", 1001, 3)
    assert names[0] == "sample_g4_0000_seed3.mid" and names[-1] == "sample_g4_1000_seed3.mid"
    assert names == sorted(names)


def test_loop_wavs_are_exactly_the_grooves_length(run_dir, tmp_path):
    plain = _generate(run_dir, tmp_path / "plain", "--num-outputs", "2", "--seed", "1", "--audio")
    folded = _generate(run_dir, tmp_path / "fold", "--num-outputs", "2", "--seed", "1", "--loop")
    cut = _generate(run_dir, tmp_path / "cut", "--num-outputs", "1", "--seed", "1", "--loop", "cut")
    lengths = {
        kind: [_frames(tmp_path / kind / n) for n in names if n.endswith(".wav")]
        for kind, names in (("plain", plain), ("fold", folded), ("cut", cut))
    }
    # --loop implies --audio; a 4-bar groove at 120 BPM is 8.000 s, whatever rings past it.
    assert lengths["fold"] == [LOOP_FRAMES] * 2 and lengths["cut"] == [LOOP_FRAMES]
    assert all(n > LOOP_FRAMES for n in lengths["plain"])  # as before: the ring runs on
    # render --loop: the same length from the MIDI file alone.
    mid = tmp_path / "plain" / plain[0]
    for flag in (["--loop"], ["--loop", "cut"]):
        out = tmp_path / f"r{len(flag)}.wav"
        assert main(["render", str(mid), "-o", str(out), *flag]) == 0
        assert _frames(out) == LOOP_FRAMES
