"""Resumable, process-sharded batch order.

Resume must continue mid-epoch at the exact batch where the run stopped without replaying the
data to skip it (the way `skip_first_batches`-style resumes do), and every process must see its own
slice of each global batch. Both follow from making the order a pure function of
``(seed, epoch, batch index)``: each epoch's permutation comes from a generator seeded with
``seed + epoch``, so restoring two integers restores the position.

Length bucketing (optional) keeps that property: it only rearranges each epoch's permutation, with
the same generator, so batches hold examples of similar length and dynamic padding pads little.
This is how translation toolkits batch (Sutskever et al. 2014, "Sequence to Sequence Learning with
Neural Networks", section 3.4, batch sentences of similar length for a 2× speed-up; fairseq and
tensor2tensor bucket likewise).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class ShardedBatchSampler(Sampler[list[int]]):
    """Shuffled batches of indices for one process, starting at a given (epoch, batch).

    Global batch k of an epoch is ``perm[k*B*P : (k+1)*B*P]`` for batch size B and P processes;
    process r takes the r-th slice of B. Incomplete global batches at the end of an epoch are
    dropped so every process steps the same number of times.

    With ``lengths`` (one per example), the epoch's permutation is cut into pools of
    ``pool_batches`` global batches, each pool is sorted by length (stably, so equal lengths
    keep their random order) and cut into global batches, and the global batches are shuffled:
    the batches differ from epoch to epoch while the lengths inside one are close.
    """

    def __init__(
        self,
        dataset_size: int,
        batch_size: int,
        *,
        seed: int,
        num_processes: int = 1,
        process_index: int = 0,
        shuffle: bool = True,
        lengths: Sequence[int] | None = None,
        pool_batches: int = 50,
    ):
        if dataset_size < batch_size * num_processes:
            raise ValueError(
                f"dataset has {dataset_size} examples, fewer than one global batch "
                f"({batch_size} x {num_processes} processes)"
            )
        if lengths is not None and len(lengths) != dataset_size:
            raise ValueError(f"{len(lengths)} lengths for a dataset of {dataset_size} examples")
        if pool_batches < 1:
            raise ValueError(f"pool_batches must be at least 1, got {pool_batches}")
        self.lengths = None if lengths is None else torch.as_tensor(lengths, dtype=torch.long)
        self.pool_batches = pool_batches
        self.dataset_size = dataset_size
        self.batch_size = batch_size
        self.seed = seed
        self.num_processes = num_processes
        self.process_index = process_index
        self.shuffle = shuffle
        self.epoch = 0
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.dataset_size // (self.batch_size * self.num_processes)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.start_batch

    def set_position(self, epoch: int, batch: int) -> None:
        """Start the next iteration at batch ``batch`` of epoch ``epoch``."""
        self.epoch, self.start_batch = epoch, batch

    def _order(self) -> torch.Tensor:
        """The epoch's examples, global batch after global batch (complete batches only)."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.shuffle:
            order = torch.randperm(self.dataset_size, generator=generator)
        else:
            order = torch.arange(self.dataset_size)
        global_batch = self.batch_size * self.num_processes
        if self.lengths is None:
            return order[: self.batches_per_epoch * global_batch]
        pool_size = global_batch * self.pool_batches
        batches = []
        for start in range(0, self.dataset_size, pool_size):
            pool = order[start : start + pool_size]
            pool = pool[torch.sort(self.lengths[pool], stable=True).indices]
            usable = len(pool) // global_batch * global_batch
            batches.extend(pool[:usable].view(-1, global_batch))
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return torch.cat(batches)

    def __iter__(self) -> Iterator[list[int]]:
        order = self._order()
        global_batch = self.batch_size * self.num_processes
        offset = self.process_index * self.batch_size
        for k in range(self.start_batch, self.batches_per_epoch):
            start = k * global_batch + offset
            yield order[start : start + self.batch_size].tolist()


class ShardedEvalSampler(Sampler[list[int]]):
    """Every example exactly once across processes, in order, no padding.

    Process r takes examples r, r+P, r+2P, ...; metrics are sums and counts reduced across
    processes, so uneven shards stay exact.
    """

    def __init__(self, dataset_size: int, batch_size: int, num_processes: int, process_index: int):
        self.indices = list(range(process_index, dataset_size, num_processes))
        self.batch_size = batch_size

    def __len__(self) -> int:
        return -(-len(self.indices) // self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for start in range(0, len(self.indices), self.batch_size):
            yield self.indices[start : start + self.batch_size]
