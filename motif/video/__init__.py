"""Videos to per-window frames: window plans and settings, lazy streaming readers (decord / PyAV), writing."""

from motif.video.backends import BACKENDS
from motif.video.errors import (CorruptVideoError, EmptyVideoError, InvalidFpsError, TooFewFramesError,
                                VideoError, VideoNotFoundError)
from motif.video.plan import SAMPLING_MODES, WindowPlan
from motif.video.probe import VideoMeta
from motif.video.reader import VideoSource, WindowChunk, open_video, output_size
from motif.video.settings import VideoWindowSettings
from motif.video.write import write_video

__all__ = [
    "BACKENDS", "SAMPLING_MODES", "CorruptVideoError", "EmptyVideoError", "InvalidFpsError",
    "TooFewFramesError", "VideoError", "VideoMeta", "VideoNotFoundError", "VideoSource", "VideoWindowSettings",
    "WindowChunk", "WindowPlan", "open_video", "output_size", "write_video",
]
