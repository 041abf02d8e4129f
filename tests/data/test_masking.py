"""Dynamic MLM masking: proportions on a large batch, specials and padding never touched."""

import torch

from seqkit.data.masking import MaskedLMCollator

PAD, CLS, SEP, MASK = 0, 1, 2, 3
VOCAB = 100


def _collator(seed=0):
    return MaskedLMCollator(
        mask_token_id=MASK,
        pad_token_id=PAD,
        vocab_size=VOCAB,
        special_token_ids=[PAD, CLS, SEP, MASK],
        generator=torch.Generator().manual_seed(seed),
    )


def _rows(n=400, length=250):
    generator = torch.Generator().manual_seed(123)
    rows = []
    for i in range(n):
        body = torch.randint(4, VOCAB, (length - 2 - i % 7,), generator=generator)
        rows.append(torch.cat([torch.tensor([CLS]), body, torch.tensor([SEP])]))
    return rows


def test_proportions_on_a_large_batch():
    rows = _rows()
    batch = _collator()(rows)
    original = _collator().pad(rows)["input_ids"]
    chosen = batch["labels"] != -100
    real = (batch["attention_mask"] == 1) & (original != CLS) & (original != SEP)
    n_real, n_chosen = int(real.sum()), int(chosen.sum())  # ~99k real tokens
    assert abs(n_chosen / n_real - 0.15) < 0.005
    masked = chosen & (batch["input_ids"] == MASK)
    kept = chosen & (batch["input_ids"] == original)
    replaced = chosen & ~masked & ~kept
    assert abs(int(masked.sum()) / n_chosen - 0.8) < 0.01
    # A random draw may pick the original token again (1 in 96): it then counts as kept.
    assert abs(int(kept.sum()) / n_chosen - 0.1 - 0.1 / 96) < 0.01
    assert abs(int(replaced.sum()) / n_chosen - 0.1 + 0.1 / 96) < 0.01
    # Labels hold the original token where chosen, -100 elsewhere; positions not chosen are
    # untouched.
    assert torch.equal(batch["labels"][chosen], original[chosen])
    assert torch.equal(batch["input_ids"][~chosen], original[~chosen])
    # Random replacements are ordinary tokens, never a special one.
    assert int(batch["input_ids"][replaced].min()) >= 4
    # The flat positions of the targets travel with the batch, in row-major order.
    assert torch.equal(batch["masked_positions"], chosen.reshape(-1).nonzero().squeeze(1))


def test_specials_and_padding_are_never_masked():
    rows = _rows(n=50)
    batch = _collator(seed=5)(rows)
    original = _collator().pad(rows)["input_ids"]
    protected = (original == CLS) | (original == SEP) | (batch["attention_mask"] == 0)
    assert torch.all(batch["labels"][protected] == -100)
    assert torch.equal(batch["input_ids"][protected], original[protected])
    assert torch.all(batch["input_ids"][batch["attention_mask"] == 0] == PAD)


def test_masking_is_dynamic_and_reproducible():
    rows = _rows(n=20)
    a, b = _collator(seed=1), _collator(seed=1)
    first, again = a(rows), b(rows)
    assert torch.equal(first["labels"], again["labels"])  # same seed, same masks
    second = a(rows)  # the next batch from the same collator draws fresh positions
    assert not torch.equal(first["labels"], second["labels"])
    # Without a generator the global RNG decides, so torch.manual_seed reproduces it.
    plain = MaskedLMCollator(mask_token_id=MASK, pad_token_id=PAD, vocab_size=VOCAB)
    torch.manual_seed(7)
    x = plain(rows)["labels"]
    torch.manual_seed(7)
    assert torch.equal(plain(rows)["labels"], x)


def test_a_batch_without_padding_has_no_attention_mask():
    # Every row real needs no mask; the model's kernel then runs without one, and nothing has
    # to read a mask on the device to find that out.
    from seqkit.data.classification import PadCollator
    from seqkit.data.padding import padding_mask

    assert padding_mask([3, 3]) == {}
    assert padding_mask([3, 1])["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    ids = torch.tensor
    even = PadCollator(pad_id=0)([{"input_ids": ids([5, 6]), "labels": 1}] * 2)
    assert set(even) == {"input_ids", "labels"}
    uneven = PadCollator(pad_id=0)([{"input_ids": ids([5, 6]), "labels": 1},
                                    {"input_ids": ids([7]), "labels": 0}])  # fmt: skip
    assert uneven["attention_mask"].tolist() == [[1, 1], [1, 0]]
