"""motif.stats: ROC-AUC per column."""

from __future__ import annotations

import numpy as np
import torch

from motif.stats import roc_auc_per_column


def test_roc_auc_per_column_matches_pairwise_definition():
    rng = np.random.default_rng(0)
    labels = rng.random((200, 3)) < 0.3
    scores = np.round(rng.normal(size=(200, 3)) + labels, 1)  # rounding makes ties
    expected = []
    for c in range(3):
        pos, neg = scores[labels[:, c], c], scores[~labels[:, c], c]
        diff = pos[:, None] - neg[None, :]
        expected.append(((diff > 0) + 0.5 * (diff == 0)).mean())  # ties count half
    auc = roc_auc_per_column(torch.from_numpy(scores), torch.from_numpy(labels))
    assert auc.shape == (3,)
    np.testing.assert_allclose(auc.numpy(), expected, rtol=1e-6)
    perfect = torch.from_numpy(labels.astype(np.float64))
    assert roc_auc_per_column(perfect, torch.from_numpy(labels))[0] == 1.0
    assert roc_auc_per_column(-perfect, torch.from_numpy(labels))[0] == 0.0
    without_negatives = roc_auc_per_column(torch.from_numpy(scores[:, :1]), torch.ones(200, 1, dtype=torch.bool))
    assert torch.isnan(without_negatives[0])
