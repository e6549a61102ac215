"""Streaming video reader: the frames a :class:`WindowPlan` needs, in bounded chunks of windows.

``open_video`` only checks that the file exists and is not empty; the decoder is created on the
first access to ``meta`` or the first read, in the process that reads. A :class:`VideoSource` can
therefore be built in the main process and used in forked DataLoader workers (and it pickles
without its decoder). Memory is bounded by one chunk of windows (plus the frames that overlapping
windows share with the next chunk), whatever the length of the video.

A :class:`~motif.video.frame_array.FrameArray` (frames already in memory) opens wherever a path does;
it is read by its own backend, ``backend=`` then does not apply.

Backends (``backend=``): ``"decord"``, ``"pyav"``, or ``"auto"``: decord, and PyAV for a file that
decord cannot open (or when decord is not installed), with one warning per process. decord reads
the whole compressed stream into memory ahead of decoding, so its memory grows with the file size
(not with the decoded frames); ``"auto"`` therefore also uses PyAV, whose memory does not depend on
the video at all, for files larger than ``DECORD_MAX_FILE_BYTES``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from os import PathLike
from typing import Iterator, Sequence

import numpy as np
import torch

from motif.video.backends import DecordFrames, FrameBackend, PyAVFrames
from motif.video.errors import CorruptVideoError
from motif.video.frame_array import ArrayFrames, FrameArray
from motif.video.plan import WindowPlan
from motif.video.probe import VideoMeta, check_file, check_min_frames, read_header_meta
from motif.video.settings import VIDEO_BACKENDS

logger = logging.getLogger(__name__)

Resize = int | tuple[int, int] | None
Video = str | PathLike[str] | FrameArray  # a video file, or frames already in memory

DECORD_MAX_FILE_BYTES = 256 * 2**20

_fallback_warned = False


@dataclass
class WindowChunk:
    """Decoded frames of consecutive windows.

    ``window_ids`` [n] long: absolute window indices; ``frames`` [N, H, W, 3] uint8: the frames of
    these windows, window after window, each window's frames in time order; ``frame_window`` [N]
    long: the absolute window index of each frame; ``frame_indices`` [N] long: the frame's index in
    the video.
    """

    window_ids: torch.Tensor
    frames: torch.Tensor
    frame_window: torch.Tensor
    frame_indices: torch.Tensor | None = None


def output_size(resize: Resize, height: int, width: int) -> tuple[int, int]:
    """Delivered frame size ``(H, W)``: ``resize`` is None (source size), ``(H, W)``, or an int
    giving the shorter side (aspect ratio kept, the longer side rounded)."""
    if resize is None:
        return height, width
    if isinstance(resize, int) and not isinstance(resize, bool):
        if resize < 1:
            raise ValueError(f"resize must be positive, got {resize}")
        if height <= width:
            return resize, max(1, round(width * resize / height))
        return max(1, round(height * resize / width)), resize
    if (isinstance(resize, Sequence) and len(resize) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in resize)):
        return int(resize[0]), int(resize[1])
    raise ValueError(f"resize must be None, a positive int (shorter side) or (height, width), got {resize!r}")


def read_header(video: Video, backend: str = "auto", fps_override: float | None = None) -> VideoMeta:
    """Metadata without decoding: a file's headers (typed error if it is missing, empty or not a video),
    or a frame array's shape and frame rate."""
    if isinstance(video, FrameArray):
        return video.meta(fps_override)
    return read_header_meta(check_file(video), backend=backend, fps_override=fps_override)


