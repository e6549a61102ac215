"""Concept sequences X [T, C] for the bottleneck, from the embedding cache or streamed from videos.

Both paths compute ``standardizer(concept_activations(window_embeddings, text_embeddings))`` on
window embeddings made by the same extraction code, so they give the same numbers (tested).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from torch import Tensor
from torch.utils.data import IterableDataset

from motif.cache.extract import iter_video_embeddings
from motif.cache.store import EmbeddingCache
from motif.concepts import ConceptStandardizer, concept_activations


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


def concept_inputs(window_embeddings: Tensor, text_embeddings: Tensor, standardizer: ConceptStandardizer) -> Tensor:
    """X = (clamp(cos(e_t, text_c), 0) - mean) / std: [T, D] x [C, D] -> [T, C]."""
    return standardizer(concept_activations(window_embeddings, text_embeddings))


def fit_standardizer_from_cache(
    records: Sequence[Any], cache: EmbeddingCache, text_embeddings: Tensor, min_std: float = 1e-6
) -> ConceptStandardizer:
    """Standardisation statistics over all windows of ``records`` (the TRAINING videos only)."""
    standardizer = ConceptStandardizer(int(text_embeddings.shape[0]), min_std)
    return standardizer.fit(concept_activations(cache.load(r.video_id)["embeddings"], text_embeddings) for r in records)


def fit_standardizer_streaming(
    records: Sequence[Any],
    backbone: Any,
    text_embeddings: Tensor,
    video_cfg: Any,
    *,
    resize_at_decode: bool = True,
    on_skip: Callable[[Any, Exception], None] | None = None,
    min_std: float = 1e-6,
) -> ConceptStandardizer:
    """Standardisation statistics over all windows of ``records`` (the TRAINING videos), computed
    by decoding and encoding them once (the streaming counterpart of ``fit_standardizer_from_cache``)."""
    standardizer = ConceptStandardizer(int(text_embeddings.shape[0]), min_std)
    videos = iter_video_embeddings(records, backbone, video_cfg, resize_at_decode=resize_at_decode, on_skip=on_skip)
    return standardizer.fit(concept_activations(video.embeddings, text_embeddings) for video in videos)


def load_cached_sequences(
    records: Sequence[Any],
    cache: EmbeddingCache,
    text_embeddings: Tensor,
    standardizer: ConceptStandardizer,
    *,
    keep_embeddings: bool = False,
) -> list[ConceptSequence]:
    """Concept sequences of ``records`` from the cache (videos the cache lacks raise CacheMissError)."""
    out = []
    for record in records:
        entry = cache.load(record.video_id)
        out.append(
            ConceptSequence(
                record.video_id,
                concept_inputs(entry["embeddings"], text_embeddings, standardizer),
                int(record.label),
                entry["spans"].float(),
                entry["embeddings"] if keep_embeddings else None,
            )
        )
    return out


class StreamingConceptSource(IterableDataset):
    """Concept sequences computed from decoded frames on the fly, for runs without a cache.

    Iterating decodes each video, encodes its windows with the backbone and yields a
    ConceptSequence. Use it with ``DataLoader(source, batch_size=None)`` or iterate it directly;
    the backbone runs in the iterating process (``num_workers=0``). ``shuffle`` reorders the videos
    each epoch (seeded by ``seed`` and ``set_epoch``); ``rank`` / ``world_size`` give each process
    its share of the videos. Videos the video layer rejects go to ``on_skip(record, error)``.
    """

    def __init__(
        self,
        records: Sequence[Any],
        backbone: Any,
        text_embeddings: Tensor,
        standardizer: ConceptStandardizer,
        video_cfg: Any,
        *,
        shuffle: bool = False,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        resize_at_decode: bool = True,
        keep_embeddings: bool = False,
        on_skip: Callable[[Any, Exception], None] | None = None,
    ) -> None:
        super().__init__()
        self.records = list(records)
        self.backbone, self.text_embeddings, self.standardizer = backbone, text_embeddings, standardizer
        self.video_cfg = video_cfg
        self.shuffle, self.seed, self.epoch = shuffle, seed, 0
        self.rank, self.world_size = rank, world_size
        self.resize_at_decode, self.keep_embeddings = resize_at_decode, keep_embeddings
        self.on_skip = on_skip

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _records(self) -> list[Any]:
        records = list(self.records)
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(records)
        return records[self.rank :: self.world_size]

    def __len__(self) -> int:
        return len(self._records())

    def __iter__(self) -> Iterator[ConceptSequence]:
        for video in iter_video_embeddings(
            self._records(), self.backbone, self.video_cfg, resize_at_decode=self.resize_at_decode, on_skip=self.on_skip
        ):
            yield ConceptSequence(
                video.video_id,
                concept_inputs(video.embeddings, self.text_embeddings, self.standardizer),
                video.label,
                video.spans.float(),
                video.embeddings if self.keep_embeddings else None,
            )
