"""What the synthetic world is made of: objects, concepts, classes and the geometry that defines them.

The classes come in time-mirrored pairs: both members of a pair contain the same things, only their
order or direction differs ("red circle then blue square" vs "blue square then red circle",
left-to-right vs right-to-left, growing vs shrinking, appearing vs disappearing), so a model that
ignores time cannot tell them apart. Geometry is expressed in fractions of the frame side.
"""

from __future__ import annotations

from dataclasses import dataclass

WORLD_NAME = "motif-synthetic-world"
WORLD_FORMAT_VERSION = 2

# Object concepts: phrase -> (shape kind, RGB colour).
OBJECTS: dict[str, tuple[str, tuple[int, int, int]]] = {
    "red circle": ("circle", (225, 40, 40)),
    "blue square": ("square", (50, 90, 240)),
    "green triangle": ("triangle", (40, 200, 70)),
    "yellow star": ("star", (245, 220, 40)),
    "purple diamond": ("diamond", (170, 70, 215)),
    "white cross": ("cross", (235, 235, 235)),
    "orange hexagon": ("hexagon", (250, 140, 30)),
    "cyan circle": ("circle", (40, 215, 225)),
}
DISTRACTORS: tuple[str, ...] = ("white cross", "orange hexagon", "cyan circle")
LEFT_SIDE, RIGHT_SIDE, LARGE_SHAPE, SMALL_SHAPE = (
    "on the left side", "on the right side", "large shape", "small shape")
SCENE_CONCEPTS: tuple[str, ...] = (LEFT_SIDE, RIGHT_SIDE, LARGE_SHAPE, SMALL_SHAPE)
WORLD_CONCEPTS: tuple[str, ...] = tuple(OBJECTS) + SCENE_CONCEPTS

# Geometry of the scene concepts (fractions of the frame side).
LEFT_EDGE = 0.28          # an object whose centre is left of this is "on the left side"
RIGHT_EDGE = 0.72         # ... right of this is "on the right side"
LARGE_RADIUS = 0.18       # radius >= this: "large shape"
SMALL_RADIUS = 0.08       # radius <= this: "small shape"
MIN_VISIBLE_FRACTION = 0.5  # an object counts as visible when at least half of its pixels show


@dataclass(frozen=True)
class WorldClass:
    """One class of the world.

    ``concepts`` are the class-defining concepts (most important first): only what tells the class
    from the others, never an object that is visible all the time; ``evidence_concepts`` the subset
    whose timing decides between the class and its ``mirror`` (the windows that hold the evidence of
    the class are the windows where one of them is visible).
    """

    name: str
    pattern: str
    reverse: bool
    mirror: str
    concepts: tuple[str, ...]
    evidence_concepts: tuple[str, ...]


WORLD_CLASSES: tuple[WorldClass, ...] = (
    WorldClass("red circle then blue square", "sequence", False, "blue square then red circle",
               ("red circle", "blue square"), ("red circle", "blue square")),
    WorldClass("blue square then red circle", "sequence", True, "red circle then blue square",
               ("blue square", "red circle"), ("red circle", "blue square")),
    WorldClass("green triangle moving left to right", "traverse", False,
               "green triangle moving right to left",
               (LEFT_SIDE, RIGHT_SIDE), (LEFT_SIDE, RIGHT_SIDE)),
    WorldClass("green triangle moving right to left", "traverse", True,
               "green triangle moving left to right",
               (RIGHT_SIDE, LEFT_SIDE), (LEFT_SIDE, RIGHT_SIDE)),
    WorldClass("yellow star growing", "grow", False, "yellow star shrinking",
               (LARGE_SHAPE, SMALL_SHAPE), (LARGE_SHAPE, SMALL_SHAPE)),
    WorldClass("yellow star shrinking", "grow", True, "yellow star growing",
               (SMALL_SHAPE, LARGE_SHAPE), (LARGE_SHAPE, SMALL_SHAPE)),
    WorldClass("purple diamond appearing", "appear", False, "purple diamond disappearing",
               ("purple diamond", SMALL_SHAPE), ("purple diamond", SMALL_SHAPE)),
    WorldClass("purple diamond disappearing", "appear", True, "purple diamond appearing",
               ("purple diamond", SMALL_SHAPE), ("purple diamond", SMALL_SHAPE)),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in WORLD_CLASSES)