class VideoSource:
    """One video (a file or a :class:`FrameArray`), opened lazily; reads the frames of window plans
    (see the module docstring). ``path`` is the file, or the name of the frame array."""

    def __init__(self, video: Video, backend: str = "auto", num_threads: int = 1,
                 resize: Resize = None, *, fps_override: float | None = None, min_frames: int = 2) -> None:
        VIDEO_BACKENDS[backend]  # an unknown name raises, listing the choices
        if not isinstance(num_threads, int) or num_threads < 0:
            raise ValueError(f"num_threads must be >= 0 (0 = automatic), got {num_threads!r}")
        if not isinstance(min_frames, int) or min_frames < 1:
            raise ValueError(f"min_frames must be a positive integer, got {min_frames!r}")
        output_size(resize, 1, 1)  # validate early
        self.frame_array = video if isinstance(video, FrameArray) else None
        self.path = video.name if self.frame_array is not None else check_file(video)
        self.backend = backend
        self.num_threads = num_threads
        self.resize = resize
        self.fps_override = fps_override
        self.min_frames = min_frames
        self._meta: VideoMeta | None = None
        self._frames: FrameBackend | None = None
        self._frame_size: tuple[int, int] | None = None

    @property
    def meta(self) -> VideoMeta:
        """Metadata; the frame count is the one the reading backend delivers. Opens the decoder."""
        self._open()
        return self._meta

    def _open(self) -> None:
        if self._frames is not None:
            return
        header = read_header(self.frame_array or self.path, backend=self.backend, fps_override=self.fps_override)
        check_min_frames(header, self.min_frames)
        size = output_size(self.resize, header.height, header.width)
        frames: FrameBackend | None = None
        if self.frame_array is not None:
            frames = ArrayFrames(self.frame_array, size)
        elif self.backend == "decord" or (self.backend == "auto"
                                           and self.path.stat().st_size <= DECORD_MAX_FILE_BYTES):
            frames = self._open_decord(size if self.resize is not None else None)
        if frames is None:
            frames = PyAVFrames(self.path, size, self.num_threads, header.num_frames)
        meta = replace(header, num_frames=frames.num_frames, duration=frames.num_frames / header.fps,
                       backend=frames.name)
        check_min_frames(meta, self.min_frames)
        self._meta, self._frames, self._frame_size = meta, frames, size

    def _open_decord(self, size: tuple[int, int] | None) -> FrameBackend | None:
        """decord reader, or None to fall back to PyAV (``backend="auto"`` only)."""
        try:
            return DecordFrames(self.path, size, self.num_threads)
        except ImportError as error:
            if self.backend == "decord":
                raise ImportError(f"backend='decord' needs the decord package ({error}); install it or use "
                                  f"backend='pyav'") from error
            reason = "decord is not installed"
        except CorruptVideoError as error:
            if self.backend == "decord":
                raise
            reason = error.reason
        _warn_fallback(str(self.path), reason)
        return None

    def iter_windows(self, plan: WindowPlan, chunk_windows: int = 16) -> Iterator[WindowChunk]:
        """Yield the frames of ``plan``'s windows, ``chunk_windows`` windows at a time.

        Only the frames in ``plan.frame_indices`` are converted to RGB (and resized); each is
        decoded once even when overlapping windows share it.
        """
        if not isinstance(chunk_windows, int) or chunk_windows < 1:
            raise ValueError(f"chunk_windows must be a positive integer, got {chunk_windows!r}")
        self._open()
        needed = plan.needed_frames()
        if needed[-1] >= self._meta.num_frames:
            raise ValueError(f"{self.path}: the plan uses frame {needed[-1]}, but the video has "
                             f"{self._meta.num_frames} frames; build the plan from this video's meta")
        decoded = self._frames.iter_frames(needed)
        num_windows = plan.num_windows
        # first_needed[w]: the smallest frame any window >= w still needs.
        first_needed = [0] * (num_windows + 1)
        first_needed[num_windows] = self._meta.num_frames
        for window in range(num_windows - 1, -1, -1):
            first_needed[window] = min(plan.frame_indices[window][0], first_needed[window + 1])
        cache: dict[int, np.ndarray] = {}
        last = -1
        for low in range(0, num_windows, chunk_windows):
            high = min(num_windows, low + chunk_windows)
            order = [index for window in range(low, high) for index in plan.frame_indices[window]]
            owners = [window for window in range(low, high) for _ in plan.frame_indices[window]]
            highest = max(order)
            while last < highest:
                last, array = next(decoded)
                cache[last] = array
            frames = self._stack([cache[index] for index in order])
            keep_from = first_needed[high]
            for index in [index for index in cache if index < keep_from]:
                del cache[index]
            yield WindowChunk(window_ids=torch.arange(low, high), frames=frames,
                              frame_window=torch.tensor(owners, dtype=torch.long),
                              frame_indices=torch.tensor(order, dtype=torch.long))

    def read_frames(self, indices: Sequence[int]) -> torch.Tensor:
        """Arbitrary frames (any order, repeats allowed) as ``[len(indices), H, W, 3]`` uint8."""
        self._open()
        wanted = sorted(set(int(index) for index in indices))
        if wanted and (wanted[0] < 0 or wanted[-1] >= self._meta.num_frames):
            raise IndexError(f"{self.path}: frame indices must lie in [0, {self._meta.num_frames}), "
                             f"got {wanted[0]}..{wanted[-1]}")
        decoded = dict(self._frames.iter_frames(wanted))
        return self._stack([decoded[int(index)] for index in indices])

    def _stack(self, arrays: list[np.ndarray]) -> torch.Tensor:
        height, width = self._frame_size
        out = np.empty((len(arrays), height, width, 3), dtype=np.uint8)
        for row, array in enumerate(arrays):
            if array.shape != (height, width, 3):
                raise CorruptVideoError(self.path, f"a frame of size {array.shape[:2]} differs from the "
                                                   f"expected {(height, width)} (frame size changes mid-stream)")
            out[row] = array
        return torch.from_numpy(out)

    def close(self) -> None:
        """Release the decoder; the source can be reopened by reading again."""
        if self._frames is not None:
            self._frames.close()
        self._frames = None

    def __enter__(self) -> "VideoSource":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_frames"] = None  # decoders never cross process boundaries
        state["_meta"] = state["_frame_size"] = None
        return state

    def __repr__(self) -> str:
        return f"VideoSource({str(self.path)!r}, backend={self.backend!r})"


def _warn_fallback(path: str, reason: str) -> None:
    global _fallback_warned
    if not _fallback_warned:
        _fallback_warned = True
        logger.warning("decord cannot read %s (%s); reading it with PyAV. Further files that need the "
                       "PyAV fallback are logged at DEBUG level.", path, reason)
    else:
        logger.debug("decord cannot read %s (%s); reading it with PyAV", path, reason)


def open_video(video: Video, backend: str = "auto", num_threads: int = 1, resize: Resize = None,
               *, fps_override: float | None = None, min_frames: int = 2) -> VideoSource:
    """A lazily opened :class:`VideoSource` of a file or a :class:`FrameArray`; raises at once only for
    a missing or empty file.

    ``num_threads``: decoder threads (1 by default, the right choice with several DataLoader workers;
    0 = automatic). ``resize``: None, ``(H, W)``, or the shorter side as an int; applied while
    decoding. ``fps_override`` replaces a missing or wrong frame rate; ``min_frames`` rejects
    shorter videos with :class:`~motif.video.errors.TooFewFramesError`.
    """
    return VideoSource(video, backend, num_threads, resize, fps_override=fps_override, min_frames=min_frames)
