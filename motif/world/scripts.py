"""Video scripts: object tracks over the frames of a video, and the sampling of class videos
(event placement, distractors) and of random scenes.

Geometry is expressed in fractions of the frame side, so the same script renders at any size.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from motif.world.config import WorldConfig
from motif.world.errors import WorldError
from motif.world.vocabulary import DISTRACTORS, OBJECTS, WORLD_CLASSES

POP_RADIUS = 0.06         # an appearing object is first shown this small
POP_FRACTION = 0.3        # ... for this fraction of the time it is visible
NORMAL_RADIUS = (0.11, 0.135)
SLOTS_Y = (0.2, 0.5, 0.8)  # vertical slots of the central column; objects of a video never share one
COLUMN_X = (0.42, 0.58)   # centre x range of objects that do not travel


@dataclass
class ObjectTrack:
    """One object over the frames of a video. Arrays are [N] (N frames), geometry in fractions."""

    concept: str
    role: str                 # "class" or "distractor"
    color: tuple[int, int, int]
    visible: np.ndarray       # [N] bool: drawn in this frame
    x: np.ndarray             # [N] float centre x
    y: np.ndarray             # [N] float centre y
    radius: np.ndarray        # [N] float

    @property
    def kind(self) -> str:
        return OBJECTS[self.concept][0]

    def reversed_in_time(self) -> "ObjectTrack":
        return ObjectTrack(self.concept, self.role, self.color, self.visible[::-1].copy(),
                           self.x[::-1].copy(), self.y[::-1].copy(), self.radius[::-1].copy())


@dataclass
class VideoScript:
    """Everything needed to render one video; tracks are drawn in list order (later on top)."""

    num_frames: int
    fps: float
    background: tuple[int, int, int]
    tracks: list[ObjectTrack]
    label: int | None = None  # index into WORLD_CLASSES; None for random scenes


def _ramp(num_frames: int, start: float, end: float, first: int, last: int) -> np.ndarray:
    """[N] value held at ``start`` until frame ``first``, linear to ``end`` at ``last``, then held."""
    t = np.arange(num_frames, dtype=np.float64)
    span = max(last - first, 1)
    return start + (end - start) * np.clip((t - first) / span, 0.0, 1.0)


def _interval(num_frames: int, first: int, last: int) -> np.ndarray:
    """[N] bool, True on frames [first, last)."""
    mask = np.zeros(num_frames, dtype=bool)
    mask[max(first, 0):min(last, num_frames)] = True
    return mask


def _track(concept: str, role: str, rng: np.random.Generator, visible: np.ndarray,
           x: np.ndarray | float, y: np.ndarray | float, radius: np.ndarray | float) -> ObjectTrack:
    n = visible.shape[0]
    base = np.array(OBJECTS[concept][1], dtype=np.int64)
    color = tuple(int(c) for c in np.clip(base + rng.integers(-15, 16, size=3), 0, 255))

    def per_frame(value: np.ndarray | float) -> np.ndarray:
        return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,)).copy()

    return ObjectTrack(concept, role, color, visible, per_frame(x), per_frame(y), per_frame(radius))


def _slot_position(slot: int, rng: np.random.Generator) -> tuple[float, float]:
    return float(rng.uniform(*COLUMN_X)), SLOTS_Y[slot] + float(rng.uniform(-0.03, 0.03))


def _random_span(n: int, rng: np.random.Generator, low: float, high: float) -> tuple[int, int]:
    """[first, last) frames of a random length in [low, high]·n at a uniformly random place."""
    length = max(2, int(rng.uniform(low, high) * n))
    first = int(rng.integers(0, n - length + 1))
    return first, first + length


def _pop_in_radius(n: int, first: int, last: int, radius: float) -> np.ndarray:
    """[N] radius: POP_RADIUS for the first POP_FRACTION of frames [first, last), then ``radius``."""
    values = np.full(n, radius)
    values[first:first + max(1, int(POP_FRACTION * (last - first)))] = POP_RADIUS
    return values


def _class_tracks(pattern: str, n: int, rng: np.random.Generator, placement: str = "random"
                  ) -> tuple[list[ObjectTrack], list[int]]:
    """Tracks of the forward member of a class pair, and the slots they leave free."""
    slots = [int(s) for s in rng.permutation(len(SLOTS_Y))]
    all_frames = np.ones(n, dtype=bool)
    if placement == "random":
        return _randomly_placed_tracks(pattern, n, rng, slots)
    if pattern == "sequence":
        first = _interval(n, int(rng.uniform(0.0, 0.1) * n), int(rng.uniform(0.4, 0.55) * n))
        second = _interval(n, int(rng.uniform(0.45, 0.6) * n), int(np.ceil(rng.uniform(0.9, 1.0) * n)))
        x1, y1 = _slot_position(slots[0], rng)
        x2, y2 = _slot_position(slots[1], rng)
        tracks = [
            _track("red circle", "class", rng, first, x1, y1, rng.uniform(*NORMAL_RADIUS)),
            _track("blue square", "class", rng, second, x2, y2, rng.uniform(*NORMAL_RADIUS)),
        ]
        return tracks, slots[2:]
    if pattern == "traverse":
        start, end = int(rng.uniform(0.0, 0.15) * n), int(rng.uniform(0.85, 1.0) * n)
        x = _ramp(n, 0.1, 0.9, start, end)
        _, y = _slot_position(slots[0], rng)
        return [_track("green triangle", "class", rng, all_frames, x, y,
                       rng.uniform(*NORMAL_RADIUS))], slots[1:]
    if pattern == "grow":
        start, end = int(rng.uniform(0.0, 0.2) * n), int(rng.uniform(0.8, 1.0) * n)
        radius = _ramp(n, 0.05, 0.22, start, end)
        x, y = float(rng.uniform(0.46, 0.54)), float(rng.uniform(0.46, 0.54))
        return [_track("yellow star", "class", rng, all_frames, x, y, radius)], [0, 2]
    if pattern == "appear":
        first = int(rng.uniform(0.35, 0.6) * n)
        x, y = _slot_position(slots[0], rng)
        return [_track("purple diamond", "class", rng, _interval(n, first, n), x, y,
                       _pop_in_radius(n, first, n, rng.uniform(*NORMAL_RADIUS)))], slots[1:]
    raise WorldError(f"unknown class pattern {pattern!r}")


def _randomly_placed_tracks(pattern: str, n: int, rng: np.random.Generator, slots: list[int]
                            ) -> tuple[list[ObjectTrack], list[int]]:
    """Placement "random": each event is visible only for a random stretch at a random place."""
    if pattern == "sequence":
        lengths = rng.uniform(0.15, 0.3, size=2) * n
        gap = rng.uniform(0.0, 0.15) * n
        start = rng.uniform(0.0, n - lengths.sum() - gap)
        first = _interval(n, int(start), int(start + lengths[0]))
        second = _interval(n, int(start + lengths[0] + gap), int(np.ceil(start + lengths.sum() + gap)))
        x1, y1 = _slot_position(slots[0], rng)
        x2, y2 = _slot_position(slots[1], rng)
        return [_track("red circle", "class", rng, first, x1, y1, rng.uniform(*NORMAL_RADIUS)),
                _track("blue square", "class", rng, second, x2, y2, rng.uniform(*NORMAL_RADIUS))], slots[2:]
    if pattern == "traverse":
        first, last = _random_span(n, rng, 0.35, 0.6)
        _, y = _slot_position(slots[0], rng)
        return [_track("green triangle", "class", rng, _interval(n, first, last), _ramp(n, 0.1, 0.9, first, last - 1),
                       y, rng.uniform(*NORMAL_RADIUS))], slots[1:]
    if pattern == "grow":
        first, last = _random_span(n, rng, 0.35, 0.6)
        x, y = float(rng.uniform(0.46, 0.54)), float(rng.uniform(0.46, 0.54))
        return [_track("yellow star", "class", rng, _interval(n, first, last), x, y,
                       _ramp(n, 0.05, 0.22, first, last - 1))], [0, 2]
    if pattern == "appear":
        first, last = _random_span(n, rng, 0.3, 0.6)
        x, y = _slot_position(slots[0], rng)
        return [_track("purple diamond", "class", rng, _interval(n, first, last), x, y,
                       _pop_in_radius(n, first, last, rng.uniform(*NORMAL_RADIUS)))], slots[1:]
    raise WorldError(f"unknown class pattern {pattern!r}")


def _distractor_track(concept: str, slot: int, n: int, rng: np.random.Generator) -> ObjectTrack:
    """A distractor that stays, blinks, shows up for a while, or wobbles in its slot."""
    behaviour = ("static", "blink", "interval", "wobble")[int(rng.integers(4))]
    x, y = _slot_position(slot, rng)
    radius = rng.uniform(*NORMAL_RADIUS)
    visible = np.ones(n, dtype=bool)
    xs: np.ndarray | float = x
    if behaviour == "blink":
        period = int(rng.integers(3, 7))
        visible = ((np.arange(n) + int(rng.integers(2 * period))) // period) % 2 == 0
    elif behaviour == "interval":
        length = int(rng.uniform(0.3, 0.7) * n)
        first = int(rng.integers(0, n - length + 1))
        visible = _interval(n, first, first + length)
    elif behaviour == "wobble":
        phase, period = rng.uniform(0, 2 * np.pi), rng.uniform(12, 30)
        xs = 0.5 + 0.06 * np.sin(2 * np.pi * np.arange(n) / period + phase)
    return _track(concept, "distractor", rng, visible, xs, y, radius)


def _background(rng: np.random.Generator) -> tuple[int, int, int]:
    return tuple(int(c) for c in rng.integers(10, 60, size=3))


def sample_num_frames(rng: np.random.Generator, config: WorldConfig) -> int:
    """Length of a video in frames, a whole number of seconds in [min_seconds, max_seconds].

    Whole seconds: at 8 fps, windows of 8 frames tile every video exactly, so window sampling
    treats the start and the end of a video alike (a short last window would over-sample the end
    and let an order-blind model read the order of a mirrored pair from time averages)."""
    return int(round(int(rng.integers(config.min_seconds, config.max_seconds + 1)) * config.fps))


def sample_class_script(label: int, rng: np.random.Generator, config: WorldConfig = WorldConfig()
                        ) -> VideoScript:
    """Draw a video of class ``label``.

    A class and its mirror consume the random stream identically: with equal generator states
    their class tracks are exact time reverses of each other and their distractors are identical.
    """
    if not 0 <= label < len(WORLD_CLASSES):
        raise WorldError(f"label={label}: must be in [0, {len(WORLD_CLASSES)})")
    world_class = WORLD_CLASSES[label]
    n = sample_num_frames(rng, config)
    background = _background(rng)
    tracks, free_slots = _class_tracks(world_class.pattern, n, rng, config.placement)
    if world_class.reverse:
        tracks = [t.reversed_in_time() for t in tracks]
    num_distractors = min(config.max_distractors, len(free_slots))
    if num_distractors > 0:
        num_distractors = int(rng.integers(1, num_distractors + 1))
    names = rng.permutation(len(DISTRACTORS))[:num_distractors]
    distractors = [_distractor_track(DISTRACTORS[int(i)], free_slots[j], n, rng)
                   for j, i in enumerate(names)]
    return VideoScript(n, config.fps, background, distractors + tracks, label)


def sample_random_scene(rng: np.random.Generator, num_frames: int, fps: float = 8.0,
                        max_objects: int = 4) -> VideoScript:
    """A scene without class structure: any objects, anywhere, at any size, moving, growing,
    blinking or showing up for a while. Used to teach a backbone the concepts in isolation."""
    n = num_frames
    count = int(rng.integers(1, max_objects + 1))
    concepts = [list(OBJECTS)[int(i)] for i in rng.permutation(len(OBJECTS))[:count]]
    tracks = []
    for concept in concepts:
        first, last = sorted(int(v) for v in rng.integers(0, n, size=2))
        x = _ramp(n, rng.uniform(0.08, 0.92), rng.uniform(0.08, 0.92), first, last)
        y = _ramp(n, rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), first, last)
        radius = _ramp(n, rng.uniform(0.04, 0.24), rng.uniform(0.04, 0.24), first, last)
        mode = int(rng.integers(3))
        if mode == 0:
            visible = np.ones(n, dtype=bool)
        elif mode == 1:
            length = int(rng.uniform(0.2, 0.8) * n)
            start = int(rng.integers(0, n - length + 1))
            visible = _interval(n, start, start + length)
        else:
            period = int(rng.integers(2, 8))
            visible = ((np.arange(n) + int(rng.integers(2 * period))) // period) % 2 == 0
        tracks.append(_track(concept, "distractor", rng, visible, x, y, radius))
    return VideoScript(n, fps, _background(rng), tracks, None)


