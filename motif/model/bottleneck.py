"""The temporal concept bottleneck (spec section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from motif.model.attention import ATTENTION_IMPLS
from motif.model.blocks import ConceptTemporalBlock
from motif.model.dropout import KeyedDropout
from motif.model.evidence import EvidencePooling, channel_names
from motif.model.heads import ConceptActivation, NonNegativeLinear
from motif.model.interventions import AttentionIntervention, ConceptIntervention
from motif.model.pooling import key_validity, lse_pool
from motif.model.positional import cached_sinusoidal_encoding
from motif.model.variants import FullAttentionBlock, SpaceTimeBlock

VARIANTS = ("motif", "full", "space_time", "evidence")


@dataclass
class BottleneckOutput:
    """What the bottleneck returns. Padded windows hold 0 in ``concepts`` and ``window_logits``."""

    concepts: Tensor                        # z [B, T, C·V], per-window concept channels (>= 0; V = 1 but for
                                            # variant "evidence", whose channels are views of the concepts)
    window_logits: Tensor                   # ℓ [B, T, K], per-window class scores
    logits: Tensor                          # [B, K], LSE-pooled ℓ over valid windows (inverse temperature τ)
    pooled_concepts: Tensor                 # [B, C·V], LSE-pooled z over valid windows
    attentions: list[Tensor] | None = None  # per layer [B, C, T, T] (variant "full": [B, heads, T, T];
                                            # variant "evidence": per temporal view [B, C, T, T])


class TemporalConceptBottleneck(nn.Module):
    """MoTIF: standardised concept activations [B, T, C] -> per-window concepts, class scores, logits.

    x = X + PE (sinusoidal, any T) -> dropout -> L temporal blocks -> LayerNorm over C ->
    z = max(0, softplus(x·α + β) − ln 2) -> ℓ = z Wᵀ + b per window -> logits = (1/τ)·LSE_t(τ·ℓ).

    variant: "motif" (per-concept temporal attention, ``ConceptTemporalBlock``), "full" (channel-mixing
    multi-head attention ablation, ``FullAttentionBlock``) or "space_time" (MoTIF-ST, a
    ``ConceptMixer`` before each temporal block; gives up concept isolation) or "evidence"
    (``EvidencePooling``: no positional encoding, no LayerNorm; each concept's own non-negative evidence
    pooled over time by attention whose scores depend on time only through a learned relative-position
    bias, views now / before / after, a monotone head; z is a non-decreasing function of the concept's own
    evidence, 0 without evidence and constant over identical windows. Its z has 3·C channels, view-major;
    num_layers 0 keeps only the view "now", 1 adds the temporal views; head_dim and ffn_hidden do not
    apply. Call ``set_input_statistics`` with the standardiser's statistics before training). head_dim and ffn_hidden
    size the per-concept blocks; the "full" block has its own (heads from ``attention_heads``, FFN 4C).
    attention_impl: "fast" never materialises [B, C, T, T] (scaled_dot_product_attention);
    "explicit" writes the maps out. Both give the same numbers; ``return_attention=True`` and
    attention interventions always use the explicit path.

    Non-negative classifier: ``classifier`` is a ``NonNegativeLinear`` (weight [K, C], bias [K]) kept
    W >= 0 by projection, as in the published recipe: call ``clamp_classifier_()`` after every
    optimiser step. A projection (rather than a parametrisation such as W = softplus(V)) keeps exact
    zeros reachable, so sparse classifiers stay sparse and Σ|W| is a plain sum.
    """

    def __init__(self, num_concepts: int, num_classes: int, num_layers: int = 1, head_dim: int = 1,
                 dropout: float = 0.1, tau: float = 1.0, variant: str = "motif", ffn_hidden: int = 1,
                 attention_impl: str = "fast"):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"model.variant must be one of {VARIANTS}, got {variant!r}")
        if attention_impl not in ATTENTION_IMPLS:
            raise ValueError(f"model.attention_impl must be one of {ATTENTION_IMPLS}, got {attention_impl!r}")
        if num_concepts < 1 or num_classes < 1 or num_layers < 0:
            raise ValueError(f"need num_concepts >= 1, num_classes >= 1, num_layers >= 0; got {num_concepts}, "
                             f"{num_classes}, {num_layers}")
        if not tau > 0:
            raise ValueError(f"model.tau is an inverse temperature and must be > 0, got {tau}")
        self.num_concepts, self.num_classes, self.num_layers = num_concepts, num_classes, num_layers
        self.variant, self.attention_impl, self.tau = variant, attention_impl, float(tau)
        self.input_dropout = KeyedDropout(dropout)
        if variant == "evidence":
            if num_layers > 1:
                raise ValueError(f"variant 'evidence' has one temporal pooling stage: num_layers must be 0 (view "
                                 f"'now' only) or 1 (views now, before, after), got {num_layers}")
            self.evidence = EvidencePooling(num_concepts, temporal=num_layers == 1)
            self.layers = nn.ModuleList()
        else:
            self.layers = nn.ModuleList(self._make_layer(head_dim, ffn_hidden, dropout) for _ in range(num_layers))
            self.final_norm = nn.LayerNorm(num_concepts)
            self.concept_head = ConceptActivation(num_concepts)
        self.classifier = NonNegativeLinear(num_concepts * self.num_views, num_classes)

    @property
    def views(self) -> tuple[str, ...]:
        """What each block of C channels of z is: ("now",) for the published variants."""
        return self.evidence.views if self.variant == "evidence" else ("now",)

    @property
    def num_views(self) -> int:
        return len(self.views)

    @property
    def num_attention_maps(self) -> int:
        """How many [C, T, T] maps per video ``return_attention`` gives (layers, or temporal views)."""
        return self.num_views - 1 if self.variant == "evidence" else self.num_layers

    def channel_names(self, concept_names: list[str] | tuple[str, ...]) -> list[str]:
        """Names of the C·V channels of z (the concept names themselves when V = 1)."""
        return channel_names(concept_names, self.views)

    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Give the bottleneck the standardiser's training statistics μ, σ [C]. Variant "evidence" reads
        the raw evidence max(0, a)/σ = max(0, X + μ/σ) and stores μ/σ; the other variants read X only."""
        if self.variant == "evidence":
            self.evidence.set_input_statistics(mean, std)

    def _make_layer(self, head_dim: int, ffn_hidden: int, dropout: float) -> nn.Module:
        if self.variant == "full":
            return FullAttentionBlock(self.num_concepts, dropout)
        if self.variant == "space_time":
            return SpaceTimeBlock(self.num_concepts, head_dim, ffn_hidden, dropout)
        return ConceptTemporalBlock(self.num_concepts, head_dim, ffn_hidden, dropout)

    def _check_inputs(self, x: Tensor, padding_mask: Tensor | None) -> None:
        """Shapes only: nothing here reads tensor values (no host-device synchronisation)."""
        if x.dim() != 3 or x.shape[-1] != self.num_concepts or x.shape[1] < 1:
            raise ValueError(f"bottleneck input must be [B, T, C] with T >= 1 and C = {self.num_concepts} "
                             f"(num_concepts), got {list(x.shape)}")
        if padding_mask is not None and (padding_mask.shape != x.shape[:2] or padding_mask.dtype != torch.bool):
            raise ValueError(f"padding_mask must be bool [B, T] = {list(x.shape[:2])} (True = padding), got "
                             f"{padding_mask.dtype} {list(padding_mask.shape)}")

    @torch.no_grad()
    def clamp_classifier_(self) -> None:
        """Project the classifier weight onto W >= 0 (call after every optimiser step)."""
        self.classifier.clamp_()

    def encode_concepts(self, x: Tensor, padding_mask: Tensor | None = None, *, return_attention: bool = False,
                        attention_intervention: AttentionIntervention | None = None
                        ) -> tuple[Tensor, list[Tensor] | None]:
        """x [B, T, C] -> (z [B, T, C·V] before masking, per-layer maps or None); mask [B, T] bool or None.

        An attention intervention with S alternative selections per video gives S·B rows
        (``AttentionIntervention.fan_out``)."""
        key_valid = None if padding_mask is None else key_validity(padding_mask)
        impl = "explicit" if return_attention else self.attention_impl
        if self.variant == "evidence":
            return self.evidence(x, key_valid, impl=impl, return_attention=return_attention,
                                 intervention=attention_intervention,
                                 query_valid=None if padding_mask is None else ~padding_mask,
                                 dropout=self.input_dropout)
        position = cached_sinusoidal_encoding(x.shape[1], x.shape[2], dtype=x.dtype, device=x.device)
        h = self.input_dropout(x + position)
        attentions = []
        for layer in self.layers:
            h, attention = layer(h, padding_mask, key_valid, impl=impl, return_attention=return_attention,
                                 attention_intervention=attention_intervention)
            attentions.append(attention)
            if attention_intervention is not None and padding_mask is not None:   # the rows may be S·B now
                padding_mask, key_valid = (attention_intervention.fan_out(m) for m in (padding_mask, key_valid))
        z = self.concept_head(self.final_norm(h))
        return z, attentions if return_attention else None

    def readout(self, z: Tensor, padding_mask: Tensor | None = None,
                attentions: list[Tensor] | None = None) -> BottleneckOutput:
        """Concept channels z [B, T, C·V] -> per-window class scores and pooled logits.

        Exposed so that edited concepts can be re-classified and re-pooled without re-encoding.
        """
        if padding_mask is not None:
            z = z.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        window_logits = self.classifier(z)
        if padding_mask is not None:
            window_logits = window_logits.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        return BottleneckOutput(concepts=z, window_logits=window_logits,
                                logits=lse_pool(window_logits, padding_mask, self.tau),
                                pooled_concepts=lse_pool(z, padding_mask, self.tau), attentions=attentions)

    def forward(self, x: Tensor, padding_mask: Tensor | None = None, *, return_attention: bool = False,
                concept_intervention: ConceptIntervention | None = None,
                attention_intervention: AttentionIntervention | None = None) -> BottleneckOutput:
        """x [B, T, C] standardised concept activations; padding_mask [B, T] bool (True = padding).

        The outputs have S·B rows under an attention intervention with S alternative selections per video."""
        self._check_inputs(x, padding_mask)
        z, attentions = self.encode_concepts(x, padding_mask, return_attention=return_attention,
                                             attention_intervention=attention_intervention)
        if attention_intervention is not None and padding_mask is not None:
            padding_mask = attention_intervention.fan_out(padding_mask)
        if concept_intervention is not None:
            z = concept_intervention.apply(z, padding_mask, views=self.num_views)
        return self.readout(z, padding_mask, attentions)
