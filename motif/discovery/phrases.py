"""Candidate concept phrases: normalisation, provenance and near-duplicate merging.

A candidate is one normalised phrase together with where it came from: the vocabulary file, and
the classes and videos whose proposals named it. Normalisation makes "The red circles", "red
circle" and "a Red circle." one candidate: lower case, single spaces, surrounding punctuation and a
leading article removed, the last word singular. Near-duplicates ("blue square" / "blue box") are
merged with the backbone's text tower exactly as a concept bank is de-duplicated (spec section 2:
greedy in candidate order, cosine >= ``concepts.similarity_threshold``); every merge is logged and
recorded, naming the dropped phrase and the one it joined.

``collect_candidates`` orders the phrases proposed for more videos first, then by first appearance
(proposals in class order, then the vocabulary file in its own order); selection re-orders phrases
with equal proposal counts by how well the backbone detects them. The earlier phrase of a
near-duplicate pair names the merged candidate.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from torch import Tensor

from motif.concepts import near_duplicate_keep

log = logging.getLogger(__name__)

ARTICLES = ("a", "an", "the")
MAX_WORDS = 8
_INVARIANT_ENDINGS = ("ss", "us", "is", "ous")


def singular(word: str) -> str:
    """Simple English singular of a (lower-case) noun: ``circles`` -> ``circle``, ``boxes`` -> ``box``,
    ``berries`` -> ``berry``; words ending in ss / us / is / ous and short words stay as they are."""
    if len(word) <= 3 or not word.isalpha() or word.endswith(_INVARIANT_ENDINGS):
        return word
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes", "sses", "zes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def normalize_phrase(text: str) -> str:
    """The merge key and the written form of a phrase ('' when nothing is left).

    Lower case, single spaces, quotes / bullets / trailing punctuation removed, a leading article
    dropped, the last word made singular.
    """
    words = re.sub(r"[\"'`*_#•\u2022\[\]{}()]+", " ", text.lower()).replace("-", " ").split()
    words = [w.strip(".,;:!?") for w in words]
    words = [w for w in words if w]
    while words and (words[0] in ARTICLES or re.fullmatch(r"\d+[.)]?", words[0])):
        words = words[1:]
    if not words:
        return ""
    words[-1] = singular(words[-1])
    return " ".join(words)


@dataclass
class Candidate:
    """One normalised phrase and its provenance.

    classes: how many proposals of each class named it; videos: the videos whose proposals named it;
    forms: the phrase as it was written, with counts; merged: phrases merged into this one.
    """

    phrase: str
    first_seen: int
    in_vocabulary: bool = False
    classes: Counter = field(default_factory=Counter)
    videos: list[str] = field(default_factory=list)
    forms: Counter = field(default_factory=Counter)
    merged: list[dict] = field(default_factory=list)

    @property
    def proposals(self) -> int:
        """Number of proposals (responses) that named this phrase."""
        return sum(self.classes.values())

    def absorb(self, other: "Candidate", cosine: float) -> None:
        """Take over the provenance of a near-duplicate."""
        self.in_vocabulary = self.in_vocabulary or other.in_vocabulary
        self.classes.update(other.classes)
        self.videos.extend(v for v in other.videos if v not in self.videos)
        self.forms.update(other.forms)
        self.merged.append({"phrase": other.phrase, "cosine": round(cosine, 4)})

    def provenance(self) -> dict:
        return {
            "in_vocabulary": self.in_vocabulary,
            "proposals": self.proposals,
            "classes": dict(self.classes),
            "videos": list(self.videos),
            "written_as": dict(self.forms),
            "merged": list(self.merged),
        }


def collect_candidates(proposals: Iterable[dict], vocabulary: Iterable[str] = ()) -> list[Candidate]:
    """Candidates from proposals (dicts with ``class``, ``video_id`` (None in text mode) and
    ``concepts``) and vocabulary phrases, in candidate order (see the module docstring)."""
    by_phrase: dict[str, Candidate] = {}

    def add(text: str) -> Candidate | None:
        phrase = normalize_phrase(text)
        if not phrase or len(phrase.split()) > MAX_WORDS:
            return None
        if phrase not in by_phrase:
            by_phrase[phrase] = Candidate(phrase, len(by_phrase))
        candidate = by_phrase[phrase]
        candidate.forms[" ".join(text.split())] += 1
        return candidate

    for proposal in proposals:
        named = set()
        for text in proposal["concepts"]:
            candidate = add(text)
            if candidate is None or candidate.phrase in named:
                continue
            named.add(candidate.phrase)
            candidate.classes[proposal["class"]] += 1
            if proposal.get("video_id") and proposal["video_id"] not in candidate.videos:
                candidate.videos.append(proposal["video_id"])
    for text in vocabulary:
        candidate = add(text)
        if candidate is not None:
            candidate.in_vocabulary = True
    return sorted(by_phrase.values(), key=lambda c: (-c.proposals, c.first_seen))


def merge_near_duplicates(candidates: list[Candidate], text_embeddings: Tensor, threshold: float
                          ) -> tuple[list[Candidate], list[int], list[dict]]:
    """Merge near-duplicate candidates (text cosine >= threshold), greedily in candidate order.

    text_embeddings [C, D] aligned with ``candidates``. Returns the kept candidates (provenance of
    the merged ones added), their indices into ``candidates``, and one record per dropped phrase
    ``{"phrase", "merged_into", "cosine"}`` (each also logged).
    """
    keep, merged_into = near_duplicate_keep(text_embeddings, threshold, len(candidates))
    unit = text_embeddings.float() / text_embeddings.float().norm(dim=-1, keepdim=True).clamp_min(1e-12)
    records = []
    for dropped, target in sorted(merged_into.items()):
        cosine = float(unit[dropped] @ unit[target])
        candidates[target].absorb(candidates[dropped], cosine)
        records.append({"phrase": candidates[dropped].phrase, "merged_into": candidates[target].phrase,
                        "cosine": round(cosine, 4)})
        log.info("Merged '%s' into '%s' (text cosine %.3f >= %.2f)", candidates[dropped].phrase,
                 candidates[target].phrase, cosine, threshold)
    return [candidates[i] for i in keep], keep, records
