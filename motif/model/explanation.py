"""Exact decomposition of a pooled class logit into concepts and windows (spec section 5).

For class k with window scores ℓ_t = Σ_c r[t,c] + b_k, r[t,c] = z[t,c]·W[k,c], and the window
importance π = softmax over valid t of τ·ℓ_t (the gradient of the LSE pooling; NOT ℓ/τ):

    logit_k = (1/τ)·logsumexp_t(τ·ℓ_t) = Σ_c G[c] + b_k + H(π)/τ,   G[c] = Σ_t π_t·r[t,c],

with H(π) = −Σ_t π_t log π_t. ``Explanation.residual`` is the difference between the model's logit
and this reconstruction (zero up to rounding).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from motif.model.bottleneck import BottleneckOutput, TemporalConceptBottleneck


@dataclass
class Explanation:
    """The decomposition of one class logit per video. Shapes are for a batch; for a single video
    (unbatched input) the leading B is dropped. Padded windows hold 0."""

    class_index: Tensor        # k [B] long
    relevance: Tensor          # r [B, T, C] = z·W[k]
    window_scores: Tensor      # ℓ[:, k] [B, T]
    window_importance: Tensor  # π [B, T]
    global_importance: Tensor  # G [B, C]
    bias: Tensor               # b_k [B]
    entropy: Tensor            # H(π) [B]
    logit: Tensor              # the pooled logit being explained [B]
    tau: float

    @property
    def reconstruction(self) -> Tensor:
        """Σ_c G[c] + b_k + H(π)/τ, [B]."""
        return self.global_importance.sum(dim=-1) + self.bias + self.entropy / self.tau

    @property
    def residual(self) -> Tensor:
        """logit − reconstruction, [B] (zero up to floating-point rounding)."""
        return self.logit - self.reconstruction


def explain_class(concepts: Tensor, weight: Tensor, bias: Tensor, tau: float, class_index: int | Tensor | None = None,
                  padding_mask: Tensor | None = None, logits: Tensor | None = None) -> Explanation:
    """Decompose the logit of class k for each video.

    concepts z [B, T, C] or [T, C]; weight [K, C]; bias [K]; class_index an int, [B] long, or None
    for the predicted class; padding_mask [B, T] / [T] bool (True = padding); logits [B, K] / [K],
    the model's pooled logits (recomputed from z when None).
    """
    single = concepts.dim() == 2
    if single:
        concepts = concepts.unsqueeze(0)
        padding_mask = None if padding_mask is None else padding_mask.unsqueeze(0)
        logits = None if logits is None else logits.unsqueeze(0)
    batch, num_windows, _ = concepts.shape
    if padding_mask is None:
        padding_mask = torch.zeros(batch, num_windows, dtype=torch.bool, device=concepts.device)
    if bool(padding_mask.all(dim=1).any()):
        raise ValueError("explain_class: a video has no valid window (its padding_mask row is all True); "
                         "there is nothing to explain")
    valid = ~padding_mask
    if logits is None:
        all_scores = (concepts @ weight.T + bias).masked_fill(padding_mask.unsqueeze(-1), float("-inf"))
        logits = torch.logsumexp(all_scores * tau, dim=1) / tau                                      # [B, K]
    if class_index is None:
        class_index = logits.argmax(dim=-1)
    class_index = torch.as_tensor(class_index, dtype=torch.long, device=concepts.device).expand(batch)
    class_weight, class_bias = weight[class_index], bias[class_index]                                 # [B, C], [B]
    relevance = concepts * class_weight.unsqueeze(1) * valid.unsqueeze(-1)
    window_scores = (relevance.sum(dim=-1) + class_bias.unsqueeze(1)) * valid
    importance = (window_scores * tau).masked_fill(padding_mask, float("-inf")).softmax(dim=1)
    entropy = -torch.special.xlogy(importance, importance).sum(dim=1)
    explanation = Explanation(
        class_index=class_index, relevance=relevance, window_scores=window_scores, window_importance=importance,
        global_importance=(importance.unsqueeze(-1) * relevance).sum(dim=1), bias=class_bias, entropy=entropy,
        logit=logits.gather(1, class_index.unsqueeze(1)).squeeze(1), tau=float(tau))
    if single:
        for name in ("class_index", "relevance", "window_scores", "window_importance", "global_importance",
                     "bias", "entropy", "logit"):
            setattr(explanation, name, getattr(explanation, name).squeeze(0))
    return explanation


def explain(model: TemporalConceptBottleneck, output: BottleneckOutput, padding_mask: Tensor | None = None,
            class_index: int | Tensor | None = None) -> Explanation:
    """``explain_class`` for a model's output (its classifier, τ and pooled logits)."""
    return explain_class(output.concepts, model.classifier.weight, model.classifier.bias, model.tau,
                         class_index=class_index, padding_mask=padding_mask, logits=output.logits)
