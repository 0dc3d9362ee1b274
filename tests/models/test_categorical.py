"""The categorical LSTM decoder and the ``cat-mel_2bar_small`` config built on it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.converters import build_converter
from musicvae.data.converters.melody import MelodyConverter
from musicvae.data.midi import read_midi
from musicvae.models import build_model
from musicvae.models.categorical import (
    CategoricalLstmDecoder,
    categorical_loss,
    sample_categorical,
)
from musicvae.models.decoder import GrooveDecoding
from tests.helpers_melody import TINY_MELODY, folk_dataset, train_tiny_melody


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    yield


def onehot(classes, depth):
    return torch.nn.functional.one_hot(torch.as_tensor(classes), depth).float()


def test_loss_by_hand():
    # Step 0: uniform logits over 3 classes, -log(1/3). Step 1: logits (ln 2, 0, 0) give
    # probabilities (1/2, 1/4, 1/4): -log(1/2) for target 0, -log(1/4) for target 2.
    logits = torch.tensor([[0.0, 0.0, 0.0], [math.log(2.0), 0.0, 0.0]]).expand(2, 2, 3)
    targets = onehot([[0, 0], [1, 2]], 3)
    out = categorical_loss(logits, targets, torch.tensor([2, 2]))
    assert out["r_loss"].tolist() == pytest.approx([math.log(3 * 2), math.log(3 * 4)])
    # Argmax of the uniform step is class 0: right for row 0 only; step 1 is class 0.
    assert out["accuracy"].item() == pytest.approx(2 / 4)
    short = categorical_loss(logits, targets, torch.tensor([1, 2]))
    assert short["r_loss"].tolist() == pytest.approx([math.log(3), math.log(12)])
    assert short["accuracy"].item() == pytest.approx(1 / 3)


def test_sampling_is_one_hot_greedy_at_zero_and_seeded():
    logits = torch.tensor([[0.0, 3.0, 1.0], [5.0, 0.0, 0.0]])
    assert sample_categorical(logits, 0.0).tolist() == [[0, 1, 0], [1, 0, 0]]
    draws = [sample_categorical(logits, 1.0, torch.Generator().manual_seed(s)) for s in range(20)]
    assert all(((d == 0) | (d == 1)).all() and (d.sum(-1) == 1).all() for d in draws)
    assert len({tuple(d.argmax(-1).tolist()) for d in draws}) > 1  # temperature 1 varies
    cold = sample_categorical(logits, 1e-3, torch.Generator().manual_seed(0))
    assert cold.argmax(-1).tolist() == [1, 0]
    again = sample_categorical(logits, 1.0, torch.Generator().manual_seed(3))
    assert torch.equal(again, draws[3])


def test_decoder_shapes_sampling_and_activation():
    torch.manual_seed(0)
    dec = CategoricalLstmDecoder(90, 8, (16, 16)).eval()
    z = torch.randn(3, 8)
    targets = onehot(torch.randint(0, 90, (3, 32)), 90)  # (B, T, D)
    out = dec(targets, torch.full((3,), 32), z)
    assert out.rnn_output.shape == (3, 32, 90)
    probs = dec.activate(out.rnn_output)
    assert torch.allclose(probs.sum(-1), torch.ones(3, 32))
    samples = dec.sample(z, 32, 1.0, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3, 32, 90) and (samples.sum(-1) == 1).all()
    assert set(samples.unique().tolist()) == {0.0, 1.0}
    greedy = dec.sample(z, 32, 0.0)
    assert torch.equal(greedy, dec.sample(z, 32, 0.0))
    # Free decoding feeds each sample back: teacher-forcing the greedy samples reproduces them.
    forced = dec(greedy, None, z).rnn_output
    assert torch.equal(forced.argmax(-1), greedy.argmax(-1))
    # Scheduled sampling takes the step-by-step path with the same weights.
    mixed = dec(targets, None, z, sampling_probability=0.5, generator=torch.Generator())
    assert mixed.rnn_output.shape == (3, 32, 90)
    with pytest.raises(ValueError, match="categorical decoder takes no GrooveDecoding"):
        dec.sample(z, 32, 1.0, options=GrooveDecoding(torch.zeros(3, 32, 9)))
    with pytest.raises(ValueError, match="non-negative"):
        dec.sample(z, 32, -1.0)


def test_config_is_magentas():
    config = get_config("cat-mel_2bar_small")
    hp = config.hparams
    assert (config.converter, config.encoder, config.decoder) == (
        "melody",
        "bidirectional_lstm",
        "categorical_lstm",
    )
    assert (hp.batch_size, hp.max_seq_len, hp.z_size) == (512, 32, 256)
    assert (hp.enc_rnn_size, hp.dec_rnn_size) == ((512,), (256, 256))
    assert (hp.free_bits, hp.max_beta, hp.beta_rate) == (0.0, 0.2, 0.99999)
    assert (hp.sampling_schedule, hp.sampling_rate, hp.dropout_keep_prob) == (
        "inverse_sigmoid",
        1000.0,
        1.0,
    )
    assert (hp.learning_rate, hp.decay_rate, hp.min_learning_rate, hp.grad_clip) == (
        1e-3,
        0.9999,
        1e-5,
        1.0,
    )
    conv = build_converter(config, "eval")
    assert isinstance(conv, MelodyConverter)
    assert (conv.window_steps, conv.data.max_tensors_per_notesequence) == (32, 5)
    assert conv.valid_programs == tuple(range(32)) and conv.max_steps == 1600
    model = build_model(config)
    assert isinstance(model.decoder, CategoricalLstmDecoder)
    assert model.decoder.output_projection.out_features == 90
    assert model.encoder.input_depth == 90 and model.encoder.rnn.hidden_size == 512


def test_config_converter_matches_magenta(magenta_dir):
    d = magenta_dir / "melody"
    ref = np.load(d / "cat-mel_2bar_small.npz")
    conv = build_converter(get_config("cat-mel_2bar_small"), "eval")
    out = conv.to_tensors(read_midi(d / "melodies" / "07.mid")).outputs
    assert np.array_equal(np.stack(out).astype(bool), ref["07_outputs"])


def test_model_loss_on_melodies():
    torch.manual_seed(0)
    config = get_config(TINY_MELODY)
    model = build_model(config)
    x = onehot(torch.randint(0, 90, (4, 32)), 90)
    out = model(x, x, torch.full((4,), 32), step=0)
    assert set(out) >= {"loss", "r_loss", "kl_loss", "kl_bits", "accuracy", "per_example"}
    assert "hits_loss" not in out and out["per_example"]["r_loss"].shape == (4,)
    # An untrained model is close to uniform: about log(90) nats per step.
    assert out["r_loss"].item() == pytest.approx(32 * math.log(90), rel=0.05)
    samples = model.eval().sample(2, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (2, 32, 90) and (samples.sum(-1) == 1).all()


@pytest.mark.slow
def test_tiny_melody_config_trains_on_the_folk_tunes(magenta_dir, tmp_path):
    dataset = folk_dataset(magenta_dir / "melody", tmp_path / "folk.parquet")
    result = train_tiny_melody(tmp_path / "run", dataset, steps=2)
    assert result.step == 2 and result.checkpoint.is_file()
    assert math.isfinite(result.train["loss"]) and result.train["r_loss"] > 0
