"""Typed errors for annotation and split files. Each names the file (and line), the reason and the fix."""

from __future__ import annotations

from os import PathLike


class AnnotationError(ValueError):
    """An annotation or split file is wrong. ``file`` and ``line`` (1-based line, or entry number in
    JSON files) locate the fault; either may be None when the fault is not in one place."""

    default_hint = "fix the annotation file"

    def __init__(self, file: str | PathLike[str] | None, line: int | None, reason: str,
                 hint: str | None = None) -> None:
        self.file = None if file is None else str(file)
        self.line = line
        self.reason = reason
        self.hint = self.default_hint if hint is None else hint
        super().__init__(self.file, line, reason, self.hint)

    def __str__(self) -> str:
        where = self.file or "annotations"
        if self.line is not None:
            where = f"{where}:{self.line}"
        message = f"{where}: {self.reason}"
        return f"{message} ({self.hint})" if self.hint else message

    def __reduce__(self):
        return type(self), (self.file, self.line, self.reason, self.hint)


class UnknownClassError(AnnotationError):
    """A line names a class (or class index) that is not in the dataset's class list."""

    default_hint = "check the class list and the label column (integer labels are 0-based unless stated)"


class DuplicateEntryError(AnnotationError):
    """The same video appears twice in one split, or in two splits."""

    default_hint = "remove the repeated line; a video must appear once, in one split"


class SplitFileNotFoundError(AnnotationError):
    """A split or annotation file that the dataset format needs does not exist."""

    default_hint = "check the dataset root and the split number, or pass the file's path explicitly"
