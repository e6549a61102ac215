"""Concept activations and their per-concept standardisation (spec section 2)."""

from __future__ import annotations

from typing import Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from motif.errors import MotifError


def concept_activations(window_embeddings: Tensor, text_embeddings: Tensor) -> Tensor:
    """a = max(0, cos(e_t, text_c)): window_embeddings [..., T, D], text_embeddings [C, D] -> [..., T, C] float32."""
    if window_embeddings.shape[-1] != text_embeddings.shape[-1]:
        raise ValueError(
            f"window embeddings have dimension {window_embeddings.shape[-1]} but concept text embeddings "
            f"{text_embeddings.shape[-1]}; were they made with the same backbone?"
        )
    windows = F.normalize(window_embeddings.float(), dim=-1)
    texts = F.normalize(text_embeddings.float().to(windows.device), dim=-1)
    return (windows @ texts.T).clamp_min_(0.0)


class NonFiniteActivationsError(MotifError, ValueError):
    """Concept activations hold NaN or inf; the message names the videos."""


class ConceptStandardizer(nn.Module):
    """Per-concept standardisation X = (a - mean) / std with statistics of the TRAINING windows.

    Fit over all windows of all training videos (``fit``, or ``update`` + ``finalize``), then apply
    the same statistics to validation, test and inference. std is the population std, clamped to
    >= ``min_std``. The buffers ``mean`` [C], ``std`` [C] and ``num_windows`` [] are its state dict,
    so the statistics travel with the model checkpoint.
    """

    mean: Tensor
    std: Tensor
    num_windows: Tensor

    def __init__(self, num_concepts: int, min_std: float = 1e-6) -> None:
        super().__init__()
        self.num_concepts = num_concepts
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(num_concepts))
        self.register_buffer("std", torch.ones(num_concepts))
        self.register_buffer("num_windows", torch.zeros((), dtype=torch.float64))
        self._moments: Tensor | None = None

    @property
    def fitted(self) -> bool:
        return bool(self.num_windows > 0)

    def update(self, activations: Tensor, padding_mask: Tensor | None = None) -> None:
        """Accumulate windows: activations [T, C] or [B, T, C]; padding_mask [B, T] (True = padding)."""
        if activations.shape[-1] != self.num_concepts:
            raise ValueError(f"activations have {activations.shape[-1]} concepts, the standardizer {self.num_concepts}")
        a = activations.detach().to(torch.float64).reshape(-1, self.num_concepts)
        if padding_mask is not None:
            a = a[~padding_mask.reshape(-1).to(a.device)]
        if self._moments is None:
            self._moments = torch.zeros(3, self.num_concepts, dtype=torch.float64, device=a.device)
        self._moments[0] += a.shape[0]
        self._moments[1] += a.sum(0)
        self._moments[2] += (a * a).sum(0)

    def finalize(self, reduce: Callable[[Tensor], Tensor] | None = None) -> "ConceptStandardizer":
        """Turn the accumulated moments into mean / std.

        reduce: sums the float64 moments [3, C] over processes in distributed runs
        (e.g. ``lambda t: fabric.all_reduce(t, reduce_op="sum")``), so every rank gets the same stats.
        """
        moments = self._moments if self._moments is not None else torch.zeros(3, self.num_concepts, dtype=torch.float64)
        if reduce is not None:
            moments = reduce(moments)
        count = float(moments[0, 0]) if self.num_concepts else 0.0
        if count <= 0:
            raise ValueError("ConceptStandardizer saw no windows; fit it on the training videos' concept activations.")
        mean = moments[1] / count
        var = (moments[2] / count - mean * mean).clamp_min(0.0)
        if not bool(torch.isfinite(mean).all() and torch.isfinite(var).all()):
            raise NonFiniteActivationsError("ConceptStandardizer statistics are not finite: some fitted activations "
                                            "hold NaN or inf; fit it on finite activations.")
        self.mean.copy_(mean.to(self.mean))
        self.std.copy_(var.sqrt().clamp_min(self.min_std).to(self.std))
        self.num_windows.fill_(count)
        self._moments = None
        return self

    def fit(self, activations: Iterable[Tensor], names: Sequence[str] | None = None) -> "ConceptStandardizer":
        """Fit on an iterable of per-video activations [T, C] (all windows of all training videos).

        Raises NonFiniteActivationsError naming the videos (``names``, aligned with ``activations``; else
        their positions) whose activations hold NaN or inf, which would poison every statistic.
        """
        self._moments = None
        bad = []
        for i, a in enumerate(activations):
            if not bool(torch.isfinite(a).all()):
                bad.append(names[i] if names is not None else f"#{i}")
            self.update(a)
        if bad:
            self._moments = None
            shown = ", ".join(bad[:10]) + (f" and {len(bad) - 10} more" if len(bad) > 10 else "")
            raise NonFiniteActivationsError(
                f"Concept activations of {len(bad)} training video(s) hold NaN or inf: {shown}; the standardiser "
                "refuses non-finite statistics. Re-embed or remove these videos.")
        return self.finalize()

    def forward(self, activations: Tensor) -> Tensor:
        """[..., C] -> [..., C] standardised."""
        if not self.fitted:
            raise RuntimeError("ConceptStandardizer is not fitted; fit it on the training windows first.")
        return (activations - self.mean) / self.std

    def inverse(self, standardised: Tensor) -> Tensor:
        """[..., C] standardised -> [..., C] raw activations (``forward`` undone)."""
        if not self.fitted:
            raise RuntimeError("ConceptStandardizer is not fitted; fit it on the training windows first.")
        return standardised * self.std + self.mean

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor], min_std: float = 1e-6) -> "ConceptStandardizer":
        """Rebuild from ``state_dict()`` (a dict of plain tensors)."""
        standardizer = cls(int(state["mean"].shape[0]), min_std)
        standardizer.load_state_dict(state)
        return standardizer
