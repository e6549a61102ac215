"""The temporal concept bottleneck (MoTIF), its interventions and the exact explanation math.

The names below are imported on first use, so ``motif.model.variants`` (the registry of variants)
can be read without loading torch.
"""

from motif.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "motif.model.ablations": ("ConceptMixer", "FullAttentionBlock", "SpaceTimeBlock", "attention_heads"),
    "motif.model.attention": ("ConceptTemporalAttention", "attention_maps", "fast_attention"),
    "motif.model.block_stack": ("BlockStackEncoder",),
    "motif.model.blocks": ("ConceptFFN", "ConceptTemporalBlock"),
    "motif.model.bottleneck": ("BottleneckOutput", "TemporalConceptBottleneck"),
    "motif.model.evidence": ("EvidencePooling", "channel_names", "fold_views"),
    "motif.model.explanation": ("Explanation", "explain", "explain_class"),
    "motif.model.heads": ("ConceptActivation", "NonNegativeLinear"),
    "motif.model.interventions": ("ATTENTION_KINDS", "CONCEPT_MODES", "AttentionIntervention", "ConceptIntervention"),
    "motif.model.pooling": ("key_validity", "lse_pool"),
    "motif.model.positional": ("cached_sinusoidal_encoding", "sinusoidal_encoding"),
    "motif.model.variants": ("ATTENTION_IMPLEMENTATIONS", "MODEL_VARIANTS", "ModelVariant"),
})
