"""How every video is cut into windows and decoded: one frozen settings object, built from the
``video`` config section and used by extraction, the cache key and explanation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, is_dataclass
from os import PathLike
from typing import Any

from omegaconf import DictConfig, OmegaConf

from motif.video.plan import WindowPlan
from motif.video.reader import VideoSource, open_video


@dataclass(frozen=True)
class VideoWindowSettings:
    """How every video is cut into windows and decoded. Field names follow the ``video`` config
    section, so ``VideoWindowSettings(**video_config)`` works; ``resize`` is None, ``(H, W)`` or the
    shorter side."""

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
    resize: int | tuple[int, int] | None = None

    def __post_init__(self) -> None:
        self.plan(1, 1.0, "")  # validates the window settings
        if not isinstance(self.chunk_windows, int) or self.chunk_windows < 1:
            raise ValueError(f"chunk_windows must be a positive integer, got {self.chunk_windows!r}")

    def plan(self, num_frames: int, fps: float, video_id: str) -> WindowPlan:
        """The window plan of one video."""
        return WindowPlan.build(num_frames, fps, window_size=self.window_size, stride=self.stride,
                                frames_per_window=self.frames_per_window, sampling=self.frame_sampling,
                                seed=self.seed, video_id=video_id)

    def open(self, path: str | PathLike[str]) -> VideoSource:
        """A lazily opened source for one video."""
        return open_video(path, backend=self.backend, num_threads=self.num_threads, resize=self.resize,
                          fps_override=self.fps_override, min_frames=self.min_frames)

    def content_key(self) -> dict:
        """The settings that determine which pixels are delivered (for cache keys)."""
        resize = list(self.resize) if isinstance(self.resize, tuple) else self.resize
        return {"window_size": self.window_size, "stride": self.stride or self.window_size,
                "frames_per_window": self.frames_per_window if self.frame_sampling != "all" else None,
                "frame_sampling": self.frame_sampling,
                "seed": self.seed if self.frame_sampling == "random" else None,
                "resize": resize, "fps_override": self.fps_override}

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_config(cls, video_cfg: Any) -> "VideoWindowSettings":
        """The settings from the ``video`` config section (DictConfig, dataclass, dict or settings);
        keys that are not window settings are ignored."""
        if isinstance(video_cfg, cls):
            return video_cfg
        if isinstance(video_cfg, DictConfig):
            data = OmegaConf.to_container(video_cfg, resolve=True)
        elif is_dataclass(video_cfg):
            data = asdict(video_cfg)
        else:
            data = dict(video_cfg)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
