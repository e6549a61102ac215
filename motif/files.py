"""Atomic file writes: a reader sees the old file or the new one, never a part of it.

Every write goes to a temporary file next to its target, ``.<name>[.<tag>].<pid>.tmp``, which is
synced to disk and then renamed onto the target (a rename within a folder is atomic). A process
killed mid-write leaves only its temporary file; the pid in its name lets a later run tell the
leftovers of a dead writer from the file a live one is writing (``motif.cache.store`` removes them).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temporary_path(path: str | os.PathLike[str], tag: str = "") -> Path:
    """The temporary file a write of ``path`` goes to: ``.<name>[.<tag>].<pid>.tmp`` in the same folder.

    ``tag`` tells writers apart that may share a pid (processes on different hosts writing one folder).
    """
    path = Path(path)
    return path.with_name(".".join(["", path.name, *([tag] if tag else []), str(os.getpid()), "tmp"]))


@contextmanager
def atomic_write(path: str | os.PathLike[str], tag: str = "") -> Iterator[Path]:
    """Yield the temporary path to write ``path``'s new content to; when the block ends without an
    error, the file is synced to disk and renamed onto ``path``. On an error it is removed and the
    target keeps its old content (or stays absent)."""
    path = Path(path)
    temporary = temporary_path(path, tag)
    try:
        yield temporary
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see ``atomic_write``)."""
    with atomic_write(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
