"""Training-time augmentation of groove batches: louder or softer takes, a drum left out, a
drummer playing ahead of or behind the beat.

The GMD has 897 training performances, and a 4-bar model learns them by heart long before it
stops improving on the test split. These transforms make each batch a slightly different take
of the same grooves, drawn per window:

- ``augment_velocity=a``: every velocity of the window times ``1 + U(-a, a)`` (clipped to 127);
- ``augment_drop_class=p``: with probability ``p``, one of the drum classes the window plays is
  silenced (never the only one);
- ``augment_shift=s``: every hit of the window moved by ``U(-s, s)`` of a step (offsets clipped
  to the half step either side of the grid).

The encoder's inputs are rebuilt from the augmented targets with the converter's own input
transform (humanize, tap, note dropout...), so the pair stays consistent. The draws are a pure
function of (seed, step, rank), which keeps a resumed run bit-exact. All are off in every config
(Magenta had none); they are ours, set with ``--hparams``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.data.converters.groove import GrooveConverter


@dataclass(frozen=True)
class Augmentation:
    """The augmentation a config asks for, applied to whole training batches."""

    velocity: float
    drop_class: float
    shift: float
    seed: int
    config: Config
    converter: GrooveConverter

    @staticmethod
    def from_config(config: Config, seed: int, rank: int = 0) -> Augmentation | None:
        """None when the config asks for none."""
        hp = config.hparams
        if not hp.augments:
            return None
        return Augmentation(
            hp.augment_velocity,
            hp.augment_drop_class,
            hp.augment_shift,
            (seed * 1_000_003 + rank) % 2**62,
            config,
            GrooveConverter(config.data),
        )

    def targets(self, outputs: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
        """Augmented copies of target grids (B, T, 27) -> (B, T, 27) float64."""
        hits, vel, off = np.split(outputs.numpy().astype(np.float64), 3, axis=-1)
        b = len(hits)
        if self.velocity:
            scale = 1.0 + rng.uniform(-self.velocity, self.velocity, size=(b, 1, 1))
            vel = np.clip(vel * scale, 0.0, 1.0) * hits
        if self.drop_class:
            played = np.asarray(hits.any(axis=1))  # (B, 9)
            for row in np.flatnonzero(rng.random(b) < self.drop_class):
                classes = np.flatnonzero(played[row])
                if len(classes) > 1:
                    c = rng.choice(classes)
                    hits[row, :, c] = vel[row, :, c] = off[row, :, c] = 0.0
        if self.shift:
            # Offsets are in half steps (2 * (grid - onset) / step), so a shift of d steps is 2d.
            delta = 2.0 * rng.uniform(-self.shift, self.shift, size=(b, 1, 1))
            off = np.clip(off + delta, -1.0, 1.0) * hits
        return np.concatenate([hits, vel, off], axis=-1)

    def __call__(self, batch: tuple[torch.Tensor, ...], step: int) -> tuple[torch.Tensor, ...]:
        """``(inputs, outputs, controls, lengths)`` of training step ``step``, augmented."""
        _, outputs, controls, lengths = batch
        rng = np.random.default_rng([self.seed, step])
        new = self.targets(outputs, rng)
        hits, vel, off = np.split(new, 3, axis=-1)
        if self.config.data.transforms_input:
            parts = self.converter.transform_inputs(hits, vel, off, rng)
            new_inputs = np.concatenate(parts, axis=-1)
        else:
            new_inputs = new
        if self.converter.control_depth:
            controls = torch.from_numpy(self.converter.controls_for(new_inputs, new))
        out = torch.from_numpy(new.astype(np.float32))
        # Padding past a window's length stays zero: every transform multiplies by the hits.
        return torch.from_numpy(new_inputs.astype(np.float32)), out, controls, lengths
