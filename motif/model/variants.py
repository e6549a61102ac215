"""The model's named choices: the variants of the temporal bottleneck (``model.variant``) with their
capabilities, and the attention implementations (``model.attention_impl``).

Light to import (no torch): an entry names its implementation as ``"package.module:attribute"``, and
the bottleneck resolves it when it builds a model. A new variant is its block module plus one
``MODEL_VARIANTS.register`` call (here, or in the user's own code before the model is built).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from motif.registry import Registry

MODEL_OPTIONS = ("num_layers", "head_dim", "ffn_hidden", "dropout")


@dataclass(frozen=True)
class ModelVariant:
    """What a value of ``model.variant`` builds and what its explanations offer.

    Exactly one of ``block`` and ``encoder`` is set (a callable or a ``"module:attribute"`` reference):

    - ``block``: one temporal layer, called as ``block(num_concepts, **options)``. The bottleneck stacks
      ``num_layers`` of them between the positional encoding and the concept head
      (``motif.model.block_stack.BlockStackEncoder``). A block maps ``(x [B, T, C], padding_mask [B, T]
      or None, key_valid [B, T] or None, *, impl, return_attention, attention_intervention)`` to
      ``(x [B, T, C], attention maps or None)``.
    - ``encoder``: the whole concept encoder X [B, T, C] -> z [B, T, V·C], called as
      ``encoder(num_concepts, **options)``; its interface is the one ``BlockStackEncoder`` has
      (``forward``, ``views``, ``attention_map_names``, ``set_input_statistics``).

    options: the model options (of ``MODEL_OPTIONS``) passed to the factory, as keywords.
    display_name: the name shown in run summaries and figures.
    per_concept_maps: the attention maps are one [T, T] map per concept, [B, C, T, T] (not per head).
    attention_interventions: interventions that replace a concept's attention maps apply.
    max_layers: the largest ``model.num_layers`` the variant takes (None: no limit).
    """

    display_name: str
    description: str
    block: Callable[..., Any] | str | None = None
    encoder: Callable[..., Any] | str | None = None
    options: tuple[str, ...] = ("head_dim", "ffn_hidden", "dropout")
    per_concept_maps: bool = True
    attention_interventions: bool = True
    max_layers: int | None = None

    def __post_init__(self) -> None:
        if (self.block is None) == (self.encoder is None):
            raise ValueError(f"model variant {self.display_name!r}: set exactly one of block and encoder")
        unknown = sorted(set(self.options) - set(MODEL_OPTIONS))
        if unknown:
            raise ValueError(f"model variant {self.display_name!r}: unknown options {unknown}; the model options "
                             f"are {', '.join(MODEL_OPTIONS)}")


MODEL_VARIANTS: Registry[ModelVariant] = Registry("model variant", key="model.variant")
MODEL_VARIANTS.register("motif", ModelVariant(
    "MoTIF", "per-concept temporal attention and per-concept FFN (the published block)",
    block="motif.model.blocks:ConceptTemporalBlock"))
MODEL_VARIANTS.register("full", ModelVariant(
    "full attention", "ablation: multi-head attention over time that mixes concepts; per-head maps",
    block="motif.model.ablations:FullAttentionBlock", options=("dropout",), per_concept_maps=False,
    attention_interventions=False))
MODEL_VARIANTS.register("space_time", ModelVariant(
    "MoTIF-ST", "attention across concepts at each window, then the MoTIF block (gives up concept isolation)",
    block="motif.model.ablations:SpaceTimeBlock"))
MODEL_VARIANTS.register("evidence", ModelVariant(
    "evidence bottleneck", "each concept's own evidence pooled over time, views now / before / after; "
                           "num_layers 0 keeps the view 'now' only, 1 adds the temporal views",
    encoder="motif.model.evidence:evidence_encoder", options=("num_layers",), max_layers=1))


ATTENTION_IMPLEMENTATIONS: Registry[str] = Registry("attention implementation", key="model.attention_impl", entries={
    "fast": "scaled_dot_product_attention; the [B, C, T, T] maps are never materialised",
    "explicit": "scores, masked softmax and maps written out (the same numbers)",
})
