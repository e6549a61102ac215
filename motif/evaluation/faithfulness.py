"""Faithfulness, attention and corrective interventions over a whole test set (spec section 6).

Everything runs on padded, length-sorted chunks of videos and is vectorised over videos and random
trials. Removing a concept, window or cell means zeroing its activations z (the model's
``ConceptIntervention``; a zeroed window still takes part in the pooling with score b_k); keeping
only k of them means zeroing all the others. Rankings come from the explanation of the unedited
prediction: G for concepts, π for windows, r for (window, concept) cells.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from motif.model import (
    AttentionIntervention,
    ConceptIntervention,
    Explanation,
    TemporalConceptBottleneck,
    explain,
    fold_views,
    lse_pool,
)
from motif.model.corrections import apply_cell_edits, corrective_edits
from motif.sequences.batching import length_sorted_batches, pad_sequences

log = logging.getLogger(__name__)

FAITHFULNESS_KS = (1, 2, 3, 4, 5, 10)
ATTENTION_KS = (1, 3, 5)
TARGETS = ("concepts", "windows", "cells")
MODES = ("remove", "keep")


@dataclass
class EvalChunk:
    """A padded batch of test videos with the unedited model's view of them.

    positions [b] (indices into the test list); x [b, T, C]; padding_mask [b, T] (True = padding);
    labels [b]; z [b, T, C]; logits [b, K]; explanation: of the predicted class, batched.
    """

    positions: Tensor
    x: Tensor
    padding_mask: Tensor
    labels: Tensor
    z: Tensor
    logits: Tensor
    explanation: Explanation

    @property
    def predicted(self) -> Tensor:
        return self.logits.argmax(dim=-1)

    @property
    def probabilities(self) -> Tensor:
        return self.logits.softmax(dim=-1)

    @property
    def valid(self) -> Tensor:
        return ~self.padding_mask


@torch.no_grad()
def prepare_chunks(model: TemporalConceptBottleneck, sequences: Sequence[Tensor], labels: Sequence[int], *,
                   device: torch.device | str = "cpu", budget: int = 2 ** 22) -> list[EvalChunk]:
    """Run the model once over the test set. sequences: X [T_i, C] per video; labels: class per video."""
    model.eval().to(device)
    chunks = []
    for batch in length_sorted_batches([s.shape[0] for s in sequences], batch_size=256,
                                       per_window_cost=model.num_concepts, budget=budget):
        x, mask = pad_sequences([sequences[i].float() for i in batch])
        x, mask = x.to(device), mask.to(device)
        out = model(x, mask)
        chunks.append(EvalChunk(positions=torch.tensor(batch), x=x, padding_mask=mask,
                                labels=torch.tensor([int(labels[i]) for i in batch], device=device), z=out.concepts,
                                logits=out.logits, explanation=explain(model, out, mask)))
    return chunks


def _generator(seed: int, *key: int) -> torch.Generator:
    """A CPU generator for one (experiment, trial), independent of every other one."""
    value = seed
    for part in key:
        value = (value * 1_000_003 + part) % (2 ** 62)
    return torch.Generator().manual_seed(value)


def _rand(shape: tuple[int, ...], generator: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(shape, generator=generator).to(device)


def _top_k_mask(scores: Tensor, k: int, valid: Tensor) -> Tensor:
    """bool mask [..., N] of the k highest ``scores`` [..., N] among ``valid`` entries (fewer if fewer valid)."""
    k = min(k, scores.shape[-1])
    scores = scores.masked_fill(~valid, -math.inf)
    index = scores.topk(k, dim=-1).indices
    return torch.zeros_like(valid).scatter_(-1, index, True) & valid


def selection_masks(chunk: EvalChunk, target: str, k: int, *, trials: int = 0, seed: int = 0,
                    chunk_index: int = 0) -> Tensor:
    """Cells selected for editing, [n, b, T, C] bool: the top-k by the explanation (trials = 0, n = 1)
    or k random ones per video for each of ``trials`` seeded trials (n = trials).

    The k are chosen per video among its concepts [C] (by G), windows [T] (by π) or cells [T·C] (by r).
    """
    if target not in TARGETS:
        raise ValueError(f"unknown faithfulness target {target!r}; choose one of {TARGETS}")
    b, t, c = chunk.z.shape
    valid_windows = chunk.valid
    if target == "concepts":
        scores, valid = chunk.explanation.global_importance, torch.ones(b, c, dtype=torch.bool, device=chunk.z.device)
    elif target == "windows":
        scores, valid = chunk.explanation.window_importance, valid_windows
    else:
        scores, valid = (chunk.explanation.relevance.reshape(b, t * c),
                         valid_windows[:, :, None].expand(b, t, c).reshape(b, t * c))
    if trials == 0:
        picked = _top_k_mask(scores, k, valid)[None]
    else:
        salt = TARGETS.index(target) + 1
        scores = torch.stack([_rand(valid.shape, _generator(seed, salt, k, trial, chunk_index), valid.device)
                              for trial in range(trials)])
        picked = _top_k_mask(scores, k, valid.expand_as(scores))
    if target == "concepts":
        return picked[:, :, None, :] & valid_windows[None, :, :, None]
    if target == "windows":
        return picked[:, :, :, None].expand(-1, -1, -1, c)
    return picked.reshape(-1, b, t, c)


@torch.no_grad()
def edited_logits(model: TemporalConceptBottleneck, chunk: EvalChunk, edit: Tensor) -> Tensor:
    """Zero the cells ``edit`` [n, b, T, C] of z (the model's ConceptIntervention) and re-pool: [n, b, K]."""
    n, b, t, c = edit.shape
    z = chunk.z[None].expand(n, b, t, c).reshape(n * b, t, c)
    mask = chunk.padding_mask[None].expand(n, b, t).reshape(n * b, t)
    z = ConceptIntervention(mode="zero", mask=edit.reshape(n * b, t, c)).apply(z, mask)
    return pooled_logits(model, z, mask).reshape(n, b, -1)


def pooled_logits(model: TemporalConceptBottleneck, z: Tensor, padding_mask: Tensor) -> Tensor:
    """The logits of ``model.readout`` [B, K] for concepts z [B, T, C] (zero on padding), without
    its pooled concepts (the expensive part when C >> K)."""
    window_logits = model.classifier(z).masked_fill(padding_mask.unsqueeze(-1), 0.0)
    return lse_pool(window_logits, padding_mask, model.tau)


@dataclass
class _Tally:
    """Sums over videos of the three metrics, per trial."""

    trials: int
    correct: Tensor = field(init=False)
    agree: Tensor = field(init=False)
    drop: Tensor = field(init=False)
    count: int = 0

    def __post_init__(self) -> None:
        self.correct, self.agree, self.drop = (torch.zeros(self.trials, dtype=torch.float64) for _ in range(3))

    def add(self, chunk: EvalChunk, logits: Tensor) -> None:
        """logits [n, b, K] of the edited model."""
        predicted = chunk.predicted
        edited = logits.argmax(dim=-1)
        p_before = chunk.probabilities.gather(1, predicted[:, None]).squeeze(1)
        p_after = logits.softmax(dim=-1).gather(2, predicted[None, :, None].expand(len(logits), -1, 1)).squeeze(2)
        self.correct += (edited == chunk.labels[None]).double().sum(dim=1).cpu()
        self.agree += (edited == predicted[None]).double().sum(dim=1).cpu()
        self.drop += (p_before[None] - p_after).double().sum(dim=1).cpu()
        self.count += len(chunk.labels)

    def row(self) -> dict:
        out: dict = {"trials": self.trials, "videos": self.count}
        for name, total in (("accuracy", self.correct), ("agreement", self.agree), ("prob_drop", self.drop)):
            per_trial = total / max(self.count, 1)
            out[name] = float(per_trial.mean())
            out[f"{name}_std"] = float(per_trial.std()) if self.trials > 1 else 0.0
        return out


def _trial_groups(trials: int, chunk: EvalChunk, budget: int) -> Iterator[tuple[int, int]]:
    """(first, count) groups of random trials, as few as keep count·b·T·C within ``budget``, of equal size
    (to within one)."""
    most = max(1, budget // max(chunk.z.numel(), 1))
    size = math.ceil(trials / math.ceil(trials / most))
    for first in range(0, trials, size):
        yield first, min(size, trials - first)


@torch.no_grad()
def faithfulness_curves(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk], *,
                        ks: Sequence[int] = FAITHFULNESS_KS, trials: int = 10, seed: int = 0,
                        targets: Sequence[str] = TARGETS, modes: Sequence[str] = MODES,
                        budget: int = 2 ** 25) -> list[dict]:
    """Remove / keep-only the top-k concepts (by G), windows (by π) or cells (by r) vs k random ones.

    Returns rows {target, mode, k, ranking ("top" | "random"), accuracy, agreement, prob_drop (mean
    over videos; for "random" the mean over trials, with ``*_std`` the std over trials), trials,
    videos}. k > C is skipped for concepts; videos with fewer than k windows or cells lose all of them.
    """
    num_concepts = chunks[0].z.shape[-1]
    settings = [(target, k, mode) for target in targets for k in ks for mode in modes
                if not (target == "concepts" and k > num_concepts)]
    rows = []
    for target, k, mode in tqdm(settings, desc="faithfulness", unit="setting", disable=None, leave=False):
        top, random = _Tally(1), _Tally(trials)
        for i, chunk in enumerate(chunks):
            selected = selection_masks(chunk, target, k)
            top.add(chunk, edited_logits(model, chunk, selected if mode == "remove" else ~selected))
            selected = selection_masks(chunk, target, k, trials=trials, seed=seed, chunk_index=i)
            if mode == "keep":
                selected = ~selected
            random.add(chunk, torch.cat([edited_logits(model, chunk, selected[first:first + count])
                                         for first, count in _trial_groups(trials, chunk, budget)]))
        for ranking, tally in (("top", top), ("random", random)):
            rows.append({"target": target, "mode": mode, "k": k, "ranking": ranking, **tally.row()})
    return rows


def attention_selections(chunk: EvalChunk, num_concepts: int, k: int, *, trials: int, seed: int = 0,
                         chunk_index: int = 0) -> Tensor:
    """The concepts whose maps are replaced, [1 + trials, b, C] bool: the top-k by G (folded over views),
    then k random concepts per video for each seeded trial."""
    importance = fold_views(chunk.explanation.global_importance, num_concepts)
    everything = torch.ones_like(importance, dtype=torch.bool)
    scores = [importance] + [_rand(everything.shape, _generator(seed, 4, k, trial, chunk_index), everything.device)
                             for trial in range(trials)]
    return _top_k_mask(torch.stack(scores), k, everything.expand(len(scores), -1, -1))


@torch.no_grad()
def attention_interventions(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk], *,
                            kinds: Sequence[str] = ("identity", "uniform", "reverse", "shuffle"),
                            ks: Sequence[int] = ATTENTION_KS, trials: int = 10, seed: int = 0,
                            budget: int = 2 ** 25) -> list[dict]:
    """Replace the attention maps of the top-k concepts (by G) vs k random concepts.

    Rows {kind, k, ranking, accuracy, agreement, prob_drop (+ ``*_std`` over random trials), trials,
    videos}. Empty for variants whose maps attention interventions cannot replace (e.g. "full": per head).
    The top-k selection and the random trials of a chunk are S alternative selections of one model pass
    (in groups of at most ``budget`` cells S·b·T·C): the part of the model before the first attention runs
    once per video, and only the chosen concepts' edited outputs are computed, without any [T, T] map.
    "shuffle" draws one permutation per video and selection (seed ``seed`` + the group's first selection).
    """
    if not model.variant_spec.attention_interventions or model.num_attention_maps == 0:
        log.info("attention interventions skipped: variant %r has no per-concept temporal maps", model.variant)
        return []
    settings = [(kind, k) for kind in kinds for k in ks if k <= model.num_concepts]
    rows = []
    for kind, k in tqdm(settings, desc="attention interventions", unit="setting", disable=None, leave=False):
        top, random = _Tally(1), _Tally(trials)
        for i, chunk in enumerate(chunks):
            selections = attention_selections(chunk, model.num_concepts, k, trials=trials, seed=seed, chunk_index=i)
            logits = torch.cat([_intervened_logits(model, chunk, kind, selections[first:first + count], seed + first)
                                for first, count in _trial_groups(len(selections), chunk, budget)])
            top.add(chunk, logits[:1])
            random.add(chunk, logits[1:])
        for ranking, tally in (("top", top), ("random", random)):
            rows.append({"kind": kind, "k": k, "ranking": ranking, **tally.row()})
    return rows


