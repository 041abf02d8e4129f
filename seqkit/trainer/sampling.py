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

An epoch too large to hold its permutation in memory (a pre-tokenized corpus) is shuffled by a
keyed permutation evaluated batch by batch, with the same pure-function property.

A stream (an ``IterableDataset`` read from files) has no index to permute: its position is where
the reader stands (a file, a byte offset, the ids read past it). :class:`ResumableStream` is
the same contract for it: every batch comes with the stream's position after it, the Trainer
keeps the last one and a checkpoint stores it beside ``(epoch, batch)``, and the stream restarts
from it without replaying what came before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import IterableDataset, Sampler, get_worker_info
from torch.utils.data._utils.collate import default_collate

MATERIALIZED_LIMIT = 2**24
"""Largest epoch whose order is a materialized ``torch.randperm`` (8 bytes an example: 128 MB
here). A larger one — a pre-tokenized corpus of a billion windows would need 8 GB — is shuffled
by a :class:`KeyedPermutation`, computed batch by batch in constant memory."""


class KeyedPermutation:
    """A pseudo-random permutation of ``range(n)`` evaluated index by index, in constant memory.

    A balanced Feistel network (Luby & Rackoff 1988) permutes the smallest domain of an even
    number of bits that holds ``n``: split an index into halves (L, R) and, four times, replace
    them with (R, L xor F(R, key)). Each round is invertible whatever F is, so the whole is a
    bijection of the domain. Indices that land outside ``range(n)`` are encrypted again until
    they fall inside ("cycle walking", Black & Rogaway 2002, "Ciphers with Arbitrary Finite
    Domains"), which keeps it a bijection of ``range(n)``; the domain is under 4n, so a few
    walks at most. The round keys come from ``generator``: the same seed, the same order.
    """

    ROUNDS = 4

    def __init__(self, n: int, generator: torch.Generator):
        bits = max(2, (n - 1).bit_length())
        self.n = n
        self.half = (bits + 1) // 2
        self.mask = (1 << self.half) - 1
        self.keys = torch.randint(0, 2**31 - 1, (self.ROUNDS,), generator=generator).tolist()

    def _mix(self, right: torch.Tensor, key: int) -> torch.Tensor:
        # A 32-bit integer hash (multiply, xor-shift); products stay below 2**59 in int64.
        x = (right ^ key) & 0xFFFFFFFF
        x = (x * 0x45D9F3B) & 0xFFFFFFFF
        x = x ^ (x >> 16)
        x = (x * 0x45D9F3B) & 0xFFFFFFFF
        return (x ^ (x >> 16)) & self.mask

    def _encrypt(self, index: torch.Tensor) -> torch.Tensor:
        left, right = index >> self.half, index & self.mask
        for key in self.keys:
            left, right = right, left ^ self._mix(right, key)
        return (left << self.half) | right

    def __call__(self, index: torch.Tensor) -> torch.Tensor:
        """The permuted positions of ``index`` (int64, each in ``range(n)``)."""
        out = self._encrypt(index)
        outside = out >= self.n
        while bool(outside.any()):
            out[outside] = self._encrypt(out[outside])
            outside = out >= self.n
        return out


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
        global_batch = self.batch_size * self.num_processes
        offset = self.process_index * self.batch_size
        if self.shuffle and self.lengths is None and self.dataset_size > MATERIALIZED_LIMIT:
            permutation = KeyedPermutation(
                self.dataset_size, torch.Generator().manual_seed(self.seed + self.epoch)
            )
            for k in range(self.start_batch, self.batches_per_epoch):
                start = k * global_batch + offset
                yield permutation(torch.arange(start, start + self.batch_size)).tolist()
            return
        order = self._order()
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


class ResumableStream(IterableDataset):
    """A training stream whose exact position a checkpoint can store, sharded like
    :class:`ShardedBatchSampler`.

    A subclass yields the epoch's examples in order, each with the position of the stream just
    after it (:meth:`examples`), and starts from such a position. This class cuts them into
    batches the way the map-style sampler does: global batch ``k`` of an epoch is examples
    ``k*B*P … (k+1)*B*P - 1`` for batch size B and P processes, process r takes the r-th slice
    of B, and the incomplete global batch at the end of the epoch is dropped, so every process
    steps the same number of times and no example is trained twice in an epoch. Each process
    reads the whole stream and keeps its slice, as ``datasets.distributed.split_dataset_by_node``
    does for a stream whose shards do not divide among the processes: the shards stay exact
    whatever the number of files.

    Under a ``DataLoader`` with W workers, worker w yields global batches w, w + W, … of the
    process's share; the loader takes them from its workers in turn, so the order of batches
    (and the position each carries) is the same for any number of workers. Each worker reads
    the whole stream too: workers overlap reading with training, they do not divide it.

    Iterating yields ``(batch, position)``; the position is what :meth:`start` takes to continue
    right after that batch. The Trainer calls :meth:`start` before each pass.
    """

    def __init__(self) -> None:
        self.epoch = 0
        self.position: Any = None
        self.batch_size = 1
        self.num_processes = 1
        self.process_index = 0

    def examples(self, epoch: int, position: Any) -> Iterator[tuple[Any, Any]]:
        """``(example, position after it)`` for epoch ``epoch`` from ``position`` (None: from
        the epoch's start). A position is made of ints, strings, lists and dicts (it is saved
        as JSON in every checkpoint)."""
        raise NotImplementedError

    def check_position(self, position: Any) -> None:
        """Refuse (UserError) a saved position that does not belong to this stream (other
        files, another split); None is always valid."""

    def collate(self, examples: list[Any]) -> Any:
        """One batch of examples (stacked tensors by default)."""
        return default_collate(examples)

    def start(
        self,
        epoch: int,
        position: Any,
        batch_size: int,
        num_processes: int = 1,
        process_index: int = 0,
    ) -> None:
        """Make the next pass read epoch ``epoch`` from ``position`` for process
        ``process_index`` of ``num_processes``, in batches of ``batch_size``."""
        if not 0 <= process_index < num_processes:
            raise ValueError(f"process {process_index} of {num_processes}")
        self.epoch, self.position = epoch, position
        self.batch_size, self.num_processes = batch_size, num_processes
        self.process_index = process_index

    def __iter__(self) -> Iterator[tuple[Any, Any]]:
        worker = get_worker_info()
        workers, worker_id = (1, 0) if worker is None else (worker.num_workers, worker.id)
        global_batch = self.batch_size * self.num_processes
        first = self.process_index * self.batch_size
        mine: list[Any] = []
        index, batch = 0, 0  # example within the global batch; global batch since the start
        for example, after in self.examples(self.epoch, self.position):
            if batch % workers == worker_id and first <= index < first + self.batch_size:
                mine.append(example)
            index += 1
            if index == global_batch:
                if batch % workers == worker_id:
                    yield self.collate(mine), after
                mine, index, batch = [], 0, batch + 1
