"""Videos to per-window frames: window plans and settings, lazy streaming readers (decord / PyAV, or frames
already in memory), writing.

The names below are imported on first use, so ``motif.video.settings`` and ``motif.video.plan`` (read by
the config) load neither torch nor the decoders.
"""

from motif.lazy import lazy_exports

__getattr__, __dir__, __all__ = lazy_exports(__name__, {
    "motif.video.errors": ("CorruptVideoError", "EmptyVideoError", "InvalidFpsError", "TooFewFramesError",
                           "VideoError", "VideoNotFoundError"),
    "motif.video.frame_array": ("FrameArray",),
    "motif.video.plan": ("FRAME_SAMPLING", "FrameSampling", "WindowPlan"),
    "motif.video.probe": ("VideoMeta",),
    "motif.video.reader": ("Video", "VideoSource", "WindowChunk", "open_video", "output_size", "read_header"),
    "motif.video.settings": ("VIDEO_BACKENDS", "VideoWindowSettings"),
    "motif.video.write": ("write_video",),
})
