"""Generating a world: class videos rendered (in worker processes) and written as mp4, seeded
stratified splits and the description files; and labelled frames of freshly drawn videos, passed
through the same codec, for training the world's backbone.

Everything is deterministic for a seed: video ``i`` of a world is drawn from
``numpy.random.SeedSequence([seed, i])``, independent of how many worker processes render it.
"""

from __future__ import annotations

import json
import multiprocessing
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from motif.video import open_video, write_video
from motif.world.config import WorldConfig
from motif.world.errors import WorldError
from motif.world.render import render_video
from motif.world.scripts import sample_class_script, sample_num_frames, sample_random_scene
from motif.world.truth import mask_to_intervals
from motif.world.vocabulary import (
    CLASS_NAMES,
    LARGE_RADIUS,
    LEFT_EDGE,
    MIN_VISIBLE_FRACTION,
    RIGHT_EDGE,
    SMALL_RADIUS,
    WORLD_CLASSES,
    WORLD_CONCEPTS,
    WORLD_FORMAT_VERSION,
    WORLD_NAME,
)

WORLD_BIT_RATE = 1_500_000  # mpeg4
WORLD_CRF = "17"            # libx264


def write_world_video(path: str | Path, frames: np.ndarray, fps: float, codec: str = "mpeg4") -> Path:
    """Write frames [N, H, W, 3] uint8 as an mp4 with the world's encoder settings (``codec`` one of
    ``CODECS``): mpeg4 at ``WORLD_BIT_RATE`` or libx264 at CRF ``WORLD_CRF``, on one encoder thread
    (with mpeg4 the bytes are the same on every run)."""
    if codec == "mpeg4":
        return write_video(path, frames, fps, codec, bit_rate=WORLD_BIT_RATE, options={"threads": "1"})
    return write_video(path, frames, fps, codec, options={"threads": "1", "crf": WORLD_CRF})


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
    write_world_video(path, frames, config.fps, config.codec)
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
    """Every ``frame_stride``-th decoded frame [M, H, W, 3] of video ``index`` and its labels [M, C]."""
    seed, index, random_scene_fraction, size, codec, frame_stride = job
    rng = video_rng(seed, index)
    config = WorldConfig(size=size, codec=codec)
    if rng.random() < random_scene_fraction:
        script = sample_random_scene(rng, sample_num_frames(rng, config), config.fps)
    else:
        script = sample_class_script(int(rng.integers(len(WORLD_CLASSES))), rng, config)
    frames, timeline = render_video(script, size)
    with tempfile.TemporaryDirectory() as folder:
        path = write_world_video(Path(folder) / "video.mp4", frames, config.fps, codec)
        with open_video(path, backend="pyav") as source:
            if source.meta.num_frames != frames.shape[0]:
                raise WorldError(f"codec {codec!r} returned {source.meta.num_frames} of {frames.shape[0]} "
                                 "frames; use codec 'mpeg4'")
            decoded = source.read_frames(range(0, frames.shape[0], frame_stride)).numpy()
    return decoded, timeline[::frame_stride]


def render_labelled_frames(seed: int, num_videos: int, random_scene_fraction: float = 0.5,
                           size: int = 96, codec: str = "mpeg4", frame_stride: int = 2,
                           workers: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Frames of freshly drawn videos, passed through the video codec like the world's files.

    Videos are class videos or (with probability ``random_scene_fraction``) random scenes.
    Returns frames [M, size, size, 3] uint8 and labels [M, C] bool over WORLD_CONCEPTS.
    """
    WorldConfig(size=size, codec=codec).validate()
    jobs = [(seed, i, random_scene_fraction, size, codec, frame_stride) for i in range(num_videos)]
    results = _map(_labelled_frames_of_video, jobs, workers)
    return np.concatenate([r[0] for r in results]), np.concatenate([r[1] for r in results])

