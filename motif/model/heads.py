"""The concept activation head and the non-negative per-window classifier."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LN2 = math.log(2.0)


class ConceptActivation(nn.Module):
    """Per-concept affine + shifted softplus clamp: z = max(0, softplus(x·α_c + β_c) − ln 2), [B, T, C].

    α = 1, β = 0 at initialisation. z >= 0 and exactly 0 when a concept is off (x·α + β <= 0).
    """

    def __init__(self, num_concepts: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(num_concepts))
        self.shift = nn.Parameter(torch.zeros(num_concepts))

    def forward(self, x: Tensor) -> Tensor:
        return _ShiftedSoftplusClamp.apply(x, self.scale, self.shift)


class _ShiftedSoftplusClamp(torch.autograd.Function):
    """x [..., C], α, β [C] -> max(0, softplus(x·α + β) − ln 2), saving only x (and the output): the backward
    recomputes x·α + β rather than holding it from the forward (one fewer [B, T, C] tensor on long videos)."""

    @staticmethod
    def forward(ctx, x: Tensor, scale: Tensor, shift: Tensor) -> Tensor:
        z = F.relu(F.softplus(torch.addcmul(shift, x, scale)) - LN2)
        ctx.save_for_backward(x, scale, shift, z)
        return z

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, scale, shift, z = ctx.saved_tensors
        pre = torch.addcmul(shift, x, scale)
        grad_pre = torch.ops.aten.softplus_backward(grad.masked_fill(z <= 0, 0), pre, 1, 20)
        leading = tuple(range(grad.dim() - 1))
        grad_scale = torch.mul(grad_pre, x, out=pre).sum(dim=leading)   # the buffer of pre, reused
        grad_shift = grad_pre.sum(dim=leading)
        return grad_pre.mul_(scale).to(x.dtype), grad_scale.to(scale.dtype), grad_shift.to(shift.dtype)


class NonNegativeLinear(nn.Module):
    """Linear map whose weight is kept >= 0 by projection: z [.., C] -> z Wᵀ + b [.., K].

    ``weight`` [K, C] is a plain parameter, initialised to |U(−1/√C, 1/√C)|; call ``clamp_()`` after
    every optimiser step to project it back onto W >= 0 (the published training recipe). The bias [K]
    is unconstrained.
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        bound = in_features ** -0.5
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-bound, bound).abs_())
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound))

    @torch.no_grad()
    def clamp_(self) -> None:
        """Project the weight onto W >= 0, in place."""
        self.weight.clamp_(min=0.0)

    @torch.no_grad()
    def soft_threshold_(self, amount: Tensor) -> None:
        """Proximal step of λ·Σ|W| on W >= 0, in place: W <- max(0, W − amount).

        amount [K, C] (or broadcastable) >= 0: λ times the step size of each weight. Weights that the
        step takes below zero become exactly 0, so a concept a class does not use holds G = 0 exactly.
        """
        if bool((amount < 0).any()):
            raise ValueError("soft-threshold amounts must be >= 0 (λ·step size)")
        self.weight.sub_(amount).clamp_(min=0.0)

    def forward(self, z: Tensor) -> Tensor:
        return F.linear(z, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, weight>=0"
