"""A synthetic video world with per-frame concept ground truth.

Small videos of coloured shapes that appear, move, blink, grow and disappear, with distractor
objects. The classes come in time-mirrored pairs: both members of a pair contain the same things,
only their order or direction differs ("red circle then blue square" vs "blue square then red
circle", left-to-right vs right-to-left, growing vs shrinking, appearing vs disappearing), so a
model that ignores time cannot tell them apart. Every frame records which concepts of the world's
concept bank are visible in it, measured on the rendered pixels (an object hidden behind another
one is not visible).

Event placement (``WorldConfig.placement``): "random" (the default) puts each class event at a random
place with a random length (and, for sequences, a random gap), so that absolute time does not tell
a class from its mirror; "fixed" keeps the earlier layout in which the first event of a class sits
in the first half of the video ("A then B" then equals "A early").

Geometry is expressed in fractions of the frame side, so the same script renders at any size.
Everything is deterministic for a seed: video ``i`` of a world is drawn from
``numpy.random.SeedSequence([seed, i])``, independent of how many worker processes render it.
"""

from __future__ import annotations

import io
import json
import multiprocessing
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

import av
import numpy as np
from PIL import Image, ImageDraw

from motif.errors import MotifError

WORLD_NAME = "motif-synthetic-world"
WORLD_FORMAT_VERSION = 2
PLACEMENTS = ("random", "fixed")

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

# Scene geometry (fractions of the frame side).
LEFT_EDGE = 0.28          # an object whose centre is left of this is "on the left side"
RIGHT_EDGE = 0.72         # ... right of this is "on the right side"
LARGE_RADIUS = 0.18       # radius >= this: "large shape"
SMALL_RADIUS = 0.08       # radius <= this: "small shape"
POP_RADIUS = 0.06         # an appearing object is first shown this small
POP_FRACTION = 0.3        # ... for this fraction of the time it is visible
NORMAL_RADIUS = (0.11, 0.135)
SLOTS_Y = (0.2, 0.5, 0.8)  # vertical slots of the central column; objects of a video never share one
COLUMN_X = (0.42, 0.58)   # centre x range of objects that do not travel
MIN_VISIBLE_FRACTION = 0.5  # an object counts as visible when at least half of its pixels show
SUPERSAMPLE = 2           # frames are drawn at this multiple of the output size, then box-filtered


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


class WorldError(MotifError, ValueError):
    """A world folder or setting is unusable; the message names the file or key and the fix."""


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


@dataclass(frozen=True)
class WorldConfig:
    """Settings of a generated world (all recorded in world.json)."""

    num_videos: int = 320
    seed: int = 0
    size: int = 96
    fps: float = 8.0
    min_seconds: int = 6
    max_seconds: int = 12
    max_distractors: int = 2
    codec: str = "mpeg4"
    val_fraction: float = 0.2
    test_fraction: float = 0.2
    placement: str = "random"

    def validate(self) -> None:
        if self.placement not in PLACEMENTS:
            raise WorldError(f"placement={self.placement!r}: choose one of {', '.join(PLACEMENTS)}")
        if self.num_videos < len(WORLD_CLASSES):
            raise WorldError(f"num_videos={self.num_videos}: need at least one video per class "
                             f"({len(WORLD_CLASSES)}); raise num_videos")
        if self.size < 32 or self.size % 2:
            raise WorldError(f"size={self.size}: use an even frame side of at least 32 pixels")
        if self.fps <= 0:
            raise WorldError(f"fps={self.fps}: must be positive")
        if not 1 <= self.min_seconds <= self.max_seconds or self.min_seconds * self.fps < 8:
            raise WorldError(f"min_seconds={self.min_seconds}, max_seconds={self.max_seconds}: need "
                             "1 <= min_seconds <= max_seconds and at least 8 frames per video")
        if not 0 <= self.max_distractors <= len(DISTRACTORS):
            raise WorldError(f"max_distractors={self.max_distractors}: must be in "
                             f"[0, {len(DISTRACTORS)}]")
        if self.val_fraction < 0 or self.test_fraction <= 0 or self.val_fraction + self.test_fraction >= 1:
            raise WorldError(f"val_fraction={self.val_fraction}, test_fraction={self.test_fraction}: "
                             "need val >= 0, test > 0 and val + test < 1")


# ----------------------------------------------------------------------------- scripts


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


