"""Model-independent metrics: classifier sparsity, temporal localisation, concept recovery."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def classifier_sparsity(weight: Tensor, threshold: float = 1e-6) -> dict:
    """Sparsity of a non-negative classifier ``weight`` [K, C].

    nonzero_per_class: weights with |w| > threshold per class; effective_concepts_per_class:
    exp(entropy) of each class's normalised |weights| (how many concepts carry the class, counting
    unequal weights fractionally); concepts_used: concepts with a non-zero weight for any class.
    """
    magnitude = weight.detach().abs().double()
    nonzero = magnitude > threshold
    share = magnitude / magnitude.sum(dim=1, keepdim=True).clamp_min(1e-300)
    entropy = -(share * share.clamp_min(1e-300).log()).sum(dim=1)
    effective = torch.where(nonzero.any(dim=1), entropy.exp(), torch.zeros_like(entropy))
    per_class = nonzero.sum(dim=1)
    return {
        "threshold": threshold,
        "num_classes": int(weight.shape[0]),
        "num_concepts": int(weight.shape[1]),
        "nonzero_per_class": per_class.tolist(),
        "nonzero_per_class_mean": float(per_class.double().mean()),
        "nonzero_fraction": float(nonzero.double().mean()),
        "effective_concepts_per_class": [round(float(v), 4) for v in effective],
        "effective_concepts_mean": float(effective.mean()),
        "concepts_used": int(nonzero.any(dim=0).sum()),
    }


def temporal_localisation(window_importance: Tensor, padding_mask: Tensor, concept_labels: Tensor,
                          defining: Tensor, top: int = 1) -> Tensor:
    """Share of each video's top-``top`` windows by π that show a class-defining concept -> [B].

    window_importance: π [B, T] (0 on padding); padding_mask [B, T] (True = padding);
    concept_labels: ground truth [B, T, C] bool; defining: [B, C] bool, the class-defining concepts
    of the class each video is explained for. A window counts when any defining concept is present.
    """
    valid = ~padding_mask
    hit = (concept_labels.bool() & defining[:, None, :].bool()).any(dim=-1) & valid  # [B, T]
    n_top = valid.sum(dim=1).clamp(max=top)
    ranked = window_importance.masked_fill(padding_mask, -math.inf).argsort(dim=1, descending=True)
    taken = torch.arange(ranked.shape[1], device=ranked.device)[None, :] < n_top[:, None]
    hits_ranked = hit.gather(1, ranked) & taken
    return hits_ranked.sum(dim=1).double().div(n_top.clamp_min(1)).float()


def concept_recovery(global_importance: Tensor, defining: Tensor, top: int = 3) -> tuple[Tensor, Tensor]:
    """Whether class-defining concepts rank high in G -> (all [B] bool, any [B] bool).

    global_importance: G [B, C] of the explained class; defining: [B, C] bool. ``all``: every
    defining concept is in the top max(top, #defining) of G; ``any``: at least one is in the top
    ``top``. Videos whose class has no defining concept get False.
    """
    n_def = defining.sum(dim=1)
    order = global_importance.argsort(dim=1, descending=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    bound_all = n_def.clamp(min=top)
    in_all = (rank < bound_all[:, None]) | ~defining.bool()
    recovered_all = in_all.all(dim=1) & (n_def > 0)
    recovered_any = ((rank < top) & defining.bool()).any(dim=1)
    return recovered_all, recovered_any

