"""Interventions on the bottleneck (spec section 6).

``ConceptIntervention`` edits the concept activations z [B, T, C] after the concept head and before
the classifier (the logits are then re-pooled). ``AttentionIntervention`` replaces the post-softmax
temporal maps of chosen concepts in every layer. Both are passed to
``TemporalConceptBottleneck.forward``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor

CONCEPT_MODES = ("set", "zero", "noise")
ATTENTION_KINDS = ("identity", "uniform", "reverse", "shuffle")


def _check_indices(name: str, indices: Sequence[int], size: int, axis: str) -> None:
    for index in indices:
        if not 0 <= index < size:
            raise IndexError(f"intervention field '{name}': {axis} index {index} does not exist (the input has "
                             f"{size} {axis}s, indices 0..{size - 1})")


@dataclass(frozen=True, eq=False)
class ConceptIntervention:
    """Set, zero or add Gaussian noise to concept activations z.

    The edited cells are the union of: every window of ``concepts``, every concept of ``windows``,
    the (window, concept) pairs in ``cells``, and ``mask`` ([T, C] or [B, T, C] bool, True = edit;
    e.g. a different selection per video). Indices apply to every video of the batch. mode "set"
    writes ``value``, "zero" writes 0, "noise" adds N(0, std²) drawn from a generator seeded with
    ``seed`` (the same noise on every call). Padded windows stay 0 whatever the edit.
    """

    mode: str = "zero"
    concepts: Sequence[int] = ()
    windows: Sequence[int] = ()
    cells: Sequence[tuple[int, int]] = ()
    mask: Tensor | None = None
    value: float = 0.0
    std: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode not in CONCEPT_MODES:
            raise ValueError(f"ConceptIntervention.mode must be one of {CONCEPT_MODES}, got {self.mode!r}")
        if self.std < 0:
            raise ValueError(f"ConceptIntervention.std must be >= 0, got {self.std}")
        object.__setattr__(self, "concepts", tuple(int(c) for c in self.concepts))
        object.__setattr__(self, "windows", tuple(int(t) for t in self.windows))
        object.__setattr__(self, "cells", tuple((int(t), int(c)) for t, c in self.cells))

    def target_mask(self, batch: int, num_windows: int, num_concepts: int,
                    device: torch.device | str | None = None) -> Tensor:
        """The edited cells, [B, T, C] bool."""
        _check_indices("concepts", self.concepts, num_concepts, "concept")
        _check_indices("windows", self.windows, num_windows, "window")
        _check_indices("cells", [t for t, _ in self.cells], num_windows, "window")
        _check_indices("cells", [c for _, c in self.cells], num_concepts, "concept")
        target = torch.zeros(num_windows, num_concepts, dtype=torch.bool)
        target[:, list(self.concepts)] = True
        target[list(self.windows), :] = True
        if self.cells:
            windows, concepts = zip(*self.cells)
            target[list(windows), list(concepts)] = True
        target = target.to(device).expand(batch, num_windows, num_concepts)
        if self.mask is not None:
            if (self.mask.dim() not in (2, 3) or tuple(self.mask.shape[-2:]) != (num_windows, num_concepts)
                    or (self.mask.dim() == 3 and self.mask.shape[0] != batch)):
                raise ValueError(f"ConceptIntervention.mask must be [T, C] or [B, T, C] = [{batch}, {num_windows}, "
                                 f"{num_concepts}], got {list(self.mask.shape)}")
            target = target | self.mask.to(device=device, dtype=torch.bool)
        return target

    def apply(self, z: Tensor, padding_mask: Tensor | None = None, views: int = 1) -> Tensor:
        """z [B, T, C·V] -> edited z (padding_mask [B, T] bool, True = padding).

        With ``views`` V > 1 the channels of z are V view-major blocks of the C concepts (variant
        "evidence"); concept indices, cells and the mask name concepts, and every view of an edited
        concept cell is edited.
        """
        batch, num_windows, channels = z.shape
        if views < 1 or channels % views:
            raise ValueError(f"ConceptIntervention: {channels} channels are not {views} views of the same concepts")
        target = self.target_mask(batch, num_windows, channels // views, device=z.device).repeat(1, 1, views)
        if padding_mask is not None:
            target = target & ~padding_mask.unsqueeze(-1)
        if self.mode == "zero":
            return z.masked_fill(target, 0.0)
        if self.mode == "set":
            return z.masked_fill(target, self.value)
        generator = torch.Generator().manual_seed(self.seed)
        noise = torch.randn(z.shape, generator=generator, dtype=torch.float64).to(device=z.device, dtype=z.dtype)
        return z + noise * self.std * target


@dataclass(frozen=True, eq=False)
class AttentionIntervention:
    """Replace the post-softmax temporal maps A [B, C, T, T] of chosen concepts in every layer.

    kind "identity": each window attends to itself; "uniform": equal weight on every valid key;
    "reverse": the key order is flipped among the valid keys (A'[t, p_i] = A[t, p_{L-1-i}] for the
    valid positions p_0 < ... < p_{L-1}); "shuffle": the valid keys are permuted by one seeded random
    permutation per video (the same in every layer and on every call). Padded keys keep weight 0 and
    the rows of padded query windows are left as computed. ``concepts`` None means all concepts.
    """

    kind: str
    concepts: Sequence[int] | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ATTENTION_KINDS:
            raise ValueError(f"AttentionIntervention.kind must be one of {ATTENTION_KINDS}, got {self.kind!r}")
        if self.concepts is not None:
            object.__setattr__(self, "concepts", tuple(int(c) for c in self.concepts))

    def key_permutation(self, key_valid: Tensor) -> Tensor:
        """Key index map perm [B, T] long: valid keys are reversed or shuffled among themselves."""
        batch, num_windows = key_valid.shape
        permutation = torch.arange(num_windows).repeat(batch, 1)
        generator = torch.Generator().manual_seed(self.seed)
        for b, valid in enumerate(key_valid.cpu()):
            positions = valid.nonzero().squeeze(1)
            if self.kind == "reverse":
                permutation[b, positions] = positions.flip(0)
            else:
                permutation[b, positions] = positions[torch.randperm(len(positions), generator=generator)]
        return permutation.to(key_valid.device)

    def apply(self, attention: Tensor, key_valid: Tensor, query_valid: Tensor) -> Tensor:
        """attention [B, C, T, T], key_valid / query_valid [B, T] bool -> edited attention [B, C, T, T]."""
        batch, num_concepts, num_windows, _ = attention.shape
        if self.kind == "identity":
            replacement = torch.eye(num_windows, dtype=attention.dtype, device=attention.device).expand_as(attention)
        elif self.kind == "uniform":
            weights = key_valid.to(attention.dtype)
            replacement = (weights / weights.sum(dim=1, keepdim=True))[:, None, None, :].expand_as(attention)
        else:
            index = self.key_permutation(key_valid)[:, None, None, :].expand_as(attention)
            replacement = attention.gather(-1, index)
        selected = torch.zeros(num_concepts, dtype=torch.bool, device=attention.device)
        if self.concepts is None:
            selected[:] = True
        else:
            _check_indices("concepts", self.concepts, num_concepts, "concept")
            selected[list(self.concepts)] = True
        edit = selected[None, :, None, None] & query_valid[:, None, :, None]
        return torch.where(edit, replacement, attention)
