"""Video metadata from container headers, without decoding frames.

The frame rate, frame size and codec come from the container and stream headers (read with PyAV,
whichever backend decodes). The frame count is the stream's ``nb_frames`` header; containers that
do not store it (WebM, Matroska) are demuxed once without decoding and their video packets counted.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import av

from motif.video.errors import (
    CorruptVideoError,
    EmptyVideoError,
    InvalidFpsError,
    TooFewFramesError,
    VideoError,
    VideoNotFoundError,
)


@dataclass(frozen=True)
class VideoMeta:
    """What a video holds. ``duration = num_frames / fps`` seconds; ``backend`` reads it."""

    path: str
    num_frames: int
    fps: float
    duration: float
    height: int
    width: int
    backend: str
    codec: str = ""


def check_file(path: str | PathLike[str]) -> Path:
    """Raise the matching typed error if ``path`` is missing, not a file, or empty."""
    path = Path(path)
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise VideoNotFoundError(path, "file does not exist") from None
    except OSError as error:
        raise VideoError(path, f"cannot access the file ({error.strerror or error})",
                         "check the file's permissions") from None
    if not path.is_file():
        raise VideoNotFoundError(path, "not a regular file")
    if stat.st_size == 0:
        raise EmptyVideoError(path, "file is empty (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(path, "file is not readable", "check the file's permissions")
    return path


def read_header_meta(path: Path, backend: str, fps_override: float | None = None) -> VideoMeta:
    """Metadata from the headers of an existing, non-empty file (see the module docstring)."""
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as error:
        raise CorruptVideoError(path, f"not a readable video container ({_ffmpeg_reason(error)})") from None
    with container:
        if not container.streams.video:
            raise CorruptVideoError(path, "the file has no video stream")
        stream = container.streams.video[0]
        height, width = stream.codec_context.height, stream.codec_context.width
        if height <= 0 or width <= 0:
            raise CorruptVideoError(path, "the video stream has no frame size")
        fps = resolve_fps(path, stream.average_rate, fps_override)
        num_frames = stream.frames
        if num_frames <= 0:
            try:
                num_frames = sum(1 for packet in container.demux(stream) if packet.size > 0)
            except av.FFmpegError as error:
                raise CorruptVideoError(path, f"cannot demux the video ({_ffmpeg_reason(error)})") from None
        if num_frames <= 0:
            raise CorruptVideoError(path, "the video stream has no frames")
        codec = stream.codec_context.name
    return VideoMeta(path=str(path), num_frames=num_frames, fps=fps, duration=num_frames / fps,
                     height=height, width=width, backend=backend, codec=codec)


def resolve_fps(path: str | PathLike[str], rate: object, fps_override: float | None) -> float:
    """The override if given, else the header frame rate; InvalidFpsError if unusable."""
    if fps_override is not None:
        if not (isinstance(fps_override, (int, float)) and math.isfinite(fps_override) and fps_override > 0):
            raise ValueError(f"fps_override must be a positive finite number, got {fps_override!r}")
        return float(fps_override)
    fps = float(rate) if rate is not None else 0.0
    if not math.isfinite(fps) or fps <= 0:
        raise InvalidFpsError(path, f"the frame rate in the file's metadata is missing or invalid ({rate})")
    return fps


def check_min_frames(meta: VideoMeta, min_frames: int) -> None:
    """TooFewFramesError if the video is shorter than ``min_frames``."""
    if meta.num_frames < min_frames:
        raise TooFewFramesError(meta.path, f"the video has {meta.num_frames} frame(s), fewer than "
                                           f"video.min_frames={min_frames}")


def _ffmpeg_reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error)
