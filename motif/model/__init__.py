"""The temporal concept bottleneck (MoTIF), its interventions and the exact explanation math."""

from motif.model.attention import ConceptTemporalAttention, attention_maps, fast_attention
from motif.model.blocks import ConceptFFN, ConceptTemporalBlock
from motif.model.bottleneck import VARIANTS, BottleneckOutput, TemporalConceptBottleneck
from motif.model.evidence import EvidencePooling, channel_names, fold_views
from motif.model.explanation import Explanation, explain, explain_class
from motif.model.heads import ConceptActivation, NonNegativeLinear
from motif.model.interventions import ATTENTION_KINDS, CONCEPT_MODES, AttentionIntervention, ConceptIntervention
from motif.model.pooling import key_validity, lse_pool
from motif.model.positional import cached_sinusoidal_encoding, sinusoidal_encoding
from motif.model.variants import ConceptMixer, FullAttentionBlock, SpaceTimeBlock, attention_heads

__all__ = [
    "ATTENTION_KINDS", "CONCEPT_MODES", "VARIANTS", "AttentionIntervention", "BottleneckOutput", "ConceptActivation",
    "ConceptFFN", "ConceptIntervention", "ConceptMixer", "ConceptTemporalAttention", "ConceptTemporalBlock",
    "EvidencePooling", "Explanation", "FullAttentionBlock", "NonNegativeLinear", "SpaceTimeBlock",
    "TemporalConceptBottleneck", "attention_heads", "attention_maps", "cached_sinusoidal_encoding", "channel_names",
    "explain", "explain_class", "fast_attention", "fold_views", "key_validity", "lse_pool", "sinusoidal_encoding",
]
