"""The MoTIF temporal block: pre-norm per-concept temporal attention and per-concept FFN."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motif.model.attention import ConceptTemporalAttention
from motif.model.dropout import KeyedDropout

if TYPE_CHECKING:
    from motif.model.interventions import AttentionIntervention


class ConceptFFN(nn.Module):
    """Per-concept feed-forward map scalar -> hidden -> GELU -> scalar (grouped 1x1): [B, T, C] -> [B, T, C]."""

    def __init__(self, num_concepts: int, hidden: int = 1):
        super().__init__()
        if hidden < 1:
            raise ValueError(f"ffn_hidden must be >= 1, got {hidden}")
        out_bound = hidden ** -0.5  # grouped 1x1 convolution initialisation, fan-in 1 then `hidden`
        self.in_weight = nn.Parameter(torch.empty(num_concepts, hidden).uniform_(-1.0, 1.0))
        self.in_bias = nn.Parameter(torch.empty(num_concepts, hidden).uniform_(-1.0, 1.0))
        self.out_weight = nn.Parameter(torch.empty(num_concepts, hidden).uniform_(-out_bound, out_bound))
        self.out_bias = nn.Parameter(torch.empty(num_concepts).uniform_(-out_bound, out_bound))

    def forward(self, y: Tensor) -> Tensor:
        return self._map(y, self.in_weight, self.in_bias)

    def forward_normalised(self, x_hat: Tensor, norm_weight: Tensor, norm_bias: Tensor) -> Tensor:
        """``forward(γ·x̂ + δ)`` with the LayerNorm's affine folded into the input map:
        W1·(γ·x̂ + δ) + b1 = (W1·γ)·x̂ + (W1·δ + b1). x̂ [B, T, C]; γ, δ [C]."""
        return self._map(x_hat, self.in_weight * norm_weight[:, None],
                         torch.addcmul(self.in_bias, self.in_weight, norm_bias[:, None]))

    def _map(self, y: Tensor, in_weight: Tensor, in_bias: Tensor) -> Tensor:
        return _ConceptFFNMap.apply(y, in_weight, in_bias, self.out_weight, self.out_bias)


class _ConceptFFNMap(torch.autograd.Function):
    """y [..., C] -> Σ_h W2[c, h]·GELU(W1[c, h]·y + b1[c, h]) + b2[c], saving only y: the backward recomputes
    the [..., C, H] pre-activation instead of keeping it and the GELU output from the forward (two fewer
    [B, T, C] tensors held per layer on long videos; the same gradients as autograd's, to rounding)."""

    @staticmethod
    def forward(ctx, y: Tensor, in_weight: Tensor, in_bias: Tensor, out_weight: Tensor, out_bias: Tensor) -> Tensor:
        ctx.save_for_backward(y, in_weight, in_bias, out_weight)
        hidden = F.gelu(torch.addcmul(in_bias, y.unsqueeze(-1), in_weight))
        if hidden.shape[-1] == 1:
            return torch.addcmul(out_bias, hidden.squeeze(-1), out_weight.squeeze(-1))
        return (hidden * out_weight).sum(dim=-1) + out_bias

    @staticmethod
    def backward(ctx, grad: Tensor):
        y, in_weight, in_bias, out_weight = ctx.saved_tensors
        leading = tuple(range(grad.dim() - 1))
        grad = grad.unsqueeze(-1)
        pre = torch.addcmul(in_bias, y.unsqueeze(-1), in_weight)
        grad_pre = torch.ops.aten.gelu_backward(grad * out_weight, pre)
        # each [..., C, H] buffer is reused once its value has been read (fewer large temporaries)
        grad_out_weight = torch.ops.aten.gelu_(pre).mul_(grad).sum(dim=leading)
        grad_in_weight = torch.mul(grad_pre, y.unsqueeze(-1), out=pre).sum(dim=leading)
        grad_in_bias = grad_pre.sum(dim=leading)
        grad_y = grad_pre.mul_(in_weight).sum(dim=-1)
        return (grad_y.to(y.dtype), grad_in_weight.to(in_weight.dtype), grad_in_bias.to(in_bias.dtype),
                grad_out_weight.to(out_weight.dtype), grad.squeeze(-1).sum(dim=leading).to(out_weight.dtype))


class ConceptTemporalBlock(nn.Module):
    """One MoTIF layer (pre-norm, residual): x + Drop(Attn(LN(x))), then x + Drop(FFN(LN(x))).

    The LayerNorms normalise across concepts (kept for parity with the method); attention and FFN
    act on each concept separately, so the attention map of concept c is a function of concept c's
    normalised input alone.
    """

    def __init__(self, num_concepts: int, head_dim: int = 1, ffn_hidden: int = 1, dropout: float = 0.1):
        super().__init__()
        self.norm_attention = nn.LayerNorm(num_concepts)
        self.attention = ConceptTemporalAttention(num_concepts, head_dim)
        self.norm_ffn = nn.LayerNorm(num_concepts)
        self.ffn = ConceptFFN(num_concepts, ffn_hidden)
        self.dropout = KeyedDropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, key_valid: Tensor | None, *, impl: str = "fast",
                return_attention: bool = False,
                attention_intervention: AttentionIntervention | None = None) -> tuple[Tensor, Tensor | None]:
        """x [B, T, C] -> (x [B, T, C], maps [B, C, T, T] or None); masks [B, T] bool or None. An attention
        intervention with S alternative selections per video fans the rows out to S·B (then x and the masks
        may already have S·B rows)."""
        if impl == "fast" and not return_attention and attention_intervention is None:
            return self._fast_forward(x, key_valid), None
        query_valid = None if padding_mask is None else ~padding_mask
        out, attention = self.attention(self.norm_attention(x), key_valid, impl=impl,
                                        return_attention=return_attention, intervention=attention_intervention,
                                        query_valid=query_valid)
        if attention_intervention is not None:
            x = attention_intervention.fan_out(x)
        x = x + self.dropout(out)
        x = x + self.dropout(self.ffn(self.norm_ffn(x)))
        return x, attention

    def _fast_forward(self, x: Tensor, key_valid: Tensor | None) -> Tensor:
        """The same layer with both LayerNorms' affines folded into the per-concept maps (fewer passes over
        [B, T, C]; ``ConceptTemporalAttention.folded_coefficients``, ``ConceptFFN.forward_normalised``)."""
        norm = self.norm_attention
        x_hat = F.layer_norm(x, norm.normalized_shape, eps=norm.eps)
        x = x + self.dropout(self.attention.forward_normalised(x_hat, norm.weight, norm.bias, key_valid))
        norm = self.norm_ffn
        x_hat = F.layer_norm(x, norm.normalized_shape, eps=norm.eps)
        return x + self.dropout(self.ffn.forward_normalised(x_hat, norm.weight, norm.bias))
