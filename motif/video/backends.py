"""Frame decoders behind one interface: decord and PyAV.

A backend decodes the frames it is asked for, in increasing index order, one at a time, so that
memory does not depend on the length of the video. Frame ``i`` is the ``i``-th frame in
presentation order. Both backends decode with FFmpeg and convert YUV to RGB with swscale; without
resizing they return the same pixels, with resizing both use bilinear scaling (small rounding
differences remain between their FFmpeg versions).

- decord: sequential reading; it seeks (through its packet index) only when a keyframe lies far
  ahead of the current position, or to go back.
- PyAV: sequential decoding; frames that are not requested are decoded but never converted to RGB
  (every delivered frame is scaled to the requested size, so a mid-stream size change is absorbed).
  When requested frames are far apart, a packet index (demuxed once, no decoding) lets it seek to
  the keyframe before the next requested frame; decoded frames are identified by their timestamps,
  and any inconsistency falls back to plain sequential decoding.
"""

from __future__ import annotations

import bisect
import logging
from pathlib import Path
from typing import Iterator, Protocol

import av
import numpy as np
import torch
from av.video.reformatter import VideoReformatter

from motif.video.errors import CorruptVideoError

logger = logging.getLogger(__name__)

# A seek is worth it when it saves decoding more than this many frames. decord's seeks (and its
# skip_frames) become several times slower than reading on frame by frame when the CPUs are busy
# (e.g. one DataLoader worker per core), hence its much higher threshold.
PYAV_SEEK_MIN_SAVINGS = 16
DECORD_SEEK_MIN_SAVINGS = 128


class FrameBackend(Protocol):
    """Decodes requested frames of one video as RGB uint8 arrays ``[H, W, 3]``."""

    name: str
    num_frames: int

    def iter_frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for sorted, distinct ``indices``."""

    def close(self) -> None:
        """Release the decoder."""


def _short_reason(error: BaseException) -> str:
    """The last meaningful line of a decoder error, without log prefixes."""
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[-1] if lines else type(error).__name__
    if "] " in line and line.startswith("["):  # "[time] file.cc:NN: message"
        line = line.split("] ", 1)[1]
        line = line.split(": ", 1)[-1] if ".cc:" in line else line
    return line


_decord_quieted = False


class DecordFrames:
    """decord reader; decord's own FFmpeg logging is silenced (errors are raised as typed errors)."""

    name = "decord"

    def __init__(self, path: Path, output_size: tuple[int, int] | None, num_threads: int) -> None:
        global _decord_quieted
        import decord

        if not _decord_quieted:
            decord.logging.set_level(decord.logging.QUIET)
            _decord_quieted = True
        self.path = path
        height, width = output_size if output_size is not None else (-1, -1)
        try:
            self._reader = decord.VideoReader(str(path), ctx=decord.cpu(0), width=width, height=height,
                                              num_threads=num_threads)
        except Exception as error:  # decord raises RuntimeError, DECORDError or AssertionError
            raise CorruptVideoError(path, f"decord cannot open it ({_short_reason(error)})") from None
        self.num_frames = len(self._reader)
        self._keyframes: list[int] | None = None
        self._position: int | None = -1  # last frame returned by next(); None: unknown, seek first
        starts = self._reader.get_frame_timestamp(list(range(self.num_frames)))[:, 0]
        if self.num_frames > 1 and not np.all(np.diff(starts) > 0):
            # decord locates frames by timestamp; with repeated timestamps it returns wrong frames
            raise CorruptVideoError(path, "decord cannot open it (frame timestamps are missing or not "
                                          "increasing, so decord cannot locate frames)",
                                    "read it with backend='pyav', which counts frames instead")
        self._check_first_frame(output_size)

    def _check_first_frame(self, output_size: tuple[int, int] | None) -> None:
        """decord's resizer returns 4-channel garbage for some output widths (multiples of 24 among
        them); decode frame 0 once and refuse the file, so that ``backend="auto"`` reads it with PyAV."""
        try:
            first = _as_numpy(self._reader.next())
        except Exception as error:
            raise CorruptVideoError(self.path, f"decord cannot decode its first frame ({_short_reason(error)})") from None
        self._position = 0
        if first.ndim != 3 or first.shape[2] != 3 or (output_size is not None and first.shape[:2] != output_size):
            raise CorruptVideoError(self.path, f"decord decodes malformed frames of shape {first.shape} at output "
                                               f"size {output_size}", "read it with backend='pyav'")

    def _seek_pays(self, position: int, index: int) -> bool:
        """Whether seeking to ``index`` saves enough decoding compared with reading on from ``position``."""
        if self._keyframes is None:
            self._keyframes = sorted(self._reader.get_key_indices())
        at = bisect.bisect_right(self._keyframes, index) - 1
        return at >= 0 and self._keyframes[at] - (position + 1) > DECORD_SEEK_MIN_SAVINGS

    def iter_frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        for index in indices:
            if index >= self.num_frames:
                raise CorruptVideoError(self.path, f"frame {index} requested, but decord indexes only "
                                                   f"{self.num_frames} frames")
            position, self._position = self._position, None
            try:
                if position is None or index <= position or self._seek_pays(position, index):
                    self._reader.seek_accurate(index)
                else:
                    for _ in range(index - position - 1):
                        self._reader.next()
                frame = self._reader.next()
            except StopIteration:
                raise CorruptVideoError(self.path, f"decord ran out of frames before frame {index} of "
                                                   f"{self.num_frames} (truncated file?)") from None
            except Exception as error:
                raise CorruptVideoError(self.path, f"decord failed at frame {index} "
                                                   f"({_short_reason(error)})") from None
            self._position = index
            yield index, _as_numpy(frame)

    def close(self) -> None:
        self._reader = None


