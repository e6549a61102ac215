"""Skipped videos: a report of bad videos (path + reason), saved as ``skipped.json``.

Dataset-level code never stops because of one bad video: it records the video here, goes on, and
warns once at the end with the count.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import Iterator

from motif.files import atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SkippedVideo:
    """A video that was skipped: its path, why, its id and the error type (e.g. ``CorruptVideoError``)."""

    path: str
    reason: str
    video_id: str = ""
    error: str = ""


class SkipReport:
    """Collects :class:`SkippedVideo` entries; ``save`` writes them as JSON."""

    def __init__(self) -> None:
        self._entries: list[SkippedVideo] = []
        self._warned = False

    def add(self, path: str | PathLike[str], reason: str, video_id: str = "", error: str = "") -> SkippedVideo:
        entry = SkippedVideo(path=str(path), reason=reason, video_id=video_id, error=error)
        self._entries.append(entry)
        return entry

    @property
    def entries(self) -> list[SkippedVideo]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[SkippedVideo]:
        return iter(list(self._entries))

    def to_dict(self) -> dict:
        return {"count": len(self._entries), "videos": [asdict(entry) for entry in self._entries]}

    def save(self, path: str | PathLike[str]) -> Path:
        """Write the report as JSON (atomically: a temporary file, then a rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    def warn_once_summary(self, saved_to: str | PathLike[str] | None = None) -> bool:
        """Log one warning with the number of skipped videos (the first time there are any).

        Returns True if it warned. ``saved_to`` names the JSON file in the message.
        """
        if self._warned or not self._entries:
            return False
        self._warned = True
        first = self._entries[0]
        where = f"; details in {saved_to}" if saved_to is not None else ""
        logger.warning("skipped %d bad video(s) (first: %s: %s)%s", len(self._entries), first.path,
                       first.reason, where)
        return True
