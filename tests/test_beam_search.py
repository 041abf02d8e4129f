"""Greedy and beam search for encoder–decoder models (seqkit.generation.beam_search)."""

from __future__ import annotations

import math

import pytest
import torch

from seqkit.generation import beam_search, greedy_search

BOS, EOS, A, B = 0, 1, 2, 3


def markov_step(tokens: torch.Tensor, state: torch.Tensor):
    """A hand-made model: the next token depends only on the current one.

    After bos: A 0.6, B 0.4. After A: eos 0.5, A 0.25, B 0.25. After B: eos 0.9, A 0.05, B 0.05.
    Greedy takes A then eos (0.6 × 0.5 = 0.30); the best sequence is B eos (0.4 × 0.9 = 0.36).
    """
    table = torch.tensor(
        [
            [0.0, 0.0, 0.6, 0.4],  # after bos
            [0.0, 1.0, 0.0, 0.0],  # after eos (never used: finished rows are frozen)
            [0.0, 0.5, 0.25, 0.25],  # after A
            [0.0, 0.9, 0.05, 0.05],  # after B
        ]
    )
    return table[tokens].log(), state


def test_beam_search_finds_the_sequence_greedy_misses():
    state = torch.zeros(1, 1)
    greedy = greedy_search(markov_step, state, batch_size=1, bos_id=BOS, eos_id=EOS, max_length=5)
    beam = beam_search(
        markov_step,
        state,
        batch_size=1,
        bos_id=BOS,
        eos_id=EOS,
        beam_size=2,
        max_length=5,
        length_penalty=0.0,
    )
    assert greedy.sequences.tolist() == [[A, EOS]]
    assert greedy.scores.item() == pytest.approx(math.log(0.30), abs=1e-6)
    assert beam.sequences.tolist() == [[B, EOS]]
    assert beam.scores.item() == pytest.approx(math.log(0.36), abs=1e-6)
    assert beam.lengths.tolist() == [2]


class TinyDecoder(torch.nn.Module):
    """A random recurrent decoder with dot attention over fixed 'encoder outputs'."""

    def __init__(self, vocab: int = 7, hidden: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.embed = torch.nn.Embedding(vocab, hidden)
        self.cell = torch.nn.GRUCell(hidden, hidden)
        self.out = torch.nn.Linear(2 * hidden, vocab)

    def step(self, tokens, state):
        hidden, memory = state  # (N, H), (N, S, H)
        hidden = self.cell(self.embed(tokens), hidden)
        weights = torch.einsum("nh,nsh->ns", hidden, memory).softmax(-1)  # (N, S)
        context = torch.einsum("ns,nsh->nh", weights, memory)
        logits = self.out(torch.cat([hidden, context], -1)) * 3
        return logits.log_softmax(-1), (hidden, memory), weights


def _initial(batch: int, seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 8, generator=generator), torch.randn(batch, 5, 8, generator=generator)


def test_beam_of_one_is_greedy_with_attention():
    model = TinyDecoder()
    state = _initial(4)
    kwargs = dict(batch_size=4, bos_id=BOS, eos_id=EOS, max_length=12)
    greedy = greedy_search(model.step, state, **kwargs)
    beam = beam_search(model.step, state, beam_size=1, length_penalty=0.0, **kwargs)
    assert torch.equal(beam.sequences, greedy.sequences)
    assert torch.equal(beam.lengths, greedy.lengths)
    torch.testing.assert_close(beam.scores, greedy.scores)
    assert beam.attentions.shape == (4, greedy.sequences.size(1), 5)
    torch.testing.assert_close(beam.attentions, greedy.attentions)
    # every generated token's attention is a distribution over the 5 source positions
    for row, length in enumerate(greedy.lengths.tolist()):
        sums = greedy.attentions[row, :length].sum(-1)
        torch.testing.assert_close(sums, torch.ones(length))


def test_batched_beam_search_equals_one_source_at_a_time():
    model = TinyDecoder(seed=3)
    hidden, memory = _initial(3, seed=5)
    kwargs = dict(bos_id=BOS, eos_id=EOS, beam_size=4, max_length=10, length_penalty=1.0)
    together = beam_search(model.step, (hidden, memory), batch_size=3, **kwargs)
    for row in range(3):
        alone = beam_search(
            model.step, (hidden[row : row + 1], memory[row : row + 1]), batch_size=1, **kwargs
        )
        length = int(alone.lengths[0])
        assert int(together.lengths[row]) == length
        assert together.sequences[row, :length].tolist() == alone.sequences[0, :length].tolist()
        torch.testing.assert_close(together.scores[row], alone.scores[0])
        torch.testing.assert_close(together.attentions[row, :length], alone.attentions[0, :length])


def test_bad_arguments():
    with pytest.raises(ValueError, match="beam_size"):
        beam_search(
            markov_step,
            torch.zeros(1, 1),
            batch_size=1,
            bos_id=0,
            eos_id=1,
            beam_size=0,
            max_length=3,
        )
    with pytest.raises(ValueError, match="max_length"):
        greedy_search(
            markov_step, torch.zeros(1, 1), batch_size=1, bos_id=0, eos_id=1, max_length=0
        )
