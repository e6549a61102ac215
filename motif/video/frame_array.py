"""A video already decoded into memory, and the frame backend that reads it like a file.

``open_video`` accepts a :class:`FrameArray` wherever it accepts a path, so frames decoded by any
other library go through the same window plans, chunking, resizing rules and checks as a file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F

from motif.video.errors import EmptyVideoError, InvalidFpsError, VideoError
from motif.video.probe import VideoMeta, resolve_fps

FRAME_ARRAY_HINT = "pass RGB frames as a uint8 array [N, H, W, 3] (values 0-255), e.g. np.stack(frames)"


@dataclass(frozen=True)
class FrameArray:
    """RGB frames in memory: ``frames`` uint8 [N, H, W, 3] (a tensor, or anything ``np.asarray`` takes;
    stored as a CPU tensor) shown at ``fps`` frames per second. ``name`` stands for a file name: it is
    the video id (which seeds random frame sampling) and names the video in messages, and ``str()``
    returns it."""

    frames: torch.Tensor = field(repr=False)
    fps: float
    name: str = "frames"

    def __post_init__(self) -> None:
        frames = _as_uint8_tensor(self.frames, self.name)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise VideoError(self.name, f"frames must be [N, H, W, 3] RGB, got shape {list(frames.shape)}",
                             FRAME_ARRAY_HINT)
        if frames.shape[0] == 0:
            raise EmptyVideoError(self.name, "the frame array holds no frames", FRAME_ARRAY_HINT)
        if frames.shape[1] == 0 or frames.shape[2] == 0:
            raise VideoError(self.name, f"the frames have no pixels (shape {list(frames.shape)})", FRAME_ARRAY_HINT)
        fps = self.fps
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
            raise InvalidFpsError(self.name, f"fps must be a positive number of frames per second, got {fps!r}",
                                  "pass fps=<frames per second> with the frames")
        object.__setattr__(self, "frames", frames)
        object.__setattr__(self, "fps", float(fps))

    def __str__(self) -> str:
        return self.name

    def meta(self, fps_override: float | None = None) -> VideoMeta:
        """The metadata a file of these frames would have; ``fps_override`` replaces ``fps`` as it
        replaces a file's frame rate."""
        num_frames, height, width = self.frames.shape[:3]
        fps = resolve_fps(self.name, self.fps, fps_override)
        return VideoMeta(path=self.name, num_frames=num_frames, fps=fps, duration=num_frames / fps,
                         height=height, width=width, backend=ArrayFrames.name)


def _as_uint8_tensor(frames: Any, name: str) -> torch.Tensor:
    if not isinstance(frames, torch.Tensor):
        frames = torch.from_numpy(np.ascontiguousarray(np.asarray(frames)))  # also a negative-stride view
    if frames.dtype != torch.uint8:
        raise VideoError(name, f"frames must be uint8, got {frames.dtype}", FRAME_ARRAY_HINT)
    return frames.detach().cpu()


class ArrayFrames:
    """The frame backend of a :class:`FrameArray`: delivers its frames, resized to ``output_size``
    (bilinear and antialiased, as the decoders' scalers) when that differs from the frame size."""

    name = "array"

    def __init__(self, video: FrameArray, output_size: tuple[int, int] | None) -> None:
        self._frames = video.frames
        self.num_frames = int(video.frames.shape[0])
        size = tuple(video.frames.shape[1:3])
        self._output_size = None if output_size is None or tuple(output_size) == size else tuple(output_size)

    def iter_frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices:
            frame = self._frames[index]
            if self._output_size is not None:
                frame = _resize_bilinear(frame[None], self._output_size)[0]
            yield index, frame.numpy()

    def close(self) -> None:
        """Nothing to release: the frames belong to the FrameArray."""


def _resize_bilinear(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear, antialiased resize of uint8 [N, H, W, 3] frames to [N, h, w, 3], rounded to uint8."""
    x = frames.permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous()
