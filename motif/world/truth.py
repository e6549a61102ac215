"""Per-frame ground truth of a generated world: concept and evidence intervals per video
(``ground_truth.json``), read back as [N, C] timelines and per-window masks."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from motif.world.errors import WorldError
from motif.world.vocabulary import WORLD_CONCEPTS


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
