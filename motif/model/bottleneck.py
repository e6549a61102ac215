"""The temporal concept bottleneck (spec section 3)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from motif.model.block_stack import BlockStackEncoder
from motif.model.dropout import KeyedDropout
from motif.model.evidence import channel_names
from motif.model.heads import NonNegativeLinear
from motif.model.interventions import AttentionIntervention, ConceptIntervention
from motif.model.pooling import key_validity, lse_pool
from motif.model.variants import ATTENTION_IMPLEMENTATIONS, MODEL_VARIANTS, ModelVariant
from motif.registry import resolve

LEGACY_ENCODER_KEYS = {"layers.": "encoder.layers.", "final_norm.": "encoder.final_norm.",
                       "concept_head.": "encoder.concept_head.", "evidence.": "encoder."}


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

    X -> concept encoder -> z [B, T, C·V] (>= 0) -> ℓ = z Wᵀ + b per window -> logits = (1/τ)·LSE_t(τ·ℓ).

    variant: a name of ``MODEL_VARIANTS`` (``motif.model.variants``), which says how the encoder is built.
    The block variants stack ``num_layers`` temporal blocks (``BlockStackEncoder``: x = X + PE
    (sinusoidal, any T) -> dropout -> L blocks -> LayerNorm over C -> z = max(0, softplus(x·α + β) − ln 2),
    one view): "motif" (per-concept temporal attention, ``ConceptTemporalBlock``), "full" (channel-mixing
    multi-head attention ablation, ``FullAttentionBlock``, per-head maps; its heads come from
    ``attention_heads`` and its FFN is 4C, so head_dim and ffn_hidden do not apply) and "space_time"
    (MoTIF-ST, a ``ConceptMixer`` before each temporal block; gives up concept isolation). "evidence"
    (``EvidencePooling``: no positional encoding, no LayerNorm; each concept's own non-negative evidence
    pooled over time by attention whose scores depend on time only through a learned relative-position
    bias, views now / before / after, a monotone head; z is a non-decreasing function of the concept's own
    evidence, 0 without evidence and constant over identical windows. Its z has 3·C channels, view-major;
    num_layers 0 keeps only the view "now", 1 adds the temporal views; head_dim and ffn_hidden do not
    apply. Call ``set_input_statistics`` with the standardiser's statistics before training).
    attention_impl: a name of ``ATTENTION_IMPLEMENTATIONS``: "fast" never materialises [B, C, T, T]
    (scaled_dot_product_attention); "explicit" writes the maps out. Both give the same numbers;
    ``return_attention=True`` and attention interventions always use the explicit path.

    Non-negative classifier: ``classifier`` is a ``NonNegativeLinear`` (weight [K, C], bias [K]) kept
    W >= 0 by projection, as in the published recipe: call ``clamp_classifier_()`` after every
    optimiser step. A projection (rather than a parametrisation such as W = softplus(V)) keeps exact
    zeros reachable, so sparse classifiers stay sparse and Σ|W| is a plain sum.
    """

    def __init__(self, num_concepts: int, num_classes: int, num_layers: int = 1, head_dim: int = 1,
                 dropout: float = 0.1, tau: float = 1.0, variant: str = "motif", ffn_hidden: int = 1,
                 attention_impl: str = "fast"):
        super().__init__()
        spec = MODEL_VARIANTS[variant]
        ATTENTION_IMPLEMENTATIONS[attention_impl]  # an unknown name raises, listing the choices
        if num_concepts < 1 or num_classes < 1 or num_layers < 0:
            raise ValueError(f"need num_concepts >= 1, num_classes >= 1, num_layers >= 0; got {num_concepts}, "
                             f"{num_classes}, {num_layers}")
        if spec.max_layers is not None and num_layers > spec.max_layers:
            raise ValueError(f"model.num_layers is {num_layers}; variant {variant!r} takes at most {spec.max_layers} "
                             f"({spec.description})")
        if not tau > 0:
            raise ValueError(f"model.tau is an inverse temperature and must be > 0, got {tau}")
        self.num_concepts, self.num_classes, self.num_layers = num_concepts, num_classes, num_layers
        self.variant, self.attention_impl, self.tau = variant, attention_impl, float(tau)
        self.input_dropout = KeyedDropout(dropout)
        given = {"num_layers": num_layers, "head_dim": head_dim, "ffn_hidden": ffn_hidden, "dropout": dropout}
        options = {name: given[name] for name in spec.options}
        if spec.encoder is not None:
            self.encoder = resolve(spec.encoder)(num_concepts, **options)
        else:
            block = resolve(spec.block)
            self.encoder = BlockStackEncoder(num_concepts, (block(num_concepts, **options) for _ in range(num_layers)))
        self.classifier = NonNegativeLinear(num_concepts * self.num_views, num_classes)
        self.register_load_state_dict_pre_hook(_move_legacy_encoder_keys)

    @property
    def variant_spec(self) -> ModelVariant:
        """The registry entry of ``variant``: display name and capabilities (per-concept maps, ...)."""
        return MODEL_VARIANTS[self.variant]

    @property
    def views(self) -> tuple[str, ...]:
        """What each block of C channels of z is: ("now",) for the published variants."""
        return tuple(self.encoder.views)

    @property
    def num_views(self) -> int:
        return len(self.views)

    @property
    def attention_map_names(self) -> tuple[str, ...]:
        """What each [C, T, T] map of ``return_attention`` is ("layer 1 of 2", "view 'before'", ...)."""
        return tuple(self.encoder.attention_map_names)

    @property
    def num_attention_maps(self) -> int:
        """How many maps per video ``return_attention`` gives (layers, or temporal views)."""
        return len(self.attention_map_names)

    def channel_names(self, concept_names: list[str] | tuple[str, ...]) -> list[str]:
        """Names of the C·V channels of z (the concept names themselves when V = 1)."""
        return channel_names(concept_names, self.views)

    def set_input_statistics(self, mean: Tensor, std: Tensor) -> None:
        """Give the bottleneck the standardiser's training statistics μ, σ [C]. Variant "evidence" reads
        the raw evidence max(0, a)/σ = max(0, X + μ/σ) and stores μ/σ; the block variants read X only."""
        self.encoder.set_input_statistics(mean, std)

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
        return self.encoder(x, key_valid, impl=impl, return_attention=return_attention,
                            intervention=attention_intervention,
                            query_valid=None if padding_mask is None else ~padding_mask, dropout=self.input_dropout)

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


def _move_legacy_encoder_keys(module: nn.Module, state_dict: dict, prefix: str, *args) -> None:
    """State dicts written before the encoder was a submodule hold its parameters on the bottleneck
    itself (``layers.*``, ``final_norm.*``, ``concept_head.*``, ``evidence.*``): move them under ``encoder.``."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix):]
        for old, new in LEGACY_ENCODER_KEYS.items():
            if rest.startswith(old):
                state_dict[prefix + new + rest[len(old):]] = state_dict.pop(key)
                break
