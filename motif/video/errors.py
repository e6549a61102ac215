"""Typed errors for videos that cannot be read.

Every error names the file, the reason and what to do about it. Dataset-level code catches
:class:`VideoError`, records the video in a :class:`motif.data.SkipReport` and goes on.
"""

from __future__ import annotations

from os import PathLike

from motif.errors import MotifError


class VideoError(MotifError):
    """A video cannot be used. ``path`` is the file (the error's ``where``), ``reason`` says why, ``hint``
    what to do; ``str()`` reads ``"<path>: <reason> (<hint>)"``."""

    default_hint = "fix or re-encode the file, or remove it from the annotations"

    def __init__(self, path: str | PathLike[str], reason: str, hint: str | None = None) -> None:
        super().__init__(reason, where=path, hint=hint)
        self.path = str(path)
        self.reason = reason


class VideoNotFoundError(VideoError):
    """The file does not exist (or is not a regular file)."""

    default_hint = "check the dataset root and the paths in the annotation files"


class EmptyVideoError(VideoError):
    """The file has zero bytes."""

    default_hint = "the download or copy is incomplete; fetch the file again or remove it"


class CorruptVideoError(VideoError):
    """The file is not a decodable video: wrong format, truncated, or a decoder error."""

    default_hint = "re-encode it (e.g. `ffmpeg -i in -c:v libx264 out.mp4`) or remove it from the annotations"


class TooFewFramesError(VideoError):
    """The video has fewer frames than ``min_frames``."""

    default_hint = "remove the video or lower the config key video.min_frames (e.g. video.min_frames=1)"


class InvalidFpsError(VideoError):
    """The frame rate in the file's metadata is missing, zero or not finite."""

    default_hint = "pass fps_override=<frames per second> to read it with a known frame rate"
