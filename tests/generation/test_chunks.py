"""Cutting inputs into model windows and stitching them back: every bar kept, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from musicvae.configs import get_config
from musicvae.data.sequence import Tempo
from musicvae.errors import MusicVAEError
from musicvae.generation.chunks import cut, prepare, stitch, window_starts
from tests.generation.helpers import groove


def test_window_starts():
    assert window_starts(64, 64) == [0]
    assert window_starts(256, 64) == [0, 64, 128, 192]
    # 10 bars with a 4-bar window: bars 1-4, 5-8 and a last window over bars 7-10.
    assert window_starts(160, 64) == [0, 64, 96]
    with pytest.raises(ValueError):
        window_starts(48, 64)


@pytest.mark.parametrize("bars", [4, 5, 10, 16])
def test_cut_then_stitch_is_identity(bars):
    grid = np.random.default_rng(bars).random((bars * 16, 27)).astype(np.float32)
    windows, starts = cut(grid, 64)
    assert windows.shape == (len(starts), 64, 27)
    np.testing.assert_array_equal(stitch(windows, starts, len(grid)), grid)


def test_stitch_takes_overlap_from_the_earlier_window():
    windows = np.stack([np.full((4, 1), 1.0), np.full((4, 1), 2.0)])
    out = stitch(windows, [0, 2], 6)
    np.testing.assert_array_equal(out[:, 0], [1, 1, 1, 1, 2, 2])


def test_prepare_sixteen_bars_keeps_every_bar():
    config = get_config("debug")
    ns = groove(16, qpm=95.0)
    prep = prepare(ns, config)
    assert prep.total_steps == 256
    assert prep.starts == [0, 64, 128, 192]
    assert prep.inputs.shape == (4, 64, 27)
    assert prep.qpm == 95.0
    full = stitch(prep.outputs, prep.starts, prep.total_steps)
    # Every bar has its kicks on steps 0 and 8 and its last-16th snare.
    hits = full[:, :9].reshape(16, 16, 9)
    assert (hits[:, [0, 8], 0] == 1).all()
    assert (hits[:, 15, 1] == 1).all()


def test_prepare_applies_the_input_transform():
    prep = prepare(groove(4), get_config("debug", "humanize=True"))
    assert prep.inputs[..., 9:].max() == 0.0  # velocities and offsets flattened
    assert prep.outputs[..., 9:18].max() > 0.0
    np.testing.assert_array_equal(prep.inputs[..., :9], prep.outputs[..., :9])


def test_prepare_cuts_tap_controls_per_window_as_in_training():
    config = get_config("debug", "tapify=True,fixed_velocities=True,taps_as_controls=True")
    prep = prepare(groove(8), config)
    assert prep.controls.shape == (2, 64, 3)
    tapped = prep.controls[..., 0]
    # Every bar is tapped on its steps 0, 14 and 15, so steps 62 and 63 of window 0 are
    # tapped and so is step 0 of window 1 ...
    assert tapped[0, 62] == tapped[0, 63] == tapped[1, 0] == 1.0
    # ... yet window 0's last step does not see it: in training a window ends there.
    assert prep.controls[0, 62, 2] == 1.0 and prep.controls[0, 63, 2] == 0.0
    assert prep.controls[1, 63, 2] == 0.0


def test_prepare_errors_name_the_input():
    config = get_config("debug")
    with pytest.raises(MusicVAEError, match=r"^waltz\.mid: no 4/4 window: .*3/4"):
        prepare(groove(8, time_signature=(3, 4)), config, name="waltz.mid")
    changing = groove(8)
    changing.tempos = [Tempo(0.0, 120.0), Tempo(4.0, 90.0)]
    with pytest.raises(MusicVAEError, match="changes tempo"):
        prepare(changing, config, name="x.mid")
    with pytest.raises(MusicVAEError, match="has no notes"):
        prepare(groove(0), config, name="empty.mid")
    with pytest.raises(MusicVAEError, match=r"^short\.mid: too short: 2 bar\(s\).*at least 4"):
        prepare(groove(2), config, name="short.mid")


def test_a_drum_groove_given_to_a_multi_track_model_names_the_tracks_not_the_meter():
    """A performance converter's rows are tokens, not time steps: the 4/4 check reads its
    musical bar (96 steps), so a 4/4 drum groove is refused for its tracks, not its meter."""
    config = get_config("hier-multiperf_vel_1bar_med")
    with pytest.raises(MusicVAEError) as e:
        prepare(groove(4, filename="beat.mid"), config)
    message = str(e.value)
    assert "not in 4/4" not in message and "holds not every track it reads" in message
