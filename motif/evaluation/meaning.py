"""Does an explanation mean what it says? Ground-truth and probe metrics of a trained bottleneck.

- Absent concepts: the share of Σ_c |G[c]| held by concepts never visible in the video, and how often
  such a concept is among the 3 most important ones (with G > 0; and, as a second number, holding at
  least ``NEGLIGIBLE_SHARE`` of Σ|G|, since a third place worth 0.01 % of the logit says nothing). A
  concept's G is the sum over its views (``fold_views``), so the numbers compare across variants.
- Identical-windows probe: a video made of one window repeated; a concept activation that follows
  its evidence is constant over time. Reported: the largest deviation over time of any channel,
  relative to the largest activation of the probe video.
- Zero-evidence probe: a test video in which one concept's raw score clamp(cos, 0) is set to 0 in every
  window (X = −μ/σ for that concept), for every concept in turn. Reported: the largest activation of the
  silenced concept (any view, any window), over the mean activation of present concepts (ground truth).
- Concepts whose activation does not follow their evidence: ROC-AUC of the concept's activation
  (view "now") against its ground-truth presence per window, next to the AUC of its raw score; a concept
  is flagged when its activation's AUC is below ``FOLLOW_AUC`` while the raw score's is at least that. A
  concept whose activation is 0 in every test window is not flagged: the model does not use it (G = 0).
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import torch
from torch import Tensor

from motif.evaluation.faithfulness import EvalChunk
from motif.model import TemporalConceptBottleneck, fold_views
from motif.sequences.batching import pad_sequences
from motif.stats import roc_auc_per_column

log = logging.getLogger(__name__)

FOLLOW_AUC = 0.75
NEGLIGIBLE_SHARE = 0.01           # an absent concept in the top 3 with less of Σ|G| than this is counted apart
PROBE_WINDOWS = (0.0, 0.5, 1.0)   # which windows of each test video the identical-windows probe repeats


def absent_concept_importance(global_importance: Tensor, present: Tensor, labelled: Tensor, top: int = 3,
                              floor: float = NEGLIGIBLE_SHARE) -> tuple[Tensor, Tensor, Tensor]:
    """Per video: share of Σ|G| on labelled concepts absent from the video, whether one of them is in the
    top ``top`` of G with G > 0, and whether one is there holding at least ``floor`` of Σ|G|
    -> ([B] float, [B] bool, [B] bool).

    global_importance: G per concept [B, C]; present [B, C] bool (visible in some window of the video);
    labelled [C] bool (concepts the ground truth covers; the others are neither absent nor present).
    """
    absent = ~present & labelled[None, :]
    magnitude = global_importance.abs()
    share = (magnitude * absent).sum(dim=1) / magnitude.sum(dim=1).clamp_min(1e-12)
    k = min(top, global_importance.shape[1])
    values, index = global_importance.topk(k, dim=1)
    absent_top = absent.gather(1, index)
    in_top = (absent_top & (values > 0)).any(dim=1)
    total = magnitude.sum(dim=1, keepdim=True)
    in_top_floor = (absent_top & (values > 0) & (values.abs() >= floor * total)).any(dim=1)
    return share, in_top, in_top_floor


@torch.no_grad()
def identical_windows_deviation(model: TemporalConceptBottleneck, sequences: Sequence[Tensor],
                                device: torch.device | str = "cpu") -> float:
    """Largest relative deviation over time of z on videos made of one repeated window.

    For each video X [T, C], the windows at the relative places ``PROBE_WINDOWS`` are each repeated T
    times; per probe video the deviation is max_{t,j} |z[t,j] − z[0,j]| / max_{t,j} |z[t,j]| (0 when z is 0).
    """
    probes = [x[min(int(round(p * (len(x) - 1))), len(x) - 1)].expand(len(x), -1) for x in sequences
              for p in PROBE_WINDOWS]
    worst = 0.0
    for start in range(0, len(probes), 64):
        x, mask = pad_sequences([p.float() for p in probes[start:start + 64]])
        z = model(x.to(device), mask.to(device)).concepts
        valid = (~mask.to(device))[..., None]
        deviation = ((z - z[:, :1]).abs() * valid).amax(dim=(1, 2))
        scale = (z.abs() * valid).amax(dim=(1, 2))
        ratio = torch.where(scale > 0, deviation / scale.clamp_min(1e-30), torch.zeros_like(scale))
        worst = max(worst, float(ratio.max()))
    return worst


@torch.no_grad()
def zero_evidence_max_activation(model: TemporalConceptBottleneck, sequences: Sequence[Tensor], mean: Tensor,
                                 std: Tensor, device: torch.device | str = "cpu") -> float:
    """Largest activation (any view, any window) of a concept whose raw score is 0 in every window of a
    test video, over all test videos and concepts. mean, std [C]: the standardiser's statistics."""
    num_concepts = model.num_concepts
    silent = (-mean / std).float().to(device)                 # X of a raw score of exactly 0
    eye = torch.eye(num_concepts, dtype=torch.bool, device=device)
    worst = 0.0
    for x in sequences:
        x = x.float().to(device)
        probes = torch.where(eye[:, None, :], silent, x[None])                     # [C, T, C]: concept c silenced
        z = model(probes).concepts.unflatten(-1, (model.num_views, num_concepts))  # [C, T, V, C]
        own = z[torch.arange(num_concepts), :, :, torch.arange(num_concepts)]      # [C, T, V]
        worst = max(worst, float(own.max()))
    return worst


