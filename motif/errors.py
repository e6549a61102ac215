"""The error family of user mistakes: :class:`MotifError`.

A MotifError means the user can fix it: a file, a config key or a command-line argument is wrong
(``where``), and ``hint`` says what to do. Every typed error of the package (ConfigError,
AnnotationError, VideoError, BackboneError, CacheError, CheckpointError, ...) derives from it, most
also from the builtin exception callers may already catch (ValueError, FileNotFoundError, ...).
Anything else that escapes is a bug. The command-line tools print a MotifError as one ``error:``
paragraph and exit with status 2; a bug keeps its traceback (``motif.cli``).

This module is the bottom layer: it imports nothing of motif.
"""

from __future__ import annotations

import re
from os import PathLike
from typing import Any

SENTENCE_END = (".", "?", "!")
HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class defined in Python, not a builtin


class MotifError(Exception):
    """A user mistake. ``message`` says what is wrong, ``where`` names the file, config key or argument at
    fault (None when the message is not about one place), ``hint`` what to do (the class's
    ``default_hint`` unless given; "" for none).

    ``str()`` reads as one paragraph: ``"<where>: <message> <hint>"``. The ``where`` prefix is left out
    when the message already names it; the hint follows the message as a sentence when the message
    ends one, else in parentheses; line breaks become spaces.
    """

    default_hint: str = ""

    def __init__(self, message: str, *, where: str | PathLike[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.where = None if where is None else str(where)
        self.hint = self.default_hint if hint is None else hint

    def __str__(self) -> str:
        text = self.message
        if self.where and self.where not in text:
            text = f"{self.where}: {text}"
        if self.hint:
            text = f"{text} {self.hint}" if text.endswith(SENTENCE_END) else f"{text} ({self.hint})"
        return re.sub(r"\s*\n\s*", " ", text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Picklable across DataLoader and extraction worker processes, whatever a subclass's __init__ takes.
        return _restore, (type(self), self.args, self.__dict__)


def _restore(cls: type[MotifError], args: tuple, state: dict[str, Any]) -> MotifError:
    """Rebuild a pickled MotifError without calling ``cls.__init__`` (subclasses take other arguments):
    allocate it with the ``__new__`` of its builtin layout base, as ``cls(...)`` would."""
    base = cls
    while base.__flags__ & HEAP_TYPE:
        base = base.__base__
    error = base.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class ConfigError(MotifError, ValueError):
    """A config file or override is invalid; the message names the key or file and the fix."""


class RunDirectoryError(MotifError, FileNotFoundError):
    """A run directory (``output_dir/name`` of tools/train.py) lacks a file that reading the run needs:
    config.yaml, metrics.json or a split's best.ckpt."""
