"""GrooVAE's LSTM decoder and its loss.

Every step outputs ``3N`` values for ``N`` drum classes: hit logits, velocity pre-activations and
offset pre-activations (``[hits | velocities | offsets]``). Semantics follow Magenta's
``GrooveLstmDecoder``: initial state ``tanh(dense(z))`` split ``[c0, h0, c1, h1, ...]``, step input
``concat(x_prev, z, controls)`` with ``x_prev`` the previous *target* (zeros at step 0), hits
sampled from ``Bernoulli(logits / temperature)``, velocities ``sigmoid``, offsets ``tanh``.

With ``hit_conditioned`` (our configs, never Magenta's) the velocity and offset losses count only
where the target has a hit, so those heads estimate E[v | hit] instead of E[v * hit]: a rare, loud
crash is learned at its real loudness instead of being pulled towards the silence around it. A
sampled step then carries no velocity or offset where it has no hit, as the data does.

Teacher forcing (sampling probability 0) runs the whole sequence in one fused ``nn.LSTM`` call;
the per-step loop shares the same weights and is used for sampling and scheduled sampling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from musicvae.errors import MusicVAEError
from musicvae.models import fused_lstm
from musicvae.models.lstm import LstmStack

# tf.losses.log_loss's epsilon, applied to the probabilities (not the logits form).
LOG_LOSS_EPSILON = 1e-7


@dataclass
class DecoderOutput:
    """Raw output projections ``(B, T, 3N)`` plus named intermediate tensors."""

    rnn_output: Tensor
    extras: dict[str, Tensor] = field(default_factory=dict)


def shift_right(targets: Tensor, start: Tensor | None = None) -> Tensor:
    """Teacher-forcing inputs: ``start`` (zeros by default) then ``targets[:, :-1]``."""
    # targets: (B, T, D), start: (B, D) -> (B, T, D)
    first = targets.new_zeros(targets[:, :1].shape) if start is None else start[:, None]
    return torch.cat([first, targets[:, :-1]], dim=1)


def compute_dtype(x: Tensor) -> torch.dtype:
    """The dtype autocast gives ``x``'s matrix products (``x.dtype`` outside autocast)."""
    if x.is_floating_point() and torch.is_autocast_enabled(x.device.type):
        return torch.get_autocast_dtype(x.device.type)
    return x.dtype


def step_mask(lengths: Tensor | None, batch: int, steps: int, device: torch.device) -> Tensor:
    """``(B, T)`` float mask of valid steps."""
    if lengths is None:
        return torch.ones(batch, steps, device=device)
    t = torch.arange(steps, device=device)
    return (t[None, :] < lengths.to(device)[:, None]).float()


