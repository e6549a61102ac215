"""Softmax attention with scalar scores in time linear in T: keys in bins, exp as a short Taylor series.

Folded, every concept of a MoTIF layer attends with scalar scores (``ConceptTemporalAttention.
folded_coefficients``): S[t, u] = q_t·k_u. For one head (vectors over T, padded keys left out):

    o_t = Σ_u exp(q_t k_u) v_u / Σ_u exp(q_t k_u)

A fused kernel spends T² exponentials on it. Here the keys go into J equal bins with centres c_j and
half-width h, J the smallest with h·max|q| ≤ ρ = 1. Inside a bin, with δ_u = (k_u − c_j)/h in [−1, 1],
exp(q_t k_u) = exp(q_t c_j)·Σ_n (q_t h)^n δ_u^n / n!, kept to P terms:

    Σ_u exp(q_t k_u) w_u = Σ_j exp(q_t c_j − m_t)·Σ_{n<P} (q_t h)^n M[j, n, w] · exp(m_t),
    M[j, n, w] = Σ_{u in bin j} δ_u^n / n! · w_u,        m_t = max_j q_t c_j (the shift that stops overflow)

The moments M cost O(T·P) per head, each query J exponentials and a J×P product: O(T·J·P) against
O(T²). Every term's truncation error is at most ρ^P/P!·e^ρ of its value (all terms of the normaliser
are positive): 6e-9 with P = 12 in float32, 3e-19 with P = 20 in float64, below the rounding of the
scores themselves.

Backward (g = ∂L/∂o; p[t, u] the attention weights; lse_t the log normaliser), with the same expansion:

    ∂L/∂q_t = g_t·Cov_p(k, v)[t] = g_t·(E_p[k'v'] − E_p[k']·(o_t − v₀))     (k' = k − k₀, v' = v − v₀ centred;
                                                                          the backward recomputes them)
    ∂L/∂v_u = Σ_t g_t p[t, u],   ∂L/∂k_u = Σ_t g_t q_t p[t, u]·(v_u − o_t)

The last two are sums over queries of exp(q_t k_u − lse_t): the same transform with the roles of queries
and keys swapped (the queries binned, each bin's weights shifted by its smallest lse so none exceeds 1).

Memory: the forward keeps x only, and works through the channels in chunks whose intermediates hold
about CHUNK_ELEMENTS numbers (small chunks stay in cache: faster as well). ``binned_attention_bins``
says when this beats the fused kernel (T ≥ MIN_WINDOWS and J small against T); on other devices than
the CPU it is not used (it was measured on CPUs only).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

RADIUS = 1.0                   # h·max|q| ≤ RADIUS inside every bin
TERMS = {torch.float32: 12, torch.float64: 20}
CHUNK_ELEMENTS = 1 << 18       # largest intermediate per chunk of heads ([heads, T, J] or [heads, T, P·w]); small is faster
MIN_WINDOWS = 1024             # below this the fused kernel is faster whatever the bins
WINDOWS_PER_BIN = 16           # and it stays faster unless T ≥ 16·J (measured: benchmarks/bench_model.py)


def binned_attention_bins(x: Tensor, alpha: Tensor, beta: Tensor, key_valid: Tensor | None) -> int | None:
    """The number of key bins J where ``binned_attention`` beats the fused kernel on these inputs, else None.
    Decided from the shapes alone below MIN_WINDOWS windows; otherwise one host sync."""
    windows = x.shape[1]
    if x.device.type != "cpu" or x.dtype not in TERMS or windows < MIN_WINDOWS:
        return None
    bins = _key_bins(x, alpha, beta, key_valid)
    return bins if bins * WINDOWS_PER_BIN <= windows else None


def binned_attention(x: Tensor, alpha: Tensor, beta: Tensor, key_valid: Tensor | None,
                     value_scale: Tensor | None = None, value_shift: Tensor | None = None,
                     bins: int | None = None) -> Tensor:
    """Per-channel self-attention with scalar scores: x [B, T, C], alpha, beta [C], key_valid [B, T] bool or
    None (every key valid) -> out [B, T, C] with, for channel c (q = α_c·x + β_c, k = v = x of that channel),

        out[b, t, c] = a_c·Σ_u softmax_u(q[b, t]·k[b, u]) v[b, u] + b_c       (invalid keys left out)

    a = value_scale, b = value_shift [C] (default 1 and 0): the value map of a folded MoTIF layer, applied
    here so that nothing but x is kept for the backward. The numbers of ``attention_maps`` within the
    truncation bound of the module docstring, with gradients for every tensor argument but key_valid.
    Every video needs at least one valid key. ``bins``: J when already known (``binned_attention_bins``).
    """
    channels = x.shape[-1]
    value_scale = torch.ones_like(alpha) if value_scale is None else value_scale
    value_shift = torch.zeros_like(alpha) if value_shift is None else value_shift
    if x.dim() != 3 or any(t.shape != (channels,) for t in (alpha, beta, value_scale, value_shift)):
        raise ValueError(f"binned_attention: need x [B, T, C] and alpha, beta, value_scale, value_shift [C]; got "
                         f"{list(x.shape)}, {list(alpha.shape)}, {list(beta.shape)}, {list(value_scale.shape)}, "
                         f"{list(value_shift.shape)}")
    if x.dtype not in TERMS:
        raise ValueError(f"binned_attention: dtype {x.dtype} is not supported (float32 or float64)")
    if key_valid is not None and (key_valid.shape != x.shape[:2] or key_valid.dtype != torch.bool):
        raise ValueError(f"binned_attention: key_valid must be bool [B, T] = {list(x.shape[:2])}, got "
                         f"{key_valid.dtype} {list(key_valid.shape)}")
    return _BinnedAttention.apply(x, alpha, beta, value_scale, value_shift, key_valid, bins)


def _valid_range(coords: Tensor, valid: Tensor | None) -> tuple[Tensor, Tensor]:
    """Smallest and largest valid entry per row of [N, T], each [N, 1]."""
    if valid is None:
        low, high = coords.aminmax(dim=-1, keepdim=True)
        return low, high
    return (coords.masked_fill(~valid, math.inf).amin(dim=-1, keepdim=True),
            coords.masked_fill(~valid, -math.inf).amax(dim=-1, keepdim=True))


class _Bins:
    """Equal bins over each row's range of coords [N, T] (invalid entries put into bin 0)."""

    def __init__(self, coords: Tensor, valid: Tensor | None, count: int):
        self.count = count
        low, high = _valid_range(coords, valid)
        if valid is not None:
            coords = torch.where(valid, coords, low)
        self.half_width = ((high - low) / (2 * count)).clamp_min(torch.finfo(coords.dtype).tiny)   # [N, 1]
        index = torch.floor((coords - low) / (2 * self.half_width)).clamp_(0, count - 1)
        centre_of_entry = torch.addcmul(low, 2 * index + 1, self.half_width)
        self.offset = (coords - centre_of_entry) / self.half_width                                 # δ in [-1, 1]
        self.index = index.long()
        steps = torch.arange(count, dtype=coords.dtype, device=coords.device)
        self.centres = torch.addcmul(low, 2 * steps + 1, self.half_width)                          # [N, J]

    def moments(self, weights: Tensor, terms: int) -> Tensor:
        """weights [N, T, W] -> M [N, J, P·W] (P-major): M[j, n, w] = Σ_{entries in bin j} δ^n / n! · weights."""
        heads, windows, width = weights.shape
        flat_index = (self.index + self.count * torch.arange(heads, device=weights.device)[:, None]).flatten()
        factorials = torch.tensor([math.factorial(n) for n in range(terms)], dtype=weights.dtype,
                                  device=weights.device)
        series = (_powers(self.offset, terms) / factorials).unsqueeze(-1) * weights.unsqueeze(2)   # [N, T, P, W]
        moments = weights.new_zeros(heads * self.count, terms * width)
        return moments.index_add_(0, flat_index, series.view(heads * windows, -1)).view(heads, self.count, -1)


