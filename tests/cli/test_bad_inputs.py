"""Bad input, every command: a non-zero exit, one ``error:`` line naming the problem, no
traceback, and nothing left behind."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from musicvae.cli.main import main
from musicvae.data.midi import read_midi
from tests.test_configs import BAD_OVERRIDES


@pytest.fixture(scope="module")
def files(tmp_path_factory, groove_dir):
    """A folder of bad and good inputs, and a dataset file."""
    from musicvae.data.convert import convert_folder, write_report

    d = tmp_path_factory.mktemp("bad")
    (d / "empty.mid").write_bytes(b"")
    (d / "text.mid").write_text("not a MIDI file\n")
    (d / "truncated.mid").write_bytes(
        b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x10"
    )
    (d / "notes.txt").write_text("hello")
    (d / "folder.mid").mkdir()
    (d / "folder.parquet").mkdir()
    (d / "a_file").write_text("x")
    (d / "garbage.parquet").write_bytes(os.urandom(256))
    (d / "garbage.safetensors").write_bytes(os.urandom(256))
    (d / "garbage.pt").write_bytes(os.urandom(256))
    (d / "empty_dir").mkdir()
    src = d / "src"
    src.mkdir()
    good = groove_dir / "drummer1/session1/1_funk_80_beat_4-4.mid"
    (src / "good.mid").write_bytes(good.read_bytes())
    data = write_report(convert_folder(src, workers=1), d / "data.parquet", str(src))
    _hostile_files(d, data)
    return d, data


def _vlq(n: int) -> bytes:
    out = [n & 0x7F]
    while n := n >> 7:
        out.append(0x80 | (n & 0x7F))
    return bytes(reversed(out))


def _smf(track: bytes, fmt: int = 0, ntrks: int = 1, div: int = 480, length=None) -> bytes:
    """A MIDI file of one raw track (``length`` overrides the track's declared length)."""
    head = b"MThd\x00\x00\x00\x06" + struct.pack(">HHH", fmt, ntrks, div)
    return head + b"MTrk" + struct.pack(">I", len(track) if length is None else length) + track


TEMPO = b"\x00\xff\x51\x03\x07\xa1\x20"  # 120 qpm
TS44 = b"\x00\xff\x58\x04\x04\x02\x18\x08"
EOT = b"\x00\xff\x2f\x00"
HIT = b"\x99\x24\x64\x10\x89\x24\x00"  # a kick on the drum channel (its delta comes first)


def _groove(bars=2, tempo=TEMPO, ts=TS44, extra=b"", pitches=(36, 42, 38), vel=100) -> bytes:
    events = bytearray(tempo + ts + extra)
    for step in range(16 * bars):
        p = pitches[step % len(pitches)]
        events += _vlq(0 if step == 0 else 110) + bytes([0x99, p, vel, 10, 0x89, p, 0])
    return bytes(events + EOT)


def _hostile_files(d, data) -> None:
    """What a careless user or an attacker hands every command (issue 10's outside set)."""
    import io
    import json
    import pickle
    import tarfile
    import tempfile
    import zipfile

    import pyarrow as pa
    import pyarrow.parquet as pq
    import torch
    from safetensors.torch import load_file, save_file

    from musicvae.data.midi import read_midi
    from musicvae.data.tfrecord import masked_crc32c, write_note_sequences
    from musicvae.generation.api import bundled_path

    m = {
        "header_only": b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0",
        "tag_only": b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk",
        "huge_len": _smf(_groove(), length=0xFFFFFFFF),
        "mid_event": _smf(_groove())[:60],
        "format7": _smf(_groove(), fmt=7),
        "smpte": _smf(_groove(), div=0xE250),
        "div0": _smf(_groove(), div=0),
        "running_status": _smf(b"\x00\x24\x64" + EOT),
        # Nine deltas of 2^28 - 1 ticks: symusic's int32 ticks wrap negative.
        "tick_2_31": _smf(
            TEMPO
            + b"\x00"
            + HIT
            + b"".join(_vlq(2**28 - 1) + b"\xff\x01\x00" for _ in range(9))
            + b"\x00"
            + HIT
            + EOT
        ),
        "vlq5": _smf(TEMPO + b"\x8f\xff\xff\xff\x7f\x99\x24\x64" + EOT),
        "tempo0": _smf(_groove(tempo=b"\x00\xff\x51\x03\x00\x00\x00")),
        "tempo1us": _smf(_groove(tempo=b"\x00\xff\x51\x03\x00\x00\x01")),
        "ts34": _smf(_groove(3, ts=b"\x00\xff\x58\x04\x03\x02\x18\x08")),
        "ts78": _smf(_groove(3, ts=b"\x00\xff\x58\x04\x07\x03\x18\x08")),
        "ts_den255": _smf(_groove(ts=b"\x00\xff\x58\x04\x04\xff\x18\x08")),
        "tempo_change": _smf(_groove(4, extra=b"\x83\x60\xff\x51\x03\x09\x27\xc0")),
        "vel0": _smf(_groove(vel=0)),
        "pitch200": _smf(TEMPO + b"\x00\x99\xc8\x64" + EOT),
        "sysex_huge": _smf(TEMPO + b"\x00\xf0\x8f\xff\xff\xff\x7f\x01" + EOT),
        "meta_huge": _smf(TEMPO + b"\x00\xff\x01\x8f\xff\xff\x7fabc" + EOT),
        "mthd_len0": b"MThd\x00\x00\x00\x00" + _smf(_groove())[8:],
        "rmid": b"RIFF\x00\x00\x00\x00RMIDdata" + _smf(_groove()),
        "unmapped": _smf(_groove(pitches=(1, 2, 3))),
        "tpq1": _smf(TEMPO + TS44 + b"\x00\x99\x24\x64\x01\x89\x24\x00" + EOT, div=1),
        # One hit, then one 2^28 - 1 tick delta: 140,000 bars of silence.
        "long_silence": _smf(TEMPO + TS44 + b"\x00" + HIT + _vlq(2**28 - 1) + HIT + EOT),
        "after_header": _smf(b"")[:14] + bytes(range(256)) * 2,
    }
    for name, raw in m.items():
        (d / f"{name}.mid").write_bytes(raw)
    with open(d / "huge.mid", "wb") as f:  # sparse: 100 MB on disk costs nothing
        f.write(_smf(_groove()))
        f.truncate(100 * 2**20)
    os.mkfifo(d / "fifo.mid")
    os.mkfifo(d / "fifo.parquet")
    os.symlink(d / "loop_b.mid", d / "loop_a.mid")
    os.symlink(d / "loop_a.mid", d / "loop_b.mid")
    (d / "bad_split").mkdir()
    (d / "bad_split" / "a.mid").write_bytes((d / "src" / "good.mid").read_bytes())
    (d / "bad_split" / "info.csv").write_text("midi_filename,split\na.mid,tset\n")
    (d / "only_dirs").mkdir()
    (d / "only_dirs" / "x.mid").mkdir()
    # Datasets: other writers' Parquet, damaged rows, damaged TFRecords.
    t = pq.read_table(data)
    cols = {n: t.column(n) for n in t.column_names}
    n = len(cols["pitch"][0])

    def table(**changes):
        return pa.table({**cols, **changes}, metadata=t.schema.metadata)

    pq.write_table(t.drop(["id"]), d / "no_id.parquet")
    pq.write_table(pa.table({"a": [1, 2, 3]}), d / "other.parquet")
    pq.write_table(t.slice(0, 0), d / "zero_rows.parquet")
    pq.write_table(table(pitch=pa.array([["a"]])), d / "pitch_str.parquet")
    pq.write_table(table(pitch=pa.array([36])), d / "pitch_scalar.parquet")
    pq.write_table(table(pitch=pa.array([[36] * (n + 5)])), d / "ragged.parquet")
    pq.write_table(table(start=pa.array([[float("nan")] * n])), d / "nan_start.parquet")
    pq.write_table(table(tempo_qpm=pa.array([[0.0]])), d / "tempo0.parquet")
    pq.write_table(table(split=pa.array(["validation"])), d / "all_val.parquet")
    (d / "half.parquet").write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    (d / "magic_only.parquet").write_bytes(b"PAR1PAR1")
    write_note_sequences([read_midi(d / "src" / "good.mid")], d / "good.tfrecord")
    rec = (d / "good.tfrecord").read_bytes()
    (d / "bad_len_crc.tfrecord").write_bytes(rec[:8] + bytes([rec[8] ^ 255]) + rec[9:])
    (d / "bad_data_crc.tfrecord").write_bytes(rec[:-1] + bytes([rec[-1] ^ 255]))
    (d / "half.tfrecord").write_bytes(rec[: len(rec) // 2])
    length = struct.pack("<Q", 2**40)
    (d / "huge_record.tfrecord").write_bytes(length + struct.pack("<I", masked_crc32c(length)))
    junk = b"\x08\x96\x01not a proto\xff\xff"
    length = struct.pack("<Q", len(junk))
    (d / "not_proto.tfrecord").write_bytes(
        length
        + struct.pack("<I", masked_crc32c(length))
        + junk
        + struct.pack("<I", masked_crc32c(junk))
    )
    # Models: damaged safetensors headers, a bundle of another shape, NaN weights, pickles.
    for name, header, size in [
        ("bad_json", b"{not json", None),
        ("huge_header", b"{}", 2**62),
        ("header_beyond", b"{}", 10**6),
        ("list_header", b"[1,2,3]  ", None),
        (
            "no_meta",
            json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
            + b"\0" * 8,
            None,
        ),
    ]:
        size = len(header.split(b"\0")[0]) if size is None else size
        (d / f"{name}.safetensors").write_bytes(struct.pack("<Q", size) + header)
    weights, meta = load_file(bundled_path("groovae_4bar")), None
    from safetensors import safe_open

    with safe_open(bundled_path("groovae_4bar"), "pt") as f:
        meta = f.metadata()
    cfg = json.loads(meta["config"])
    save_file(
        weights,
        d / "z7.safetensors",
        {**meta, "config": json.dumps({**cfg, "hparams": {**cfg["hparams"], "z_size": 7}})},
    )
    save_file(
        weights, d / "extra_key.safetensors", {**meta, "config": json.dumps({**cfg, "zzz": 1})}
    )
    first = sorted(weights)[0]
    save_file(
        {**weights, first: torch.full_like(weights[first], float("nan"))},
        d / "nan.safetensors",
        meta,
    )

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {d}/PWNED",))

    (d / "evil.pt").write_bytes(pickle.dumps(Payload()))
    torch.save({"model": Payload()}, d / "evil_torch.pt")
    with zipfile.ZipFile(d / "other_zip.pt", "w") as z:
        z.writestr("hello.txt", "hi")
    torch.save(torch.zeros(3), d / "tensor.pt")
    (d / "bad_run" / "train").mkdir(parents=True)
    (d / "bad_run" / "train" / "model.ckpt-1.pt").write_bytes(b"PK\x03\x04 cut short")
    (d / "magenta_dir").mkdir()
    (d / "magenta_dir" / "checkpoint").write_text('model_checkpoint_path: "model.ckpt-5"\n')
    (d / "bad_index").mkdir()
    (d / "bad_index" / "model.ckpt-5.index").write_bytes(bytes(range(64)))

    def tar(name, members, mode="w"):
        with tarfile.open(d / name, mode) as out:
            for member, payload, kind in members:
                info = tarfile.TarInfo(member)
                if kind == "link":
                    info.type, info.linkname = tarfile.SYMTYPE, payload
                    out.addfile(info)
                else:
                    info.size = len(payload)
                    out.addfile(info, io.BytesIO(payload))

    tar("random.tar", [("hello.txt", b"hi", "file")])
    # From the extraction folder (a temp folder), "../<d>" would land in d.
    up = "../" + os.path.relpath(d, tempfile.gettempdir())
    tar("escape.tar", [(f"{up}/ESCAPED", b"x", "file"), (f"{d}/ESCAPED_ABS", b"x", "file"),
                       ("model.ckpt.index", b"x", "file")])  # fmt: skip
    tar("links.tar", [("model.ckpt.index", "/etc/passwd", "link")])
    tar("empty.tar", [])
    tar("junk.tar.gz", [("model.ckpt-1.index", bytes(range(200)), "file")], "w:gz")
    (d / "cut.tar.gz").write_bytes((d / "junk.tar.gz").read_bytes()[:40])
    (d / "cut.tar").write_bytes((d / "random.tar").read_bytes()[:700])


def _cases():
    c = []
    # Settings, wherever --hparams is taken.
    for override, message in BAD_OVERRIDES:
        c.append((["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{data}",
                   "--hparams", override], message))  # fmt: skip
        c.append((["dataset", "stats", "{data}", "--config", "debug", "--hparams", override],
                  message))  # fmt: skip
        c.append((["explain", "--config", "groovae_4bar", "--hparams", override], message))
    c += [
        (
            ["train", "--config", "nope", "--run-dir", "{d}/run", "--examples", "{data}"],
            "unknown config 'nope'",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/missing"],
            "no such examples file",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--max-time",
                "soon",
            ],
            "--max-time 'soon'",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--max-time",
                "0s",
            ],
            "--max-time '0s'",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--num-steps",
                "-1",
            ],
            "--num-steps -1",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--init-from",
                "{d}/missing.pt",
            ],
            "missing.pt",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "{d}/run",
                "--examples",
                "{data}",
                "--device",
                "cuda:7",
            ],
            "cuda",
        ),
        (["generate", "--output-dir", "{d}/out", "--num-outputs", "0"], "--num-outputs"),
        (["generate", "--output-dir", "{d}/out", "--num-outputs", "1000000"], "--num-outputs"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "0"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "nan"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "inf"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--temperature", "-1"], "--temperature"),
        (["generate", "--output-dir", "{d}/out", "--device", "cuda"], "CUDA is not available"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/missing.pt"], "missing.pt"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/garbage.pt"], "garbage.pt"),
        (
            ["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/garbage.safetensors"],
            "garbage.safetensors",
        ),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/empty_dir"], "empty_dir"),
        (["generate", "--output-dir", "{d}/out", "--checkpoint", "{d}/notes.txt"], "notes.txt"),
        (["generate", "--output-dir", "{d}/a_file"], "a_file"),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/text.mid",
            ],
            "text.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/empty.mid",
            ],
            "empty.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/truncated.mid",
            ],
            "truncated.mid",
        ),
        (
            [
                "generate",
                "--output-dir",
                "{d}/out",
                "--mode",
                "humanize",
                "--input-midi-1",
                "{d}/folder.mid",
            ],
            "folder.mid",
        ),
        (["generate", "--output-dir", "{d}/out", "--mode", "interpolate"], "input"),
        (["evaluate", "--examples", "{d}/missing.parquet"], "missing.parquet"),
        (["evaluate", "--examples", "{d}/garbage.parquet"], "garbage.parquet"),
        (["evaluate", "--examples", "{d}/folder.parquet"], "folder.parquet"),
        (["evaluate", "--examples", "{data}", "--device", "cuda"], "CUDA is not available"),
        (["evaluate", "--examples", "{data}", "--split", "validation"], "validation"),
        (["evaluate", "--examples", "{data}", "--batch-size", "0"], "--batch-size"),
        (["evaluate", "--examples", "{data}", "--checkpoint", "{d}/garbage.pt"], "garbage.pt"),
        (["dataset", "stats", "{d}/missing.parquet"], "missing.parquet"),
        (["dataset", "stats", "{d}/garbage.parquet"], "garbage.parquet"),
        (["dataset", "stats", "{d}/notes.txt"], "notes.txt"),
        (["convert", "{d}/missing_dir", "-o", "{d}/x.parquet"], "missing_dir"),
        (["convert", "{d}/empty_dir", "-o", "{d}/x.parquet"], "no MIDI files"),
        (["convert", "{d}/src", "-o", "{d}/folder.parquet"], "folder.parquet"),
        (["convert", "{d}/src", "-o", "/dev/null"], "/dev/null"),
        (["convert", "{d}/src", "-o", "{d}/a_file/x.parquet"], "a_file"),
        (["convert", "--from-tfrecord", "{d}/notes.txt", "-o", "{d}/x.parquet"], "notes.txt"),
        (["export", "{d}/missing", "-o", "{d}/x.safetensors"], "missing"),
        (["export", "groovae_4bar", "-o", "{d}/x.pt"], ".safetensors"),
        (["export", "{d}/garbage.pt", "-o", "{d}/x.safetensors"], "garbage.pt"),
        (["plot", "{d}/missing"], "missing"),
        (["plot", "{d}/empty_dir"], "empty_dir"),
        (["render", "{d}/text.mid", "-o", "{d}/x.wav"], "text.mid"),
        (["render", "{d}/missing.mid", "-o", "{d}/x.wav"], "missing.mid"),
        (["render", "{d}/src/good.mid", "-o", "{d}/folder.mid"], "folder.mid"),
        (["render", "{d}/src/good.mid", "-o", "/dev/null"], "/dev/null"),
        (["import-magenta", "{d}/garbage.pt", "--config", "groovae_4bar"], "garbage.pt"),
        (["import-magenta", "{d}/missing", "--config", "groovae_4bar"], "missing"),
        (["explain", "--config", "nope"], "unknown config 'nope'"),
        (["explain", "--config", "groovae_4bar", "--batch", "0"], "--batch"),
    ]
    # Flags checked by argparse (exit 2, one line).
    for argv, message in [
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--threads",
                "100000",
            ],
            "--threads",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--threads", "0"],
            "--threads",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--workers",
                "100000",
            ],
            "--workers",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--seed", "-1"],
            "--seed",
        ),
        (
            [
                "train",
                "--config",
                "debug",
                "--run-dir",
                "r",
                "--examples",
                "e",
                "--seed",
                str(2**64),
            ],
            "--seed",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--seed", "x"],
            "--seed",
        ),
        (
            ["train", "--config", "debug", "--run-dir", "r", "--examples", "e", "--device", "tpu"],
            "--device",
        ),
        (["generate", "--output-dir", "o", "--seed", "-5"], "--seed"),
        (["generate", "--output-dir", "o", "--device", "gpu"], "--device"),
        (["generate", "--output-dir", "o", "--mode", "dance"], "--mode"),
        (["evaluate", "--examples", "e", "--seed", "1.5"], "--seed"),
        (["evaluate", "--examples", "e", "--split", "dev"], "--split"),
        (["studio", "--port", "70000"], "--port"),
        (["studio", "--port", "-1"], "--port"),
        (["studio", "--threads", "100000"], "--threads"),
        (["studio", "--device", "quantum"], "--device"),
        (["convert", "x", "-o", "y", "--workers", "0"], "--workers"),
        (["convert", "x", "-o", "y", "--workers", "100000"], "--workers"),
        (["convert", "x", "-o", "y", "--format", "csv"], "--format"),
        (["dataset", "stats", "x", "--workers", "-2"], "--workers"),
        (["demo", "--num-outputs", "0"], "--num-outputs"),
        (["demo", "--temperature", "0"], "--temperature"),
        (["demo", "--seed", "-1"], "--seed"),
        (["train", "--config", "debug"], "required"),
        (["nonsense"], "invalid choice"),
    ]:
        c.append((argv, message))
    return c


