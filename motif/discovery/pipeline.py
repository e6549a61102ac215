"""Concept discovery from a run config: propose phrases with a VLM, select them on the training
windows, write ``bank.yaml`` (``class: [phrases]``, usable as ``concepts.bank``) and
``provenance.json`` (for every candidate: where it came from, its scores, why it was kept or dropped).

``discovery.mode``: ``propose`` (the VLM stage alone: the merged proposals become the bank),
``select`` (the grounded stage alone: candidates are ``discovery.vocabulary`` and the proposals an
earlier run left in the output folder), ``both``.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import yaml
from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from motif.backbone import load_backbone
from motif.cache import EmbeddingCache, extract_embeddings, iter_video_embeddings
from motif.concepts import ConceptBank, concept_activations
from motif.config import window_settings_of
from motif.data import SkipReport, VideoRecord, load_configured_dataset
from motif.discovery.errors import DiscoveryError
from motif.discovery.phrases import Candidate, collect_candidates, merge_near_duplicates
from motif.discovery.selection import (
    Selection,
    activation_correlation,
    class_contrast,
    detection_scores,
    log_selection,
    select_concepts,
)
from motif.files import atomic_write_text

log = logging.getLogger(__name__)

BANK_FILE = "bank.yaml"
PROVENANCE_FILE = "provenance.json"
PROPOSALS_FILE = "proposals.json"
MAX_WINDOWS = 50_000  # windows scored for detection and redundancy (seeded per-video subsample beyond this)


@dataclass
class WindowScores:
    """Activations of the candidates on the training data: windows [N, C] (all, or a seeded subsample
    of at most MAX_WINDOWS), per-video peaks [V, C] and the video labels [V]."""

    windows: Tensor
    peaks: Tensor
    labels: Tensor


def training_activations(records: Sequence[VideoRecord], embeddings: Any, text_embeddings: Tensor,
                         seed: int = 0) -> WindowScores:
    """Concept activations of the training videos. embeddings: iterable of (video_id, [T, D])."""
    label_of = {r.video_id: r.label for r in records}
    per_video = max(1, MAX_WINDOWS // max(1, len(records)))
    rng = random.Random(seed)
    windows, peaks, labels = [], [], []
    for video_id, window_embeddings in embeddings:
        activations = concept_activations(window_embeddings, text_embeddings)
        peaks.append(activations.max(dim=0).values)
        labels.append(label_of[video_id])
        if len(activations) > per_video:
            activations = activations[sorted(rng.sample(range(len(activations)), per_video))]
        windows.append(activations)
    if len(peaks) < 2:
        raise DiscoveryError(f"Selection needs the window embeddings of at least 2 training videos, found "
                             f"{len(peaks)}; check data.train_list and the embedding cache (cache.dir).")
    return WindowScores(torch.cat(windows), torch.stack(peaks), torch.tensor(labels))


def _training_embeddings(cfg: DictConfig, records: list[VideoRecord], backbone: Any):
    """(video_id, window embeddings [T, D]) of the training videos: from the embedding cache (videos
    missing there are embedded first) or, with ``cache.mode=stream``, decoded on the fly."""
    skips = SkipReport()
    if cfg.cache.mode == "stream":
        def on_skip(record: VideoRecord, error: Exception) -> None:
            skips.add(str(record.path), getattr(error, "reason", str(error)), video_id=record.video_id,
                      error=type(error).__name__)

        for video in iter_video_embeddings(records, backbone, window_settings_of(cfg), on_skip=on_skip):
            yield video.video_id, video.embeddings
    else:
        cache = EmbeddingCache.for_backbone(cfg.cache.dir, backbone, window_settings_of(cfg))
        missing = [r for r in records if not cache.has(r.video_id)]
        if missing:
            log.info("Embedding %d training videos missing from the cache %s", len(missing), cache.dir)
            extract_embeddings(missing, backbone, window_settings_of(cfg), cache, skip_report=skips,
                               decode_threads=int(cfg.cache.num_workers) or None)
        for record in records:
            if cache.has(record.video_id):
                yield record.video_id, cache.load(record.video_id)["embeddings"]
    if len(skips):
        log.warning("Selection skipped %d unreadable training videos: %s", len(skips),
                    ", ".join(s.video_id or s.path for s in skips.entries[:5]))


def _rank_by_detection(candidates: list[Candidate], scores: WindowScores) -> tuple[list[Candidate], Tensor]:
    """Candidate order for the near-duplicate merge: more proposals first, then better detected, so
    that the phrase the backbone detects best names a group of near-duplicates."""
    detection = detection_scores(scores.windows)
    order = sorted(range(len(candidates)), key=lambda i: (-candidates[i].proposals, -float(detection[i])))
    return [candidates[i] for i in order], torch.tensor(order)


def _decision_record(candidate: Candidate, c: int, selection: Selection, names: list[str],
                     class_names: list[str]) -> dict:
    decision = selection.decisions[c]
    record = {
        "kept": decision.kept,
        "reason": decision.reason,
        "selected_for": [class_names[k] for k in decision.classes],
        "scores": {
            "detection": round(float(selection.detection[c]), 4),
            "contrast": {name: round(float(selection.contrast[c, k]), 4) for k, name in enumerate(class_names)},
        },
        **candidate.provenance(),
    }
    if decision.partner is not None:
        record["redundant_with"] = names[decision.partner]
        record["correlation"] = decision.correlation
    return record


def write_outputs(out_dir: Path, bank: dict[str, list[str]], provenance: dict) -> None:
    """bank.yaml ({class: [phrases]}) and provenance.json, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    header = "# Concept bank written by tools/discover_concepts.py; provenance.json says why each concept is here.\n"
    atomic_write_text(out_dir / BANK_FILE, header + yaml.safe_dump(bank, sort_keys=False, allow_unicode=True))
    atomic_write_text(out_dir / PROVENANCE_FILE, json.dumps(provenance, indent=1))
    ConceptBank.from_file(out_dir / BANK_FILE)  # the bank must load as concepts.bank


