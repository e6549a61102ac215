"""Grounded concept selection: keep the candidates the backbone detects in the training windows and
that separate classes, within a budget per class and in total.

Every candidate c is scored on the concept activations a[t, c] = max(0, cos(e_t, text_c)) of the
training windows (spec section 2), nothing else:

- detection d_c: how cleanly the windows split into "concept present" and "absent". Over the
  sorted activations, for every split point s on a grid of quantiles (1 % ... 99 %), the two groups
  below and above s have means m_lo, m_hi and population variances v_lo, v_hi; the within-group
  std is sqrt((n_lo v_lo + n_hi v_hi) / n). ``d_c = max_s (m_hi - m_lo) / within-group std``
  (Otsu's criterion as a ratio). A phrase the backbone sees is bimodal: high in the windows that
  show it, low elsewhere (large d). A phrase it does not see is a blur (small d): normally
  distributed activations score about 2.7 (split at the median: means +-0.80 sigma, within-group
  std 0.60 sigma).
- class contrast s[c, k]: with v_c = max over the windows of a video (the video's peak),
  ``s[c, k] = (mean of v_c over class-k videos - mean over the other videos) / std of v_c``
  (std over all videos, clamped to >= 1e-6).
- redundancy: the Pearson correlation of two candidates' activations over the windows. Two phrases
  that fire on the same windows (r >= ``redundancy``) give the model the same input; the one with
  the lower detection is dropped.

Selection (every decision is recorded with its reason and scores):
1. not detected: d_c < ``min_detection`` -> dropped.
2. redundant: in order of decreasing d_c, a candidate correlated >= ``redundancy`` with one already
   accepted -> dropped.
3. per class: for each class k, the accepted candidates with s[c, k] >= ``min_contrast``, highest
   first, at most ``per_class`` of them; taken round by round (every class's best, then every
   class's second, ...) until ``budget``.
4. fill: the remaining accepted candidates by decreasing d_c until ``budget``: concepts the
   backbone detects well but whose peak does not differ between classes (their timing still can).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

log = logging.getLogger(__name__)

SPLIT_QUANTILES = torch.linspace(0.01, 0.99, 99)


def detection_scores(activations: Tensor) -> Tensor:
    """Two-group separation d_c (module docstring) of activations [N, C] -> [C] (float64)."""
    if activations.ndim != 2 or activations.shape[0] < 2:
        raise ValueError(f"activations must be [N, C] with N >= 2 windows, got {list(activations.shape)}")
    x = activations.double().sort(dim=0).values
    n = x.shape[0]
    zero = torch.zeros(1, x.shape[1], dtype=x.dtype)
    sums = torch.cat([zero, x.cumsum(0)])
    squares = torch.cat([zero, (x * x).cumsum(0)])
    splits = (SPLIT_QUANTILES.double() * n).round().long().clamp(1, n - 1).unique()
    n_lo = splits.double()[:, None]
    n_hi = n - n_lo
    m_lo = sums[splits] / n_lo
    m_hi = (sums[n] - sums[splits]) / n_hi
    v_lo = (squares[splits] / n_lo - m_lo**2).clamp_min(0)
    v_hi = ((squares[n] - squares[splits]) / n_hi - m_hi**2).clamp_min(0)
    within = ((n_lo * v_lo + n_hi * v_hi) / n).sqrt().clamp_min(1e-6)
    return ((m_hi - m_lo) / within).max(dim=0).values


def class_contrast(video_peaks: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """s[c, k] (module docstring): video_peaks [V, C], labels [V] -> [C, K] (float64)."""
    if video_peaks.ndim != 2 or labels.shape != (video_peaks.shape[0],):
        raise ValueError(f"video_peaks must be [V, C] and labels [V], got {list(video_peaks.shape)} "
                         f"and {list(labels.shape)}")
    peaks = video_peaks.double()
    std = peaks.std(dim=0, unbiased=False).clamp_min(1e-6)
    out = torch.zeros(peaks.shape[1], num_classes, dtype=torch.float64)
    for k in range(num_classes):
        inside = labels == k
        if inside.all() or not inside.any():
            continue
        out[:, k] = (peaks[inside].mean(0) - peaks[~inside].mean(0)) / std
    return out


def activation_correlation(activations: Tensor) -> Tensor:
    """Pearson correlation of the columns of [N, C] -> [C, C] (float64; constant columns get 0)."""
    x = activations.double()
    x = x - x.mean(0)
    norm = x.norm(dim=0)
    x = x / torch.where(norm > 0, norm, torch.ones_like(norm))
    return x.T @ x


@dataclass
class Decision:
    """Why a candidate was kept or dropped; ``classes`` are the classes it was selected for."""

    kept: bool
    reason: str
    classes: list[int]
    partner: int | None = None  # the candidate it is redundant with
    correlation: float | None = None


@dataclass
class Selection:
    """The kept candidate indices (in selection order), a decision per candidate, the scores."""

    kept: list[int]
    decisions: list[Decision]
    detection: Tensor
    contrast: Tensor


def select_concepts(detection: Tensor, contrast: Tensor, correlation: Tensor, *, per_class: int,
                    budget: int, min_detection: float, min_contrast: float, redundancy: float) -> Selection:
    """The selection of the module docstring. detection [C], contrast [C, K], correlation [C, C]."""
    num_candidates, num_classes = contrast.shape
    if detection.shape != (num_candidates,) or correlation.shape != (num_candidates, num_candidates):
        raise ValueError(f"detection must be [C] and correlation [C, C] for C = {num_candidates}, got "
                         f"{list(detection.shape)} and {list(correlation.shape)}")
    if per_class < 1 or budget < 1:
        raise ValueError(f"per_class and budget must be >= 1, got {per_class} and {budget}")
    decisions: list[Decision | None] = [None] * num_candidates
    accepted: list[int] = []
    for c in sorted(range(num_candidates), key=lambda i: -float(detection[i])):
        if float(detection[c]) < min_detection:
            decisions[c] = Decision(False, "not detected", [])
            continue
        if accepted:
            sims = correlation[c, accepted]
            best = int(sims.argmax())
            if float(sims[best]) >= redundancy:
                decisions[c] = Decision(False, "redundant", [], accepted[best], round(float(sims[best]), 4))
                continue
        accepted.append(c)

    ranked = []  # per class, the accepted candidates that separate it, best first
    for k in range(num_classes):
        separating = [c for c in accepted if float(contrast[c, k]) >= min_contrast]
        ranked.append(sorted(separating, key=lambda c: -float(contrast[c, k]))[:per_class])
    kept: list[int] = []
    classes: dict[int, list[int]] = {}
    for rank in range(per_class):
        for k in range(num_classes):
            if rank < len(ranked[k]) and (ranked[k][rank] in classes or len(kept) < budget):
                c = ranked[k][rank]
                if c not in classes:
                    kept.append(c)
                    classes[c] = []
                classes[c].append(k)
    for c in kept:
        decisions[c] = Decision(True, "separates classes", classes[c])
    for c in accepted:
        if c in classes:
            continue
        if len(kept) < budget:
            kept.append(c)
            decisions[c] = Decision(True, "detected", [int(contrast[c].argmax())])
        else:
            decisions[c] = Decision(False, "over budget", [])
    return Selection(kept, decisions, detection, contrast)  # type: ignore[arg-type]


def log_selection(selection: Selection, names: Sequence[str], class_names: Sequence[str]) -> None:
    """One log line per candidate: kept or dropped, why, and its scores."""
    for c, decision in enumerate(selection.decisions):
        best = int(selection.contrast[c].argmax())
        scores = (f"detection {float(selection.detection[c]):.2f}, best contrast "
                  f"{float(selection.contrast[c, best]):.2f} ({class_names[best]})")
        if decision.kept:
            log.info("Kept '%s': %s for %s; %s", names[c], decision.reason,
                     ", ".join(class_names[k] for k in decision.classes), scores)
        elif decision.reason == "redundant":
            log.info("Dropped '%s': fires on the same windows as '%s' (correlation %.3f); %s", names[c],
                     names[decision.partner], decision.correlation, scores)
        else:
            log.info("Dropped '%s': %s; %s", names[c], decision.reason, scores)
