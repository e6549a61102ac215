"""Oracle concept edits that move a prediction towards another class (spec section 6, "corrective
interventions"): which (window, concept) cells of z to change, and to what, ranked by the first-order
gain of the margin between the two classes."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from motif.model.explanation import explain_class


@dataclass
class CorrectiveEdits:
    """The oracle's edits for b videos (predicted p, true class y).

    cells [b, E, 2] (window, concept), values [b, E], gains [b, E] (first-order margin gain;
    -inf where fewer than E beneficial edits exist, and those edits are not applied).
    """

    cells: Tensor
    values: Tensor
    gains: Tensor


def corrective_edits(z: Tensor, padding_mask: Tensor, weight: Tensor, bias: Tensor, tau: float,
                     predicted: Tensor, true: Tensor, max_edits: int = 4, low: float = 0.1,
                     high: float = 0.9) -> CorrectiveEdits:
    """Suggest up to ``max_edits`` cell edits per video that move the prediction towards the true class.

    z [b, T, C]; padding_mask [b, T]; weight [K, C]; bias [K]; predicted, true [b]. Each cell (t, c)
    may be set to the ``low`` or ``high`` quantile of concept c over the video's windows. Editing
    z[t,c] to v changes the margin logit_true − logit_pred by ≈ (v − z[t,c])·(π_true[t]·W[true,c] −
    π_pred[t]·W[pred,c]) (first order, π the window importances of each class); the value with the
    larger gain is chosen, and cells are ranked by it. With equal π and a low quantile of 0 this is
    the ranking by r_pred − r_true of the spec: lowering cells that support the wrong class, raising
    (to the high quantile) cells that support the true one.
    """
    valid = ~padding_mask
    pi_true = explain_class(z, weight, bias, tau, class_index=true, padding_mask=padding_mask).window_importance
    pi_pred = explain_class(z, weight, bias, tau, class_index=predicted, padding_mask=padding_mask).window_importance
    slope = pi_true[:, :, None] * weight[true][:, None, :] - pi_pred[:, :, None] * weight[predicted][:, None, :]
    over_time = z.masked_fill(padding_mask[:, :, None], math.nan)
    quantiles = torch.nanquantile(over_time, torch.tensor([low, high], dtype=z.dtype, device=z.device), dim=1)
    candidates = quantiles[:, :, None, :].expand(-1, -1, z.shape[1], -1)              # [2, b, T, C]
    gains = (candidates - z[None]) * slope[None]
    best_gain, choice = gains.max(dim=0)
    best_value = candidates.gather(0, choice[None]).squeeze(0)
    best_gain = best_gain.masked_fill(~valid[:, :, None] | (best_gain <= 0), -math.inf)
    b, t, c = z.shape
    top = best_gain.reshape(b, t * c).topk(min(max_edits, t * c), dim=1)
    cells = torch.stack([top.indices // c, top.indices % c], dim=-1)
    values = best_value.reshape(b, t * c).gather(1, top.indices)
    return CorrectiveEdits(cells=cells, values=values, gains=top.values)


def apply_cell_edits(z: Tensor, edits: CorrectiveEdits, count: int) -> Tensor:
    """z [b, T, C] with the first ``count`` beneficial edits of each video applied."""
    z = z.clone()
    b = z.shape[0]
    rows = torch.arange(b, device=z.device)
    for e in range(min(count, edits.cells.shape[1])):
        apply = torch.isfinite(edits.gains[:, e])
        t, c = edits.cells[:, e, 0], edits.cells[:, e, 1]
        z[rows, t, c] = torch.where(apply, edits.values[:, e], z[rows, t, c])
    return z