def _intervened_logits(model: TemporalConceptBottleneck, chunk: EvalChunk, kind: str, selections: Tensor,
                       seed: int) -> Tensor:
    """Logits [S, b, K] with the maps of the concepts ``selections`` [S, b, C] replaced by ``kind``."""
    intervention = AttentionIntervention(kind=kind, seed=seed, selection=selections)
    z, _ = model.encode_concepts(chunk.x, chunk.padding_mask, attention_intervention=intervention)
    return pooled_logits(model, z, intervention.fan_out(chunk.padding_mask)).unflatten(0, selections.shape[:2])


@torch.no_grad()
def corrective_interventions(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk], *, max_edits: int = 4,
                             top: int = 5, low: float = 0.1, high: float = 0.9) -> dict:
    """Top-1 repair rate after 1..max_edits oracle edits, over misclassified videos whose true class
    is among the ``top`` highest logits. Returns {eligible, misclassified, repair_rate: [..], repaired: [..]}."""
    weight, bias = model.classifier.weight, model.classifier.bias
    repaired = torch.zeros(max_edits, dtype=torch.long)
    eligible = misclassified = 0
    for chunk in chunks:
        wrong = chunk.predicted != chunk.labels
        rank = (chunk.logits > chunk.logits.gather(1, chunk.labels[:, None])).sum(dim=1)
        chosen = wrong & (rank < top)
        misclassified += int(wrong.sum())
        if not bool(chosen.any()):
            continue
        eligible += int(chosen.sum())
        z, mask = chunk.z[chosen], chunk.padding_mask[chosen]
        labels = chunk.labels[chosen]
        edits = corrective_edits(z, mask, weight, bias, model.tau, chunk.predicted[chosen], labels, max_edits,
                                 low, high)
        for n in range(1, max_edits + 1):
            logits = pooled_logits(model, apply_cell_edits(z, edits, n), mask)
            repaired[n - 1] += int((logits.argmax(dim=-1) == labels).sum())
    rates = [float(r) / eligible if eligible else math.nan for r in repaired.tolist()]
    return {"policy": ("oracle: cells ranked by the first-order gain of the margin logit_true - logit_pred, each set "
                       f"to the {low} or {high} quantile of its concept over the video's windows, whichever helps"),
            "eligible": eligible, "misclassified": misclassified, "max_edits": max_edits, "top": top,
            "quantiles": [low, high], "edits": list(range(1, max_edits + 1)), "repaired": repaired.tolist(),
            "repair_rate": rates}
