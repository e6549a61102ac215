"""Embedding cache and extraction: the frozen backbone runs once per video, not once per epoch.

``motif.cache.extraction_job`` (dataset-wide extraction over Lightning processes) is imported on its own.
"""

from motif.cache.extract import (ExtractionReport, NonFiniteEmbeddingsError, VideoEmbeddings, extract_embeddings,
                                 iter_video_embeddings)
from motif.cache.store import (CACHE_FORMAT_VERSION, CacheError, CacheMissError, DamagedCacheFileError,
                               EmbeddingCache, cache_key, cache_key_fields)

__all__ = [
    "CACHE_FORMAT_VERSION", "CacheError", "CacheMissError", "DamagedCacheFileError", "EmbeddingCache",
    "ExtractionReport", "NonFiniteEmbeddingsError", "VideoEmbeddings", "cache_key", "cache_key_fields",
    "extract_embeddings", "iter_video_embeddings",
]
