"""Dynamic masking for masked language modelling (Devlin et al. 2019, BERT, section 3.1).

Each time a batch is drawn, 15% of its real tokens are chosen as prediction targets; of those,
80% are replaced by the mask token, 10% by a random token and 10% left unchanged, so the model
cannot learn that only ``[MASK]`` positions matter (the mask never appears at fine-tuning time).
The loss is computed on the chosen positions only: ``labels`` holds the original token there and
-100 everywhere else. Special tokens ([CLS], [SEP], …) and padding are never chosen.

Masking in the collator, not once when the data set is built, is RoBERTa's *dynamic* masking
(Liu et al. 2019): every epoch sees a fresh choice of positions.

Randomness comes from ``generator`` when given (tests), and otherwise from torch's global RNG,
which the Trainer seeds and saves in every checkpoint, so a resumed run masks exactly as an
uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch


class MaskedLMCollator:
    """Pads a batch of token id sequences and masks it for MLM.

    Args:
        mask_token_id: id of the mask token.
        pad_token_id: id that fills short rows (never masked).
        vocab_size: random replacements are drawn from ids ``[0, vocab_size)`` that are not
            special.
        special_token_ids: ids never masked nor drawn as a random replacement.
        mlm_probability: fraction of real tokens chosen as targets (0.15).
        mask_fraction, random_fraction: of the chosen tokens, the share replaced by the mask
            token and by a random token; the rest (10%) keep their original token.
        generator: a seeded ``torch.Generator`` for reproducible masks; None uses the global RNG.

    Each row is a 1-D id tensor or list, or a dict with ``input_ids`` (and optionally
    ``token_type_ids``). Returns ``input_ids``, ``attention_mask``, ``labels`` (and
    ``token_type_ids``), each (B, T).
    """

    def __init__(
        self,
        *,
        mask_token_id: int,
        pad_token_id: int,
        vocab_size: int,
        special_token_ids: Iterable[int] = (),
        mlm_probability: float = 0.15,
        mask_fraction: float = 0.8,
        random_fraction: float = 0.1,
        generator: torch.Generator | None = None,
    ) -> None:
        if not 0 < mlm_probability < 1:
            raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
        if mask_fraction < 0 or random_fraction < 0 or mask_fraction + random_fraction > 1:
            raise ValueError("mask_fraction and random_fraction must be >= 0 and sum to <= 1")
        self.mask_token_id = mask_token_id
        self.pad_token_id = pad_token_id
        self.mlm_probability = mlm_probability
        self.mask_fraction = mask_fraction
        self.random_fraction = random_fraction
        self.generator = generator
        special = set(special_token_ids) | {mask_token_id, pad_token_id}
        self.special_ids = torch.tensor(sorted(special), dtype=torch.long)
        # Random replacements: ordinary tokens only (a random [CLS] would teach nothing).
        self.replacement_ids = torch.tensor(
            [i for i in range(vocab_size) if i not in special], dtype=torch.long
        )
        if len(self.replacement_ids) == 0:
            raise ValueError("the vocabulary has no ordinary tokens to draw replacements from")

    def _rand(self, shape: torch.Size) -> torch.Tensor:
        return torch.rand(shape, generator=self.generator)

    def pad(self, rows: Sequence[Any]) -> dict[str, torch.Tensor]:
        """Right-pad rows to the longest: ``input_ids``, ``attention_mask`` (and
        ``token_type_ids``), each (B, T)."""
        sequences = [row["input_ids"] if isinstance(row, dict) else row for row in rows]
        sequences = [torch.as_tensor(s, dtype=torch.long) for s in sequences]
        longest = max(len(s) for s in sequences)
        ids = torch.full((len(rows), longest), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), longest), dtype=torch.long)
        for i, s in enumerate(sequences):
            ids[i, : len(s)] = s
            attention[i, : len(s)] = 1
        batch = {"input_ids": ids, "attention_mask": attention}
        if isinstance(rows[0], dict) and "token_type_ids" in rows[0]:
            segments = torch.zeros_like(ids)
            for i, row in enumerate(rows):
                types = torch.as_tensor(row["token_type_ids"], dtype=torch.long)
                segments[i, : len(types)] = types
            batch["token_type_ids"] = segments
        return batch

    def mask(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(masked input_ids, labels)`` for a (B, T) batch; the input is not modified."""
        maskable = ~torch.isin(input_ids, self.special_ids)  # (B, T)
        if attention_mask is not None:
            maskable &= attention_mask.bool()
        chosen = (self._rand(input_ids.shape) < self.mlm_probability) & maskable
        labels = input_ids.masked_fill(~chosen, -100)  # targets only where chosen

        # One uniform draw splits the chosen positions 80 / 10 / 10.
        split = self._rand(input_ids.shape)
        to_mask = chosen & (split < self.mask_fraction)
        to_random = (
            chosen
            & (split >= self.mask_fraction)
            & (split < self.mask_fraction + self.random_fraction)
        )
        masked = input_ids.masked_fill(to_mask, self.mask_token_id)
        picks = torch.randint(
            len(self.replacement_ids), input_ids.shape, generator=self.generator
        )  # (B, T) indices into the ordinary tokens
        masked = torch.where(to_random, self.replacement_ids[picks], masked)
        return masked, labels

    def __call__(self, rows: Sequence[Any]) -> dict[str, torch.Tensor]:
        batch = self.pad(rows)
        batch["input_ids"], batch["labels"] = self.mask(batch["input_ids"], batch["attention_mask"])
        return batch

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, **kwargs: Any) -> MaskedLMCollator:
        """A collator using a seqkit tokenizer's mask, pad and special tokens."""
        return cls(
            mask_token_id=tokenizer.require_special_token_id("mask", "masked language modelling"),
            pad_token_id=tokenizer.require_special_token_id("pad", "masked language modelling"),
            vocab_size=tokenizer.vocab_size,
            special_token_ids=tokenizer.all_special_ids,
            **kwargs,
        )
