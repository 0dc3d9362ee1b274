"""Stacked examples and the batch order: epochs, ranks, resume, re-drawn random inputs."""

from __future__ import annotations

import pytest
import torch

from musicvae.configs import get_config
from musicvae.data.examples import BatchStream, Examples, eval_batches, load_examples


def test_batch_stream_epochs_ranks_and_resume():
    full = BatchStream(10, 4, seed=3)
    batches = [next(full) for _ in range(5)]  # 20 indices = 2 epochs
    flat = torch.cat(batches)
    assert sorted(flat[:10].tolist()) == list(range(10))  # each epoch is a permutation
    assert sorted(flat[10:].tolist()) == list(range(10))
    assert flat[:10].tolist() != flat[10:].tolist()  # reshuffled per epoch
    # Starting at step 3 continues exactly where the uninterrupted stream was.
    resumed = BatchStream(10, 4, seed=3, start_step=3)
    assert torch.equal(next(resumed), batches[3]) and torch.equal(next(resumed), batches[4])
    # Two ranks split each epoch into disjoint halves.
    r0 = BatchStream(10, 5, seed=3, rank=0, world_size=2)
    r1 = BatchStream(10, 5, seed=3, rank=1, world_size=2)
    assert sorted(torch.cat([next(r0), next(r1)]).tolist()) == list(range(10))
    assert [b.tolist() for b in eval_batches(5, 2, None)] == [[0, 1], [2, 3], [4]]
    assert len(eval_batches(5, 2, 2)) == 2


def test_stack_any_dataset_of_tuples():
    items = [(torch.ones(4, 3) * i, torch.zeros(4, 3), torch.zeros(4, 0), 4) for i in range(3)]
    ex = Examples.stack(items)
    assert ex.inputs.shape == (3, 4, 3) and ex.controls.shape == (3, 4, 0) and len(ex) == 3
    inputs, _, _, lengths = ex.batch(torch.tensor([2, 0]))
    assert inputs[:, 0, 0].tolist() == [2.0, 0.0] and lengths.tolist() == [4, 4]


@pytest.mark.slow
def test_random_converter_redraws_inputs_per_batch(small_dataset):
    config = get_config("groovae_2bar_tap_fixed_velocity_note_dropout")
    ex = load_examples(small_dataset, config, "train")
    assert ex.inputs is None and ex.outputs.shape[1:] == (32, 27)
    idx = torch.arange(16)
    torch.manual_seed(0)
    first = ex.batch(idx)
    second = ex.batch(idx)
    assert torch.equal(first[1], second[1])  # targets are fixed
    assert not torch.equal(first[0], second[0])  # note dropout is drawn afresh
    assert first[0].shape == (16, 32, 27)
    # Tapped inputs keep only the open hi-hat slot (class 3) and no velocities.
    assert first[0][..., [0, 1, 2, 4, 5, 6, 7, 8]].abs().sum() == 0
    assert first[0][..., 9:18].abs().sum() == 0
