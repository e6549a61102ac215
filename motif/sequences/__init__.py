"""Concept sequences, the layer between the embedding cache and its consumers (training, explanation,
evaluation): the one ``ConceptSequence`` type, padding and collation, length-sorted batching, and
``motif.sequences.prepare`` (a run config -> standardised concept sequences of every split; imported on
its own because it loads the backbone)."""

from motif.sequences.batching import (
                                      LengthBucketBatchSampler,
                                      SequenceDataset,
                                      ShardedEvalSampler,
                                      collate_sequences,
                                      length_sorted_batches,
                                      pad_sequences,
)
from motif.sequences.sequence import ConceptSequence, SequenceBatch

__all__ = [
    "ConceptSequence", "LengthBucketBatchSampler", "SequenceBatch", "SequenceDataset", "ShardedEvalSampler",
    "collate_sequences", "length_sorted_batches", "pad_sequences",
]
