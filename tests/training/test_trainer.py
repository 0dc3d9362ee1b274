"""The training loop: Magenta's clipping and Adam, batch order, resume, overfitting, events."""

from __future__ import annotations

import math

import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.examples import load_examples
from musicvae.errors import MusicVAEError
from musicvae.models import build_model
from musicvae.plotting.curves import read_scalars
from musicvae.training import checkpoint as ckpt
from musicvae.training.checkpoint import list_checkpoints, load_checkpoint
from musicvae.training.optim import set_seed, train_step
from musicvae.training.trainer import TrainOptions, train
from tests.training.helpers import logged_steps

MAGENTA_TAGS = {
    "loss",
    "losses/r_loss",
    "losses/kl_loss",
    "losses/kl_bits",
    "losses/kl_beta",
    "metrics/hits_loss",
    "metrics/velocities_loss",
    "metrics/offsets_loss",
    "metrics/hit_accuracy",
}


@pytest.mark.slow
def test_debug_overfits_eight_real_windows(small_dataset, one_thread):
    config = get_config("debug", "learning_rate=0.01")
    examples = load_examples(small_dataset, config, "train")
    batch = examples.batch(torch.arange(0, 72, 9))  # 8 windows from both files
    assert batch[0].shape == (8, 64, 27) and batch[0].sum() > 100
    set_seed(0)
    model = build_model(config)
    opt = torch.optim.Adam(model.parameters())
    accuracy = 0.0
    for step in range(400):
        train_step(model, opt, batch, step, config)
        if step % 10 == 9:
            model.eval()
            with torch.no_grad():
                out = model(batch[0], batch[1], batch[3], step=step)
            model.train()
            accuracy = out["hit_accuracy"].item()
            if accuracy >= 0.95:
                break
    assert accuracy >= 0.95, f"hit accuracy {accuracy:.3f} after {step + 1} steps"


def _options(tmp_path, dataset, name, **kw):
    base = dict(
        run_dir=tmp_path / name,
        examples=dataset,
        seed=7,
        eval_every=0,
        checkpoint_every=3,
        log_every=1,
        threads=1,
        progress=False,
    )
    return TrainOptions(**{**base, **kw})


AUGMENTED = "augment_velocity=0.3,augment_drop_class=0.5,augment_shift=0.2"


@pytest.mark.slow
@pytest.mark.parametrize(
    ("augment", "lstm"), [("", "fused"), (AUGMENTED, "fused"), ("", "nn.LSTM")]
)
def test_resume_continues_step_count_and_loss_curve(
    tmp_path, small_dataset, augment, lstm, monkeypatch
):
    # Bit-exact within one implementation: the fused kernel (the default) and nn.LSTM.
    monkeypatch.setenv("MUSICVAE_FUSED_LSTM", "1" if lstm == "fused" else "0")
    # Dropout on, so the restored RNG states matter as well as the batch order.
    config = get_config(
        "debug", ",".join(filter(None, ["dropout_keep_prob=0.5,batch_size=4", augment]))
    )
    full = train(config, _options(tmp_path, small_dataset, "full", num_steps=6))
    assert full.step == 6
    part = train(config, _options(tmp_path, small_dataset, "resumed", num_steps=3))
    assert part.step == 3
    resumed = train(config, _options(tmp_path, small_dataset, "resumed", num_steps=6))
    assert resumed.step == 6 and resumed.checkpoint.name == "model.ckpt-6.pt"

    a = read_scalars(tmp_path / "full" / "train")
    b = read_scalars(tmp_path / "resumed" / "train")
    assert a["loss"][0].tolist() == b["loss"][0].tolist() == [0, 1, 2, 3, 4, 5]
    for tag in ("loss", "losses/r_loss", "losses/kl_bits", "grad_norm"):
        assert a[tag][1].tolist() == b[tag][1].tolist(), tag
    wa = load_checkpoint(tmp_path / "full")[0].state_dict()
    wb = load_checkpoint(tmp_path / "resumed")[0].state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    # Rerunning a finished command does nothing more.
    again = train(config, _options(tmp_path, small_dataset, "resumed", num_steps=6))
    assert again.step == 6
    assert [s for s, _ in list_checkpoints(tmp_path / "resumed" / "train")] == [3, 6]


@pytest.mark.slow
def test_augmentation_changes_what_the_model_trains_on(tmp_path, small_dataset):
    losses = []
    for name, augment in (("plain", ""), ("augmented", "," + AUGMENTED)):
        config = get_config("debug", "batch_size=4" + augment)
        train(config, _options(tmp_path, small_dataset, name, num_steps=2))
        losses.append(read_scalars(tmp_path / name / "train")["losses/r_loss"][1].tolist())
    assert len(losses[0]) == len(losses[1]) == 2
    assert losses[0][0] != losses[1][0]  # the same first batch, augmented


