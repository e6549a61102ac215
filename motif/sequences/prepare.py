"""From a run config to in-memory concept sequences: records, backbone, concept bank, embedding
cache, concept activations and their training-set standardisation."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import torch
from omegaconf import DictConfig
from torch import Tensor

from motif.backbone import load_backbone
from motif.cache import DamagedCacheFileError, EmbeddingCache, extract_embeddings, iter_video_embeddings
from motif.concepts import (
    ConceptBankError,
    ConceptStandardizer,
    NonFiniteActivationsError,
    concept_activations,
    embed_concept_bank,
)
from motif.config import window_settings_of
from motif.data import (
    DATASET_FORMATS,
    AnnotationError,
    SkipReport,
    VideoRecord,
    carve_validation,
    load_configured_dataset,
)
from motif.errors import ConfigError
from motif.sequences.sequence import ConceptSequence
from motif.video import VideoError, VideoWindowSettings
from motif.world.order_task import make_order_task

log = logging.getLogger(__name__)

CHECK_SKIPPED = "Check the dataset annotations and skipped.json in the run folder (the videos left out and why)."


@dataclass
class PreparedData:
    """Everything a split's training and baselines need.

    text_embeddings [C, D] (concept prompts) and class_text_embeddings [K, D] (zero-shot prompts) are
    None for tasks without a text encoder. video / backbone describe how windows were embedded, so a
    checkpoint can embed a new video the same way (video is None for a task without videos).
    """

    train: list[ConceptSequence]
    val: list[ConceptSequence]
    test: list[ConceptSequence]
    class_names: list[str]
    concept_names: list[str]
    standardizer: ConceptStandardizer
    text_embeddings: Tensor | None = None
    class_text_embeddings: Tensor | None = None
    video: VideoWindowSettings | None = None
    backbone: dict = field(default_factory=dict)
    skipped: list[dict] = field(default_factory=list)


def _finish(train: list[VideoRecord], val: list[VideoRecord], test: list[VideoRecord], activations: dict[str, Tensor],
            spans: dict[str, Tensor], embeddings: dict[str, Tensor], **fields) -> PreparedData:
    """Fit the standardiser on the TRAINING windows only and standardise every split with it.

    activations / spans / embeddings map video_id to [T, C] / [T, 2] / [T, D]; videos without
    activations (skipped) are left out.
    """
    if not activations:
        raise AnnotationError(None, None, "No video has usable embeddings.", hint=CHECK_SKIPPED)
    num_concepts = next(iter(activations.values())).shape[1]
    fitted = [r.video_id for r in train if r.video_id in activations]
    standardizer = ConceptStandardizer(num_concepts).fit((activations[vid] for vid in fitted), names=fitted)
    bad = [r.video_id for r in val + test
           if r.video_id in activations and not bool(activations[r.video_id].isfinite().all())]
    if bad:
        raise NonFiniteActivationsError(f"Concept activations of {len(bad)} evaluation video(s) hold NaN or inf: "
                                        f"{', '.join(bad[:10])}; re-embed or remove these videos.")
    splits = []
    for name, records in (("train", train), ("val", val), ("test", test)):
        items = [ConceptSequence(r.video_id, standardizer(activations[r.video_id]), r.label, spans[r.video_id],
                                 embeddings.get(r.video_id)) for r in records if r.video_id in activations]
        if not items:
            raise AnnotationError(None, None, f"The {name} split has no usable videos.", hint=CHECK_SKIPPED)
        splits.append(items)
    return PreparedData(*splits, standardizer=standardizer, **fields)


def prepare_synthetic_order(cfg: DictConfig, split: int = 1) -> PreparedData:
    """The spec's synthetic order task (split k draws the task with seed + k - 1); window features play the
    role of embeddings and the concepts are fixed vectors, so there is no backbone or video."""
    s = cfg.data.synthetic
    task = make_order_task(variant=s.variant, num_videos=s.num_videos, feature_dim=s.feature_dim,
                           num_concepts=s.num_concepts, min_windows=s.min_windows, max_windows=s.max_windows,
                           test_fraction=s.test_fraction, seed=s.seed + split - 1)
    records = [VideoRecord(video_id=f"{task.variant}_{i:05d}", path="", label=int(task.labels[i]), split=name)
               for i, name in enumerate(task.splits)]
    train, val = carve_validation([r for r in records if r.split == "train"], cfg.data.val_fraction,
                                  cfg.data.val_seed)
    test = [r for r in records if r.split == "test"]
    features = {r.video_id: f for r, f in zip(records, task.features)}
    activations = dict(zip(features, task.activations()))
    spans = {vid: torch.stack([torch.arange(len(f)), torch.arange(1, len(f) + 1)], 1).float()
             for vid, f in features.items()}
    return _finish(train, val, test, activations, spans, features, class_names=task.class_names,
                   concept_names=task.concept_names,
                   backbone={"model": "synthetic_order", "pretrained": None})


def cached_window_embeddings(records: list[VideoRecord], backbone, cache: EmbeddingCache, cfg: DictConfig,
                             skips: SkipReport) -> Iterator[tuple[str, Tensor, Tensor]]:
    """(video_id, embeddings [T, D], spans [T, 2]) from the embedding cache, extracting the missing videos first.

    Every file is validated on read; a damaged one is reported, moved aside (``damaged/`` in the cache
    folder) and its video embedded again. A video whose fresh file is damaged too is skipped.
    """
    def extract(todo: list[VideoRecord]) -> None:
        extract_embeddings(todo, backbone, window_settings_of(cfg), cache, skip_report=skips,
                           decode_threads=int(cfg.cache.num_workers) or None)

    extract(records)
    damaged: list[VideoRecord] = []
    for attempt in range(2):
        retry, damaged = damaged, []
        for record in retry if attempt else records:
            if not cache.has(record.video_id):
                continue
            try:
                entry = cache.load(record.video_id)
            except DamagedCacheFileError as error:
                moved_to = cache.move_aside(record.video_id)
                if attempt:
                    skips.add(str(record.path), f"its embeddings are damaged again after re-embedding: {error.reason}",
                              video_id=record.video_id, error=type(error).__name__)
                else:
                    log.warning("%s; moved to %s, the video is embedded again", error, moved_to)
                    damaged.append(record)
                continue
            yield record.video_id, entry["embeddings"], entry["spans"]
        if not damaged:
            return
        extract(damaged)


def iter_window_embeddings(records: list[VideoRecord], backbone, settings: VideoWindowSettings, skips: SkipReport
                           ) -> Iterator[tuple[str, Tensor, Tensor]]:
    """(video_id, embeddings [T, D], spans [T, 2]) decoded and embedded on the fly (``cache.mode=stream``:
    nothing is written to disk). Bad videos go to ``skips``."""
    def skip(record: VideoRecord, error: VideoError) -> None:
        skips.add(str(record.path), error.reason, video_id=record.video_id, error=type(error).__name__)

    for video in iter_video_embeddings(records, backbone, settings, on_skip=skip):
        yield video.video_id, video.embeddings, video.spans


def prepare_video_dataset(cfg: DictConfig, split: int, out_dir: Path) -> PreparedData:
    """Annotations -> window embeddings (from the cache, extracting what is missing, or streamed with
    ``cache.mode=stream``; bad videos skipped and listed in ``out_dir/skipped.json``) -> concept
    activations clamp(cos, 0) standardised on the training windows."""
    splits = load_configured_dataset(cfg.data, split)
    if cfg.concepts.bank is None:
        raise ConfigError("Config key 'concepts.bank' must name a concept bank file.", where="concepts.bank",
                          hint="See data/concepts/ for examples.")
    backbone = load_backbone(cfg.backbone.model, cfg.backbone.pretrained, device=cfg.backbone.device,
                             precision=cfg.backbone.precision, batch_size=cfg.backbone.batch_size)
    bank, text = embed_concept_bank(cfg.concepts.bank, backbone, cfg.concepts.similarity_threshold)
    if len(bank) < len(splits.class_names):
        raise ConceptBankError(
            f"Concept bank '{cfg.concepts.bank}' keeps {len(bank)} concept(s) after dropping near-duplicates "
            f"(concepts.similarity_threshold={cfg.concepts.similarity_threshold}), fewer than the "
            f"{len(splits.class_names)} classes; add distinct concepts or raise concepts.similarity_threshold.")
    skips = SkipReport()
    settings = window_settings_of(cfg)
    records = splits.all_records()
    prompts = [cfg.baselines.zero_shot_prompt.format(name) for name in splits.class_names]
    if cfg.cache.mode == "stream":
        videos = iter_window_embeddings(records, backbone, settings, skips)
        class_text = backbone.encode_text(prompts)
    else:
        cache = EmbeddingCache.for_backbone(cfg.cache.dir, backbone, settings)
        videos = cached_window_embeddings(records, backbone, cache, cfg, skips)
        class_text = cache.text_embeddings(prompts, backbone)
    activations, spans, embeddings = {}, {}, {}
    for video_id, window_embeddings, window_spans in videos:
        embeddings[video_id], spans[video_id] = window_embeddings, window_spans.float()
        activations[video_id] = concept_activations(window_embeddings, text)
    if len(skips):
        skips.warn_once_summary(skips.save(out_dir / "skipped.json"))
    return _finish(splits.train, splits.val, splits.test, activations, spans, embeddings,
                   class_names=splits.class_names, concept_names=bank.names, text_embeddings=text,
                   class_text_embeddings=class_text,
                   video=settings, backbone=dict(backbone.identity),
                   skipped=skips.to_dict()["videos"])


def prepare_sequences(cfg: DictConfig, split: int, out_dir: Path) -> PreparedData:
    """The standardised concept sequences of split ``split`` of a run config (train / val / test with the
    standardizer and what produced them), from the videos of ``cfg.data.format`` or generated (the synthetic
    order task); ``out_dir`` receives skipped.json when videos are skipped."""
    if DATASET_FORMATS[cfg.data.format].has_videos:
        return prepare_video_dataset(cfg, split, out_dir)
    return prepare_synthetic_order(cfg, split)