def _powers(x: Tensor, terms: int) -> Tensor:
    """x [N, T] -> [N, T, P]: 1, x, x², ..., x^(P−1)."""
    powers = x.unsqueeze(-1).expand(*x.shape, terms).clone()
    powers[..., 0] = 1
    return powers.cumprod(dim=-1)


def _expand(points: Tensor, bins: _Bins, moments: Tensor, exponent: Tensor, terms: int) -> Tensor:
    """Σ_j exp(exponent[t, j])·Σ_n (points_t·h)^n·M[j, n, :] -> [N, T, W]; exponent [N, T, J] is consumed."""
    heads, windows = points.shape
    factors = torch.bmm(exponent.exp_(), moments).view(heads, windows, terms, -1)          # [N, T, P, W]
    return torch.einsum("ntp,ntpw->ntw", _powers(points * bins.half_width, terms), factors)


def _forward_chunk(q: Tensor, k: Tensor, v: Tensor, valid: Tensor | None, bins: int, with_covariance: bool):
    """(o, lse, Cov_p(k, v) or None), each [N, T], for one chunk of heads."""
    terms = TERMS[q.dtype]
    key_bins = _Bins(k, valid, bins)
    ones = torch.ones_like(v)
    channels = [ones, v]
    if with_covariance:
        k_centred, v_centred = k - key_bins.centres.mean(dim=1, keepdim=True), v - v.mean(dim=1, keepdim=True)
        channels += [k_centred, k_centred * v_centred]
    weights = torch.stack(channels, dim=-1)
    if valid is not None:
        weights = weights.masked_fill(~valid.unsqueeze(-1), 0)
    moments = key_bins.moments(weights, terms)
    shift = torch.maximum(q * key_bins.centres[:, :1], q * key_bins.centres[:, -1:])             # m_t [N, T]
    exponent = torch.baddbmm(-shift.unsqueeze(-1), q.unsqueeze(-1), key_bins.centres.unsqueeze(1))
    sums = _expand(q, key_bins, moments, exponent, terms)
    normaliser = sums[..., 0]
    out = sums[..., 1] / normaliser
    lse = shift + normaliser.log()
    covariance = None
    if with_covariance:
        v_mean = v.mean(dim=1, keepdim=True)
        covariance = (sums[..., 3] - sums[..., 2] * (out - v_mean)) / normaliser
    return out, lse, covariance


