"""Embedding cache and extraction: the frozen backbone runs once per video, not once per epoch.

``motif.cache.run`` (dataset-wide extraction over Lightning processes) is imported on its own.
"""

from motif.cache.extract import (ExtractionReport, NonFiniteEmbeddingsError, VideoEmbeddings, extract_embeddings,
                                 iter_video_embeddings)
from motif.cache.settings import video_window_settings
from motif.cache.sources import (
    ConceptSequence,
    StreamingConceptSource,
    concept_inputs,
    fit_standardizer_from_cache,
    fit_standardizer_streaming,
    load_cached_sequences,
)
from motif.cache.store import (
    CACHE_FORMAT_VERSION,
    CacheError,
    CacheMissError,
    DamagedCacheFileError,
    EmbeddingCache,
    cache_key,
    cache_key_fields,
)

__all__ = [
    "CACHE_FORMAT_VERSION",
    "CacheError",
    "CacheMissError",
    "DamagedCacheFileError",
    "NonFiniteEmbeddingsError",
    "ConceptSequence",
    "EmbeddingCache",
    "ExtractionReport",
    "StreamingConceptSource",
    "VideoEmbeddings",
    "cache_key",
    "cache_key_fields",
    "concept_inputs",
    "extract_embeddings",
    "fit_standardizer_from_cache",
    "fit_standardizer_streaming",
    "iter_video_embeddings",
    "load_cached_sequences",
    "video_window_settings",
]
