"""Typed errors for annotation and split files. Each names the file (and line), the reason and the fix."""

from __future__ import annotations

from os import PathLike

from motif.errors import MotifError


class AnnotationError(MotifError, ValueError):
    """An annotation or split file is wrong. ``file`` and ``line`` (1-based line, or entry number in
    JSON files) locate the fault; either may be None when the fault is not in one place. ``str()`` reads
    ``"<file>:<line>: <reason> (<hint>)"``."""

    default_hint = "fix the annotation file"

    def __init__(self, file: str | PathLike[str] | None, line: int | None, reason: str,
                 hint: str | None = None) -> None:
        location = None if file is None else str(file) if line is None else f"{file}:{line}"
        super().__init__(reason, where=location, hint=hint)
        self.file = None if file is None else str(file)
        self.line = line
        self.reason = reason


class UnknownClassError(AnnotationError):
    """A line names a class (or class index) that is not in the dataset's class list."""

    default_hint = "check the class list and the label column (integer labels are 0-based unless stated)"


class DuplicateEntryError(AnnotationError):
    """The same video appears twice in one split, or in two splits."""

    default_hint = "remove the repeated line; a video must appear once, in one split"


class SplitFileNotFoundError(AnnotationError):
    """A split or annotation file that the dataset format needs does not exist."""

    default_hint = "check the dataset root and the split number, or pass the file's path explicitly"
