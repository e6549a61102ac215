"""Drawing the frames of a video script, with the per-frame concept timeline measured on the pixels
(an object hidden behind another one is not visible)."""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from motif.world.errors import WorldError
from motif.world.scripts import VideoScript
from motif.world.vocabulary import (
    LARGE_RADIUS,
    LARGE_SHAPE,
    LEFT_EDGE,
    LEFT_SIDE,
    MIN_VISIBLE_FRACTION,
    RIGHT_EDGE,
    RIGHT_SIDE,
    SMALL_RADIUS,
    SMALL_SHAPE,
    WORLD_CONCEPTS,
)

SUPERSAMPLE = 2           # frames are drawn at this multiple of the output size, then box-filtered


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

