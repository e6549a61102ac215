"""Small statistics shared by training, evaluation and the synthetic world: ROC-AUC per column and
mean ± sample standard deviation."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor


def roc_auc_per_column(scores: Tensor, labels: Tensor) -> Tensor:
    """ROC-AUC of every column of ``scores`` [N, C] against boolean ``labels`` [N, C] -> [C].

    Mann-Whitney statistic with average ranks for ties (so a constant score gives 0.5). Columns
    without both positives and negatives are NaN.
    """
    if scores.shape != labels.shape or scores.dim() != 2:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} must both be [N, C]")
    columns = scores.double().t().contiguous()  # [C, N]
    positives = labels.t().bool()
    sorted_columns = columns.sort(dim=1).values
    below = torch.searchsorted(sorted_columns, columns, right=False)
    up_to = torch.searchsorted(sorted_columns, columns, right=True)
    ranks = (below + up_to + 1).double() / 2.0  # 1-based average ranks
    n_pos = positives.sum(dim=1).double()
    n_neg = positives.shape[1] - n_pos
    rank_sum = (ranks * positives).sum(dim=1)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return torch.where((n_pos > 0) & (n_neg > 0), auc, torch.full_like(auc, math.nan)).float()

def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for fewer than two values)."""
    t = torch.tensor(list(values), dtype=torch.float64)
    if t.numel() == 0:
        return math.nan, math.nan
    return float(t.mean()), float(t.std()) if t.numel() > 1 else 0.0