def _num_frames(rng: np.random.Generator, config: WorldConfig) -> int:
    """Whole seconds: at 8 fps, windows of 8 frames tile every video exactly, so window sampling
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
    n = _num_frames(rng, config)
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


# ----------------------------------------------------------------------------- rendering


def _shape_outline(kind: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Polygon vertices (pixels) of a shape of nominal radius ``r`` centred at (cx, cy)."""
    def ring(count: int, radii: Sequence[float], start_deg: float) -> list[tuple[float, float]]:
        angles = np.deg2rad(start_deg + np.arange(count) * 360.0 / count)
        rr = np.resize(np.asarray(radii, dtype=np.float64), count)
        return [(cx + a * np.cos(t), cy + a * np.sin(t)) for a, t in zip(rr, angles)]

    if kind == "square":
        h = 0.88 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if kind == "triangle":
        return ring(3, [1.2 * r], -90.0)
    if kind == "star":
        return ring(10, [1.2 * r, 0.5 * r], -90.0)
    if kind == "diamond":
        return [(cx, cy - 1.15 * r), (cx + 0.85 * r, cy), (cx, cy + 1.15 * r), (cx - 0.85 * r, cy)]
    if kind == "hexagon":
        return ring(6, [r], 0.0)
    if kind == "cross":
        a, b = r, 0.34 * r
        return [(cx - b, cy - a), (cx + b, cy - a), (cx + b, cy - b), (cx + a, cy - b),
                (cx + a, cy + b), (cx + b, cy + b), (cx + b, cy + a), (cx - b, cy + a),
                (cx - b, cy + b), (cx - a, cy + b), (cx - a, cy - b), (cx - b, cy - b)]
    raise WorldError(f"unknown shape kind {kind!r}")


def _draw_shape(draw: ImageDraw.ImageDraw, kind: str, cx: float, cy: float, r: float,
                fill: int | tuple[int, int, int]) -> None:
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    else:
        draw.polygon(_shape_outline(kind, cx, cy, r), fill=fill)


def frame_concepts(script: VideoScript, frame: int, visible_objects: Iterable[int]) -> set[str]:
    """Concepts shown by the given visible tracks of one frame."""
    concepts: set[str] = set()
    for i in visible_objects:
        track = script.tracks[i]
        concepts.add(track.concept)
        if track.x[frame] < LEFT_EDGE:
            concepts.add(LEFT_SIDE)
        if track.x[frame] > RIGHT_EDGE:
            concepts.add(RIGHT_SIDE)
        if track.radius[frame] >= LARGE_RADIUS:
            concepts.add(LARGE_SHAPE)
        if track.radius[frame] <= SMALL_RADIUS:
            concepts.add(SMALL_SHAPE)
    return concepts