def _backward_chunk(grad: Tensor, q: Tensor, k: Tensor, v: Tensor, valid: Tensor | None, out: Tensor, lse: Tensor,
                    covariance: Tensor, bins: int) -> tuple[Tensor, Tensor, Tensor]:
    terms = TERMS[q.dtype]
    grad_q = grad * covariance
    query_bins = _Bins(q, None, bins)
    flat_index = (query_bins.index + bins * torch.arange(q.shape[0], device=q.device)[:, None]).flatten()
    smallest_lse = lse.new_full((q.shape[0] * bins,), math.inf).scatter_reduce_(0, flat_index, lse.flatten(), "amin")
    scaled = (smallest_lse[flat_index].view_as(lse) - lse).exp_() * grad                        # ≤ |g|
    v_mean = v.mean(dim=1, keepdim=True)
    weights = torch.stack([scaled, scaled * q, scaled * q * (out - v_mean)], dim=-1)
    moments = query_bins.moments(weights, terms)
    exponent = torch.baddbmm(-smallest_lse.view(q.shape[0], 1, bins), k.unsqueeze(-1), query_bins.centres.unsqueeze(1))
    shift = exponent.amax(dim=-1, keepdim=True)                                                # finite: a bin is full
    sums = _expand(k, query_bins, moments, exponent.sub_(shift), terms) * shift.exp()
    grad_v = sums[..., 0]
    grad_k = (v - v_mean) * sums[..., 1] - sums[..., 2]
    if valid is not None:
        grad_v, grad_k = grad_v.masked_fill(~valid, 0), grad_k.masked_fill(~valid, 0)
    return grad_q, grad_k, grad_v


