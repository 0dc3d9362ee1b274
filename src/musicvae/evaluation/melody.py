"""What makes a window sound like a tune: statistics of one-hot melodies, for model comparisons.

The MusicVAE paper judges melodies by reconstruction accuracy and by whether samples and
interpolations stay musical. These are the measures of the second kind, on ``(N, T, 90)`` one-hot
windows of Magenta's melody encoding (class 0 no event, 1 note off, ``2 + pitch - 21`` a note
starting), each computed the same way on real windows and on generated ones so they can be set
side by side:

- notes per bar, and the pitch range of a window in semitones (and the share of windows over two
  octaves: a model that wanders across the keyboard);
- in-key share: the share of a window's notes in the diatonic scale that fits them best (the
  twelve major scales; each relative minor has the same notes);
- bar-to-bar similarity at a lag: the share of the 16 steps two bars ``lag`` apart have equal
  (phrase repetition shows at lag 4 in folk tunes);
- for a latent path, the share of steps whose event changes from one output to the next.
"""

from __future__ import annotations

import numpy as np

NUM_SPECIAL = 2  # no event, note off
MIN_PITCH = 21
MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
# Scale membership of each pitch class in each of the 12 major keys: (12 keys, 12 classes).
_IN_KEY = np.zeros((12, 12), bool)
for _tonic in range(12):
    _IN_KEY[_tonic, (MAJOR + _tonic) % 12] = True


def events(windows: np.ndarray) -> np.ndarray:
    """(N, T) event classes of (N, T, D) one-hot (or logit) windows."""
    return np.argmax(np.asarray(windows), axis=-1)


def _notes(row: np.ndarray) -> np.ndarray:
    """The MIDI pitches of one window's onsets, in order."""
    return row[row >= NUM_SPECIAL] - NUM_SPECIAL + MIN_PITCH


def in_key_share(pitches: np.ndarray) -> float:
    """Share of ``pitches`` in the major scale (of 12) that holds the most of them."""
    if not len(pitches):
        return float("nan")
    counts = np.bincount(pitches % 12, minlength=12)
    return float((_IN_KEY @ counts).max() / len(pitches))


def bar_similarity(classes: np.ndarray, steps_per_bar: int, lag: int) -> float:
    """Mean share of equal steps between bars ``lag`` apart, over (N, T) event classes; NaN
    when the windows are shorter than ``lag + 1`` bars."""
    n, t = classes.shape
    bars = t // steps_per_bar
    if bars <= lag:
        return float("nan")
    grid = classes[:, : bars * steps_per_bar].reshape(n, bars, steps_per_bar)
    return float((grid[:, lag:] == grid[:, :-lag]).mean())


def melody_stats(windows: np.ndarray, steps_per_bar: int = 16) -> dict[str, float]:
    """The statistics of the module docstring over (N, T, D) one-hot windows."""
    classes = events(windows)
    n, t = classes.shape
    bars = t / steps_per_bar
    notes = [_notes(row) for row in classes]
    played = [p for p in notes if len(p)]
    ranges = np.array([p.max() - p.min() for p in played], np.float64)
    return {
        "windows": float(n),
        "notes_per_bar": float(np.mean([len(p) for p in notes]) / bars) if n else float("nan"),
        "silent_share": 1.0 - len(played) / n if n else float("nan"),
        "pitch_range": float(ranges.mean()) if len(ranges) else float("nan"),
        "over_two_octaves": float((ranges > 24).mean()) if len(ranges) else float("nan"),
        "in_key_share": float(np.mean([in_key_share(p) for p in played]))
        if played
        else float("nan"),
        "bar_similarity_lag1": bar_similarity(classes, steps_per_bar, 1),
        "bar_similarity_lag4": bar_similarity(classes, steps_per_bar, 4),
    }


def path_changes(path: np.ndarray) -> float:
    """Mean share of steps whose event changes between consecutive outputs of a (K, T, D)
    latent path (0: it never moves; an even path of K outputs between unrelated tunes changes
    about 1 / (K - 1) of its steps per move)."""
    classes = events(path)
    if len(classes) < 2:
        return float("nan")
    return float((classes[1:] != classes[:-1]).mean())