def render_video(script: VideoScript, size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """Render a script.

    Returns frames [N, size, size, 3] uint8 and the concept timeline [N, C] bool over
    WORLD_CONCEPTS, where an object counts as visible when at least MIN_VISIBLE_FRACTION of its
    pixels are not covered by objects drawn later.
    """
    big = size * SUPERSAMPLE
    ramp = np.linspace(-12.0, 12.0, big)[:, None, None]
    background = np.clip(np.asarray(script.background, dtype=np.float64) + ramp, 0, 255)
    background = np.broadcast_to(background, (big, big, 3)).astype(np.uint8)
    background_image = Image.fromarray(np.ascontiguousarray(background))
    concept_index = {c: i for i, c in enumerate(WORLD_CONCEPTS)}
    frames = np.empty((script.num_frames, size, size, 3), dtype=np.uint8)
    timeline = np.zeros((script.num_frames, len(WORLD_CONCEPTS)), dtype=bool)
    for f in range(script.num_frames):
        image = background_image.copy()
        draw = ImageDraw.Draw(image)
        owner = Image.new("L", (big, big), 0)
        owner_draw = ImageDraw.Draw(owner)
        full_area: dict[int, int] = {}
        for i, track in enumerate(script.tracks):
            if not track.visible[f]:
                continue
            cx, cy, r = track.x[f] * big, track.y[f] * big, track.radius[f] * big
            _draw_shape(draw, track.kind, cx, cy, r, track.color)
            alone = Image.new("1", (big, big), 0)
            _draw_shape(ImageDraw.Draw(alone), track.kind, cx, cy, r, 1)
            full_area[i] = int(np.count_nonzero(np.asarray(alone)))
            _draw_shape(owner_draw, track.kind, cx, cy, r, i + 1)
        owners = np.bincount(np.asarray(owner).ravel(), minlength=len(script.tracks) + 1)
        shown = [i for i, area in full_area.items()
                 if area > 0 and owners[i + 1] >= MIN_VISIBLE_FRACTION * area]
        for concept in frame_concepts(script, f, shown):
            timeline[f, concept_index[concept]] = True
        frames[f] = np.asarray(image.reduce(SUPERSAMPLE))
    return frames, timeline


# ----------------------------------------------------------------------------- video files


def encode_video(target: str | Path | io.BytesIO, frames: np.ndarray, fps: float,
                 codec: str = "mpeg4") -> None:
    """Write frames [N, H, W, 3] uint8 as an mp4 (deterministic: single-threaded encoder)."""
    options = {"crf": "17"} if codec in ("libx264", "h264") else {}
    with av.open(target, mode="w", format="mp4") as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        stream.width, stream.height = int(frames.shape[2]), int(frames.shape[1])
        stream.pix_fmt = "yuv420p"
        stream.thread_count = 1
        if codec == "mpeg4":
            stream.bit_rate = 1_500_000
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def decode_video(source: str | Path | io.BytesIO) -> np.ndarray:
    """Decode all frames of a (small) video: [N, H, W, 3] uint8."""
    with av.open(source, mode="r") as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


# ----------------------------------------------------------------------------- ground truth


def mask_to_intervals(mask: np.ndarray) -> list[list[int]]:
    """[N] bool -> [[start, end), ...] frame intervals where the mask is True."""
    padded = np.concatenate([[False], np.asarray(mask, dtype=bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]


def intervals_to_mask(intervals: Iterable[Sequence[int]], num_frames: int) -> np.ndarray:
    """Inverse of mask_to_intervals: [N] bool."""
    mask = np.zeros(num_frames, dtype=bool)
    for start, end in intervals:
        mask[start:end] = True
    return mask


@dataclass
class VideoTruth:
    """Ground truth of one video of a generated world."""

    video_id: str
    path: str                 # relative to the world folder
    label: int
    split: str
    num_frames: int
    fps: float
    concept_intervals: dict[str, list[list[int]]] = field(default_factory=dict)
    evidence_intervals: list[list[int]] = field(default_factory=list)  # frames holding the class evidence

    def timeline(self, concepts: Sequence[str] = WORLD_CONCEPTS) -> np.ndarray:
        """[N, C] bool: concept c visible in frame n."""
        columns = [intervals_to_mask(self.concept_intervals.get(c, []), self.num_frames) for c in concepts]
        return np.stack(columns, axis=1)


class WorldGroundTruth:
    """Ground truth of a generated world folder (world.json + ground_truth.json)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        world_file, truth_file = self.root / "world.json", self.root / "ground_truth.json"
        for path in (world_file, truth_file):
            if not path.is_file():
                raise WorldError(f"{path}: missing; generate the world with tools/make_synthetic.py")
        self.world = json.loads(world_file.read_text())
        truth = json.loads(truth_file.read_text())
        self.concepts: list[str] = list(truth["concepts"])
        self.class_names: list[str] = [c["name"] for c in self.world["classes"]]
        self.class_concepts: dict[str, list[str]] = {c["name"]: list(c["concepts"]) for c in self.world["classes"]}
        self.evidence_concepts: dict[str, list[str]] = {
            c["name"]: list(c["evidence_concepts"]) for c in self.world["classes"]}
        self.videos: dict[str, VideoTruth] = {}
        self._by_path: dict[str, str] = {}
        for video_id, entry in truth["videos"].items():
            self.videos[video_id] = VideoTruth(video_id=video_id, **entry)
            self._by_path[entry["path"]] = video_id

    def video(self, key: str) -> VideoTruth:
        """Look a video up by id (file stem), by path relative to the world, or by any path ending so."""
        if key in self.videos:
            return self.videos[key]
        if key in self._by_path:
            return self.videos[self._by_path[key]]
        stem = Path(key).stem
        if stem in self.videos:
            return self.videos[stem]
        raise WorldError(f"{self.root / 'ground_truth.json'}: no video {key!r}; "
                         "is the cache from another world?")

    def timeline(self, key: str) -> np.ndarray:
        """[N, C] bool over ``self.concepts``."""
        return self.video(key).timeline(self.concepts)

    def evidence(self, key: str) -> np.ndarray:
        """[N] bool: frames holding the evidence concepts of the video's class."""
        video = self.video(key)
        return intervals_to_mask(video.evidence_intervals, video.num_frames)

    def window_concepts(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
        """[T, C] bool: concept visible in any frame of window t = frames [starts[t], ends[t])."""
        timeline = self.timeline(key)
        return np.stack([timeline[s:e].any(axis=0) for s, e in zip(starts, ends)])

    def window_evidence(self, key: str, starts: Sequence[int], ends: Sequence[int]) -> np.ndarray:
        """[T] bool: window t holds evidence of the video's class in at least one frame."""
        evidence = self.evidence(key)
        return np.array([bool(evidence[s:e].any()) for s, e in zip(starts, ends)])


# ----------------------------------------------------------------------------- world generation


def video_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of video ``index`` of the world with ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([seed, index]))


def video_id_for(index: int, label: int) -> str:
    return f"{CLASS_NAMES[label].replace(' ', '_')}_{index:04d}"


def _render_world_video(job: tuple[WorldConfig, int, str]) -> tuple[int, int, np.ndarray]:
    """Render and write video ``index``; returns (index, number of frames, timeline [N, C])."""
    config, index, out_dir = job
    label = index % len(WORLD_CLASSES)
    script = sample_class_script(label, video_rng(config.seed, index), config)
    frames, timeline = render_video(script, config.size)
    path = Path(out_dir) / "videos" / f"{video_id_for(index, label)}.mp4"
    encode_video(path, frames, config.fps, config.codec)
    return index, script.num_frames, timeline


def _assign_splits(config: WorldConfig) -> list[str]:
    """Stratified, seeded split of the video indices: list of 'train' | 'val' | 'test'."""
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, 2**31 - 1]))
    splits = [""] * config.num_videos
    for label in range(len(WORLD_CLASSES)):
        members = [i for i in range(config.num_videos) if i % len(WORLD_CLASSES) == label]
        members = [members[int(j)] for j in rng.permutation(len(members))]
        num_test = max(1, round(config.test_fraction * len(members)))
        num_val = round(config.val_fraction * len(members))
        for rank, index in enumerate(members):
            splits[index] = "test" if rank < num_test else "val" if rank < num_test + num_val else "train"
    return splits


