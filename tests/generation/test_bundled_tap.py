"""The bundled groovae_2bar_tap_fixed_velocity model: a tapped rhythm becomes a drum groove that
plays on the taps, with a kit rather than one drum."""

from __future__ import annotations

import pytest

from musicvae.data.midi import read_midi
from musicvae.generation.api import TAP_BUNDLE, load
from musicvae.generation.chunks import stitch
from tests.generation.helpers import requires_bundle, single_torch_thread

pytestmark = requires_bundle(TAP_BUNDLE)
# Test-split performances the model never trained on; their taps are what the converter makes.
TEST_FILES = [
    "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid",
    "drummer3/session1/11_rock_120_beat_4-4.mid",
    "drummer5/eval_session/4_soul-groove4_80_beat_4-4.mid",
]


@pytest.fixture(scope="module")
def drummer():
    with single_torch_thread():
        yield load(TAP_BUNDLE)


@pytest.mark.parametrize("name", TEST_FILES)
def test_taps_become_a_groove_on_the_taps(drummer, groove_dir, name):
    played = read_midi(groove_dir / name)
    prep = drummer.prepare(played)
    taps = stitch(prep.inputs, prep.starts, prep.total_steps)[:, 3] > 0.5  # (T,) tapped steps
    out = drummer.tap_to_drums(played, temperature=1e-6, seed=0)
    grooved = drummer.prepare(out)
    made = stitch(grooved.outputs, grooved.starts, grooved.total_steps)
    assert made.shape[0] == taps.shape[0]  # every bar kept
    hits = made[:, :9] > 0.5
    on_taps = hits[taps].any(axis=1).mean()
    assert on_taps > 0.8, on_taps  # the drums play where the taps are
    per_class = hits.sum(axis=0)
    assert (per_class > 0).sum() >= 3, per_class  # a kit, not one drum
    assert per_class[0] > 0 and (per_class[1] > 0 or per_class[2] > 0)  # kick, snare or hats
    assert made[:, 9:18][hits].std() * 127 > 5  # dynamics, although the taps had none
