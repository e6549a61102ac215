"""The Lightning DataModule over in-memory concept sequences (train / val / test)."""

from __future__ import annotations

from typing import Sequence

import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Sampler

from motif.sequences.batching import LengthBucketBatchSampler, SequenceDataset, ShardedEvalSampler, collate_sequences
from motif.sequences.sequence import ConceptSequence


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

    def _loader(self, items: list[ConceptSequence], sampler: Sampler) -> DataLoader:
        return DataLoader(SequenceDataset(items), batch_sampler=sampler, collate_fn=collate_sequences,
                          num_workers=self.num_workers, persistent_workers=self.num_workers > 0)

    def train_dataloader(self) -> DataLoader:
        rank, world = _dist_rank_world()
        sampler = LengthBucketBatchSampler([it.num_windows for it in self.train_items], self.batch_size, shuffle=True,
                                           bucket=self.bucket_by_length, seed=self.seed, rank=rank, world_size=world)
        return self._loader(self.train_items, sampler)

    def _eval_loader(self, items: list[ConceptSequence]) -> DataLoader:
        rank, world = _dist_rank_world()
        return self._loader(items, ShardedEvalSampler([it.num_windows for it in items], self.batch_size, rank, world))

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_items)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_items)
