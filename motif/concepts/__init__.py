"""Concept banks, concept activations clamp(cos, 0) and their standardisation (spec section 2)."""

from motif.concepts.activations import ConceptStandardizer, NonFiniteActivationsError, concept_activations
from motif.concepts.bank import (
    ConceptBank,
    ConceptBankError,
    ConceptBankNotFoundError,
    embed_concept_bank,
    near_duplicate_keep,
    normalize_concept,
)

__all__ = [
    "ConceptBank",
    "ConceptBankError",
    "ConceptBankNotFoundError",
    "ConceptStandardizer",
    "NonFiniteActivationsError",
    "concept_activations",
    "embed_concept_bank",
    "near_duplicate_keep",
    "normalize_concept",
]