def present_concept_mean_activation(chunks: Sequence[EvalChunk], window_concepts: Sequence[Tensor],
                                    num_concepts: int) -> float:
    """Mean activation (over views) of a concept in the windows where the ground truth shows it."""
    total, count = 0.0, 0
    for chunk in chunks:
        labels, _ = pad_sequences([window_concepts[int(i)].bool() for i in chunk.positions])
        labels = labels.to(chunk.z.device) & ~chunk.padding_mask[..., None]
        z = chunk.z.unflatten(-1, (-1, num_concepts)).mean(dim=2)                  # [b, T, C]
        total += float(z[labels].double().sum())
        count += int(labels.sum())
    return total / count if count else math.nan


def concepts_not_following_evidence(chunks: Sequence[EvalChunk], window_concepts: Sequence[Tensor],
                                    labelled: Tensor, concept_names: Sequence[str]) -> list[dict]:
    """Concepts whose activation (view "now") detects their ground-truth presence much worse than their raw
    score does: [{concept, activation_auc, score_auc}] for AUC(z) < FOLLOW_AUC <= AUC(raw score), among the
    concepts whose activation is not 0 everywhere."""
    num_concepts = len(concept_names)
    order = torch.cat([chunk.positions for chunk in chunks]).tolist()
    z = torch.cat([chunk.z[..., :num_concepts][~chunk.padding_mask].cpu() for chunk in chunks])
    x = torch.cat([chunk.x[~chunk.padding_mask].cpu() for chunk in chunks])
    labels = torch.cat([window_concepts[i].bool() for i in order])
    columns = labelled.nonzero().squeeze(1)
    activation_auc = roc_auc_per_column(z[:, columns], labels[:, columns])
    score_auc = roc_auc_per_column(x[:, columns], labels[:, columns])
    used = (z[:, columns] > 0).any(dim=0).tolist()
    flagged = []
    for c, a, s, on in zip(columns.tolist(), activation_auc.tolist(), score_auc.tolist(), used):
        if on and a < FOLLOW_AUC <= s:
            flagged.append({"concept": concept_names[c], "activation_auc": a, "score_auc": s})
            log.warning("concept %r: its activation does not follow its evidence (AUC %.2f against the ground "
                        "truth, its raw score %.2f)", concept_names[c], a, s)
    return flagged


def meaning_metrics(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk], sequences: Sequence[Tensor],
                    window_concepts: Sequence[Tensor], labelled: Tensor, concept_names: Sequence[str], *,
                    statistics: tuple[Tensor, Tensor] | None = None, device: torch.device | str = "cpu") -> dict:
    """All metrics of this module for a test set (``window_concepts``: [T_i, C] bool per test video, in the
    order of ``sequences``); the zero-evidence probe needs the standardiser's (mean, std)."""
    num_concepts = len(concept_names)
    labelled = labelled.to(chunks[0].z.device)
    shares, in_top, in_top_floor = [], [], []
    for chunk in chunks:
        present = torch.stack([window_concepts[int(i)].bool().any(dim=0) for i in chunk.positions]).to(labelled.device)
        share, top, top_floor = absent_concept_importance(
            fold_views(chunk.explanation.global_importance, num_concepts), present, labelled)
        shares.append(share)
        in_top.append(top)
        in_top_floor.append(top_floor)
    present_mean = present_concept_mean_activation(chunks, window_concepts, num_concepts)
    zero = math.nan
    if statistics is not None:
        zero = zero_evidence_max_activation(model, sequences, statistics[0], statistics[1], device)
    return {
        "absent_importance_share": float(torch.cat(shares).double().mean()),
        "absent_in_top3_rate": float(torch.cat(in_top).double().mean()),
        "absent_in_top3_rate_above_1pct": float(torch.cat(in_top_floor).double().mean()),
        "identical_windows_max_deviation": identical_windows_deviation(model, sequences, device),
        "zero_evidence_max_z": zero,
        "present_concept_mean_z": present_mean,
        "zero_evidence_max_z_ratio": zero / present_mean if present_mean and present_mean > 0 else math.nan,
        "concepts_not_following_evidence": concepts_not_following_evidence(chunks, window_concepts, labelled.cpu(),
                                                                           concept_names),
    }
