"""Padding, collation and length-sorted batching of concept sequences.

Every consumer batches videos of similar length together so short videos are not padded to the
longest one: training (``LengthBucketBatchSampler``, shuffled pools), evaluation inside training
(``ShardedEvalSampler``) and the post-training evaluation (``length_sorted_batches`` with a memory
budget). All of them cut the output of :func:`length_sorted_batches`.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from motif.sequences.sequence import ConceptSequence, SequenceBatch


def pad_sequences(sequences: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Stack [T_i, C] tensors into [B, T_max, C] (zeros where padded) and a mask [B, T_max] (True = pad)."""
    lengths = torch.tensor([s.shape[0] for s in sequences])
    t_max = int(lengths.max())
    out = sequences[0].new_zeros((len(sequences), t_max, sequences[0].shape[1]))
    for i, seq in enumerate(sequences):
        out[i, : seq.shape[0]] = seq
    mask = torch.arange(t_max)[None, :] >= lengths[:, None]
    return out, mask


def collate_sequences(items: Sequence[ConceptSequence]) -> SequenceBatch:
    concepts, mask = pad_sequences([it.concepts.float() for it in items])
    labels = torch.tensor([it.label for it in items], dtype=torch.long)
    return SequenceBatch(concepts, mask, labels, [it.video_id for it in items])


def length_sorted_batches(lengths: Sequence[int], *, batch_size: int | None = None, per_window_cost: int = 1,
                          budget: int | None = None, indices: Sequence[int] | None = None) -> list[list[int]]:
    """``indices`` (default: all) sorted by ``lengths`` and cut into consecutive batches.

    A batch closes at ``batch_size`` videos, or before its padded size b·T_max·per_window_cost would
    exceed ``budget`` (a batch always holds at least one video). Both None: one batch.
    """
    order = sorted(range(len(lengths)) if indices is None else indices, key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        t_max = lengths[i]  # sorted ascending: the newcomer is the longest
        full = batch_size is not None and len(current) >= batch_size
        over = budget is not None and (len(current) + 1) * t_max * per_window_cost > budget
        if current and (full or over):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


class SequenceDataset(Dataset):
    def __init__(self, items: Sequence[ConceptSequence]):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> ConceptSequence:
        return self.items[index]


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length videos, so long and short videos are not padded together.

    Each epoch, indices are shuffled (seed + epoch), cut into pools of ``pool_batches`` batches,
    sorted by length inside a pool, batched, and the batch order is shuffled. Under DDP every
    *global* batch is the one a single process would draw and rank r takes items r::world_size of
    it, so the averaged gradient matches single-process training.
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, *, shuffle: bool = True, bucket: bool = True,
                 seed: int = 0, pool_batches: int = 50, rank: int = 0, world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"optim.batch_size must be >= 1, got {batch_size}")
        self.lengths = list(lengths)
        self.batch_size = batch_size
        self.shuffle, self.bucket, self.seed = shuffle, bucket, seed
        self.pool_batches = pool_batches
        self.rank, self.world_size = rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        n = len(self.lengths)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(n))
        if self.bucket:
            pool = self.batch_size * self.pool_batches
            batches = [batch for s in range(0, n, pool)
                       for batch in length_sorted_batches(self.lengths, batch_size=self.batch_size,
                                                          indices=order[s:s + pool])]
        else:
            batches = [order[s:s + self.batch_size] for s in range(0, n, self.batch_size)]
        if self.shuffle and self.bucket:
            perm = torch.randperm(len(batches), generator=torch.Generator().manual_seed(self.seed + self.epoch + 1))
            batches = [batches[i] for i in perm.tolist()]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.global_batches():
            if self.world_size > 1:
                batch = (batch * math.ceil(self.world_size / len(batch)))[: max(len(batch), self.world_size)]
                batch = batch[self.rank :: self.world_size]
            yield batch

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)


class ShardedEvalSampler(Sampler[list[int]]):
    """Evaluation batches, sorted by length, rank r taking every world_size-th video; no padding or repeats."""

    def __init__(self, lengths: Sequence[int], batch_size: int, rank: int = 0, world_size: int = 1):
        shard = sorted(range(len(lengths)), key=lambda j: lengths[j])[rank::world_size]
        self.batches = length_sorted_batches(lengths, batch_size=batch_size, indices=shard)

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
