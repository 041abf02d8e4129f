"""The attention mask of a right-padded batch, made where it costs nothing: on the host."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def padding_mask(lengths: Sequence[int]) -> dict[str, torch.Tensor]:
    """``{"attention_mask": (B, T)}`` with 1 on the first ``lengths[i]`` positions of row i, or
    nothing when every row is as long as the longest.

    Why nothing: a model can then attend without a mask, and only the collator, on the host,
    can tell for free. Every row real is what a missing mask means to every seqkit model, and
    attention kernels are fastest without one; a model that instead read an all-ones mask to
    drop it (``mask.all()``) would make the host wait for the device at every forward.
    """
    longest = max(lengths)
    if all(length == longest for length in lengths):
        return {}
    mask = torch.zeros((len(lengths), longest), dtype=torch.long)
    for i, length in enumerate(lengths):
        mask[i, :length] = 1
    return {"attention_mask": mask}
