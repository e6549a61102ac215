"""Concept banks: ordered, de-duplicated text concepts, optionally grouped per class (spec section 2)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import torch
import torch.nn.functional as F
import yaml
from torch import Tensor

from motif.errors import MotifError

log = logging.getLogger(__name__)

BANK_SUFFIXES = (".txt", ".json", ".yaml", ".yml")


class ConceptBankError(MotifError, ValueError):
    """A concept bank file or list is invalid; the message names the file and the reason."""


class ConceptBankNotFoundError(ConceptBankError, FileNotFoundError):
    """The concept bank file does not exist."""


def normalize_concept(text: str) -> str:
    """The form used to detect exact duplicates: lower case, single spaces."""
    return " ".join(text.lower().split())


@dataclass(frozen=True)
class ConceptBank:
    """Concept phrases in bank order; ``classes_of[i]`` lists the classes concept i came from.

    Built from a file or entries, exact duplicates (case / spacing) are merged already;
    ``embed_concept_bank`` removes near-duplicates by text-embedding cosine. ``class_names`` lists the
    groups of a per-class bank in file order (empty for a flat bank).
    """

    names: list[str]
    classes_of: list[list[str]]
    source: str = ""
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.names) != len(self.classes_of):
            raise ConceptBankError(f"{len(self.names)} concept names but {len(self.classes_of)} class lists")

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    @property
    def classes(self) -> list[str]:
        """Class names of a per-class bank in file order (empty for a flat bank)."""
        if self.class_names:
            return list(self.class_names)
        seen: dict[str, None] = {}
        for group in self.classes_of:
            seen.update(dict.fromkeys(group))
        return list(seen)

    @classmethod
    def from_entries(cls, entries: list[str] | dict[str, list[str]], source: str = "") -> "ConceptBank":
        """From a flat list of phrases or a {class: [phrases]} mapping; merges exact duplicates."""
        where = f"Concept bank {source}" if source else "Concept bank"
        pairs: list[tuple[str, str | None]] = []
        if isinstance(entries, dict):
            for class_name, phrases in entries.items():
                if isinstance(phrases, str):
                    phrases = [phrases]
                if not isinstance(phrases, list):
                    raise ConceptBankError(
                        f"{where}: class '{class_name}' must map to a list of concept phrases, "
                        f"not {type(phrases).__name__}"
                    )
                for i, phrase in enumerate(phrases):
                    pairs.append((_check_phrase(phrase, f"{where}: class '{class_name}', entry {i}"), str(class_name)))
        elif isinstance(entries, list):
            for i, phrase in enumerate(entries):
                pairs.append((_check_phrase(phrase, f"{where}: entry {i}"), None))
        else:
            raise ConceptBankError(
                f"{where} must be a list of concept phrases or a mapping of class names to lists of phrases, "
                f"not {type(entries).__name__}"
            )
        names: list[str] = []
        classes_of: list[list[str]] = []
        index: dict[str, int] = {}
        for phrase, class_name in pairs:
            key = normalize_concept(phrase)
            if key in index:
                if class_name is None or class_name in classes_of[index[key]]:  # not a concept shared by classes
                    log.info("%s: dropping '%s', a duplicate of '%s'", where, phrase, names[index[key]])
            else:
                index[key] = len(names)
                names.append(" ".join(phrase.split()))
                classes_of.append([])
            group = classes_of[index[key]]
            if class_name is not None and class_name not in group:
                group.append(class_name)
        if not names:
            raise ConceptBankError(f"{where} holds no concepts; add at least one phrase.")
        class_names = [str(c) for c in entries] if isinstance(entries, dict) else []
        return cls(names, classes_of, source, class_names)

    @classmethod
    def from_file(cls, path: str | Path) -> "ConceptBank":
        """Read a bank: ``.txt`` (one phrase per line, ``#`` comments and blank lines ignored),
        ``.json`` or ``.yaml`` (a list of phrases, or {class: [phrases]})."""
        path = Path(path)
        if not path.is_file():
            raise ConceptBankNotFoundError(f"Concept bank file '{path}' does not exist", where=path,
                                           hint="set concepts.bank to a .txt, .json or .yaml file")
        if path.suffix.lower() not in BANK_SUFFIXES:
            raise ConceptBankError(f"Concept bank file '{path}' has an unsupported extension.", where=path,
                                   hint=f"Use one of {', '.join(BANK_SUFFIXES)}.")
        raw = path.read_bytes()
        if b"\x00" in raw:
            raise ConceptBankError(f"Concept bank file '{path}' is binary, not a text file of concepts.", where=path)
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConceptBankError(f"Concept bank file '{path}' is not UTF-8 text: {exc}", where=path) from exc
        suffix = path.suffix.lower()
        if suffix == ".txt":
            entries: Any = [s.strip() for s in text.splitlines() if s.strip() and not s.strip().startswith("#")]
        elif suffix == ".json":
            try:
                entries = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConceptBankError(f"Concept bank file '{path}' is not valid JSON: {exc}", where=path) from exc
        else:
            try:
                entries = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ConceptBankError(f"Concept bank file '{path}' is not valid YAML: {exc}", where=path) from exc
            if entries is None:
                entries = []
        return cls.from_entries(entries, source=f"'{path}'")

    def _merged(self, keep: list[int], merged_into: dict[int, int]) -> "ConceptBank":
        """The bank of the ``keep`` indices; each dropped concept's classes join those of the kept
        concept it is merged into (``near_duplicate_keep``'s result)."""
        classes_of = [list(self.classes_of[i]) for i in keep]
        slot = {index: j for j, index in enumerate(keep)}
        for dropped, target in merged_into.items():
            group = classes_of[slot[target]]
            group.extend(c for c in self.classes_of[dropped] if c not in group)
        return ConceptBank([self.names[i] for i in keep], classes_of, self.source, self.class_names)


def _check_phrase(phrase: Any, where: str) -> str:
    if not isinstance(phrase, str):
        raise ConceptBankError(f"{where} is {phrase!r} ({type(phrase).__name__}); concepts must be text phrases.")
    if not phrase.strip():
        raise ConceptBankError(f"{where} is an empty phrase.")
    return phrase


def near_duplicate_keep(
    text_embeddings: Tensor, threshold: float, expected: int | None = None
) -> tuple[list[int], dict[int, int]]:
    """Greedy near-duplicate removal in order.

    text_embeddings [C, D]. Returns the kept indices and, for each dropped index, the kept index it
    is most similar to.
    """
    if text_embeddings.ndim != 2 or (expected is not None and text_embeddings.shape[0] != expected):
        raise ConceptBankError(
            f"text_embeddings must be [C, D] with C = {expected} concepts, got {list(text_embeddings.shape)}"
        )
    unit = F.normalize(text_embeddings.float(), dim=-1)
    kept = torch.empty_like(unit)
    keep: list[int] = []
    merged_into: dict[int, int] = {}
    for i in range(len(unit)):
        if keep:
            sims = kept[: len(keep)] @ unit[i]
            best = int(sims.argmax())
            if float(sims[best]) >= threshold:
                merged_into[i] = keep[best]
                continue
        kept[len(keep)] = unit[i]
        keep.append(i)
    return keep, merged_into


def embed_concept_bank(
    bank: ConceptBank | str | Path, backbone: Any, similarity_threshold: float = 0.9, template: str = "{}"
) -> tuple[ConceptBank, Tensor]:
    """Embed a bank with the backbone's text tower and drop near-duplicates.

    bank: a ConceptBank or a bank file; backbone: anything with ``encode_text(list[str]) -> [M, D]``;
    template: how a phrase is put into words for the text tower (``"{}"`` = the phrase itself).
    Returns the de-duplicated bank and its text embeddings [C, D] (float32, not normalised).
    """
    if not isinstance(bank, ConceptBank):
        bank = ConceptBank.from_file(bank)
    embeddings = backbone.encode_text([template.format(name) for name in bank.names])
    keep, merged_into = near_duplicate_keep(embeddings, similarity_threshold, len(bank))
    unit = F.normalize(embeddings.float(), dim=-1)
    for dropped, kept in merged_into.items():
        log.info("Concept bank %s: dropping '%s' as a near-duplicate of '%s' (cosine %.3f >= "
                 "concepts.similarity_threshold %s)", bank.source or "(in memory)", bank.names[dropped],
                 bank.names[kept], float(unit[dropped] @ unit[kept]), similarity_threshold)
    return bank._merged(keep, merged_into), embeddings[keep]
