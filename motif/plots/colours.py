"""One colour per concept, the same in every view (report.html, PNG figures, wandb).

A concept whose name holds a colour word ("red circle", "a blue square") is drawn in that colour;
further concepts with the same colour word get darker and lighter shades of it so that they stay
apart. Every other concept gets a palette colour chosen by its index in the bank, so a concept keeps
its colour whichever subset of concepts a view shows. ``signed_term`` prints the terms of the
decomposition with real signs ("10.60 − 0.145", never "10.60 + -0.145").
"""

from __future__ import annotations

import re
from typing import Sequence

# Colour words and the colour they are drawn in (white and light colours darkened to show on white).
COLOUR_WORDS = {
    "red": "#d62728", "blue": "#1f5fbf", "green": "#2ca02c", "yellow": "#e0b400", "orange": "#ff7f0e",
    "purple": "#7b3fb5", "violet": "#8a2be2", "pink": "#e377c2", "magenta": "#c2189b", "cyan": "#17becf",
    "teal": "#138a8a", "brown": "#8c564b", "black": "#222222", "white": "#a8a8a8", "grey": "#7f7f7f",
    "gray": "#7f7f7f", "gold": "#c9a227", "silver": "#9fa6ad", "navy": "#1b2a6b", "beige": "#c8b48a",
}
# Palette of the other concepts: distinct hues, none of them a plain colour-word colour.
PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#b279a2", "#9d755d", "#72b7b2", "#eeca3b", "#ff9da6",
           "#79706e", "#5f4b8b", "#88a61b", "#d67195", "#3b8bc2", "#c9734a", "#2f9e8f", "#a05195"]
_SHADES = (0.0, -0.28, 0.3, -0.45, 0.45)


def _shade(colour: str, amount: float) -> str:
    """``colour`` mixed with black (amount < 0) or white (amount > 0)."""
    rgb = [int(colour[i:i + 2], 16) for i in (1, 3, 5)]
    target = 255 if amount > 0 else 0
    mixed = [round(v + (target - v) * abs(amount)) for v in rgb]
    return "#" + "".join(f"{v:02x}" for v in mixed)


def colour_word(name: str) -> str | None:
    """The first colour word of a concept name, or None."""
    for word in re.findall(r"[a-z]+", name.lower()):
        if word in COLOUR_WORDS:
            return word
    return None


def concept_colours(concept_names: Sequence[str]) -> list[str]:
    """A hex colour per concept, [C], in bank order (see the module docstring)."""
    colours, seen = [], {}
    for index, name in enumerate(concept_names):
        word = colour_word(name)
        if word is None:
            colours.append(PALETTE[index % len(PALETTE)])
            continue
        count = seen.get(word, 0)
        seen[word] = count + 1
        colours.append(_shade(COLOUR_WORDS[word], _SHADES[count % len(_SHADES)]))
    return colours


def signed_term(value: float, digits: int = 3) -> str:
    """``value`` as a term of a sum: "+ 0.145" or "− 0.145" (a real minus sign)."""
    return f"{'−' if value < 0 else '+'} {abs(value):.{digits}f}"
