"""From a run config to in-memory concept sequences: records, backbone, concept bank, embedding
cache, concept activations and their training-set standardisation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from omegaconf import DictConfig
from torch import Tensor

from motif.concepts import ConceptStandardizer, concept_activations
from motif.data.records import VideoRecord, carve_validation
from motif.training.data import SequenceItem

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """Everything a split's training and baselines need.

    text_embeddings [C, D] (concept prompts) and class_text_embeddings [K, D] (zero-shot prompts) are
    None for tasks without a text encoder. video / backbone describe how windows were embedded.
    """

    train: list[SequenceItem]
    val: list[SequenceItem]
    test: list[SequenceItem]
    class_names: list[str]
    concept_names: list[str]
    standardizer: ConceptStandardizer
    text_embeddings: Tensor | None = None
    class_text_embeddings: Tensor | None = None
    video: dict = field(default_factory=dict)
    backbone: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)


def _standardised_items(records: list[VideoRecord], activations: dict[str, Tensor], spans: dict[str, Tensor],
                        embeddings: dict[str, Tensor], standardizer: ConceptStandardizer) -> list[SequenceItem]:
    return [SequenceItem(r.video_id, standardizer(activations[r.video_id]), r.label, spans[r.video_id],
                         embeddings.get(r.video_id)) for r in records if r.video_id in activations]


def _finish(train: list[VideoRecord], val: list[VideoRecord], test: list[VideoRecord], activations: dict[str, Tensor],
            spans: dict[str, Tensor], embeddings: dict[str, Tensor], **fields) -> PreparedData:
    """Fit the standardiser on the TRAINING windows only and standardise every split with it."""
    num_concepts = next(iter(activations.values())).shape[1]
    standardizer = ConceptStandardizer(num_concepts).fit(activations[r.video_id] for r in train
                                                         if r.video_id in activations)
    items = [_standardised_items(rs, activations, spans, embeddings, standardizer) for rs in (train, val, test)]
    for name, split in zip(("train", "val", "test"), items):
        if not split:
            raise ValueError(f"The {name} split has no usable videos; check the dataset annotations and skipped.json.")
    return PreparedData(*items, standardizer=standardizer, **fields)


def prepare_synthetic_order(cfg: DictConfig) -> PreparedData:
    """The spec's synthetic order task: window features are the 'embeddings', concepts are fixed vectors."""
    from motif.data.synthetic_order import make_order_task

    s = cfg.data.synthetic
    task = make_order_task(variant=s.variant, num_videos=s.num_videos, feature_dim=s.feature_dim,
                           num_concepts=s.num_concepts, min_windows=s.min_windows, max_windows=s.max_windows,
                           test_fraction=s.test_fraction, seed=s.seed)
    records = [VideoRecord(video_id=f"{task.variant}_{i:05d}", path="", label=int(task.labels[i]), split=split)
               for i, split in enumerate(task.splits)]
    train, val = carve_validation([r for r in records if r.split == "train"], cfg.data.val_fraction,
                                  cfg.data.val_seed)
    test = [r for r in records if r.split == "test"]
    ids = [r.video_id for r in records]
    features = dict(zip(ids, task.features))
    activations = {vid: concept_activations(f, task.concept_vectors) for vid, f in features.items()}
    spans = {vid: torch.stack([torch.arange(len(f)), torch.arange(1, len(f) + 1)], 1).float()
             for vid, f in features.items()}
    return _finish(train, val, test, activations, spans, features, class_names=task.class_names,
                   concept_names=task.concept_names, video={"unit": "window"},
                   backbone={"model": "synthetic_order", "pretrained": None})


def prepare_data(cfg: DictConfig, split: int, out_dir: Path) -> PreparedData:
    """Dispatch on ``cfg.data.format``."""
    if cfg.data.format == "synthetic_order":
        return prepare_synthetic_order(cfg)
    from motif.training.video_data import prepare_video_dataset

    return prepare_video_dataset(cfg, split, out_dir)
