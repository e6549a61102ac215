"""One video as the bottleneck sees it (``ConceptSequence``) and a padded batch of them (``SequenceBatch``)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class ConceptSequence:
    """One video as the bottleneck sees it: concepts X [T, C] (standardised), spans [T, 2] seconds,
    the raw window embeddings [T, D] (for embedding baselines)."""

    video_id: str
    concepts: Tensor
    label: int
    spans: Tensor
    embeddings: Tensor | None = None

    @property
    def num_windows(self) -> int:
        return int(self.concepts.shape[0])


@dataclass
class SequenceBatch:
    """A padded batch: concepts [B, T, C], padding_mask [B, T] (True = padding), labels [B]."""

    concepts: Tensor
    padding_mask: Tensor
    labels: Tensor
    video_ids: list[str]

    def to(self, device: torch.device | str) -> "SequenceBatch":
        return SequenceBatch(self.concepts.to(device), self.padding_mask.to(device), self.labels.to(device), self.video_ids)
