"""The evidence bottleneck: per-concept temporal pooling of a concept's own evidence, time only in the
attention scores, and a monotone concept head.

Why: in the published block a sinusoid is added into each concept's own channel, so a channel
becomes a clock (with no evidence at all its z still changes over the windows) and an absent concept
can carry a large share of the explanation. Here a concept's activation is a function of that
concept's evidence alone, non-decreasing in it, exactly 0 without evidence, and constant over a video
whose windows are all identical. Time enters only through a learned relative-position bias in the
attention scores.

Shapes: B batch, T windows, C concepts, V views, D distance buckets (0 .. D-1 exact, D = "D or more").

```
e[b,t,c]   = max(0, X[b,t,c] + μ_c/σ_c) = max(0, a[b,t,c]) / σ_c      evidence: the clamped raw score in
                                                                   units of its training std (not centred,
                                                                   so no evidence is exactly 0)
view "now":    s_now[t,c]    = e[t,c]
view "before": s_before[t,c] = Σ_{u<=t} A_before[c,t,u] e[u,c],  A_before[c,t,:] = softmax over valid
                                                                   u <= t of bias_before[c, min(t-u, D)]
view "after":  s_after[t,c]  = Σ_{u>=t} A_after[c,t,u] e[u,c],   likewise over valid u >= t
z[b,t,v·C+c] = max(0, α_{v,c}·s_v[t,c] − θ_{v,c}),  α = softplus(·) >= 0, θ = softplus(·) >= 0
```

The attention weights are non-negative, depend on time only (relative distance) and never on other
concepts, and the values are the concept's own non-negative evidence. Hence: every view of a concept
is a weighted average of its own evidence (identical windows -> identical values; no evidence -> 0),
non-decreasing in it, and z is non-decreasing in the evidence of its concept and independent of every
other concept. The "before" and "after" views make relative order expressible: the channel
"A (before)" carries "A has been seen at or before t" for the per-window classifier to combine with
"B (now)"; one channel summing both would be symmetric in A-then-B vs B-then-A.

The output has V·C channels, view-major (channel j is view j // C of concept j % C); a concept's
importance is the sum of the importances of its views, which keeps the decomposition exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motif.model.variants import ATTENTION_IMPLEMENTATIONS

if TYPE_CHECKING:
    from motif.model.interventions import AttentionIntervention

DISTANCE_BUCKETS = 8       # distances 0..7 windows have their own bias; 8 or more share one
TEMPORAL_VIEWS = ("before", "after")
INITIAL_SCALE = 1.0
INITIAL_THRESHOLD_STD = 1.0   # thresholds start this many training stds above the mean evidence


def _inverse_softplus(value: Tensor) -> Tensor:
    """y with softplus(y) = value (value > 0)."""
    return value + torch.log(-torch.expm1(-value))


def _shift_later(x: Tensor, steps: int) -> Tensor:
    """x [B, T, C] moved ``steps`` windows later along T, zero-filled: out[:, t] = x[:, t - steps]."""
    if steps == 0:
        return x
    if steps >= x.shape[1]:
        return torch.zeros_like(x)
    return F.pad(x[:, :-steps], (0, 0, steps, 0))


class EvidencePooling(nn.Module):
    """Standardised activations X [B, T, C] -> concept channels z [B, T, V·C] (see the module docstring).

    temporal=False keeps only the view "now" (V = 1); otherwise V = 3 (now, before, after).
    ``evidence_offset`` [C] = μ/σ of the training statistics (a buffer: it travels with the
    checkpoint); set it with ``set_input_statistics`` before training. Until then it is 0 and X itself
    is read as evidence.
    """

    evidence_offset: Tensor

    def __init__(self, num_concepts: int, temporal: bool = True, buckets: int = DISTANCE_BUCKETS):
        super().__init__()
        if buckets < 1:
            raise ValueError(f"buckets must be >= 1, got {buckets}")
        self.num_concepts, self.buckets = num_concepts, buckets
        self.views = ("now",) + (TEMPORAL_VIEWS if temporal else ())
        self.register_buffer("evidence_offset", torch.zeros(num_concepts))
        # Relative-position bias per temporal view, concept and distance bucket (0 = uniform over the keys).
        self.position_bias = nn.Parameter(torch.zeros(len(self.views) - 1, num_concepts, buckets + 1))
        num_views = len(self.views)
        self.raw_scale = nn.Parameter(_inverse_softplus(torch.full((num_views, num_concepts), INITIAL_SCALE)))
        self.raw_threshold = nn.Parameter(_inverse_softplus(torch.full((num_views, num_concepts), 1e-3)))

    @property
    def num_views(self) -> int:
        return len(self.views)

    @property
    def attention_map_names(self) -> tuple[str, ...]:
        """What the maps ``return_attention`` gives are: one per temporal view."""
        return tuple(f"view '{view}'" for view in self.views[1:])

    def scale(self) -> Tensor:
        """α [V, C] >= 0."""
        return F.softplus(self.raw_scale)

    def threshold(self) -> Tensor:
        """θ [V, C] >= 0."""
        return F.softplus(self.raw_threshold)

    @torch.no_grad()
    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Store μ/σ (the standardiser's [C] statistics) and start each threshold INITIAL_THRESHOLD_STD training
        stds above the training mean of its evidence: at initialisation z of the view "now" is
        α·max(0, X − 1), so a concept starts "on" only where its score is clearly above its average."""
        if mean.shape != (self.num_concepts,) or std.shape != (self.num_concepts,):
            raise ValueError(f"input statistics must be [C] = [{self.num_concepts}], got {list(mean.shape)} and "
                             f"{list(std.shape)}")
        offset = (mean / std).to(self.evidence_offset)
        self.evidence_offset.copy_(offset)
        start = (self.scale() * (offset + INITIAL_THRESHOLD_STD)).clamp_min(1e-3)
        self.raw_threshold.copy_(_inverse_softplus(start))

    def evidence(self, x: Tensor) -> Tensor:
        """e = max(0, X + μ/σ) [B, T, C]: the clamped raw score over its training std."""
        return F.relu(x + self.evidence_offset)

    def kernel(self) -> Tensor:
        """Un-normalised attention weight per temporal view, concept and bucket, exp(bias − max) [V-1, C, D+1]."""
        bias = self.position_bias
        return (bias - bias.amax(dim=-1, keepdim=True)).exp()

    def attention_maps(self, key_valid: Tensor, num_windows: int) -> list[Tensor]:
        """The maps of the temporal views, each [B, C, T, T] (rows = query, columns = key window).

        key_valid [B, T] bool. A row without any allowed key (a padded query of the view "after", whose
        output is discarded) attends uniformly to the valid keys, so that every row is a distribution.
        """
        t = torch.arange(num_windows, device=key_valid.device)
        distance = t[:, None] - t[None, :]                                         # t − u
        bucket = distance.abs().clamp(max=self.buckets)
        kernel = self.kernel()
        maps = []
        for view, weights in zip(self.views[1:], kernel):
            allowed = (distance >= 0) if view == "before" else (distance <= 0)
            w = weights[:, bucket] * allowed                                       # [C, T, T]
            w = w[None] * key_valid[:, None, None, :].to(w.dtype)                  # [B, C, T, T]
            total = w.sum(dim=-1, keepdim=True)
            w = torch.where(total > 0, w, key_valid[:, None, None, :].to(w.dtype))
            maps.append(w / w.sum(dim=-1, keepdim=True))
        return maps

    def _pool_before(self, values: Tensor, weights: Tensor, kernel: Tensor) -> tuple[Tensor, Tensor]:
        """Σ_{u<=t} k[min(t−u, D)]·values[u] and the same sum of ``weights`` (the key mask), [B, T, C] each,
        without [T, T] maps: D shifted copies for the near distances, a prefix sum for the far ones."""
        numerator = torch.zeros_like(values)
        denominator = torch.zeros_like(values)
        for d in range(self.buckets):
            numerator = numerator + kernel[:, d] * _shift_later(values, d)
            denominator = denominator + kernel[:, d] * _shift_later(weights, d)
        numerator = numerator + kernel[:, self.buckets] * _shift_later(values.cumsum(dim=1), self.buckets)
        denominator = denominator + kernel[:, self.buckets] * _shift_later(weights.cumsum(dim=1), self.buckets)
        return numerator, denominator

    @staticmethod
    def _reference(values: Tensor, valid: Tensor) -> Tensor:
        """r [B, 1, C]: each video's mean evidence over its valid windows (values [B, T, C] = e·valid,
        valid [B, T, 1]), without gradient.

        The fast path pools e − r and adds r back: Σ_u k·(e[u] − r)·valid[u] / Σ_u k·valid[u] + r equals
        Σ_u k·e[u]·valid[u] / Σ_u k·valid[u] for any r, and its derivative in r is 0, so r carries no
        gradient. Over identical windows every e − r is the same number, so the views equal r + that number
        in every window up to rounding of that difference (not of the evidence); over long videos the
        prefix sums accumulate deviations from the mean instead of the evidence itself, which keeps their
        float32 rounding small.
        """
        return (values.sum(dim=1, keepdim=True) / valid.sum(dim=1, keepdim=True).clamp_min(1.0)).detach()

    def _pool(self, view: str, values: Tensor, weights: Tensor, kernel: Tensor) -> Tensor:
        """The view's pooled values [B, T, C] = Σ_u A[c,t,u] values[u] for the fast path: values, weights (the key
        mask) [B, T, C], kernel [C, D+1]."""
        if view == "before":
            numerator, denominator = self._pool_before(values, weights, kernel)
        else:
            numerator, denominator = self._pool_before(values.flip(1), weights.flip(1), kernel)
            numerator, denominator = numerator.flip(1), denominator.flip(1)
        return numerator / denominator.clamp_min(torch.finfo(values.dtype).tiny)

    def _intervene(self, view: str, kernel: Tensor, intervention: AttentionIntervention, pooled: Tensor,
                   values: Tensor, key_valid: Tensor, query_valid: Tensor) -> Tensor:
        """``pooled`` [B, T, C] with the view's maps of the intervention's chosen concepts replaced (those alone)."""

        def attend(videos: Tensor, concepts: Tensor, chosen: Tensor) -> Tensor:
            # the N chosen (video, concept) series side by side as N concepts of one video: [1, T, N]
            weights = key_valid[videos].T[None].to(chosen.dtype)
            return self._pool(view, chosen.T[None], weights, kernel[concepts])[0].T

        edited = intervention.apply_to_outputs(pooled.transpose(1, 2), values.transpose(1, 2), key_valid, query_valid,
                                               attend)
        return edited.transpose(1, 2)

    def forward(self, x: Tensor, key_valid: Tensor | None, *, impl: str = "fast", return_attention: bool = False,
                intervention: AttentionIntervention | None = None, query_valid: Tensor | None = None,
                dropout: nn.Module | None = None) -> tuple[Tensor, list[Tensor] | None]:
        """x [B, T, C] standardised -> (z [B, T, V·C], maps of the temporal views or None).

        key_valid [B, T] bool (None = every window valid); ``dropout`` (scaling non-negative values by a
        non-negative factor) is applied to the evidence during training.
        """
        ATTENTION_IMPLEMENTATIONS[impl]  # an unknown name raises, listing the choices
        batch, num_windows, _ = x.shape
        e = self.evidence(x)
        if dropout is not None:
            e = dropout(e)
        if key_valid is None:
            key_valid = torch.ones(batch, num_windows, dtype=torch.bool, device=x.device)
        views, maps = [e], None
        if self.num_views > 1:
            valid = key_valid[:, :, None].to(e.dtype)
            values = e * valid
            if impl == "fast" and not return_attention:
                weights = valid.expand_as(values)
                reference = self._reference(values, valid)
                centred = (e - reference) * valid
                for view, kernel in zip(self.views[1:], self.kernel()):
                    pooled = reference + self._pool(view, centred, weights, kernel)
                    if intervention is not None:
                        pooled = self._intervene(view, kernel, intervention, pooled, values, key_valid,
                                                 key_valid if query_valid is None else query_valid)
                    views.append(pooled)
            else:
                maps = self.attention_maps(key_valid, num_windows)
                if intervention is not None:
                    queries = key_valid if query_valid is None else query_valid
                    maps = [intervention.apply(m, key_valid, queries) for m in maps]
                    values = intervention.fan_out(values)
                views += [torch.einsum("bctu,buc->btc", m, values) for m in maps]
        if intervention is not None:
            views[0] = intervention.fan_out(e)
        s = torch.stack(views, dim=2)                                              # [B, T, V, C]
        z = F.relu(s * self.scale() - self.threshold())
        return z.flatten(2), maps if return_attention else None

    def extra_repr(self) -> str:
        return f"num_concepts={self.num_concepts}, views={self.views}, buckets={self.buckets}"


def evidence_encoder(num_concepts: int, num_layers: int) -> EvidencePooling:
    """The concept encoder of variant "evidence": num_layers 0 keeps the view "now", 1 adds "before" and "after"."""
    return EvidencePooling(num_concepts, temporal=num_layers == 1)


def channel_names(concept_names: list[str] | tuple[str, ...], views: tuple[str, ...]) -> list[str]:
    """Readable names of the V·C channels: the concept itself for "now", "NAME (before)" for the others."""
    return [name if view == "now" else f"{name} ({view})" for view in views for name in concept_names]


def fold_views(values: Tensor, num_concepts: int) -> Tensor:
    """Sum the views of each concept: [..., V·C] -> [..., C] (e.g. a concept's G over its views)."""
    if values.shape[-1] % num_concepts:
        raise ValueError(f"{values.shape[-1]} channels are not a whole number of views of {num_concepts} concepts")
    return values.unflatten(-1, (values.shape[-1] // num_concepts, num_concepts)).sum(dim=-2)