@pytest.mark.slow
def test_event_files_and_eval(tmp_path, small_dataset):
    config = get_config("debug")
    result = train(
        config,
        _options(
            tmp_path,
            small_dataset,
            "run",
            num_steps=4,
            eval_every=2,
            eval_num_batches=2,
            log_every=2,
            checkpoints_to_keep=1,
        ),
    )
    train_tags = read_scalars(tmp_path / "run" / "train")
    eval_tags = read_scalars(tmp_path / "run" / "eval")
    assert MAGENTA_TAGS | {"learning_rate", "grad_norm", "global_norm"} <= set(train_tags)
    assert set(eval_tags) >= MAGENTA_TAGS
    assert train_tags["loss"][0].tolist() == [1, 3]
    assert eval_tags["loss"][0].tolist() == [2, 4]
    assert train_tags["learning_rate"][1][-1] == pytest.approx((1e-3 - 1e-5) * 0.9999**3 + 1e-5)
    assert train_tags["losses/kl_beta"][1].tolist() == pytest.approx([0.2, 0.2])
    assert result.eval["loss"] == pytest.approx(eval_tags["loss"][1][-1], rel=1e-6)
    assert 0.0 <= result.eval["hit_accuracy"] <= 1.0
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "train")] == [4]


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["groovae_4bar", "groovae_4bar_hierdec", "groovae_16bar", "groovae_16bar_hierdec"]
)
def test_real_configs_train_two_steps(tmp_path, small_dataset, name):
    # The real architectures; a small batch keeps two steps quick on a CPU.
    config = get_config(name, "batch_size=8")
    result = train(config, _options(tmp_path, small_dataset, name, num_steps=2, log_every=2))
    assert result.step == 2 and math.isfinite(result.train["loss"])
    assert result.train["loss"] > 0 and result.train["hit_accuracy"] > 0
    model, loaded, step, _ = load_checkpoint(tmp_path / name)
    assert step == 2 and loaded.hparams.enc_rnn_size == (512,) and loaded.decoder == config.decoder


def test_empty_split_is_a_clear_error(tmp_path):
    from musicvae.data.dataset import write_dataset

    empty = write_dataset([], tmp_path / "empty.parquet")
    with pytest.raises(MusicVAEError, match="the 'train' split yields no debug examples"):
        train(get_config("debug"), _options(tmp_path, empty, "run", num_steps=1))


def _donor(tmp_path, dataset) -> dict:
    """The weights of a 3-step debug run in ``tmp_path/donor``."""
    train(get_config("debug"), _options(tmp_path, dataset, "donor", num_steps=3))
    return load_checkpoint(tmp_path / "donor")[0].state_dict()


@pytest.mark.slow
def test_init_from_copies_weights_and_starts_at_step_zero(tmp_path, small_dataset):
    donor, hc = _donor(tmp_path, small_dataset), get_config("debug", "hit_conditioned=true")
    warm = _options(tmp_path, small_dataset, "warm", num_steps=0, init_from=str(tmp_path / "donor"))
    result = train(hc, warm)
    assert result.step == 0
    model, loaded, step, state = load_checkpoint(tmp_path / "warm")
    assert step == 0 and loaded.hparams.hit_conditioned
    assert all(torch.equal(model.state_dict()[k], donor[k]) for k in donor)
    wrong = get_config("debug", "z_size=4")
    with pytest.raises(MusicVAEError, match="--init-from .* do not fit config 'debug'"):
        train(
            wrong,
            _options(
                tmp_path, small_dataset, "bad", num_steps=1, init_from=str(tmp_path / "donor")
            ),
        )


@pytest.mark.slow
def test_init_parts_copies_one_part_and_starts_the_rest_fresh(tmp_path, small_dataset):
    donor, hc = _donor(tmp_path, small_dataset), get_config("debug", "hit_conditioned=true")
    train(hc, _options(tmp_path, small_dataset, "fresh", num_steps=0))
    fresh = load_checkpoint(tmp_path / "fresh")[0].state_dict()
    warm = _options(
        tmp_path, small_dataset, "warm", num_steps=0, init_from=str(tmp_path / "donor"),
        init_parts="encoder",
    )  # fmt: skip
    train(hc, warm)
    model = load_checkpoint(tmp_path / "warm")[0].state_dict()
    encoder = [k for k in model if k.startswith("encoder.")]
    decoder = [k for k in model if k.startswith("decoder.")]
    assert encoder and decoder and len(encoder) + len(decoder) == len(model)
    assert all(torch.equal(model[k], donor[k]) for k in encoder)
    assert all(torch.equal(model[k], fresh[k]) for k in decoder)  # the seed's own start
    assert not all(torch.equal(fresh[k], donor[k]) for k in decoder)  # the donor trained
    wrong = get_config("debug", "z_size=4")
    bad = _options(
        tmp_path, small_dataset, "bad", num_steps=1, init_from=str(tmp_path / "donor"),
        init_parts="decoder",
    )  # fmt: skip
    with pytest.raises(MusicVAEError, match="--init-from .*: its decoder's weights do not fit"):
        train(wrong, bad)
    with pytest.raises(MusicVAEError, match="--init-parts conductor: choose from all, encoder"):
        _options(tmp_path, small_dataset, "x", init_parts="conductor")
    with pytest.raises(MusicVAEError, match="--init-parts encoder needs --init-from MODEL"):
        _options(tmp_path, small_dataset, "x", init_parts="encoder")