def _map(function, jobs: list, workers: int) -> list:
    if workers <= 1 or len(jobs) < 2:
        return [function(job) for job in jobs]
    with multiprocessing.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
        return pool.map(function, jobs, chunksize=max(1, len(jobs) // (4 * workers)))


def generate_world(out_dir: str | Path, config: WorldConfig = WorldConfig(), workers: int = 1) -> Path:
    """Render a world into ``out_dir`` and write its description files.

    Layout: ``videos/*.mp4``; ``classes.txt`` (one class name per line, label = line index from 0);
    ``train.txt`` / ``val.txt`` / ``test.txt`` (``videos/<id>.mp4 <label>`` per line, paths relative
    to ``out_dir``); ``concepts.txt`` (the concept bank, one phrase per line);
    ``ground_truth.json`` (per-video concept intervals, [start, end) frames); ``world.json``.
    Returns the path of world.json.
    """
    config.validate()
    out = Path(out_dir)
    (out / "videos").mkdir(parents=True, exist_ok=True)
    jobs = [(config, i, str(out)) for i in range(config.num_videos)]
    results = _map(_render_world_video, jobs, workers)
    splits = _assign_splits(config)
    videos: dict[str, dict] = {}
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for index, num_frames, timeline in sorted(results, key=lambda r: r[0]):
        label = index % len(WORLD_CLASSES)
        video_id = video_id_for(index, label)
        rel = f"videos/{video_id}.mp4"
        evidence = [WORLD_CONCEPTS.index(c) for c in WORLD_CLASSES[label].evidence_concepts]
        videos[video_id] = {
            "path": rel, "label": label, "split": splits[index], "num_frames": num_frames, "fps": config.fps,
            "concept_intervals": {c: mask_to_intervals(timeline[:, j])
                                  for j, c in enumerate(WORLD_CONCEPTS) if timeline[:, j].any()},
            "evidence_intervals": mask_to_intervals(timeline[:, evidence].any(axis=1)),
        }
        lists[splits[index]].append(f"{rel} {label}")
    for split, lines in lists.items():
        (out / f"{split}.txt").write_text("".join(f"{line}\n" for line in lines))
    (out / "classes.txt").write_text("\n".join(CLASS_NAMES) + "\n")
    (out / "concepts.txt").write_text("\n".join(WORLD_CONCEPTS) + "\n")
    (out / "ground_truth.json").write_text(json.dumps({"concepts": list(WORLD_CONCEPTS), "videos": videos}))
    world = {
        "name": WORLD_NAME,
        "format_version": WORLD_FORMAT_VERSION,
        "config": asdict(config),
        "classes": [{"index": i, **asdict(c)} for i, c in enumerate(WORLD_CLASSES)],
        "concepts": list(WORLD_CONCEPTS),
        "geometry": {"left_edge": LEFT_EDGE, "right_edge": RIGHT_EDGE, "large_radius": LARGE_RADIUS,
                     "small_radius": SMALL_RADIUS, "min_visible_fraction": MIN_VISIBLE_FRACTION},
        "files": {"videos": "videos", "classes": "classes.txt", "concepts": "concepts.txt",
                  "ground_truth": "ground_truth.json",
                  "splits": {s: f"{s}.txt" for s in lists}},
        "counts": {s: len(lines) for s, lines in lists.items()},
    }
    (out / "world.json").write_text(json.dumps(world, indent=2) + "\n")
    return out / "world.json"


# ----------------------------------------------------------------------------- labelled frames


def _labelled_frames_of_video(job: tuple[int, int, float, int, str, int]) -> tuple[np.ndarray, np.ndarray]:
    seed, index, random_scene_fraction, size, codec, frame_stride = job
    rng = video_rng(seed, index)
    config = WorldConfig(size=size, codec=codec)
    if rng.random() < random_scene_fraction:
        script = sample_random_scene(rng, _num_frames(rng, config), config.fps)
    else:
        script = sample_class_script(int(rng.integers(len(WORLD_CLASSES))), rng, config)
    frames, timeline = render_video(script, size)
    buffer = io.BytesIO()
    encode_video(buffer, frames, config.fps, codec)
    buffer.seek(0)
    decoded = decode_video(buffer)
    if decoded.shape[0] != frames.shape[0]:
        raise WorldError(f"codec {codec!r} returned {decoded.shape[0]} of {frames.shape[0]} frames; "
                         "use codec 'mpeg4'")
    return decoded[::frame_stride], timeline[::frame_stride]


def render_labelled_frames(seed: int, num_videos: int, random_scene_fraction: float = 0.5,
                           size: int = 96, codec: str = "mpeg4", frame_stride: int = 2,
                           workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Frames of freshly drawn videos, passed through the video codec like the world's files.

    Videos are class videos or (with probability ``random_scene_fraction``) random scenes.
    Returns frames [M, size, size, 3] uint8 and labels [M, C] bool over WORLD_CONCEPTS.
    """
    jobs = [(seed, i, random_scene_fraction, size, codec, frame_stride) for i in range(num_videos)]
    results = _map(_labelled_frames_of_video, jobs, workers)
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-column ROC-AUC of scores [M, C] against labels [M, C] bool (ties count half).

    Columns without positives or without negatives get NaN.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    if scores.shape != labels.shape or scores.ndim != 2:
        raise ValueError(f"scores {scores.shape} and labels {labels.shape} must both be [M, C]")
    result = np.full(scores.shape[1], np.nan)
    for c in range(scores.shape[1]):
        positives = int(labels[:, c].sum())
        negatives = labels.shape[0] - positives
        if positives == 0 or negatives == 0:
            continue
        order = np.argsort(scores[:, c], kind="mergesort")
        sorted_scores = scores[order, c]
        ranks = np.empty(len(order), dtype=np.float64)
        ranks[order] = np.arange(1, len(order) + 1)
        # average the ranks of tied scores
        _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
        for start, count in zip(first, counts):
            if count > 1:
                ranks[order[start:start + count]] = start + (count + 1) / 2.0
        rank_sum = ranks[labels[:, c]].sum()
        result[c] = (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)
    return result