def activate(rnn_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hit probabilities, velocities and offsets from raw outputs (each ``(..., N)``)."""
    hits, velocities, offsets = rnn_output.chunk(3, dim=-1)
    return torch.sigmoid(hits), torch.sigmoid(velocities), torch.tanh(offsets)


def groove_loss(
    rnn_output: Tensor, targets: Tensor, lengths: Tensor | None, hit_conditioned: bool = False
) -> dict[str, Tensor]:
    """Per-sequence loss parts, summed over valid steps and classes (Magenta's formulas).

    ``hit_conditioned`` counts the velocity and offset errors only on target hits. Returns
    ``(B,)`` tensors ``hits_loss`` (log loss on sigmoid probabilities, epsilon 1e-7),
    ``velocities_loss`` and ``offsets_loss`` (squared errors), ``r_loss`` (their sum), and the
    scalar ``hit_accuracy`` (thresholded hits vs targets over valid cells). Always float32.
    """
    # rnn_output, targets: (B, T, 3N); lengths: (B,)
    out, tgt = rnn_output.float(), targets.float()
    b, t, _ = out.shape
    mask = step_mask(lengths, b, t, out.device)
    logits, vel, off = out.chunk(3, dim=-1)
    y, tv, to = tgt.chunk(3, dim=-1)
    p = torch.sigmoid(logits)
    hits = -(y * torch.log(p + LOG_LOSS_EPSILON) + (1 - y) * torch.log(1 - p + LOG_LOSS_EPSILON))
    vel_err, off_err = (torch.sigmoid(vel) - tv).square(), (torch.tanh(off) - to).square()
    if hit_conditioned:
        vel_err, off_err = vel_err * y, off_err * y
    parts = {"hits_loss": hits, "velocities_loss": vel_err, "offsets_loss": off_err}
    result = {k: (v.sum(-1) * mask).sum(-1) for k, v in parts.items()}
    result["r_loss"] = result["hits_loss"] + result["velocities_loss"] + result["offsets_loss"]
    correct = ((logits > 0) == (y > 0.5)).float().mean(-1)
    result["hit_accuracy"] = (correct * mask).sum() / mask.sum().clamp(min=1.0)
    return result


def spread_draws(
    spread: Tensor, temperature: float, shape: tuple[int, ...], generator: torch.Generator | None
) -> tuple[Tensor, Tensor]:
    """Velocity factors and offset shifts of shape ``shape + (N,)`` for :func:`add_spread`,
    drawn at once (a decoding loop draws for all its steps before the first)."""
    scale = min(float(temperature), 1.0)
    noise = torch.randn((2, *shape, spread.shape[-1]), generator=generator, device=spread.device)
    s = spread[0] * scale
    return torch.exp(noise[0] * s - 0.5 * s * s), noise[1] * (spread[1] * scale)


def add_spread(
    vel: Tensor,
    off: Tensor,
    spread: Tensor,
    temperature: float,
    generator: torch.Generator | None,
    draws: tuple[Tensor, Tensor] | None = None,
) -> tuple[Tensor, Tensor]:
    """Velocities and offsets drawn around the heads' means with ``spread`` (2, N), per class:
    the standard deviation of what the means miss on held-out hits, of log velocity and of the
    offset. MSE heads give each hit its expected loudness and timing, and a sequence of
    expectations is flatter than any drummer; the draw restores the spread. Velocity noise is
    log-normal with mean 1 (a quiet hit stays quiet, a loud one can become an accent), offset
    noise Gaussian; both scale with ``min(temperature, 1)``. ``draws`` are pre-drawn
    :func:`spread_draws` for this step."""
    # vel, off: (B, N); spread: (2, N) -> (B, N), (B, N)
    factor, shift = (
        draws
        if draws is not None
        else spread_draws(spread, temperature, tuple(vel.shape[:-1]), generator)
    )
    return (vel * factor).clamp(0.0, 1.0), (off + shift).clamp(-1.0, 1.0)


def spread_tensor(spread: dict[str, Any] | None) -> Tensor | None:
    """The (2, N) ``spread`` :func:`add_spread` takes, from a stored one (``evaluation.calibrate``
    measures it; None stays None)."""
    if not spread:
        return None
    return torch.tensor([spread["velocity"], spread["offset"]], dtype=torch.float32)


def sample_outputs(
    rnn_output: Tensor,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
    hit_conditioned: bool = False,
    spread: Tensor | None = None,
    draws: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """One step's sample: Bernoulli hits, sigmoid velocities, tanh offsets (zero where there is
    no hit when ``hit_conditioned``; drawn around the means with ``spread``, see
    :func:`add_spread`)."""
    # rnn_output: (B, 3N) -> (B, 3N)
    logits, vel, off = rnn_output.float().chunk(3, dim=-1)
    hits = torch.bernoulli(torch.sigmoid(logits / temperature), generator=generator)
    vel, off = torch.sigmoid(vel), torch.tanh(off)
    if spread is not None:
        vel, off = add_spread(vel, off, spread, temperature, generator, draws)
    if hit_conditioned:
        vel, off = vel * hits, off * hits
    return torch.cat([hits, vel, off], dim=-1)


# A forced hit's velocity and offset are the outputs divided by the hit probability (below);
# the floor keeps a hit the model thought very unlikely from coming out at full velocity.
MIN_FORCED_HIT_PROB = 0.2


def force_hits(
    rnn_output: Tensor,
    sampled: Tensor,
    fixed: Tensor,
    hit_conditioned: bool = False,
    draws: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """``sampled`` (B, 3N) with the hits of ``fixed`` (B, N; NaN = free) imposed.

    Magenta's velocity and offset outputs are trained against 0 where there is no hit, so they
    estimate E[v * hit]; on a forced hit the estimate of E[v | hit] is that over P(hit). A
    ``hit_conditioned`` decoder's outputs already are E[v | hit], and ``draws`` (this step's
    :func:`spread_draws`) play them with the model's spread. A forced silence carries no
    velocity or offset, as in the data; free cells keep their sample.
    """
    # rnn_output: (B, 3N), sampled: (B, 3N), fixed: (B, N) -> (B, 3N)
    n = fixed.shape[-1]
    hits, vel, off = sampled.float().split(n, dim=-1)
    if hit_conditioned:
        _, played_vel, played_off = activate(rnn_output.float())
        if draws is not None:
            factor, shift = draws
            played_vel = (played_vel * factor).clamp(0.0, 1.0)
            played_off = (played_off + shift).clamp(-1.0, 1.0)
    else:
        prob = torch.sigmoid(rnn_output[..., :n].float()).clamp(min=MIN_FORCED_HIT_PROB)
        played_vel = (vel / prob).clamp(0.0, 1.0)
        played_off = (off / prob).clamp(-1.0, 1.0)
    forced = ~torch.isnan(fixed)
    on, off_cells = forced & (fixed > 0.5), forced & (fixed <= 0.5)
    hits = torch.where(forced, (fixed > 0.5).float(), hits)
    vel = torch.where(on, played_vel, vel).masked_fill(off_cells, 0.0)
    off = torch.where(on, played_off, off).masked_fill(off_cells, 0.0)
    return torch.cat([hits, vel, off], dim=-1).to(sampled.dtype)


def tap_constraint(rnn_output: Tensor, sampled: Tensor, tapped: Tensor) -> Tensor:
    """The fixed hits (B, N; NaN = free) that make a step follow the taps: silence where
    nothing was tapped, and where a tap has no sampled drum, the drum the model thinks likeliest
    (its other classes stay as sampled)."""
    # rnn_output: (B, 3N), sampled: (B, 3N), tapped: (B,) bool -> (B, N)
    n = rnn_output.shape[-1] // 3
    logits = rnn_output[..., :n].float()
    fixed = torch.full_like(logits, math.nan)
    silent = sampled[..., :n].float().sum(-1) < 0.5
    likeliest = torch.nn.functional.one_hot(logits.argmax(-1), n).bool()
    fixed = torch.where(tapped[:, None] & silent[:, None] & likeliest, 1.0, fixed)
    return torch.where(~tapped[:, None], 0.0, fixed)


@dataclass(frozen=True)
class GrooveDecoding:
    """GrooVAE's constraints on a free-running decode (the ``options`` of ``sample``):
    ``fixed_hits`` ``(B, T, N)`` imposes hits where it is not NaN (:func:`force_hits`),
    ``spread`` ``(2, N)`` draws velocities and offsets around the heads' means
    (:func:`add_spread`), and ``taps`` ``(B, T)`` (bool) puts drums on every tapped step and
    nowhere else (:func:`tap_constraint`)."""

    fixed_hits: Tensor | None = None
    spread: Tensor | None = None
    taps: Tensor | None = None

    def window(self, start: int, stop: int) -> GrooveDecoding:
        """The constraints of steps ``start`` to ``stop``: free hits and no taps past the
        end of what is given."""

        def cut(x: Tensor | None, fill: float | bool) -> Tensor | None:
            if x is None:
                return None
            part = x[:, start:stop]
            missing = (stop - start) - part.shape[1]
            if missing > 0:
                pad = part.new_full((part.shape[0], missing, *part.shape[2:]), fill)
                part = torch.cat([part, pad], dim=1)
            return part

        return GrooveDecoding(cut(self.fixed_hits, math.nan), self.spread, cut(self.taps, False))

    def check(self, batch: int, length: int) -> None:
        """Raise ``MusicVAEError`` unless hits and taps cover a ``(batch, length)`` decode."""
        for name, x in (("fixed hits", self.fixed_hits), ("taps", self.taps)):
            if x is not None and tuple(x.shape[:2]) != (batch, length):
                raise MusicVAEError(
                    f"{name} have shape {tuple(x.shape)}, need ({batch}, {length}, ...)"
                )

    def to(self, device: torch.device) -> GrooveDecoding:
        """On ``device``: hits and spread as float, taps as bool."""
        return GrooveDecoding(
            None if self.fixed_hits is None else self.fixed_hits.to(device).float(),
            None if self.spread is None else self.spread.to(device).float(),
            None if self.taps is None else self.taps.to(device).bool(),
        )


def groove_options(options: object | None, decoder: str) -> GrooveDecoding:
    """``options`` as GrooVAE's (none: no constraints); another family's are refused."""
    if options is None:
        return GrooveDecoding()
    if not isinstance(options, GrooveDecoding):
        raise ValueError(f"{decoder} takes GrooveDecoding options, got {type(options).__name__}")
    return options


def drop_words(x_input: Tensor, rate: float, generator: torch.Generator | None = None) -> Tensor:
    """``x_input`` with each step's whole input vector zeroed with chance ``rate`` (no
    rescaling: a zero input reads as "previous event unknown", not as a quieter one)."""
    # x_input: (B, T, D) -> (B, T, D)
    b, t, _ = x_input.shape
    draw = torch.rand(b, t, 1, generator=generator, device=x_input.device)
    return x_input * (draw >= rate).to(x_input.dtype)


class LstmDecoder(nn.Module):
    """Magenta's ``BaseLstmDecoder``: an autoregressive LSTM from ``tanh(dense(z))`` over step
    inputs ``concat(x_prev, z, controls)``; subclasses say what the outputs mean (their loss,
    activations and one step's sample)."""

    # The chance that a training step's teacher-forced input is zeroed (HParams.word_dropout);
    # build_model sets it on every decoder of a model.
    word_dropout: float = 0.0

    def __init__(
        self,
        output_depth: int,
        z_size: int,
        rnn_sizes: tuple[int, ...],
        control_depth: int = 0,
        keep_prob: float = 1.0,
        hit_conditioned: bool = False,
    ) -> None:
        super().__init__()
        self.output_depth = output_depth
        self.hit_conditioned = hit_conditioned
        self.z_size = z_size
        self.control_depth = control_depth
        self.rnn = LstmStack(output_depth + z_size + control_depth, rnn_sizes, keep_prob)
        self.z_to_initial_state = nn.Linear(z_size, self.rnn.state_size)
        self.output_projection = nn.Linear(self.rnn.hidden_size, output_depth)
        nn.init.normal_(self.z_to_initial_state.weight, std=0.001)
        nn.init.zeros_(self.z_to_initial_state.bias)
        nn.init.xavier_uniform_(self.output_projection.weight)
        nn.init.zeros_(self.output_projection.bias)

    def initial_state(self, z: Tensor) -> Tensor:
        # z: (B, Z) -> (B, state_size) laid out [c0, h0, c1, h1, ...]
        return torch.tanh(self.z_to_initial_state(z))

    def forward(
        self,
        targets: Tensor,
        lengths: Tensor | None,
        z: Tensor,
        controls: Tensor | None = None,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
        loop: bool = False,
    ) -> DecoderOutput:
        """Teacher-forced (or scheduled-sampling) pass; ``lengths`` only matter to the loss."""
        # targets: (B, T, D), z: (B, Z), controls: (B, T, C) -> rnn_output (B, T, D)
        return self.run(shift_right(targets), z, controls, sampling_probability, generator, loop)

    def run(
        self,
        x_input: Tensor,
        z: Tensor,
        controls: Tensor | None = None,
        sampling_probability: float = 0.0,
        generator: torch.Generator | None = None,
        loop: bool = False,
    ) -> DecoderOutput:
        """Like :meth:`forward` but from ready-made (already shifted) inputs."""
        # x_input: (B, T, D), z: (B, Z), controls: (B, T, C) -> rnn_output (B, T, D)
        init = self.initial_state(z)
        if self.training and self.word_dropout > 0.0:
            x_input = drop_words(x_input, self.word_dropout, generator)
        p = float(sampling_probability)
        if p == 0.0 and not loop:
            b, t, _ = x_input.shape
            # Under autocast the LSTM reads bf16: concatenate and drop in bf16 directly (the
            # (B, T, in) input is the step's largest non-LSTM tensor).
            dtype = compute_dtype(x_input)
            parts = [x_input.to(dtype), z.to(dtype)[:, None, :].expand(b, t, z.shape[-1])]
            if controls is not None and controls.shape[-1]:
                parts.append(controls.to(dtype))
            inputs = self.rnn.drop_input(torch.cat(parts, dim=-1))
            rnn_output = self.output_projection(self.rnn(inputs, init))
        else:
            rnn_output, _ = self._loop(
                init, x_input[:, 0], z, controls, x_input.shape[1], x_input, p, 1.0, generator
            )
        return DecoderOutput(rnn_output, {"initial_state": init})

    def sample_step(
        self,
        rnn_output: Tensor,
        temperature: float,
        generator: torch.Generator | None,
        spread: Tensor | None = None,
        draws: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """One step's sample ``(B, D)`` from its ``(B, D)`` outputs."""
        raise NotImplementedError

    def free_run(
        self,
        z: Tensor,
        length: int,
        temperature: float,
        controls: Tensor | None,
        generator: torch.Generator | None,
        start_inputs: Tensor | None,
        options: GrooveDecoding | None = None,
    ) -> Tensor:
        """Free-running samples ``(B, length, D)``: each step's :meth:`sample_step` fed back
        as the next input, from ``start_inputs`` (zeros by default)."""
        # z: (B, Z), controls: (B, length, C), start_inputs: (B, D) -> (B, length, D)
        first = z.new_zeros(z.shape[0], self.output_depth) if start_inputs is None else start_inputs
        drawn = self.kernel_sample(
            z[:, None], first, controls, length, temperature, generator, options
        )
        if drawn is not None:
            return drawn
        init = self.initial_state(z)
        _, samples = self._loop(
            init, first, z, controls, length, None, 0.0, temperature, generator, options
        )
        assert samples is not None  # free-running: _loop returns its samples
        return samples

    def one_hot_parts(self) -> tuple[int, ...] | None:
        """The widths of the one-hot parts :meth:`sample_step` draws, in order (a categorical
        decoder's), or None where its samples are something else."""
        return None

    def kernel_sample(
        self,
        z: Tensor,
        first: Tensor,
        controls: Tensor | None,
        length: int,
        temperature: float,
        generator: torch.Generator | None,
        options: GrooveDecoding | None = None,
    ) -> Tensor | None:
        """Free-running samples ``(B, length, D)`` from the fused kernel's whole-decode op, where
        it takes this decode (float32 on the CPU, no dropout, a decoder and options it knows;
        None otherwise). ``z`` ``(B, S, Z)`` holds one latent vector per segment of ``length /
        S`` steps: each segment starts from its own ``initial_state`` and reads its own vector,
        and goes on from the previous segment's last sample, as a conductor's bars do (``S =
        1``: :meth:`free_run`). The draws are the step loop's, from the same generator in the
        same order; the numbers differ from its own only by rounding."""
        b, segments, _ = z.shape
        if (
            length <= 0
            or length % segments
            or (self.training and self.rnn.dropout > 0.0)
            or first.dtype != torch.float32
            or not self._kernel_takes(temperature, options)
            or not fused_lstm.samples(z)
        ):
            return None
        d = self.output_depth
        with torch.no_grad():
            flat_z = z.reshape(b * segments, -1)
            init = self.initial_state(flat_z).reshape(b, segments, -1).transpose(0, 1)
            w0_t, _, b0 = self.rnn.step_weights()[0]
            if controls is not None and controls.shape[-1] == 0:
                controls = None
            if controls is None:
                static = torch.addmm(b0, flat_z, w0_t[d:]).reshape(b, segments, -1)
            else:
                per_step = z.repeat_interleave(length // segments, dim=1)
                rest = torch.cat([per_step, controls[:, :length].to(z.dtype)], dim=-1)
                static = torch.matmul(rest, w0_t[d:]) + b0
            inputs = fused_lstm.DecodeInputs(
                static.contiguous(), init.contiguous(), first.contiguous(), self._kernel_weights()
            )
            return self._kernel_draw(inputs, length, temperature, generator, options, segments)

    def _kernel_takes(self, temperature: float, options: GrooveDecoding | None) -> bool:
        """Whether the whole-decode op can draw this decoder's samples: one-hot parts without
        options."""
        return self.one_hot_parts() is not None and options is None

    def _kernel_draw(
        self,
        inputs: fused_lstm.DecodeInputs,
        length: int,
        temperature: float,
        generator: torch.Generator | None,
        options: GrooveDecoding | None,
        segments: int,
    ) -> Tensor:
        """The op's samples from the shared ``inputs`` (see :meth:`kernel_sample`)."""
        parts = self.one_hot_parts()
        assert parts is not None  # _kernel_takes said so
        return fused_lstm.categorical_sample(inputs, parts, length, temperature, generator)

    def _kernel_weights(self) -> fused_lstm.DecodeWeights:
        """The whole-decode ops' weights: the stack's (``LstmStack.kernel_weights``), the rows
        of ``W_ih0^T`` that read the previous output and the output projection, transposed
        copies made once and kept until the parameters change."""
        w_rec, bias = self.rnn.kernel_weights()
        w_ih0, out = self.rnn.weight("weight_ih", 0), self.output_projection

        def make() -> tuple[Tensor, Tensor, Tensor]:
            w_x = w_ih0.detach()[:, : self.output_depth].t().contiguous()
            w_out = fused_lstm.panels(out.weight.detach().t())
            return w_x, w_out, out.bias.detach().contiguous()

        w_x, w_out, b_out = fused_lstm.derived(self, [w_ih0, out.weight, out.bias], make)
        return fused_lstm.DecodeWeights(w_x, w_rec, bias, w_out, b_out)

    def _loop(
        self,
        init: Tensor,
        first_input: Tensor,
        z: Tensor,
        controls: Tensor | None,
        steps: int,
        teacher: Tensor | None,
        p: float,
        temperature: float,
        generator: torch.Generator | None,
        options: GrooveDecoding | None = None,
    ) -> tuple[Tensor, Tensor | None]:
        """Step-by-step decoding; free-running when ``teacher`` is None, else scheduled sampling
        with probability ``p`` per example and step (``p = 0`` is plain teacher forcing).
        ``options`` constrain free-running drum samples (only GrooVAE's decoder passes any)."""
        # init: (B, S), first_input: (B, D), z: (B, Z), controls: (B, T, C),
        # fixed_hits: (B, T, N) -> rnn_output (B, T, D), samples (B, T, D) or None
        drop = self.training and self.rnn.dropout > 0.0
        d = self.output_depth
        weights = self.rnn.step_weights()
        w0_t, _, b0 = weights[0]
        wx_t, wrest_t = w0_t[:d], w0_t[d:]
        b = z.shape[0]
        static = self._static_gates(z, controls, steps, wrest_t, b0, drop)
        states = self.rnn.layer_states(init)
        opts = options or GrooveDecoding()
        fixed_hits, spread, taps = opts.fixed_hits, opts.spread, opts.taps
        # The spread's noise for every step at once: one draw instead of one per step.
        draws = None
        if spread is not None and teacher is None:
            draws = spread_draws(spread.to(z.device), temperature, (steps, b), generator)
        outputs: list[Tensor] = []
        samples: list[Tensor] = []
        x = first_input
        for t in range(steps):
            if drop:
                x = F.dropout(x, self.rnn.dropout, training=True)
            static_t = static if static.dim() == 2 else static[:, t]
            h, states = self.rnn.step(torch.addmm(static_t, x, wx_t), states, weights, drop)
            out = self.output_projection(h)
            outputs.append(out)
            if teacher is None:
                step_draws = None if draws is None else (draws[0][t], draws[1][t])
                x = self.sample_step(out, temperature, generator, spread, step_draws)
                x = x.to(first_input.dtype)
                if fixed_hits is not None:
                    x = force_hits(out, x, fixed_hits[:, t], self.hit_conditioned, step_draws)
                if taps is not None:
                    fixed = tap_constraint(out, x, taps[:, t])
                    x = force_hits(out, x, fixed, self.hit_conditioned, step_draws)
                samples.append(x)
            elif t + 1 < steps:
                x = self._scheduled_input(out, teacher[:, t + 1], p, generator)
        rnn_output = torch.stack(outputs, dim=1)
        return rnn_output, (torch.stack(samples, dim=1) if teacher is None else None)

    def _static_gates(
        self,
        z: Tensor,
        controls: Tensor | None,
        steps: int,
        wrest_t: Tensor,
        b0: Tensor,
        drop: bool,
    ) -> Tensor:
        """The z / controls part of the layer-0 gates: it does not depend on the samples, so
        it is done once; ``(B, G)``, or ``(B, T, G)`` with controls or dropout."""
        b = z.shape[0]
        if controls is not None and controls.shape[-1] == 0:
            controls = None
        if controls is None and not drop:
            return torch.addmm(b0, z, wrest_t)
        rest = z[:, None, :].expand(b, steps, z.shape[-1])
        if controls is not None:
            rest = torch.cat([rest, controls[:, :steps].to(rest.dtype)], dim=-1)
        if drop:
            rest = F.dropout(rest, self.rnn.dropout, training=True)
        return torch.matmul(rest, wrest_t) + b0

    def _scheduled_input(
        self, out: Tensor, x: Tensor, p: float, generator: torch.Generator | None
    ) -> Tensor:
        """Scheduled sampling: the next step's input is the model's own sample instead of the
        true step ``x`` with probability ``p`` per example."""
        if not p > 0.0:
            return x
        sampled = self.sample_step(out, 1.0, generator).to(x.dtype)
        if p >= 1.0:
            return sampled
        pick = torch.rand(x.shape[0], 1, generator=generator, device=x.device) < p
        return torch.where(pick, sampled, x)


class GrooveLstmDecoder(LstmDecoder):
    """Autoregressive LSTM decoder over ``[hits | velocities | offsets]`` steps."""

    def reconstruction_loss(
        self, rnn_output: Tensor, targets: Tensor, lengths: Tensor | None
    ) -> dict[str, Tensor]:
        """The decoder's own loss (see :func:`groove_loss`): ``(B,)`` parts and ``r_loss``."""
        return groove_loss(rnn_output, targets, lengths, self.hit_conditioned)

    def activate(self, rnn_output: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Hit probabilities, velocities and offsets, each ``(..., N)``."""
        return activate(rnn_output)

    def _kernel_takes(self, temperature: float, options: GrooveDecoding | None) -> bool:
        """The op draws hits, velocities and offsets, with a spread, but imposes no hits or
        taps."""
        if options is not None and not isinstance(options, GrooveDecoding):
            return False
        opts = options or GrooveDecoding()
        return temperature > 0 and opts.fixed_hits is None and opts.taps is None

    def _kernel_draw(
        self,
        inputs: fused_lstm.DecodeInputs,
        length: int,
        temperature: float,
        generator: torch.Generator | None,
        options: GrooveDecoding | None,
        segments: int,
    ) -> Tensor:
        """The op's grooves, from draws made here as the step loop makes them: per segment
        the spread's (all its steps at once), then one uniform per step and class for the hits
        (``torch.bernoulli(p)`` is ``torch.rand() < p``)."""
        spread = None if options is None else options.spread
        device = inputs.first.device
        b, steps, n = inputs.first.shape[0], length // segments, self.output_depth // 3
        factors, shifts, uniforms = [], [], []
        for _ in range(segments):
            if spread is not None:
                factor, shift = spread_draws(spread.to(device), temperature, (steps, b), generator)
                factors.append(factor.float())
                shifts.append(shift.float())
            u = torch.rand((steps, b, n), generator=generator, device=device, dtype=torch.float32)
            uniforms.append(u)
        drawn = None
        if factors:
            drawn = (torch.cat(factors).contiguous(), torch.cat(shifts).contiguous())
        return fused_lstm.groove_sample(
            inputs, length, temperature, torch.cat(uniforms), drawn, self.hit_conditioned
        )

    def sample_step(
        self,
        rnn_output: Tensor,
        temperature: float,
        generator: torch.Generator | None,
        spread: Tensor | None = None,
        draws: tuple[Tensor, Tensor] | None = None,
    ) -> Tensor:
        """One step's sample from its ``(B, D)`` outputs (see :func:`sample_outputs`)."""
        return sample_outputs(
            rnn_output, temperature, generator, self.hit_conditioned, spread, draws
        )

    def sample(
        self,
        z: Tensor,
        length: int,
        temperature: float = 1.0,
        controls: Tensor | None = None,
        generator: torch.Generator | None = None,
        start_inputs: Tensor | None = None,
        options: object | None = None,
    ) -> Tensor:
        """Free-running samples ``(B, length, D)`` from latent vectors ``z`` ``(B, Z)``, under
        :class:`GrooveDecoding` ``options`` (fixed hits, spread, taps)."""
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        opts = groove_options(options, "GrooVAE's decoder")
        return self.free_run(z, length, temperature, controls, generator, start_inputs, opts)
