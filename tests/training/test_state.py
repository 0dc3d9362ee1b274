"""What the training loop carries: the logging window, the checkpoint schedule and resume."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from musicvae.configs import get_config
from musicvae.errors import MusicVAEError
from musicvae.models import build_model
from musicvae.training import checkpoint as ckpt
from musicvae.training.distributed import DistInfo
from musicvae.training.optim import make_optimizer
from musicvae.training.options import TrainOptions
from musicvae.training.state import (
    INSTANT,
    TrainResult,
    TrainState,
    Window,
    restore,
    widen_inputs,
)


def _out(loss: float, kl_beta: float) -> dict[str, torch.Tensor]:
    return {"loss": torch.tensor(loss), "kl_beta": torch.tensor(kl_beta)}


def test_the_window_averages_losses_and_keeps_the_last_schedule_value():
    assert "kl_beta" in INSTANT
    window = Window()
    window.add(_out(1.0, 0.1), torch.tensor(2.0))
    window.add(_out(3.0, 0.3), torch.tensor(4.0))
    values = window.means(DistInfo(), lr=0.001, batch_size=8)
    assert window.keys == ["loss", "kl_beta"]
    assert values["loss"] == pytest.approx(2.0)
    assert values["kl_beta"] == pytest.approx(0.3)  # the last step's, not the mean
    assert values["grad_norm"] == values["global_norm"] == pytest.approx(3.0)
    assert values["learning_rate"] == 0.001
    assert values["examples_per_sec"] == pytest.approx(8 * values["steps_per_sec"])
    window.reset()
    assert window.sum is None and window.steps == 0
    window.add(_out(5.0, 0.5), torch.tensor(1.0))
    assert window.means(DistInfo(), lr=0.0, batch_size=1)["loss"] == pytest.approx(5.0)


def _state(tmp_path, **options) -> TrainState:
    config = get_config("debug")
    model = build_model(config)
    unused = SimpleNamespace()  # data and event files: not touched by the schedule
    return TrainState(
        config=config,
        options=TrainOptions(run_dir=tmp_path, examples=tmp_path / "x.parquet", **options),
        info=DistInfo(),
        model=model,
        ddp_model=model,
        optimizer=make_optimizer(model, config),
        seed=0,
        examples=unused,
        eval_examples=None,
        loader=unused,
        summaries=unused,
        eval_summaries=None,
        result=TrainResult(step=4, checkpoint=None),
        start_step=4,
    )


def test_the_state_starts_at_its_step_and_saves_on_schedule(tmp_path):
    state = _state(tmp_path, checkpoint_every=3, num_steps=9)
    assert state.step == state.saved_step == 4
    assert state.train_dir == tmp_path / "train"
    assert state.tuner is None and state.note is None and state.threads_used is None
    due = []
    for step in range(4, 10):
        state.step = step
        due.append(state.checkpoint_due())
    # Every third step, except the last: that one is saved after the loop.
    assert due == [False, False, True, False, False, False]
    state.step = 6
    state.save()
    assert state.saved_step == 6
    assert state.result.checkpoint == tmp_path / "train" / "model.ckpt-6.pt"
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path / "train")] == [6]


def test_restore_puts_back_the_weights_optimizer_and_step(tmp_path):
    config = get_config("debug")
    torch.manual_seed(0)
    saved_model = build_model(config)
    optimizer = make_optimizer(saved_model, config)
    path = ckpt.save_checkpoint(
        tmp_path, model=saved_model, config=config, step=12, optimizer=optimizer, seed=3
    )
    saved = ckpt.read_checkpoint(path)
    torch.manual_seed(1)
    model = build_model(config)
    options = TrainOptions(run_dir=tmp_path, examples=tmp_path / "x.parquet")
    before = ckpt.rng_state()  # restore sets every generator: give them back after
    try:
        step = restore(
            model, make_optimizer(model, config), config, options, DistInfo(), 3, path, saved
        )
    finally:
        ckpt.set_rng_state(before)
    assert step == 12
    for name, value in saved_model.state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    fresh = build_model(config)
    fresh_optimizer = make_optimizer(fresh, config)
    assert restore(fresh, fresh_optimizer, config, options, DistInfo(), 3, None, None) == 0
    other = get_config("debug", "z_size=3")
    small = build_model(other)
    with pytest.raises(MusicVAEError, match="cannot resume, the checkpoint does not fit"):
        restore(small, make_optimizer(small, other), other, options, DistInfo(), 3, path, saved)


def test_a_model_gaining_controls_starts_as_the_model_it_is_warmed_from():
    tiny = "z_size=4,enc_rnn_size=[8],dec_rnn_size=[8,8]"
    torch.manual_seed(0)
    donor = build_model(get_config("groovae_2bar_tap_fixed_velocity_hitcond", tiny)).eval()
    model = build_model(get_config("groovae_2bar_tap_controls", tiny)).eval()
    weights, widened = widen_inputs(model.state_dict(), donor.state_dict(), 3)
    assert widened == [
        "encoder.rnn.lstm.weight_ih_l0",
        "encoder.rnn.lstm.weight_ih_l0_reverse",
        "decoder.rnn.lstm.weight_ih_l0",
    ]
    # Layer 0 reads 27 inputs + 3 controls in the encoder, 27 + z + 3 in the decoder.
    assert weights["encoder.rnn.lstm.weight_ih_l0"].shape == (32, 30)
    assert weights["decoder.rnn.lstm.weight_ih_l0"].shape == (32, 34)
    assert not weights["decoder.rnn.lstm.weight_ih_l0"][:, 31:].any()
    model.load_state_dict(weights)
    x = torch.rand(3, 32, 27)
    lengths = torch.full((3,), 32)
    controls = torch.rand(3, 32, 3)
    with torch.no_grad():
        mu_donor, _ = donor.encode(x, lengths)
        mu, _ = model.encode(x, lengths, controls)
        torch.testing.assert_close(mu, mu_donor)
        a = donor.decode(mu, 32, 0.5, None, torch.Generator().manual_seed(1))
        b = model.decode(mu, 32, 0.5, controls, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b)
    # Only the control columns are added: a larger z is left for load_state_dict to refuse.
    other = build_model(get_config("groovae_2bar_tap_controls", "z_size=6," + tiny[9:]))
    assert widen_inputs(other.state_dict(), donor.state_dict(), 3)[1] == [
        "encoder.rnn.lstm.weight_ih_l0",
        "encoder.rnn.lstm.weight_ih_l0_reverse",
    ]
    assert widen_inputs(model.state_dict(), donor.state_dict(), 0)[1] == []
