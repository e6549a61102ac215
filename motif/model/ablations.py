"""Temporal blocks of the ablation variants: full (channel-mixing) attention and MoTIF-ST."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from motif.model.blocks import ConceptTemporalBlock
from motif.model.dropout import KeyedDropout

if TYPE_CHECKING:
    from motif.model.interventions import AttentionIntervention

HEAD_CHOICES = (8, 6, 4, 3, 2)


def attention_heads(channels: int) -> int:
    """Heads of the full-attention ablation: the first of 8, 6, 4, 3, 2 dividing C, else 1."""
    return next((h for h in HEAD_CHOICES if channels % h == 0), 1)


class FullAttentionBlock(nn.Module):
    """Ablation "full attention": standard multi-head self-attention over time (post-norm).

    Queries, keys and values mix all concepts (channel-mixing projections), heads from
    ``attention_heads``, FFN C -> 4C -> C with GELU. Its maps are per head, [B, heads, T, T], not per
    concept, so attention interventions do not apply.
    """

    def __init__(self, num_concepts: int, dropout: float = 0.1):
        super().__init__()
        self.num_heads = attention_heads(num_concepts)
        self.attention = nn.MultiheadAttention(num_concepts, self.num_heads, batch_first=True)
        self.norm_attention = nn.LayerNorm(num_concepts)
        self.ffn = nn.Sequential(nn.Linear(num_concepts, 4 * num_concepts), nn.GELU(), KeyedDropout(dropout),
                                 nn.Linear(4 * num_concepts, num_concepts))
        self.norm_ffn = nn.LayerNorm(num_concepts)
        self.dropout = KeyedDropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, key_valid: Tensor | None, *, impl: str = "fast",
                return_attention: bool = False,
                attention_intervention: AttentionIntervention | None = None) -> tuple[Tensor, Tensor | None]:
        """x [B, T, C] -> (x [B, T, C], per-head maps [B, heads, T, T] or None)."""
        if attention_intervention is not None:
            raise ValueError("attention interventions replace per-concept maps; variant 'full' has per-head "
                             "maps that mix concepts. Use variant 'motif' or 'space_time'.")
        need_weights = return_attention or impl == "explicit"
        key_padding_mask = None if key_valid is None else ~key_valid
        out, attention = self.attention(x, x, x, key_padding_mask=key_padding_mask, need_weights=need_weights,
                                        average_attn_weights=False)
        x = self.norm_attention(x + self.dropout(out))
        x = self.norm_ffn(x + self.dropout(self.ffn(x)))
        return x, attention if return_attention else None


class ConceptMixer(nn.Module):
    """MoTIF-ST: gated attention ACROSS concepts at each time step.

    At window t the C concepts are tokens of width d: Q/K/V = Linear(C -> C·d) of LN(x[t]) (maps over
    all concepts), logits <Q_c, K_e>·d^-0.5 + 1.0·[c = e] (identity bias), softmax over e, output
    mean_d of the weighted values; padded windows output 0. Residual: x + gate · Drop(out), gate a
    learned scalar initialised to 0.1. This mixes concepts, so the variant gives up concept isolation:
    a concept's temporal map then depends on the other concepts too.
    """

    def __init__(self, num_concepts: int, head_dim: int = 1, dropout: float = 0.1, gate: float = 0.1,
                 identity_bias: float = 1.0):
        super().__init__()
        self.head_dim, self.identity_bias = head_dim, identity_bias
        self.norm = nn.LayerNorm(num_concepts)
        self.qkv = nn.Linear(num_concepts, 3 * num_concepts * head_dim)
        self.gate = nn.Parameter(torch.tensor(float(gate)))
        self.dropout = KeyedDropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, *, impl: str = "fast") -> Tensor:
        """x [B, T, C] -> x [B, T, C] (windows act as heads: no [B, T, C, C] tensor on the fast path)."""
        num_concepts = x.shape[-1]
        qkv = rearrange(self.qkv(self.norm(x)), "b t (n c d) -> n b t c d", n=3, d=self.head_dim)
        query, key, value = (qkv[0] * self.head_dim ** -0.5, qkv[1], qkv[2])
        bias = torch.eye(num_concepts, dtype=x.dtype, device=x.device) * self.identity_bias
        if impl == "fast":
            out = F.scaled_dot_product_attention(query, key, value, attn_mask=bias, scale=1.0)
        else:
            scores = torch.einsum("btcd,bted->btce", query, key) + bias
            out = torch.einsum("btce,bted->btcd", scores.softmax(dim=-1), value)
        out = out.mean(dim=-1)
        if padding_mask is not None:
            out = out.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return x + self.gate * self.dropout(out)


class SpaceTimeBlock(nn.Module):
    """A ``ConceptMixer`` followed by a ``ConceptTemporalBlock`` (one MoTIF-ST layer)."""

    def __init__(self, num_concepts: int, head_dim: int = 1, ffn_hidden: int = 1, dropout: float = 0.1):
        super().__init__()
        self.mixer = ConceptMixer(num_concepts, head_dim, dropout)
        self.temporal = ConceptTemporalBlock(num_concepts, head_dim, ffn_hidden, dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, key_valid: Tensor | None, *, impl: str = "fast",
                return_attention: bool = False,
                attention_intervention: AttentionIntervention | None = None) -> tuple[Tensor, Tensor | None]:
        """x [B, T, C] -> (x [B, T, C], per-concept maps [B, C, T, T] or None)."""
        x = self.mixer(x, padding_mask, impl=impl)
        return self.temporal(x, padding_mask, key_valid, impl=impl, return_attention=return_attention,
                             attention_intervention=attention_intervention)
