"""Concept sequences for training: items, padding collate, length-bucketed batches, DataModule."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, Sequence

import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from motif.cache.sources import ConceptSequence


@dataclass
class SequenceBatch:
    """A padded batch: concepts [B, T, C], padding_mask [B, T] (True = padding), labels [B]."""

    concepts: Tensor
    padding_mask: Tensor
    labels: Tensor
    video_ids: list[str]

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(self.concepts.to(device), self.padding_mask.to(device), self.labels.to(device), self.video_ids)


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
            order = [i for s in range(0, n, pool) for i in sorted(order[s:s + pool], key=lambda j: self.lengths[j])]
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
        order = sorted(range(len(lengths)), key=lambda j: lengths[j])[rank::world_size]
        self.batches = [order[s:s + batch_size] for s in range(0, len(order), batch_size)]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class ConceptSequenceDataModule(pl.LightningDataModule):
    """Train / val / test concept sequences held in memory (from the embedding cache or generated)."""

    def __init__(self, train: Sequence[ConceptSequence], val: Sequence[ConceptSequence], test: Sequence[ConceptSequence], *,
                 batch_size: int = 32, bucket_by_length: bool = True, seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.train_items, self.val_items, self.test_items = list(train), list(val), list(test)
        self.batch_size, self.bucket_by_length, self.seed, self.num_workers = batch_size, bucket_by_length, seed, num_workers
        self._train_sampler: LengthBucketBatchSampler | None = None

    def _loader(self, items: list[ConceptSequence], sampler: Sampler) -> DataLoader:
        return DataLoader(SequenceDataset(items), batch_sampler=sampler, collate_fn=collate_sequences,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        rank, world = _dist_rank_world()
        self._train_sampler = LengthBucketBatchSampler(
            [it.num_windows for it in self.train_items], self.batch_size, shuffle=True,
            bucket=self.bucket_by_length, seed=self.seed, rank=rank, world_size=world)
        return self._loader(self.train_items, self._train_sampler)

    def _eval_loader(self, items: list[ConceptSequence]) -> DataLoader:
        rank, world = _dist_rank_world()
        return self._loader(items, ShardedEvalSampler([it.num_windows for it in items], self.batch_size, rank, world))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_items)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_items)
