"""motif: interpretable video classification with temporal concept bottlenecks (MoTIF).

Library layout: ``motif.video`` (windows and decoding), ``motif.data`` (annotations, splits, synthetic
data), ``motif.backbone`` / ``motif.concepts`` / ``motif.cache`` (open_clip, concept banks, embedding
cache), ``motif.model`` (the bottleneck, interventions, the exact decomposition), ``motif.training``
(Lightning module, runs, checkpoints) and ``motif.explain`` (reports, faithfulness). The command-line
tools in ``tools/`` are thin scripts over these.
"""

__version__ = "0.1.0"
