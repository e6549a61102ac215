"""The concept encoder of the block variants: positional encoding, a stack of temporal blocks, the
concept head (spec section 3)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable

from torch import Tensor, nn

from motif.model.heads import ConceptActivation
from motif.model.positional import cached_sinusoidal_encoding

if TYPE_CHECKING:
    from motif.model.interventions import AttentionIntervention


class BlockStackEncoder(nn.Module):
    """Standardised activations X [B, T, C] -> concept channels z [B, T, C] (one view, "now").

    h = Drop(X + PE) (sinusoidal, any T) -> the L blocks in order -> LayerNorm over C ->
    z = max(0, softplus(h·α + β) − ln 2) (``ConceptActivation``). Each block gives one attention map
    per layer when asked for (its own kind: per concept [B, C, T, T], per head, or None).
    """

    views = ("now",)

    def __init__(self, num_concepts: int, blocks: Iterable[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(blocks)
        self.final_norm = nn.LayerNorm(num_concepts)
        self.concept_head = ConceptActivation(num_concepts)

    @property
    def attention_map_names(self) -> tuple[str, ...]:
        """What the maps ``return_attention`` gives are, one per layer."""
        return tuple(f"layer {i + 1} of {len(self.layers)}" for i in range(len(self.layers)))

    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """The block variants read the standardised X alone: nothing to store."""

    def forward(self, x: Tensor, key_valid: Tensor | None, *, impl: str = "fast", return_attention: bool = False,
                intervention: AttentionIntervention | None = None, query_valid: Tensor | None = None,
                dropout: nn.Module | None = None) -> tuple[Tensor, list[Tensor] | None]:
        """x [B, T, C] -> (z [B, T, C], the layers' maps or None). key_valid / query_valid [B, T] bool or
        None (every window valid); ``dropout`` acts on X + PE during training. An attention intervention
        with S alternative selections per video gives S·B rows (``AttentionIntervention.fan_out``)."""
        padding_mask = None if query_valid is None else ~query_valid
        h = x + cached_sinusoidal_encoding(x.shape[1], x.shape[2], dtype=x.dtype, device=x.device)
        if dropout is not None:
            h = dropout(h)
        attentions = []
        for layer in self.layers:
            h, attention = layer(h, padding_mask, key_valid, impl=impl, return_attention=return_attention,
                                 attention_intervention=intervention)
            attentions.append(attention)
            if intervention is not None and padding_mask is not None:   # the rows may be S·B now
                padding_mask, key_valid = (intervention.fan_out(m) for m in (padding_mask, key_valid))
        z = self.concept_head(self.final_norm(h))
        return z, attentions if return_attention else None