def _hostile_cases():
    """Issue 10's second hunt: each of these was a traceback, a wrong success or a hang once, or
    is its neighbour (the same input at another command)."""
    out = "{d}/out"
    hum = ["generate", "--mode", "humanize", "--output-dir", out, "--no-png", "--input-midi-1"]
    c = [(hum + ["{d}/" + name], message) for name, message in [
        ("header_only.mid", "the sequence has no notes"),
        ("tag_only.mid", "corrupt MIDI"),
        ("huge_len.mid", "corrupt MIDI (MiniMidi: Invalid chunk length 4294967295"),
        ("mid_event.mid", "corrupt MIDI"),
        ("format7.mid", "corrupt MIDI"),
        ("smpte.mid", "corrupt MIDI"),
        ("div0.mid", "invalid ticks per quarter 0"),
        ("running_status.mid", "corrupt MIDI"),
        ("tick_2_31.mid", "beyond MIDI's time range"),
        ("vlq5.mid", "corrupt MIDI"),
        ("tempo0.mid", "invalid tempo event"),
        ("tempo1us.mid", "outside 20-400"),
        ("ts34.mid", "not in 4/4 throughout (time signatures: 3/4)"),
        ("ts78.mid", "not in 4/4 throughout (time signatures: 7/8)"),
        ("ts_den255.mid", "not in 4/4"),
        ("tempo_change.mid", "changes tempo"),
        ("vel0.mid", "the sequence has no notes"),
        ("pitch200.mid", "corrupt MIDI"),
        ("sysex_huge.mid", "corrupt MIDI"),
        ("meta_huge.mid", "corrupt MIDI"),
        ("mthd_len0.mid", "corrupt MIDI"),
        ("rmid.mid", "no MThd header"),
        ("unmapped.mid", "no notes on the drum pitches it reads"),
        ("tpq1.mid", "too short"),
        ("long_silence.mid", "an input of at most 2,000 bars"),
        ("after_header.mid", "corrupt MIDI"),
        ("huge.mid", "a MIDI file of at most 64 MB"),
        ("fifo.mid", "fifo.mid: not a MIDI file (a device, FIFO or socket)"),
        ("loop_a.mid", "loop_a.mid: input MIDI not found"),
        ("x" * 300 + ".mid", "input MIDI not found"),
        ("src", "src: not a MIDI file (a folder)"),
    ]]  # fmt: skip
    c.append((hum + ["/dev/zero"], "/dev/zero: not a MIDI file"))
    gen = ["generate", "--output-dir", out, "--num-outputs", "1", "--no-png"]
    c += [(gen + ["--checkpoint", "{d}/" + name], message) for name, message in [
        ("bad_json.safetensors", "bad_json.safetensors: not a readable safetensors file"),
        ("huge_header.safetensors", "header too large"),
        ("header_beyond.safetensors", "header_beyond.safetensors: not a readable"),
        ("list_header.safetensors", "list_header.safetensors: not a readable"),
        ("no_meta.safetensors", "not a musicvae model bundle"),
        ("z7.safetensors", "weights do not fit config"),
        ("extra_key.safetensors", "unknown keys zzz"),
        ("nan.safetensors", "hold NaN or infinite values"),
        ("evil.pt", "never unpickled"),
        ("evil_torch.pt", "never unpickled"),
        ("other_zip.pt", "other_zip.pt: not a readable musicvae checkpoint"),
        ("tensor.pt", "no 'musicvae-checkpoint/1' format tag"),
        ("bad_run", "truncated or not a torch zip archive"),
        ("magenta_dir", "names model.ckpt-5, whose .index is missing"),
        ("bad_index", "bad magic number"),
        ("junk.tar.gz", "bad magic number"),
        ("cut.tar.gz", "cut.tar.gz: cannot extract checkpoint archive"),
        ("random.tar", "no checkpoint (.index) found"),
    ]]  # fmt: skip
    c += [
        (gen + ["--checkpoint", "/dev/zero"], "/dev/zero: not a model file"),
        (gen + ["--tempo", "0"], "--tempo"),
        (gen + ["--tempo", "nan"], "--tempo"),
        (gen + ["--tempo", "inf"], "--tempo"),
        (gen + ["--tempo", "1e9"], "--tempo"),
        (["generate", "--output-dir", "{d}/fifo.mid"], "fifo.mid: is a file, not a folder"),
        (["generate", "--output-dir", "{d}/" + "z" * 300], "the name is too long"),
        (gen + ["--audio", "--soundfont", "{d}/src"], "cannot read the SoundFont"),
        (gen + ["--audio", "--soundfont", "{d}/notes.txt"], "not a SoundFont"),
        (gen + ["--seed", "0x" + "f" * 20], "--seed"),
        (gen[:-3] + ["--num-outputs", "five"], "--num-outputs"),
        (["generate", "--mode", "interpolate", "--output-dir", out, "--input-midi-1",
          "{d}/src/good.mid", "--input-midi-2", "{d}/smpte.mid"], "smpte.mid: corrupt MIDI"),
        (["generate", "--mode", "interpolate", "--output-dir", out, "--input-midi-1",
          "{d}/ts34.mid", "--input-midi-2", "{d}/src/good.mid"], "ts34.mid: no 4/4 window"),
        (["generate", "--mode", "reconstruct", "--output-dir", out], "--input-midi-1 is required"),
    ]  # fmt: skip
    wav = "{d}/out.wav"
    c += [(["render", "{d}/" + name, "-o", wav], message) for name, message in [
        ("header_only.mid", "header_only.mid: no notes to render"),
        ("tick_2_31.mid", "beyond MIDI's time range"),
        ("long_silence.mid", "minutes long; render plays at most 30 minutes"),
        ("fifo.mid", "fifo.mid: not a MIDI file"),
        ("loop_a.mid", "loop_a.mid: cannot read"),
        ("smpte.mid", "smpte.mid: corrupt MIDI"),
        ("tempo0.mid", "invalid tempo event"),
        ("huge.mid", "at most 64 MB"),
    ]]  # fmt: skip
    c += [
        (["render", "/dev/zero", "-o", wav], "/dev/zero: not a MIDI file"),
        (["render", "{d}/src/good.mid", "-o", "{d}/fifo.parquet"], "refusing to replace it"),
        (["render", "{d}/src/good.mid", "-o", wav, "--soundfont", "{d}/src"],
         "cannot read the SoundFont"),
        (["render", "{d}/src/good.mid", "-o", wav, "--soundfont", "{d}/empty.mid"],
         "not a SoundFont"),
        (["render", "{d}/src/good.mid", "-o", "{d}/" + "y" * 300 + ".wav"], "yyyy"),
        (["convert", "{d}/only_dirs", "-o", "{d}/x.parquet"], "no MIDI files"),
        (["convert", "{d}/bad_split", "-o", "{d}/x.parquet"], "a.mid: split 'tset' is not one of"),
        (["convert", "{d}/src/good.mid", "-o", "{d}/x.parquet"], "not a folder"),
        (["convert", "{d}/src", "-o", "{d}/src/good.mid"], "refusing to write a dataset over it"),
        (["convert", "{d}/src", "-o", "{d}/fifo.parquet"], "refusing to replace it"),
        (["convert", "--from-tfrecord", "{d}/good.tfrecord", "-o", "{d}/good.tfrecord"],
         "is the --from-tfrecord input"),
    ]  # fmt: skip
    c += [(["convert", "--from-tfrecord", "{d}/" + name, "-o", "{d}/x.parquet"], message)
          for name, message in [
        ("bad_len_crc.tfrecord", "not a TFRecord file"),
        ("bad_data_crc.tfrecord", "record 0 has a data CRC mismatch"),
        ("half.tfrecord", "record 0 is truncated"),
        ("huge_record.tfrecord", "declares 1,099,511,627,776 bytes"),
        ("not_proto.tfrecord", "record 0 is not a NoteSequence"),
        ("empty.mid", "not a TFRecord file"),
        ("fifo.parquet", "fifo.parquet"),
    ]]  # fmt: skip
    for name, message in [
        ("no_id.parquet", "missing columns: id"),
        ("other.parquet", "not a musicvae dataset"),
        ("pitch_str.parquet", "malformed dataset rows"),
        ("pitch_scalar.parquet", "column 'pitch' holds int64, not lists"),
        ("ragged.parquet", "malformed dataset rows"),
        ("tempo0.parquet", "bad tempo or meter"),
        ("half.parquet", "corrupt dataset file"),
        ("magic_only.parquet", "corrupt dataset file"),
        ("fifo.parquet", "fifo.parquet: not a dataset file (a device, FIFO or socket)"),
        ("huge_record.tfrecord", "record 0 is truncated"),
        ("bad_data_crc.tfrecord", "data CRC mismatch"),
    ]:
        c.append((["dataset", "stats", "{d}/" + name, "--config", "groovae_4bar"], message))
    c.append((["dataset", "stats", "/dev/zero"], "/dev/zero: not a dataset file"))
    ev = ["evaluate", "--split", "all", "--examples"]
    c += [
        (ev + ["{d}/tempo0.parquet"], "bad tempo or meter"),
        (ev + ["{d}/nan_start.parquet"], "yields no groovae_4bar_hitcond windows"),
        (ev + ["{d}/zero_rows.parquet"], "holds no sequences"),
        (ev + ["{d}/fifo.parquet"], "a device, FIFO or socket"),
        (ev + ["{d}/not_proto.tfrecord"], "not a NoteSequence"),
        (ev + ["{data}", "--num-prior-samples", "-1"], "--num-prior-samples"),
        (ev + ["{data}", "--num-prior-samples", "1000000000"], "--num-prior-samples"),
        (ev + ["{data}", "--output", "{d}/src"], "is a folder"),
        (ev + ["{data}", "--checkpoint", "{d}/huge_header.safetensors"], "header too large"),
        (ev + ["{data}", "--checkpoint", "{d}/evil.pt"], "never unpickled"),
    ]
    train = ["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{data}"]
    c += [(train + ["--hparams", h], message) for h, message in [
        ("a==b", "unknown hparam 'a'"),
        ("ß=1", "unknown hparam 'ß'"),
        ("=5", "unknown hparam ''"),
        ("name=x", "unknown hparam 'name'"),
        ("batch_size=1e9", "batch_size=1000000000: must be <= 65536"),
        ("batch_size=1000000000", "must be <= 65536"),
        ("z_size=1000000000", "z_size=1000000000: must be <= 8192"),
        ("enc_rnn_size=[100000000]", "must be <= 8192"),
        ("dec_rnn_size=[64,100000]", "must be <= 8192"),
        ("max_seq_len=10000000", "must be <= 65536"),
        ("enc_rnn_size=[1,", "bad value for hparam 'enc_rnn_size'"),
        ("enc_rnn_size=(1,2", "bad value for hparam 'enc_rnn_size'"),
        ("enc_rnn_size=[[1]]", "bad value for hparam 'enc_rnn_size'"),
        ("batch_size=", "bad value for hparam 'batch_size'"),
        ("z_size=1e400", "bad value for hparam 'z_size'"),
        ("learning_rate=1e400", "expected a finite number"),
        ("learning_rate=abc", "bad value for hparam 'learning_rate'"),
        ("batch_size=True", "expected an integer"),
    ]]  # fmt: skip
    c += [
        (train + ["--max-time", "nan"], "--max-time 'nan'"),
        (train + ["--max-time", "infh"], "--max-time 'infh'"),
        (train + ["--eval-every", "-1"], "--eval-every -1"),
        (train + ["--checkpoints-to-keep", "-1"], "--checkpoints-to-keep -1"),
        (train + ["--log-every", "0"], "--log-every 0"),
        (train + ["--init-from", "{d}/z7.safetensors"], "do not fit config"),
        (train + ["--init-from", "{d}/evil_torch.pt"], "never unpickled"),
        (["train", "--config", "debug", "--run-dir", "{d}/a_file", "--examples", "{data}"],
         "a_file: cannot be a run folder (is a file, not a folder)"),
        (["train", "--config", "debug", "--run-dir", "{d}/a_file/run", "--examples", "{data}"],
         "a_file is a file, not a folder"),
        (["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/all_val.parquet"],
         "the 'train' split yields no debug examples"),
        (["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/zero_rows.parquet"],
         "the 'train' split yields no debug examples"),
        (["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/fifo.parquet"],
         "no such examples file"),
        (["train", "--config", "debug", "--run-dir", "{d}/run", "--examples", "{d}/src/good.mid"],
         "not a dataset file"),
        (train + ["--mode", "eval"], "no such checkpoint file or run folder"),
        (["export", "groovae_4bar", "-o", "{d}/x.safetensors", "--meta", "config=garbage"],
         "'config' is written by export itself"),
        (["export", "groovae_4bar", "-o", "{d}/x.safetensors", "--meta", "novalue"],
         "expected KEY=VALUE"),
        (["export", "groovae_4bar", "-o", "{d}/x.safetensors", "--spread-from", "{d}/other.parquet"],
         "not a musicvae dataset"),
        (["export", "{d}/evil_torch.pt", "-o", "{d}/x.safetensors"], "never unpickled"),
        (["export", "{d}/huge_header.safetensors", "-o", "{d}/x.safetensors"], "header too large"),
        (["export", "{d}/random.tar", "-o", "{d}/x.safetensors"], "no checkpoint (.index) found"),
        (["export", "groovae_4bar", "-o", "{d}/fifo.parquet"], ".safetensors"),
    ]  # fmt: skip
    imp = ["import-magenta", "--config", "groovae_4bar", "-o", "{d}/x.pt"]
    c += [(imp + ["{d}/" + name], message) for name, message in [
        ("random.tar", "random.tar: no checkpoint (.index) found"),
        ("escape.tar", "truncated checkpoint index"),  # and nothing lands outside (checked)
        ("links.tar", "no checkpoint (.index) found"),
        ("empty.tar", "empty.tar: no checkpoint (.index) found"),
        ("cut.tar", "cut.tar: cannot extract checkpoint archive"),
        ("cut.tar.gz", "cut.tar.gz: cannot extract checkpoint archive"),
        ("junk.tar.gz", "junk.tar.gz: model.ckpt-1.index: bad magic number"),
        ("magenta_dir", "whose .index is missing"),
        ("bad_index", "bad magic number"),
    ]]  # fmt: skip
    c += [
        (imp + ["/dev/zero"], "checkpoint index not found"),
        (imp + ["{d}/random.tar", "--hparams", "a==b"], "unknown hparam 'a'"),
        (["explain", "--config", "groovae_4bar", "--device", "cuda"], "CUDA is not available"),
        (["explain", "--config", "groovae_4bar", "--diagram", "{d}/src"], "is a folder"),
        (["explain", "--checkpoint", "{d}/evil.pt"], "never unpickled"),
        (["explain", "--checkpoint", "groovae_4bar", "--groove", "{d}/src/good.mid",
          "--conductor", "{d}/c.png"], "has no conductor"),
        (["plot", "{d}/src/good.mid"], "no such run folder"),
        (["plot", "{d}/bad_run"], "no TensorBoard event files"),
        (["studio", "--port", "0", "--checkpoint", "{d}/bad_json.safetensors"],
         "not a readable safetensors file"),
        (["studio", "--port", "0", "--checkpoint", "{d}/evil_torch.pt"], "never unpickled"),
        (["demo", "--data-tour", "--files", "-1"], "--files"),
        (["demo", "--keep", "{d}/kept"], "--keep is for --data-tour"),
        (["demo", "--data-tour", "--files", "100000000"], "--files"),
        (["demo", "--data-tour", "--files", "2", "--keep", "{d}/a_file"], "a_file"),
        (["data", "download", "groove", "--dir", "{d}/a_file"], "a_file"),
    ]  # fmt: skip
    return c


