"""A small command-line syntax for interventions on one video.

Concept interventions act on the concept activations z (after the bottleneck, before the
classifier); attention interventions replace the temporal attention maps of chosen concepts:

    zero:concept=NAME[|NAME...]           zero whole concepts
    zero:window=T[|T...]                  zero whole windows (T: index or range such as 3-5)
    zero:cell=T,NAME[|T,NAME...]          zero (window, concept) cells
    set:concept=NAME[|NAME...],VALUE      set to VALUE (likewise set:window=T,VALUE and set:cell=T,NAME,VALUE)
    noise:concept=NAME,STD                add N(0, STD²) noise (likewise for window and cell)
    attn:KIND:concept=NAME[|NAME...]      KIND = identity | uniform | reverse | shuffle

NAME is a concept name (case and surrounding spaces ignored) or ``#index``; windows are 0-based.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Sequence

from motif.errors import MotifError

CONCEPT_MODES = ("zero", "set", "noise")
TARGETS = ("concept", "window", "cell")
ATTENTION_KINDS = ("identity", "uniform", "reverse", "shuffle")


class InterventionSyntaxError(MotifError, ValueError):
    """An intervention string cannot be parsed or names a concept or window that does not exist."""

    def __init__(self, text: str, reason: str):
        super().__init__(f"Intervention '{text}': {reason}.", where=text,
                         hint="Syntax: zero:concept=NAME, zero:window=3, set:cell=3,NAME,0.5, noise:concept=NAME,0.2, "
                              "attn:uniform:concept=NAME.")
        self.text, self.reason = text, reason


@dataclass(frozen=True)
class InterventionSpec:
    """One parsed intervention.

    kind: "zero" | "set" | "noise" | "attention"; target: "concept" | "window" | "cell";
    concepts / windows: indices for whole-concept / whole-window edits; cells: (window, concept)
    pairs; value: the value set ("set") or the noise std ("noise"); attention: the map kind.
    """

    text: str
    kind: str
    target: str
    concepts: tuple[int, ...] = ()
    windows: tuple[int, ...] = ()
    cells: tuple[tuple[int, int], ...] = ()
    value: float = 0.0
    attention: str | None = None


def _normalise(name: str) -> str:
    return " ".join(name.strip().lower().split())


def resolve_concept(name: str, concept_names: Sequence[str], text: str) -> int:
    """Index of concept ``name`` (exact, then case/space-insensitive, or ``#index``)."""
    name = name.strip()
    if re.fullmatch(r"#\d+", name):
        index = int(name[1:])
        if index >= len(concept_names):
            raise InterventionSyntaxError(text, f"concept index {name} is out of range (the model has "
                                                f"{len(concept_names)} concepts, #0..#{len(concept_names) - 1})")
        return index
    if name in concept_names:
        return list(concept_names).index(name)
    lookup = {_normalise(c): i for i, c in enumerate(concept_names)}
    if _normalise(name) in lookup:
        return lookup[_normalise(name)]
    close = difflib.get_close_matches(_normalise(name), list(lookup), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(repr(concept_names[lookup[c]]) for c in close)}?" if close else \
        "; list the model's concepts in explanation.json (global_importance)"
    raise InterventionSyntaxError(text, f"unknown concept {name!r}{hint}")


def _windows(field: str, num_windows: int | None, text: str) -> list[int]:
    match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", field)
    if not match:
        raise InterventionSyntaxError(text, f"window {field!r} is not a window index (0-based) or a range such as 3-5")
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    if last < first:
        raise InterventionSyntaxError(text, f"window range {field!r} is empty")
    if num_windows is not None and last >= num_windows:
        raise InterventionSyntaxError(text, f"window {last} does not exist (the video has {num_windows} windows, "
                                            f"0..{num_windows - 1})")
    return list(range(first, last + 1))


def _number(field: str, text: str, what: str) -> float:
    try:
        return float(field)
    except ValueError:
        raise InterventionSyntaxError(text, f"{what} {field.strip()!r} is not a number") from None


def parse_intervention(text: str, concept_names: Sequence[str], num_windows: int | None = None) -> InterventionSpec:
    """Parse one intervention string (see the module docstring) into an ``InterventionSpec``."""
    head, sep, args = text.partition("=")
    if not sep or not args.strip():
        raise InterventionSyntaxError(text, "expected MODE:TARGET=ARGUMENTS")
    parts = [p.strip().lower() for p in head.split(":")]
    if parts[0] == "attn":
        if len(parts) != 3 or parts[1] not in ATTENTION_KINDS or parts[2] != "concept":
            raise InterventionSyntaxError(text, f"attention interventions read attn:KIND:concept=NAME with KIND in "
                                                f"{', '.join(ATTENTION_KINDS)}")
        concepts = tuple(resolve_concept(n, concept_names, text) for n in args.split("|"))
        return InterventionSpec(text, "attention", "concept", concepts=concepts, attention=parts[1])
    if len(parts) != 2 or parts[0] not in CONCEPT_MODES or parts[1] not in TARGETS:
        raise InterventionSyntaxError(text, f"unknown intervention {head!r}; use MODE:TARGET with MODE in "
                                            f"{', '.join(CONCEPT_MODES)} (or attn:KIND) and TARGET in "
                                            f"{', '.join(TARGETS)}")
    mode, target = parts
    value = 0.0
    if mode in ("set", "noise"):
        args, comma, last = args.rpartition(",")
        if not comma or not args.strip():
            raise InterventionSyntaxError(text, f"{mode} needs a trailing ,{'VALUE' if mode == 'set' else 'STD'}")
        value = _number(last, text, "value" if mode == "set" else "noise std")
        if mode == "noise" and value < 0:
            raise InterventionSyntaxError(text, "the noise std must be >= 0")
    items = [item for item in args.split("|")]
    if target == "concept":
        concepts = tuple(resolve_concept(n, concept_names, text) for n in items)
        return InterventionSpec(text, mode, target, concepts=concepts, value=value)
    if target == "window":
        windows = tuple(t for item in items for t in _windows(item, num_windows, text))
        return InterventionSpec(text, mode, target, windows=windows, value=value)
    cells = []
    for item in items:
        window, comma, name = item.partition(",")
        if not comma:
            raise InterventionSyntaxError(text, f"cell {item!r} must read WINDOW,CONCEPT")
        concept = resolve_concept(name, concept_names, text)
        cells.extend((t, concept) for t in _windows(window, num_windows, text))
    return InterventionSpec(text, mode, target, cells=tuple(cells), value=value)


def parse_interventions(texts: Sequence[str], concept_names: Sequence[str],
                        num_windows: int | None = None) -> list[InterventionSpec]:
    """Parse several intervention strings; at most one attention kind may be given."""
    specs = [parse_intervention(t, concept_names, num_windows) for t in texts]
    kinds = {s.attention for s in specs if s.kind == "attention"}
    if len(kinds) > 1:
        raise InterventionSyntaxError(" ".join(texts),
                                      f"give one attention kind at a time (got {', '.join(sorted(kinds))})")
    return specs
