"""Interventions on the bottleneck (spec section 6).

``ConceptIntervention`` edits the concept activations z [B, T, C] after the concept head and before
the classifier (the logits are then re-pooled). ``AttentionIntervention`` replaces the post-softmax
temporal maps of chosen concepts in every layer. Both are passed to
``TemporalConceptBottleneck.forward``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

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
    the rows of padded query windows are left as computed.

    The chosen concepts: ``concepts`` (the same for every video; None = all), or ``selection``, bool
    [B, C] (per video) or [S, B, C]: S alternative selections of every video, evaluated in one pass.
    With S alternatives the model's outputs have S·B rows, selection-major (row s·B + b is video b under
    selection s), and what comes before the first attention is computed once per video (``fan_out``).
    """

    kind: str
    concepts: Sequence[int] | None = None
    seed: int = 0
    selection: Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in ATTENTION_KINDS:
            raise ValueError(f"AttentionIntervention.kind must be one of {ATTENTION_KINDS}, got {self.kind!r}")
        if self.concepts is not None:
            if self.selection is not None:
                raise ValueError("AttentionIntervention: give either concepts (every video) or selection (per video)")
            object.__setattr__(self, "concepts", tuple(int(c) for c in self.concepts))
        if self.selection is not None and (self.selection.dtype != torch.bool or self.selection.dim() not in (2, 3)):
            raise ValueError(f"AttentionIntervention.selection must be bool [B, C] or [S, B, C], got "
                             f"{self.selection.dtype} {list(self.selection.shape)}")

    @property
    def alternatives(self) -> int:
        """S: how many selections each video is evaluated under (1 but for a selection [S, B, C])."""
        return self.selection.shape[0] if self.selection is not None and self.selection.dim() == 3 else 1

    def fan_out(self, rows: Tensor) -> Tensor:
        """A tensor over the B videos [B, ...] -> its S·B rows [S·B, ...], selection-major (row s·B + b = row b).

        A tensor that has S·B rows already (after the first layer) is returned as it is.
        """
        if self.alternatives == 1:
            return rows
        alternatives, videos = self.selection.shape[:2]
        if rows.shape[0] == alternatives * videos:
            return rows
        if rows.shape[0] != videos:
            raise ValueError(f"AttentionIntervention.selection is [S, B, C] = {list(self.selection.shape)}: the "
                             f"input must have B = {videos} videos, got {rows.shape[0]}")
        return rows.repeat(alternatives, *(1,) * (rows.dim() - 1))

    def concept_selection(self, rows: int, num_concepts: int, device: torch.device | str | None = None) -> Tensor:
        """The concepts whose maps are replaced in each of ``rows`` (fanned-out) rows, [rows, C] bool."""
        if self.selection is not None:
            selection = self.selection.reshape(-1, self.selection.shape[-1])
            if tuple(selection.shape) != (rows, num_concepts):
                raise ValueError(f"AttentionIntervention.selection {list(self.selection.shape)} does not fit a batch "
                                 f"of {rows // self.alternatives} videos and {num_concepts} concepts: it must be bool "
                                 f"[B, C] or [S, B, C] with B = {rows // self.alternatives}, C = {num_concepts}")
            return selection.to(device)
        selected = torch.zeros(num_concepts, dtype=torch.bool)
        if self.concepts is None:
            selected[:] = True
        else:
            _check_indices("concepts", self.concepts, num_concepts, "concept")
            selected[list(self.concepts)] = True
        return selected.to(device).expand(rows, num_concepts)

    def key_permutation(self, key_valid: Tensor) -> Tensor:
        """Key index map perm [B, T] long: valid keys are reversed or shuffled among themselves.

        With p_0 < ... < p_{L-1} the valid positions of video b, perm[b, p_i] = p_{σ(i)}: σ(i) = L-1-i
        ("reverse") or one seeded uniform random permutation per video ("shuffle", drawn for the whole
        batch at once from a CPU generator). Padded positions map to themselves.
        """
        batch, num_windows = key_valid.shape
        position = torch.arange(num_windows, device=key_valid.device).expand(batch, num_windows)
        padded_last = position + num_windows                           # sort keys that put padding last, in order
        ascending = torch.where(key_valid, position, padded_last).argsort(dim=1, stable=True)
        if self.kind == "reverse":
            order = torch.where(key_valid, -position, padded_last)
        else:
            generator = torch.Generator().manual_seed(self.seed)
            draws = torch.rand(batch, num_windows, generator=generator, dtype=torch.float64).to(key_valid.device)
            order = torch.where(key_valid, draws, 1.0 + padded_last.double())
        source = order.argsort(dim=1, stable=True)       # the valid positions in their new order, then the padding
        return torch.empty_like(ascending).scatter_(1, ascending, source)

    def apply(self, attention: Tensor, key_valid: Tensor, query_valid: Tensor) -> Tensor:
        """attention [B, C, T, T], key_valid / query_valid [B, T] bool -> edited attention [S·B, C, T, T]."""
        attention, key_valid, query_valid = (self.fan_out(t) for t in (attention, key_valid, query_valid))
        rows, num_concepts, num_windows, _ = attention.shape
        if self.kind == "identity":
            replacement = torch.eye(num_windows, dtype=attention.dtype, device=attention.device).expand_as(attention)
        elif self.kind == "uniform":
            weights = key_valid.to(attention.dtype)
            replacement = (weights / weights.sum(dim=1, keepdim=True))[:, None, None, :].expand_as(attention)
        else:
            index = self.key_permutation(key_valid)[:, None, None, :].expand_as(attention)
            replacement = attention.gather(-1, index)
        selected = self.concept_selection(rows, num_concepts, attention.device)
        edit = selected[:, :, None, None] & query_valid[:, None, :, None]
        return torch.where(edit, replacement, attention)

    def apply_to_outputs(self, out: Tensor, value: Tensor, key_valid: Tensor, query_valid: Tensor,
                         attend: Callable[[Tensor, Tensor, Tensor], Tensor]) -> Tensor:
        """The attention outputs with the maps of the chosen concepts replaced, computed for those concepts only.

        out, value [B, C, T, ...]: the unedited outputs out[b,c,t] = Σ_u A[b,c,t,u] value[b,c,u] and the
        values; key_valid / query_valid [B, T] bool. ``attend(videos, concepts, values)`` with index
        tensors [N] (rows of ``out``) and values [N, T, ...] returns Σ_u A[videos_n, concepts_n, t, u]
        values[n, u], [N, T, ...]: the unedited maps of N (video, concept) pairs applied to other values.
        Returns [S·B, C, T, ...]. No [T, T] map is needed:

        - identity: out'[t] = value[t];
        - uniform: out'[t] = Σ_u w_u value[u], w = key_valid / Σ key_valid;
        - reverse, shuffle: A'[t, u] = A[t, perm[u]], so out'[t] = Σ_u A[t, u] value[perm⁻¹[u]]: the
          unedited maps applied to the values permuted by the inverse key permutation.

        Rows of padded query windows keep ``out``, as in ``apply``.
        """
        videos = out.shape[0]
        out, value, key_valid, query_valid = (self.fan_out(t) for t in (out, value, key_valid, query_valid))
        rows, num_concepts, num_windows = value.shape[:3]
        chosen_rows, concepts = self.concept_selection(rows, num_concepts, value.device).nonzero(as_tuple=True)
        n = len(chosen_rows)
        chosen = value[chosen_rows, concepts]                              # [N, T, ...]
        trailing = (1,) * (chosen.dim() - 2)
        if self.kind == "identity":
            edited = chosen
        elif self.kind == "uniform":
            weights = key_valid[chosen_rows].to(chosen.dtype)
            weights = (weights / weights.sum(dim=1, keepdim=True)).view(n, num_windows, *trailing)
            edited = (chosen * weights).sum(dim=1, keepdim=True).expand_as(chosen)
        else:
            inverse = self.key_permutation(key_valid).argsort(dim=1)[chosen_rows]
            permuted = chosen.gather(1, inverse.view(n, num_windows, *trailing).expand_as(chosen))
            edited = attend(chosen_rows % videos, concepts, permuted)
        keep = query_valid[chosen_rows].view(n, num_windows, *trailing)
        return out.index_put((chosen_rows, concepts), torch.where(keep, edited, out[chosen_rows, concepts]))