CASES = _cases() + _hostile_cases()


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[" ".join(a)[:60] for a, _ in CASES])
def test_bad_input_is_one_clear_line(files, capsys, argv, message, one_thread):
    d, data = files
    before = sorted(p.name for p in d.iterdir())
    argv = [a.replace("{d}", str(d)).replace("{data}", str(data)) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len([x for x in lines if "error:" in x]) == 1, err
    assert "Traceback" not in err
    assert message in err, err
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert "weights_only" not in err  # torch's advice would run the file's code
    assert not (d / "PWNED").exists(), "a pickle ran code"
    assert not (d / "ESCAPED").exists() and not (d / "ESCAPED_ABS").exists()
    after = sorted(p.name for p in d.iterdir() if p.name not in ("run", "out"))
    assert after == [n for n in before if n not in ("run", "out")], "a file was left behind"


def test_there_are_many_cases():
    assert len(CASES) >= 150 + 200


@pytest.mark.parametrize(
    ("command", "argv", "message"),
    [
        ("train", ["--config=debug", "--run_dir={d}/a_file", "--examples_path={data}"],
         "a_file: cannot be a run folder"),
        ("generate", ["--config=groovae_4bar", "--checkpoint_file={d}/evil_torch.pt",
                      "--mode=sample", "--num_outputs=1", "--output_dir={d}/out"],
         "never unpickled"),
        ("generate", ["--config=groovae_4bar", "--checkpoint_file={d}/cut.tar.gz",
                      "--mode=sample", "--num_outputs=1", "--output_dir={d}/out"],
         "cannot extract checkpoint archive"),
        ("convert", ["--input_dir={d}/src", "--output_file={d}/src/good.mid"],
         "refusing to write a dataset over it"),
    ],
)  # fmt: skip
def test_magenta_form_commands_refuse_bad_inputs(files, capsys, command, argv, message):
    """``music_vae_train``, ``music_vae_generate`` and ``convert_dir_to_note_sequences``."""
    import importlib

    d, data = files
    before = sorted(p.name for p in d.iterdir())
    entry = importlib.import_module(f"musicvae.cli.{command}").magenta_main
    code = entry([a.replace("{d}", str(d)).replace("{data}", str(data)) for a in argv])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and message in err, err
    assert [x for x in err.splitlines() if "error:" in x] == [err.strip().splitlines()[-1]]
    assert sorted(p.name for p in d.iterdir() if p.name != "out") == [
        n for n in before if n != "out"
    ]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, f: m.sample(0), "sample: n must be 1 to 10,000, got 0"),
        (lambda m, f: m.sample(-1), "got -1"),
        (lambda m, f: m.sample(10**9), "got 1000000000"),
        (lambda m, f: m.sample(1, qpm=0), "qpm 0: expected a positive tempo"),
        (lambda m, f: m.sample(1, temperature=float("nan")), "temperature must be positive"),
        (lambda m, f: m.decode(np.full((1, m.z_size), np.nan)), "z must hold finite numbers"),
        (lambda m, f: m.decode(np.zeros((3, 7))), "z must have shape"),
        (lambda m, f: m.encode(str(f)), "expected a NoteSequence"),
        (lambda m, f: m.encode([]), "no sequences given"),
        (lambda m, f: m.humanize(read_midi(f)), "was not trained to humanize"),
    ],
)
def test_api_misuse_is_one_clear_error(files, call, message):
    """The Python API raises MusicVAEError (one line) for values the CLI would refuse."""
    import musicvae
    from musicvae.errors import MusicVAEError

    model = musicvae.load("groovae_4bar")
    with pytest.raises(MusicVAEError) as e:
        call(model, files[0] / "src" / "good.mid")
    assert message in str(e.value) and "\n" not in str(e.value)
