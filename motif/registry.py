"""Named choices: a registry maps a name (what a config key or argument says) to an entry (what the
name stands for: a factory, a loader, capabilities, a description).

Entries keep their registration order (the order in which choices are listed to users). Looking up
an unknown name raises ``UnknownChoiceError``, which lists the choices and suggests the closest one.
An entry may refer to its implementation as ``"package.module:attribute"`` so that a registry of
names stays light to import; ``resolve`` imports the implementation on first use.
"""

from __future__ import annotations

import difflib
from importlib import import_module
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

from motif.errors import MotifError

T = TypeVar("T")


class UnknownChoiceError(MotifError, ValueError):
    """A name that no entry of a registry has. ``choices`` are the registered names, ``suggestion``
    the closest of them (or None)."""

    def __init__(self, kind: str, name: object, choices: tuple[str, ...], key: str | None = None) -> None:
        self.kind, self.name, self.choices, self.key = kind, name, choices, key
        close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.5)
        self.suggestion = close[0] if close else None
        where = f" ({key})" if key else ""
        super().__init__(f"unknown {kind} {name!r}{where}; {choices_hint(choices, self.suggestion)}", where=key,
                         hint="")


def choices_hint(choices: tuple[str, ...], suggestion: str | None) -> str:
    """``choose one of a, b, c.`` and, when there is one, `` Did you mean 'b'?``"""
    hint = f"choose one of {', '.join(choices)}."
    return f"{hint} Did you mean '{suggestion}'?" if suggestion else hint


class Registry(Generic[T]):
    """Entries of one kind by name, in registration order.

    ``kind`` names the entries in messages ("model variant"); ``key`` is the config key whose values
    are the names ("model.variant"), if one is; ``entries`` are registered in their order. ``registry[name]`` returns the entry or raises
    ``UnknownChoiceError``; iterating yields the names.
    """

    def __init__(self, kind: str, key: str | None = None, entries: Mapping[str, T] | None = None) -> None:
        self.kind, self.key = kind, key
        self._entries: dict[str, T] = {}
        for name, entry in (entries or {}).items():
            self.register(name, entry)

    def register(self, name: str, entry: T) -> T:
        """Add ``entry`` under ``name`` (a new name) and return the entry."""
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownChoiceError(self.kind, name, self.names(), self.key) from None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(tuple(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._entries)})"


def resolve(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """The callable ``target`` itself, or the attribute a ``"package.module:attribute"`` string names
    (imported now)."""
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    if not module or not attribute:
        raise ValueError(f"{target!r} is not a 'package.module:attribute' reference")
    return getattr(import_module(module), attribute)