def load_vocabulary(path: str | None) -> list[str]:
    """Phrases of ``discovery.vocabulary`` (any concept bank file; classes are ignored)."""
    if not path:
        return []
    return ConceptBank.from_file(path).names


def select_stage(cfg: DictConfig, proposals: list[dict], class_names: list[str], records: list[VideoRecord],
                 backbone: Any) -> tuple[dict[str, list[str]], dict]:
    """Normalise, merge and score the candidates; returns the bank and the provenance."""
    d = cfg.discovery
    vocabulary = load_vocabulary(d.vocabulary)
    candidates = collect_candidates(proposals, vocabulary)
    if not candidates:
        raise DiscoveryError("There are no candidate phrases.", where="discovery.vocabulary",
                             hint="Set discovery.vocabulary to a phrase file or run the proposal stage "
                                  "(discovery.mode=propose or both) first.")
    log.info("Scoring %d candidate phrases (%d proposals, %d vocabulary phrases) on %d training videos",
             len(candidates), len(proposals), len(vocabulary), len(records))
    text = backbone.encode_text([c.phrase for c in candidates])
    scores = training_activations(records, _training_embeddings(cfg, records, backbone), text, d.seed)
    candidates, order = _rank_by_detection(candidates, scores)
    text, scores.windows, scores.peaks = text[order], scores.windows[:, order], scores.peaks[:, order]
    candidates, keep, merges = merge_near_duplicates(candidates, text, cfg.concepts.similarity_threshold)
    windows, peaks = scores.windows[:, keep], scores.peaks[:, keep]
    budget = d.budget if d.budget is not None else d.per_class * len(class_names)
    selection = select_concepts(detection_scores(windows), class_contrast(peaks, scores.labels, len(class_names)),
                                activation_correlation(windows), per_class=d.per_class, budget=budget,
                                min_detection=d.min_detection, min_contrast=d.min_contrast,
                                redundancy=d.redundancy)
    names = [c.phrase for c in candidates]
    log_selection(selection, names, class_names)
    if not selection.kept:
        raise DiscoveryError(f"None of the {len(candidates)} candidates is detected in the training windows "
                             f"(discovery.min_detection={d.min_detection})", where="discovery.min_detection",
                             hint="lower it or add candidate phrases")
    bank: dict[str, list[str]] = {name: [] for name in class_names}
    for c in selection.kept:
        for k in selection.decisions[c].classes:
            bank[class_names[k]].append(names[c])
    bank = {name: phrases for name, phrases in bank.items() if phrases}
    provenance = {
        "kept": [names[c] for c in selection.kept],
        "budget": budget,
        "windows_scored": int(windows.shape[0]),
        "training_videos": int(peaks.shape[0]),
        "merges": merges,
        "concepts": {names[c]: _decision_record(candidates[c], c, selection, names, class_names)
                     for c in range(len(candidates))},
    }
    log.info("Kept %d of %d candidates (budget %d)", len(selection.kept), len(candidates), budget)
    return bank, provenance


