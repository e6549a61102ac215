"""Video records, dataset splits, and seeded stratified carving of validation splits."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

from motif.data.errors import AnnotationError, DuplicateEntryError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class VideoRecord:
    """One labelled video. ``video_id`` is unique within a dataset (the path relative to the video
    root without extension, or the dataset's own id) and keys caches; ``label`` is a 0-based class
    index; ``split`` is one of ``"train"``, ``"val"``, ``"test"``."""

    video_id: str
    path: str
    label: int
    split: str

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"VideoRecord {self.video_id!r}: split must be one of {SPLITS}, got {self.split!r}")
        if not isinstance(self.label, int) or isinstance(self.label, bool) or self.label < 0:
            raise ValueError(f"VideoRecord {self.video_id!r}: label must be a non-negative int, got {self.label!r}")


@dataclass
class DatasetSplits:
    """Train / validation / test records and the human-readable class names (index = label)."""

    train: list[VideoRecord]
    val: list[VideoRecord]
    test: list[VideoRecord]
    class_names: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __getitem__(self, split: str) -> list[VideoRecord]:
        if split not in SPLITS:
            raise KeyError(f"unknown split {split!r}; expected one of {SPLITS}")
        return getattr(self, split)

    def all_records(self) -> list[VideoRecord]:
        return [*self.train, *self.val, *self.test]

    def counts(self) -> dict[str, int]:
        return {split: len(self[split]) for split in SPLITS}

    def validate(self) -> "DatasetSplits":
        """Check labels, split fields, unique ids and disjoint splits; returns self."""
        seen: dict[str, str] = {}
        seen_paths: dict[str, str] = {}
        for split in SPLITS:
            for record in self[split]:
                if record.split != split:
                    raise ValueError(f"record {record.video_id!r} is in the {split} list but says split={record.split!r}")
                if record.label >= self.num_classes:
                    raise AnnotationError(None, None, f"video {record.video_id!r} has label {record.label}, but "
                                                      f"there are {self.num_classes} classes")
                for key, registry in ((record.video_id, seen), (record.path, seen_paths)):
                    if key in registry:
                        where = split if registry[key] == split else f"{registry[key]} and {split}"
                        raise DuplicateEntryError(None, None, f"video {key!r} appears twice ({where})")
                    registry[key] = split
        return self


def _stable_key(seed: int, video_id: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x1f{video_id}".encode(), digest_size=8).digest()


def stratified_split(records: Sequence[VideoRecord], fraction: float, seed: int,
                     split: str) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Move about ``fraction`` of each class to ``split``: returns ``(kept, moved)``.

    Per class of ``n`` videos, ``round(n * fraction)`` move, at least one and at most ``n - 1``
    when ``n >= 2`` (classes with one video stay). Which videos move depends only on ``seed`` and
    the video ids (a stable hash), not on the order of ``records``; both lists keep input order.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    by_class: dict[int, list[VideoRecord]] = defaultdict(list)
    for record in records:
        by_class[record.label].append(record)
    moved_ids: set[str] = set()
    if fraction > 0:
        for members in by_class.values():
            count = len(members)
            take = min(max(round(count * fraction), 1), count - 1) if count >= 2 else 0
            ranked = sorted(members, key=lambda record: _stable_key(seed, record.video_id))
            moved_ids.update(record.video_id for record in ranked[:take])
    kept = [record for record in records if record.video_id not in moved_ids]
    moved = [replace(record, split=split) for record in records if record.video_id in moved_ids]
    return kept, moved


def carve_validation(records: Sequence[VideoRecord], fraction: float,
                     seed: int = 0) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Stratified, seeded validation split carved from TRAINING records: ``(train, val)``.

    Refuses test records: model selection on test data makes the reported numbers optimistic.
    """
    test_ids = [record.video_id for record in records if record.split == "test"]
    if test_ids:
        raise ValueError(f"carve_validation: {len(test_ids)} test records given (e.g. {test_ids[0]!r}); "
                         f"a validation split is carved from the training split only")
    return stratified_split(records, fraction, seed, "val")


def records_by_split(records: Iterable[VideoRecord], class_names: list[str]) -> DatasetSplits:
    """Group records by their ``split`` field."""
    groups: dict[str, list[VideoRecord]] = {split: [] for split in SPLITS}
    for record in records:
        groups[record.split].append(record)
    return DatasetSplits(groups["train"], groups["val"], groups["test"], class_names)
