"""Per-concept temporal self-attention: one T×T attention map per concept, concepts never mixed.

Two interchangeable implementations compute the same numbers:

- ``fast``: ``torch.nn.functional.scaled_dot_product_attention`` with concepts as heads
  ([B, C, T, d] layout) and a broadcast key-padding mask [B, 1, 1, T]. It never materialises the
  [B, C, T, T] maps, so memory is linear in T and long videos fit (fused kernels on CPU and GPU).
  Inside a MoTIF layer the LayerNorm's affine and the width-d projections fold into one width-1
  attention over the normalised input (``folded_coefficients``), whatever d; on long videos on the CPU
  that width-1 attention runs in time linear in T (``motif.model.binned_attention``).
- ``explicit``: scores, masked softmax and maps [B, C, T, T] written out. Used to return the maps
  for explanations (attention interventions on the fast path touch only their chosen concepts).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from motif.model.binned_attention import binned_attention, binned_attention_bins
from motif.model.variants import ATTENTION_IMPLEMENTATIONS

if TYPE_CHECKING:
    from motif.model.interventions import AttentionIntervention

LOGIT_SCALE_BOUND = 5.0


def attention_maps(query: Tensor, key: Tensor, key_valid: Tensor | None) -> Tensor:
    """Softmax attention maps, written out.

    query, key [B, H, T, d] (query already scaled); key_valid [B, T] bool or None (all keys).
    Returns [B, H, T, T]: rows = query window, columns = key window; padded keys get weight 0.
    """
    scores = torch.einsum("bhtd,bhud->bhtu", query, key)
    if key_valid is not None:
        scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
    return scores.softmax(dim=-1)


def fast_attention(query: Tensor, key: Tensor, value: Tensor, key_valid: Tensor | None,
                   head_alignment: int | None = None) -> Tensor:
    """attention_maps(query, key, key_valid) @ value without materialising [B, H, T, T]: [B, H, T, d].

    The head width is zero-padded to a multiple of ``head_alignment`` (default 8 on CUDA, 1
    elsewhere): fused GPU kernels reject unaligned widths such as d = 1 and would fall back to a kernel
    that writes the maps out. Zero columns change neither the scores nor the kept outputs.
    """
    width = query.shape[-1]
    alignment = head_alignment or (8 if query.is_cuda else 1)
    padding = -width % alignment
    if padding:
        query, key, value = (F.pad(t, (0, padding)) for t in (query, key, value))
    mask = None if key_valid is None else key_valid[:, None, None, :]
    out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=1.0)
    return out[..., :width] if padding else out


class ConceptTemporalAttention(nn.Module):
    """Temporal attention with per-concept projections and a per-concept logit scale.

    For concept c: Q[b,t,c,:] = Wq_c · y[b,t,c] + bq_c (likewise K, V; width d), scores
    S[b,c,t,u] = <Q[b,t,c], K[b,u,c]> · d^-0.5 · exp(clamp(s_c, -5, 5)) with s_c learned (init 0),
    padded keys masked, A = softmax_u(S), out[b,t,c] = mean_d Σ_u A[b,c,t,u] V[b,u,c,:].
    The projections are grouped 1x1 maps: no parameter or operation mixes concepts.
    """

    def __init__(self, num_concepts: int, head_dim: int = 1):
        super().__init__()
        if head_dim < 1:
            raise ValueError(f"head_dim must be >= 1, got {head_dim}")
        self.num_concepts, self.head_dim = num_concepts, head_dim
        # Rows: query, key, value. Initialised like a grouped 1x1 convolution (fan-in 1): U(-1, 1).
        self.qkv_weight = nn.Parameter(torch.empty(3, num_concepts, head_dim).uniform_(-1.0, 1.0))
        self.qkv_bias = nn.Parameter(torch.empty(3, num_concepts, head_dim).uniform_(-1.0, 1.0))
        self.logit_scale = nn.Parameter(torch.zeros(num_concepts))

    def score_scale(self) -> Tensor:
        """Per-concept factor d^-0.5 · exp(clamp(s_c, -5, 5)), [C]."""
        return self.logit_scale.clamp(-LOGIT_SCALE_BOUND, LOGIT_SCALE_BOUND).exp() * self.head_dim ** -0.5

    def folded_coefficients(self, norm_weight: Tensor, norm_bias: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """This attention on y = γ·x̂ + δ (a LayerNorm's affine, γ, δ [C]) as width-1 attention on x̂ itself.

        Each concept's Q, K, V are affine in the one number y[t, c], so for concept c (s its score scale)
        S[t, u] = s·<Wq·y_t + bq, Wk·y_u + bk> = λ_t·x̂_u + (terms constant in u, which the softmax
        removes), with λ_t = α·x̂_t + β, α = s·γ²·<Wq, Wk>, β = s·γ·<Wq·δ + bq, Wk>; and, the rows of A
        summing to 1, mean_d Σ_u A[t, u]·V[u, d] = a·Σ_u A[t, u]·x̂_u + b, a = γ·mean_d Wv, b = δ·mean_d Wv +
        mean_d bv. Any head width d costs one width-1 attention with queries λ, keys and values x̂.
        Returns (α, β, a, b), each [C].
        """
        (query_weight, key_weight, value_weight), (query_bias, _, value_bias) = self.qkv_weight, self.qkv_bias
        key_weight = key_weight * norm_weight[:, None]
        scale = self.score_scale()
        alpha = scale * norm_weight * (query_weight * key_weight).sum(dim=-1)
        beta = scale * ((query_weight * norm_bias[:, None] + query_bias) * key_weight).sum(dim=-1)
        value_weight = value_weight.mean(dim=-1)
        return alpha, beta, norm_weight * value_weight, norm_bias * value_weight + value_bias.mean(dim=-1)

    def forward_normalised(self, x_hat: Tensor, norm_weight: Tensor, norm_bias: Tensor,
                           key_valid: Tensor | None) -> Tensor:
        """``forward(γ·x̂ + δ, key_valid)[0]`` through ``folded_coefficients``: x̂ [B, T, C] -> out [B, T, C].

        Fast path only (no maps, no intervention): one width-1 scaled_dot_product_attention with the
        concepts as heads, its queries λ [B, C, T, 1] and x̂ as keys and values, then out = a·(A x̂) + b.
        """
        alpha, beta, scale, shift = self.folded_coefficients(norm_weight, norm_bias)
        bins = binned_attention_bins(x_hat, alpha, beta, key_valid)
        if bins is not None:
            return binned_attention(x_hat, alpha, beta, key_valid, scale, shift, bins=bins)
        keys = rearrange(x_hat, "b t c -> b c t 1").contiguous()
        queries = torch.addcmul(beta[:, None, None], keys, alpha[:, None, None])
        pooled = rearrange(fast_attention(queries, keys, keys, key_valid), "b c t 1 -> b t c")
        return torch.addcmul(shift, pooled, scale)

    def project(self, y: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """y [B, T, C] -> scaled query, key, value, each [B, C, T, d] and contiguous (fused kernels need it)."""
        y = rearrange(y, "b t c -> b c t 1").contiguous()
        # Fold the score scale into the (tiny) query weight and bias: one fused op makes Q, K, V.
        ones = torch.ones_like(self.logit_scale)
        scale = rearrange(torch.stack([self.score_scale(), ones, ones]), "n c -> n c 1")
        weight = rearrange(self.qkv_weight * scale, "n c d -> n 1 c 1 d")
        bias = rearrange(self.qkv_bias * scale, "n c d -> n 1 c 1 d")
        query, key, value = torch.addcmul(bias, y, weight).unbind(0)
        return query, key, value

    def forward(self, y: Tensor, key_valid: Tensor | None, *, impl: str = "fast", return_attention: bool = False,
                intervention: AttentionIntervention | None = None,
                query_valid: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """y [B, T, C] (normalised) -> (out [B, T, C], maps [B, C, T, T] or None); S·B rows under an
        intervention with S alternative selections per video.

        key_valid [B, T] bool (None = every key valid). The maps are computed only when asked for or on
        the explicit path; on the fast path an intervention computes the edited outputs of its chosen
        concepts alone (``AttentionIntervention.apply_to_outputs``). query_valid [B, T] bool tells the
        intervention which query rows are real windows.
        """
        ATTENTION_IMPLEMENTATIONS[impl]  # an unknown name raises, listing the choices
        query, key, value = self.project(y)
        if intervention is not None:
            if key_valid is None:
                key_valid = torch.ones(y.shape[:2], dtype=torch.bool, device=y.device)
            if query_valid is None:
                query_valid = key_valid
        if impl == "fast" and not return_attention:
            out, attention = fast_attention(query, key, value, key_valid), None
            if intervention is not None:
                def attend(videos: Tensor, concepts: Tensor, values: Tensor) -> Tensor:
                    return fast_attention(query[videos, concepts, None], key[videos, concepts, None], values[:, None],
                                          key_valid[videos])[:, 0]

                out = intervention.apply_to_outputs(out, value, key_valid, query_valid, attend)
        else:
            attention = attention_maps(query, key, key_valid)
            if intervention is not None:
                attention, value = intervention.apply(attention, key_valid, query_valid), intervention.fan_out(value)
            out = torch.einsum("bctu,bcud->bctd", attention, value)
            if not return_attention:
                attention = None
        out = out.squeeze(-1) if self.head_dim == 1 else out.mean(dim=-1)
        return rearrange(out, "b c t -> b t c"), attention
