"""Padding masks and log-sum-exp pooling over valid windows."""

from __future__ import annotations

import torch
from torch import Tensor


def key_validity(padding_mask: Tensor) -> Tensor:
    """Keys an attention row may look at, [B, T] bool (True = attend).

    Valid windows are the keys. A video without any valid window keeps all of its keys instead, so no
    softmax row is ever empty (no NaN in values or gradients); its outputs are discarded downstream.
    """
    valid = ~padding_mask
    return valid | ~valid.any(dim=1, keepdim=True)


def lse_pool(values: Tensor, padding_mask: Tensor | None, tau: float) -> Tensor:
    """(1/τ) · logsumexp over valid t of (τ · values): [B, T, F] -> [B, F].

    τ is an inverse temperature (τ → ∞ is max pooling). A video without valid windows pools to 0.
    """
    scaled = values * tau if tau != 1.0 else values
    if padding_mask is None:
        return torch.logsumexp(scaled, dim=1) / tau
    has_valid = (~padding_mask).any(dim=1, keepdim=True)          # [B, 1]
    masked = scaled.masked_fill((padding_mask & has_valid).unsqueeze(-1), float("-inf"))
    pooled = torch.logsumexp(masked, dim=1) / tau
    return pooled.masked_fill(~has_valid, 0.0)