def _concept_chunks(x: Tensor, width: int) -> list[slice]:
    """Slices of channels such that a chunk's intermediates [B·channels, T, width] hold ≤ CHUNK_ELEMENTS numbers
    (or one channel, when even one holds more)."""
    batch, windows, channels = x.shape
    size = max(1, CHUNK_ELEMENTS // max(1, batch * windows * width))
    return [slice(start, min(start + size, channels)) for start in range(0, channels, size)]


def _rows(x: Tensor, alpha: Tensor, beta: Tensor, key_valid: Tensor | None, channels: slice):
    """One chunk as rows [B·c, T]: keys (= values), queries and the key mask (None: all valid)."""
    keys = x[:, :, channels].permute(0, 2, 1).reshape(-1, x.shape[1])
    count = keys.shape[0] // x.shape[0]
    queries = torch.addcmul(beta[channels].repeat(x.shape[0])[:, None], keys,
                            alpha[channels].repeat(x.shape[0])[:, None])
    valid = None if key_valid is None else key_valid.repeat_interleave(count, dim=0)
    return keys, queries, valid


def _as_channels(rows: Tensor, batch: int) -> Tensor:
    """[B·c, T] rows -> [B, T, c]."""
    return rows.view(batch, -1, rows.shape[1]).permute(0, 2, 1)


def _key_bins(x: Tensor, alpha: Tensor, beta: Tensor, key_valid: Tensor | None) -> int:
    """J for the forward expansion: keys' range × max|q| per (video, channel), the largest over all."""
    if key_valid is None:
        low, high = x.aminmax(dim=1)
        query_bound = torch.maximum((alpha * low + beta).abs(), (alpha * high + beta).abs())
    else:
        valid = key_valid.unsqueeze(-1)
        low, high = x.masked_fill(~valid, math.inf).amin(dim=1), x.masked_fill(~valid, -math.inf).amax(dim=1)
        all_low, all_high = x.aminmax(dim=1)       # queries include the padded windows
        query_bound = torch.maximum((alpha * all_low + beta).abs(), (alpha * all_high + beta).abs())
    return int(torch.ceil((high - low) * query_bound / (2 * RADIUS)).clamp_min(1).max())


def _query_bins(x: Tensor, alpha: Tensor, key_valid: Tensor | None) -> int:
    """J for the backward expansion: queries' range × max|k| (valid keys) per (video, channel)."""
    low, high = x.aminmax(dim=1)
    magnitude = x.abs() if key_valid is None else x.abs().masked_fill(~key_valid.unsqueeze(-1), 0)
    return int(torch.ceil((high - low) * alpha.abs() * magnitude.amax(dim=1) / (2 * RADIUS)).clamp_min(1).max())


class _BinnedAttention(torch.autograd.Function):
    """x [B, T, C]; alpha, beta, a, b [C]; key_valid [B, T] or None -> out [B, T, C] (``binned_attention``).

    Saves x alone: the backward recomputes each chunk's output, normaliser and covariance."""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)   # no bfloat16 exponentials under autocast
    def forward(ctx, x: Tensor, alpha: Tensor, beta: Tensor, value_scale: Tensor, value_shift: Tensor,
                key_valid: Tensor | None, bins: int | None) -> Tensor:
        bins = _key_bins(x, alpha, beta, key_valid) if bins is None else bins
        out = torch.empty_like(x)
        for channels in _concept_chunks(x, max(bins, TERMS[x.dtype] * 2)):
            keys, queries, valid = _rows(x, alpha, beta, key_valid, channels)
            rows, _, _ = _forward_chunk(queries, keys, keys, valid, bins, with_covariance=False)
            out[:, :, channels] = _as_channels(rows, x.shape[0])
        ctx.bins = bins
        ctx.save_for_backward(x, alpha, beta, value_scale, key_valid)
        return out.mul_(value_scale).add_(value_shift)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: Tensor):
        x, alpha, beta, value_scale, key_valid = ctx.saved_tensors
        query_bins = _query_bins(x, alpha, key_valid)
        grad_x = torch.empty_like(x)
        grad_alpha, grad_beta, grad_scale = (torch.empty_like(alpha) for _ in range(3))
        batch = x.shape[0]
        width = max(ctx.bins, query_bins, TERMS[x.dtype] * 4)
        for channels in _concept_chunks(x, width):
            keys, queries, valid = _rows(x, alpha, beta, key_valid, channels)
            pooled, lse, covariance = _forward_chunk(queries, keys, keys, valid, ctx.bins, with_covariance=True)
            grad_out = grad[:, :, channels].permute(0, 2, 1).reshape_as(keys)
            grad_pooled = grad_out * value_scale[channels].repeat(batch)[:, None]
            grad_q, grad_k, grad_v = _backward_chunk(grad_pooled, queries, keys, keys, valid, pooled, lse,
                                                     covariance, query_bins)
            grad_x[:, :, channels] = _as_channels(torch.addcmul(grad_k + grad_v, grad_q,
                                                                alpha[channels].repeat(batch)[:, None]), batch)
            per_row = torch.stack([(grad_q * keys).sum(dim=1), grad_q.sum(dim=1), (grad_out * pooled).sum(dim=1)])
            grad_alpha[channels], grad_beta[channels], grad_scale[channels] = per_row.view(3, batch, -1).sum(dim=1)
        return grad_x, grad_alpha, grad_beta, grad_scale, grad.sum(dim=(0, 1)), None, None
