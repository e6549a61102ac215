"""Videos to per-window frames: window plans and settings, lazy streaming readers (decord / PyAV, or frames
already in memory), writing."""

from motif.video.backends import BACKENDS
from motif.video.errors import (CorruptVideoError, EmptyVideoError, InvalidFpsError, TooFewFramesError,
                                VideoError, VideoNotFoundError)
from motif.video.frame_array import FrameArray
from motif.video.plan import SAMPLING_MODES, WindowPlan
from motif.video.probe import VideoMeta
from motif.video.reader import Video, VideoSource, WindowChunk, open_video, output_size, read_header
from motif.video.settings import VideoWindowSettings
from motif.video.write import write_video

__all__ = [
    "BACKENDS", "SAMPLING_MODES", "CorruptVideoError", "EmptyVideoError", "FrameArray", "InvalidFpsError",
    "TooFewFramesError", "Video", "VideoError", "VideoMeta", "VideoNotFoundError", "VideoSource",
    "VideoWindowSettings", "WindowChunk", "WindowPlan", "open_video", "output_size", "read_header", "write_video",
]