@pytest.mark.slow
def test_the_best_checkpoint_by_validation_loss_is_kept(tmp_path, small_dataset):
    from musicvae.generation import load

    config = get_config("debug", "learning_rate=0.01")
    options = _options(tmp_path, small_dataset, "run", num_steps=6, eval_every=2,
                       eval_num_batches=1, checkpoints_to_keep=1)  # fmt: skip
    train(config, options)
    best = tmp_path / "run" / "train" / "model.ckpt-best.pt"
    assert best.is_file()
    scalars = read_scalars(tmp_path / "run" / "eval")
    steps, losses = scalars["loss"]
    model, _, step, state = load_checkpoint(best)
    assert step == int(steps[losses.argmin()])
    assert state["eval_loss"] == pytest.approx(float(losses.min()), rel=1e-5)
    assert load(tmp_path / "run", which="best").step == step
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "train")] == [6]


class _Killed(BaseException):
    """An attempt that dies at a checkpoint save, as SIGKILL or a power cut would end it."""


def _dies_at_save(monkeypatch, n: int) -> None:
    """The ``n``-th checkpoint save of the next run kills it (the ones before succeed)."""
    real, calls = ckpt.save_checkpoint, []

    def save(*args, **kwargs):
        calls.append(1)
        if len(calls) >= n:
            raise _Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", save)


@pytest.mark.slow
def test_attempts_that_died_leave_no_zigzag_in_the_curves(tmp_path, small_dataset, monkeypatch):
    config = get_config("debug", "batch_size=4")
    clean = train(config, _options(tmp_path, small_dataset, "clean", num_steps=9, eval_every=3,
                                   eval_num_batches=1))  # fmt: skip
    assert clean.step == 9
    expected = read_scalars(tmp_path / "clean" / "train")["loss"]
    # Dies before its first checkpoint, with another seed (other values at the same steps).
    with monkeypatch.context() as m:
        _dies_at_save(m, 1)
        with pytest.raises(_Killed):
            train(config, _options(tmp_path, small_dataset, "run", num_steps=9, seed=8,
                                   eval_every=3, eval_num_batches=1))  # fmt: skip
    assert logged_steps(tmp_path / "run" / "train") == [0, 1, 2]
    # Then dies after the checkpoint at step 3, having logged steps 3-5 past it.
    with monkeypatch.context() as m:
        _dies_at_save(m, 2)
        with pytest.raises(_Killed):
            train(config, _options(tmp_path, small_dataset, "run", num_steps=9, eval_every=3,
                                   eval_num_batches=1))  # fmt: skip
    assert [s for s, _ in list_checkpoints(tmp_path / "run" / "train")] == [3]
    train(config, _options(tmp_path, small_dataset, "run", num_steps=9, eval_every=3,
                           eval_num_batches=1))  # fmt: skip
    steps, values = read_scalars(tmp_path / "run" / "train")["loss"]
    assert steps.tolist() == expected[0].tolist() == list(range(9))
    assert values.tolist() == expected[1].tolist()  # the seeded curve, no earlier attempt's
    assert logged_steps(tmp_path / "run" / "train") == list(range(9))
    assert logged_steps(tmp_path / "run" / "eval") == [3, 6, 9]


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_last_checkpoint_stays(
    tmp_path, small_dataset, monkeypatch, capsys
):
    import errno
    import os

    from musicvae.cli.main import main

    real_fdopen = os.fdopen

    class FullDisk:
        """The checkpoint file of step 6: the disk fills after its first 4 KB."""

        def __init__(self, f) -> None:
            self.f, self.room = f, 4096

        def write(self, data) -> int:
            self.room -= len(data)
            if self.room < 0:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc) -> None:
            self.f.close()

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        return FullDisk(f) if ".model.ckpt-6.pt." in os.readlink(f"/proc/self/fd/{fd}") else f

    monkeypatch.setattr(os, "fdopen", fdopen)
    run = tmp_path / "run"
    code = main(["train", "--config", "debug", "--run-dir", str(run), "--examples",
                 str(small_dataset), "--num-steps", "9", "--checkpoint-every", "3",
                 "--eval-every", "0", "--threads", "1", "--seed", "1", "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("error:")]
    assert err.rstrip().endswith(line)  # the last thing said
    assert line == (
        f"error: {run / 'train' / 'model.ckpt-6.pt'}: cannot write checkpoint (no space left "
        "on the device); last good checkpoint: model.ckpt-3.pt (step 3) is kept"
    )
    train_dir = run / "train"
    assert sorted(p.name for p in train_dir.iterdir() if "ckpt" in p.name) == ["model.ckpt-3.pt"]
    assert load_checkpoint(train_dir / "model.ckpt-3.pt")[2] == 3