def proposal_bank(cfg: DictConfig, proposals: list[dict], class_names: list[str], backbone: Any
                  ) -> tuple[dict[str, list[str]], dict]:
    """The propose-only bank: merged proposals per class, most often proposed first, no data scores."""
    candidates = collect_candidates(proposals)
    if not candidates:
        raise DiscoveryError("The model proposed no usable phrases; see the failed requests in the log.")
    text = backbone.encode_text([c.phrase for c in candidates])
    candidates, _, merges = merge_near_duplicates(candidates, text, cfg.concepts.similarity_threshold)
    bank = {}
    for name in class_names:
        named = sorted((c for c in candidates if c.classes[name]), key=lambda c: (-c.classes[name], c.first_seen))
        if named:
            bank[name] = [c.phrase for c in named]
    provenance = {"kept": [c.phrase for c in candidates], "merges": merges,
                  "concepts": {c.phrase: {"kept": True, "reason": "proposed", **c.provenance()} for c in candidates}}
    return bank, provenance


def discover(cfg: DictConfig, out_dir: str | Path) -> dict:
    """Run the configured stages; writes bank.yaml and provenance.json into ``out_dir`` and returns
    the provenance."""
    d = cfg.discovery
    out = Path(out_dir)
    splits = load_configured_dataset(cfg.data, int(cfg.data.splits[0]))
    proposals: list[dict] = []
    report: dict = {}
    if d.mode in ("propose", "both"):
        from motif.discovery.proposer import propose_for_dataset  # the openai client only where it is used

        proposals, report = propose_for_dataset(cfg, splits.train, splits.class_names)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / PROPOSALS_FILE, json.dumps({"report": report, "proposals": proposals}, indent=1))
    elif (out / PROPOSALS_FILE).is_file():
        proposals = json.loads((out / PROPOSALS_FILE).read_text())["proposals"]
        log.info("Using the %d proposals of an earlier run in %s", len(proposals), out / PROPOSALS_FILE)
    backbone = load_backbone(cfg.backbone.model, cfg.backbone.pretrained, device=cfg.backbone.device,
                             precision=cfg.backbone.precision, batch_size=cfg.backbone.batch_size)
    if d.mode == "propose":
        bank, provenance = proposal_bank(cfg, proposals, splits.class_names, backbone)
    else:
        bank, provenance = select_stage(cfg, proposals, splits.class_names, splits.train, backbone)
    provenance = {"mode": d.mode, "discovery": OmegaConf.to_container(d, resolve=True),
                  "backbone": backbone.cache_identity, "similarity_threshold": cfg.concepts.similarity_threshold,
                  "proposal_requests": report, **provenance}
    write_outputs(out, bank, provenance)
    return provenance
