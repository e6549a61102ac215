"""Settings of a generated world and of the training of the world's backbone (plain dataclasses,
importable without torch so that command-line tools can take their defaults from here)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from motif.world.errors import WorldError
from motif.world.vocabulary import DISTRACTORS, WORLD_CLASSES

PLACEMENTS = ("random", "fixed")
CODECS = ("mpeg4", "libx264")


@dataclass(frozen=True)
class WorldConfig:
    """Settings of a generated world (all recorded in world.json).

    ``placement``: "random" puts each class event at a random place with a random length (and, for
    sequences, a random gap), so that absolute time does not tell a class from its mirror; "fixed"
    keeps the earlier layout in which the first event of a class sits in the first half of the video
    ("A then B" then equals "A early").
    """

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
        if self.codec not in CODECS:
            raise WorldError(f"codec={self.codec!r}: choose one of {', '.join(CODECS)}")
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


@dataclass(frozen=True)
class BackboneTrainingConfig:
    """Settings of one training run of the world backbone (recorded in the JSON next to the weights).

    Training frames come from ``train_videos`` videos of world seed ``seed``, held-out frames from
    ``eval_videos`` class videos of seed ``seed + 1``; every ``frame_stride``-th frame is used. See
    :mod:`motif.world.backbone_training` for the loss and the left/right and small/large options.
    """

    seed: int = 1000
    steps: int = 800
    batch_size: int = 128
    captions: int = 48                # composed captions per step
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: int = 100                 # steps of linear warm-up before the cosine decay
    max_text_similarity: float = 0.5  # concept phrases are pushed below this cosine
    train_videos: int = 1500
    eval_videos: int = 160
    random_scene_fraction: float = 0.5
    frame_stride: int = 4
    eval_every: int = 200
    workers: int = 2                  # rendering processes
    threads: int = 1                  # torch threads
    init: str | None = None           # weights file to start from (fine-tuning)
    side_oversample: float = 0.0
    side_captions: int = 0
    side_pair_weight: float = 0.0
    size_oversample: float = 0.0
    size_pair_weight: float = 0.0

    def validate(self) -> None:
        for key in ("steps", "batch_size", "warmup", "train_videos", "eval_videos", "frame_stride", "eval_every",
                    "workers", "threads"):
            if getattr(self, key) < 1:
                raise WorldError(f"{key}={getattr(self, key)}: must be at least 1")
        for key in ("captions", "side_captions", "lr", "weight_decay", "side_pair_weight", "size_pair_weight"):
            if getattr(self, key) < 0:
                raise WorldError(f"{key}={getattr(self, key)}: must not be negative")
        for key in ("random_scene_fraction", "side_oversample", "size_oversample"):
            if not 0 <= getattr(self, key) <= 1:
                raise WorldError(f"{key}={getattr(self, key)}: must be in [0, 1]")
        if self.side_oversample + self.size_oversample > 1:
            raise WorldError(f"side_oversample + size_oversample = {self.side_oversample + self.size_oversample}: "
                             "the oversampled parts cannot exceed the batch (at most 1 together)")
        if self.init is not None and not Path(self.init).is_file():
            raise WorldError(f"init={self.init}: no such file; pass a .safetensors file written by "
                             "tools/train_world_backbone.py")
