"""How every video is cut into windows and decoded: one frozen settings object, the ``video`` section
of the run config itself, used by extraction, the cache key, the checkpoint and explanation.

Light to import (no torch, no decoders): ``motif.config`` uses the class as its schema.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from motif.registry import Registry
from motif.video.plan import FRAME_SAMPLING, WindowPlan

VIDEO_BACKENDS: Registry[str] = Registry("video backend", key="video.backend", entries={
    "auto": "decord, and PyAV for files decord cannot open or larger than 256 MiB",
    "decord": "decord (holds the compressed stream in memory)",
    "pyav": "PyAV (memory independent of the video)",
})


@dataclass(frozen=True)
class VideoWindowSettings:
    """How every video is cut into windows and decoded (spec section 1).

    backend: a name of ``VIDEO_BACKENDS``; window_size / stride: frames per window and between window
    starts (stride None = window_size, non-overlapping); frames_per_window, frame_sampling (a name of
    ``FRAME_SAMPLING``) and seed: which frames of a window are embedded; num_threads: decoder threads
    (0 = automatic); min_frames: shorter videos are skipped; fps_override replaces a missing or wrong
    frame rate; chunk_windows: windows decoded at a time (memory, not results); resize: the shorter
    side of the decoded frames (None = the backbone's own input size).
    """

    backend: str = "auto"
    window_size: int = 8
    stride: int | None = None
    frames_per_window: int = 1
    frame_sampling: str = "center"
    seed: int = 0
    num_threads: int = 1
    min_frames: int = 2
    fps_override: float | None = None
    chunk_windows: int = 16
    resize: int | None = None

    def __post_init__(self) -> None:
        VIDEO_BACKENDS[self.backend]  # an unknown name raises, listing the choices
        self.plan(1, 1.0, "")  # validates the window settings
        if not isinstance(self.chunk_windows, int) or self.chunk_windows < 1:
            raise ValueError(f"chunk_windows must be a positive integer, got {self.chunk_windows!r}")

    def plan(self, num_frames: int, fps: float, video_id: str) -> WindowPlan:
        """The window plan of one video."""
        return WindowPlan.build(num_frames, fps, window_size=self.window_size, stride=self.stride,
                                frames_per_window=self.frames_per_window, sampling=self.frame_sampling,
                                seed=self.seed, video_id=video_id)

    def content_key(self) -> dict:
        """The settings that determine which pixels are delivered (for cache keys)."""
        sampling = FRAME_SAMPLING[self.frame_sampling]
        return {"window_size": self.window_size, "stride": self.stride or self.window_size,
                "frames_per_window": None if sampling.every_frame else self.frames_per_window,
                "frame_sampling": self.frame_sampling,
                "seed": self.seed if sampling.uses_seed else None,
                "resize": self.resize, "fps_override": self.fps_override}

    def as_dict(self) -> dict[str, Any]:
        """Plain values (for checkpoints); ``from_dict`` reads them back."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "VideoWindowSettings":
        """Settings from ``as_dict`` output. Keys that are not fields (written by older versions) are
        ignored; missing ones take their defaults."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})