def _as_numpy(frame: object) -> np.ndarray:
    """decord returns its own NDArray, or a framework tensor when a global bridge is set."""
    if hasattr(frame, "asnumpy"):
        return frame.asnumpy()
    if isinstance(frame, torch.Tensor):
        return frame.numpy()
    return np.asarray(frame)


class _SeekFailed(Exception):
    """Timestamps after a seek did not match the packet index."""


class _PacketIndex:
    """Presentation timestamps of all video packets, and which frames are keyframes."""

    def __init__(self, pts: list[int], keyframes: list[int]) -> None:
        self.pts = pts
        self.frame_of_pts = {value: index for index, value in enumerate(pts)}
        self.keyframes = keyframes

    @classmethod
    def build(cls, path: Path, num_frames: int) -> "_PacketIndex | None":
        """Demux (no decoding); None if timestamps are missing, repeated or the count differs."""
        packets: list[tuple[int, bool]] = []
        with av.open(str(path), metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                if packet.pts is None:
                    return None
                packets.append((packet.pts, packet.is_keyframe))
        pts = sorted(value for value, _ in packets)
        if len(pts) != num_frames or len(set(pts)) != len(pts):
            return None
        table = cls(pts, [])
        table.keyframes = sorted(table.frame_of_pts[value] for value, is_key in packets if is_key)
        return table if table.keyframes else None

    def keyframe_at_or_before(self, index: int) -> int | None:
        at = bisect.bisect_right(self.keyframes, index) - 1
        return self.keyframes[at] if at >= 0 else None


class PyAVFrames:
    """PyAV reader (see the module docstring)."""

    name = "pyav"

    def __init__(self, path: Path, output_size: tuple[int, int], num_threads: int, num_frames: int) -> None:
        self.path = path
        self.num_frames = num_frames
        self._output_size = output_size
        self._num_threads = num_threads
        self._reformatter = VideoReformatter()
        self._packet_index: _PacketIndex | None | bool = False  # False: not built yet

    def _open(self) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
        try:
            container = av.open(str(self.path), metadata_errors="ignore")
        except av.FFmpegError as error:
            raise CorruptVideoError(self.path, f"PyAV cannot open it ({_short_reason(error)})") from None
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self._num_threads
        if self._num_threads != 1:
            stream.codec_context.thread_type = "AUTO"
        return container, stream

    def _convert(self, frame: av.VideoFrame) -> np.ndarray:
        height, width = self._output_size
        try:
            rgb = self._reformatter.reformat(frame, width=width, height=height, format="rgb24",
                                             interpolation="BILINEAR", threads=self._num_threads)
        except (av.FFmpegError, ValueError) as error:
            raise CorruptVideoError(self.path, f"cannot convert a frame to RGB ({_short_reason(error)})") from None
        return rgb.to_ndarray()

    def _index_for(self, indices: list[int]) -> _PacketIndex | None:
        """The packet index, built only when the requested frames leave gaps worth seeking over."""
        previous, worth = -1, False
        for index in indices:
            if index - previous - 1 > PYAV_SEEK_MIN_SAVINGS:
                worth = True
                break
            previous = index
        if not worth:
            return None
        if self._packet_index is False:
            try:
                self._packet_index = _PacketIndex.build(self.path, self.num_frames)
            except av.FFmpegError:
                self._packet_index = None
        return self._packet_index

    def iter_frames(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        index_table = self._index_for(indices)
        if index_table is None:
            yield from self._iter_sequential(indices)
            return
        done = 0
        try:
            for index, frame in self._iter_seeking(indices, index_table):
                done += 1
                yield index, frame
        except _SeekFailed:
            logger.debug("%s: seeking gave inconsistent timestamps; decoding sequentially", self.path)
            self._packet_index = None
            yield from self._iter_sequential(indices[done:])

    def _iter_sequential(self, indices: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Decode from the start, counting frames; convert only the requested ones."""
        container, stream = self._open()
        position = -1
        try:
            decoded = container.decode(stream)
            for index in indices:
                while position < index:
                    frame = self._next(decoded, position)
                    position += 1
                yield index, self._convert(frame)
        finally:
            container.close()

    def _iter_seeking(self, indices: list[int], table: _PacketIndex) -> Iterator[tuple[int, np.ndarray]]:
        """Seek to the keyframe before far-away frames; identify frames by their timestamps."""
        container, stream = self._open()
        position = -1
        try:
            decoded = container.decode(stream)
            for index in indices:
                keyframe = table.keyframe_at_or_before(index)
                if keyframe is not None and keyframe - (position + 1) > PYAV_SEEK_MIN_SAVINGS:
                    try:
                        container.seek(table.pts[keyframe], stream=stream, backward=True)
                    except av.FFmpegError:
                        raise _SeekFailed from None
                    decoded = container.decode(stream)
                while True:
                    frame = self._next(decoded, position)
                    found = table.frame_of_pts.get(frame.pts)
                    if found is None or found > index:
                        raise _SeekFailed
                    position = found
                    if found == index:
                        break
                yield index, self._convert(frame)
        finally:
            container.close()

    def _next(self, decoded: Iterator[av.VideoFrame], position: int) -> av.VideoFrame:
        try:
            return next(decoded)
        except StopIteration:
            raise CorruptVideoError(self.path, f"the stream ended after {position + 1} decoded frames, "
                                               f"but the header reports {self.num_frames} (truncated file?)"
                                    ) from None
        except av.FFmpegError as error:
            raise CorruptVideoError(self.path, f"decoding failed after frame {position} "
                                               f"({_short_reason(error)})") from None

    def close(self) -> None:
        self._packet_index = False
