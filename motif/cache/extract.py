"""Window embeddings of whole datasets: decode, preprocess and encode in a pipeline, write to the cache.

Decoding runs in background threads (``decode_threads``, each taking every n-th video) that keep a
few chunks of prepared frames ahead of the encoder; frames are resized by the decoder itself, so
preprocessing is a crop. The encoder fills its batches across video boundaries. Only a few chunks
of frames are in memory at a time and per-window sums [T, D] are accumulated, never whole videos.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterable, Iterator, Sequence

import torch
from torch import Tensor
from tqdm.auto import tqdm

from motif.video.settings import VideoWindowSettings
from motif.video import Video, VideoError, open_video, read_header

log = logging.getLogger(__name__)


@dataclass
class VideoEmbeddings:
    """One video's window embeddings [T, D] (float32, mean of each window's frame embeddings) and
    spans [T, 2] in seconds."""

    video_id: str
    path: str
    embeddings: Tensor
    spans: Tensor
    num_frames: int
    fps: float


@dataclass
class ExtractionReport:
    """What one extraction run did."""

    embedded: int = 0
    already_cached: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    windows: int = 0
    seconds: float = 0.0

    @property
    def windows_per_second(self) -> float:
        return self.windows / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"embedded": self.embedded, "already_cached": self.already_cached, "skipped": self.skipped,
                "windows": self.windows, "seconds": round(self.seconds, 3),
                "windows_per_second": round(self.windows_per_second, 3)}


class NonFiniteEmbeddingsError(VideoError):
    """The backbone gave NaN or inf window embeddings for the video."""

    default_hint = "check the backbone weights and backbone.precision (float16 can overflow), or remove the video"


# Messages from the decoding thread to the encoder.
@dataclass
class _Start:
    slot: int
    record: Any
    num_windows: int
    spans: Tensor
    num_frames: int
    fps: float


@dataclass
class _Frames:
    slot: int
    pixels: Tensor  # uint8 [N, 3, S, S]
    frame_window: Tensor  # [N] window index of each frame


@dataclass
class _End:
    slot: int


@dataclass
class _Failed:
    slot: int
    record: Any
    error: VideoError


@dataclass
class _Fatal:
    error: BaseException


_FINISHED = object()


def _resize_for(video: Video, backbone: Any, settings: VideoWindowSettings, resize_at_decode: bool) -> Any:
    """The decoder's output size: the settings' own, or the backbone's resize target."""
    if settings.resize is not None or not resize_at_decode:
        return settings.resize
    header = read_header(video, settings.backend, settings.fps_override)  # no decoding
    size = backbone.decode_size(header.height, header.width)
    return size if size != (header.height, header.width) else None


def _decode(jobs: Sequence[tuple[int, Any]], backbone: Any, settings: VideoWindowSettings,
            resize_at_decode: bool) -> Iterator[Any]:
    """Messages for the encoder: per video _Start, _Frames chunks, _End (or _Failed); then _FINISHED."""
    for slot, record in jobs:
        try:
            resize = _resize_for(record.path, backbone, settings, resize_at_decode)
            with open_video(record.path, backend=settings.backend, num_threads=settings.num_threads, resize=resize,
                            fps_override=settings.fps_override, min_frames=settings.min_frames) as source:
                meta = source.meta
                plan = settings.plan(meta.num_frames, meta.fps, record.video_id)
                yield _Start(slot, record, plan.num_windows, plan.spans, meta.num_frames, meta.fps)
                for chunk in source.iter_windows(plan, chunk_windows=settings.chunk_windows):
                    yield _Frames(slot, backbone.prepare_frames(chunk.frames), chunk.frame_window.long())
            yield _End(slot)
        except VideoError as error:
            yield _Failed(slot, record, error)
    yield _FINISHED


class _Decoder(threading.Thread):
    """Runs ``_decode`` for its share of the videos and puts the messages on the shared queue."""

    def __init__(self, messages: Iterator[Any], out: queue.Queue, stop_requested: threading.Event) -> None:
        super().__init__(name="motif-decoder", daemon=True)
        self.messages, self.out, self.stop_requested = messages, out, stop_requested

    def _put(self, item: Any) -> bool:
        while not self.stop_requested.is_set():
            try:
                self.out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(self) -> None:
        try:
            for message in self.messages:
                if not self._put(message):
                    return
        except BaseException as error:  # a bug, not a bad video: hand it to the consumer
            self._put(_Fatal(error))
        finally:
            self.messages.close()


def _until_finished(messages: Iterator[Any], decoders: int) -> Iterator[Any]:
    """The video messages of ``decoders`` interleaved decoders, until each has sent _FINISHED; a
    decoder's crash (_Fatal) is raised here."""
    finished = 0
    for message in messages:
        if isinstance(message, _Fatal):
            raise message.error
        if message is _FINISHED:
            finished += 1
            if finished == decoders:
                return
            continue
        yield message


@contextmanager
def _decoded_messages(jobs: list[tuple[int, Any]], backbone: Any, settings: VideoWindowSettings,
                      resize_at_decode: bool, decode_threads: int, prefetch_chunks: int) -> Iterator[Iterator[Any]]:
    """The decoders' messages about ``jobs`` (each video's in order, videos interleaved): decoded in
    the calling thread while it reads them (``decode_threads`` 0, with all cores for FFmpeg), or by
    ``decode_threads`` threads that each take every n-th video and stay up to ``prefetch_chunks``
    chunks ahead. Leaving the block stops the threads (or the inline decoder)."""
    if decode_threads == 0:
        inline = _decode(jobs, backbone, replace(settings, num_threads=0), resize_at_decode)
        try:
            yield _until_finished(inline, 1)
        finally:
            inline.close()
        return
    num_threads = max(1, min(decode_threads, len(jobs)))
    out: queue.Queue = queue.Queue(maxsize=max(1, prefetch_chunks) * num_threads)
    stop_requested = threading.Event()
    decoders = [_Decoder(_decode(jobs[i::num_threads], backbone, settings, resize_at_decode), out, stop_requested)
                for i in range(num_threads)]
    for decoder in decoders:
        decoder.start()
    try:
        yield _until_finished(iter(out.get, None), num_threads)  # the queue never holds None
    finally:
        stop_requested.set()
        for decoder in decoders:
            decoder.join(timeout=5)


@dataclass
class _VideoState:
    start: _Start | None  # None when the video failed before its windows were planned
    sums: Tensor          # [T, D] sum of the frame embeddings of each window
    counts: Tensor        # [T] frames of each window encoded so far
    ended: bool = False
    failed: bool = False


class _WindowMeans:
    """The encoder's side: prepared frames wait until they fill a batch of ``backbone.batch_size``
    (batches span video boundaries), are encoded, and their embeddings are added to the window sums
    of their video; videos come out finished in the order of their slots (record order).

    A video is finished when its decoder has ended it and none of its frames wait for the encoder.
    Its window embeddings are sums / counts [T, D]; a failed video or one with non-finite embeddings
    goes to ``on_skip(record, error)`` instead.
    """

    def __init__(self, backbone: Any, on_skip: Callable[[Any, VideoError], None] | None) -> None:
        self.backbone = backbone
        self.batch_size = int(backbone.batch_size)
        self.on_skip = on_skip
        self.videos: dict[int, _VideoState] = {}
        self.pending: list[_Frames] = []
        self.pending_frames = 0
        self.next_slot = 0

    def receive(self, message: Any) -> None:
        """Take one decoder message (_Start, _Frames, _End or _Failed)."""
        if isinstance(message, _Start):
            self.videos[message.slot] = _VideoState(message, torch.zeros(message.num_windows, self.backbone.embed_dim),
                                                    torch.zeros(message.num_windows))
        elif isinstance(message, _Frames):
            self.pending.append(message)
            self.pending_frames += len(message.pixels)
            if self.pending_frames >= self.batch_size:
                self.encode_pending()
        elif isinstance(message, _End):
            self.videos[message.slot].ended = True
        elif isinstance(message, _Failed):
            state = self.videos.setdefault(message.slot, _VideoState(None, torch.zeros(0), torch.zeros(0)))
            state.failed = state.ended = True
            self._skip(message.record, message.error)

    def encode_pending(self) -> None:
        """Encode the waiting frames (those of failed videos are dropped) into their videos' window sums."""
        live = [part for part in self.pending if not self.videos[part.slot].failed]
        self.pending, self.pending_frames = [], 0
        if not live:
            return
        embeddings = self.backbone.encode_prepared(torch.cat([part.pixels for part in live]))
        offset = 0
        for part in live:
            n = len(part.pixels)
            state = self.videos[part.slot]
            state.sums.index_add_(0, part.frame_window, embeddings[offset : offset + n])
            state.counts.index_add_(0, part.frame_window, torch.ones(n))
            offset += n

    def finished(self) -> Iterator[VideoEmbeddings]:
        """The videos finished since the last call, in slot order (skipped ones left out)."""
        while self._next_is_finished():
            state = self.videos.pop(self.next_slot)
            self.next_slot += 1
            if not state.failed and state.start is not None:
                video = self._embeddings(state.start, state)
                if video is not None:
                    yield video

    def _next_is_finished(self) -> bool:
        state = self.videos.get(self.next_slot)
        return state is not None and state.ended and not any(part.slot == self.next_slot for part in self.pending)

    def _embeddings(self, start: _Start, state: _VideoState) -> VideoEmbeddings | None:
        if bool((state.counts == 0).any()):
            raise RuntimeError(f"{start.record.path}: some windows received no frames (window plan bug)")
        embeddings = state.sums / state.counts[:, None]
        bad = int((~torch.isfinite(embeddings)).sum())
        if bad:
            self._skip(start.record, NonFiniteEmbeddingsError(
                start.record.path, f"{bad} non-finite value(s) in the window embeddings"))
            return None
        return VideoEmbeddings(start.record.video_id, str(start.record.path),
                               embeddings, start.spans, start.num_frames, start.fps)

    def _skip(self, record: Any, error: VideoError) -> None:
        if self.on_skip is not None:
            self.on_skip(record, error)


def iter_video_embeddings(
    records: Sequence[Any],
    backbone: Any,
    settings: VideoWindowSettings,
    *,
    resize_at_decode: bool = True,
    on_skip: Callable[[Any, VideoError], None] | None = None,
    decode_threads: int | None = None,
    prefetch_chunks: int = 4,
) -> Iterator[VideoEmbeddings]:
    """Window embeddings of each video, in the order of ``records``.

    records: the videos (``VideoRecord``: ``video_id`` and ``path`` are read; ``path`` is a file or a
    FrameArray); backbone: a Backbone; settings: the window plan, frame choice and decoding (the ``video``
    config). Videos the video layer
    rejects (missing, empty, corrupt, too short, no fps) and videos whose embeddings are not finite
    (``NonFiniteEmbeddingsError``) are passed to ``on_skip(record, error)`` and left out.
    Embeddings of a window are the mean of its frames' embeddings (not normalised).
    decode_threads: background threads that decode videos in parallel with the encoder (decoders
    release the GIL). 0 decodes in the calling thread between encoder batches, with all cores
    (FFmpeg threads, ``num_threads=0``) since the encoder is idle meanwhile; that is faster when the
    encoder itself keeps every core busy (a CPU backbone: a decoding thread would preempt its
    OpenMP workers). None = 0 for a CPU backbone, 1 otherwise. prefetch_chunks: chunks of frames
    buffered per decoding thread.
    """
    if decode_threads is None:
        decode_threads = 0 if torch.device(backbone.device).type == "cpu" else 1
    means = _WindowMeans(backbone, on_skip)
    with _decoded_messages(list(enumerate(records)), backbone, settings, resize_at_decode, decode_threads,
                           prefetch_chunks) as messages:
        for message in messages:
            means.receive(message)
            yield from means.finished()
        means.encode_pending()
        yield from means.finished()


def extract_embeddings(
    records: Iterable[Any],
    backbone: Any,
    settings: VideoWindowSettings,
    cache: Any,
    *,
    skip_report: Any = None,
    resize_at_decode: bool = True,
    decode_threads: int | None = None,
    progress: bool = True,
    flush_every_seconds: float = 30.0,
) -> ExtractionReport:
    """Embed every video of ``records`` that is not in ``cache`` yet and store it there.

    Resumable: a video counts as done only once its file is complete, so a killed run started
    again redoes exactly the unfinished videos. Bad videos are skipped, recorded in the cache
    manifest and in ``skip_report`` (a motif.data.SkipReport) with the reason.
    """
    started = time.perf_counter()
    records = list(records)
    todo = [r for r in records if not cache.has(r.video_id)]
    report = ExtractionReport(already_cached=len(records) - len(todo))
    if not todo:
        report.seconds = time.perf_counter() - started
        return report

    bar = tqdm(total=len(todo), unit="video", desc="embedding", disable=not progress, dynamic_ncols=True)

    def skip(record: Any, error: VideoError) -> None:
        report.skipped.append({"video_id": record.video_id, "path": str(record.path), "reason": error.reason})
        cache.record_skip(record.video_id, str(record.path), error.reason)
        if skip_report is not None:
            skip_report.add(str(record.path), error.reason, video_id=record.video_id, error=type(error).__name__)
        log.warning("Skipping video: %s", error)
        bar.update(1)

    last_flush = time.perf_counter()
    videos = iter_video_embeddings(todo, backbone, settings, resize_at_decode=resize_at_decode, on_skip=skip,
                                   decode_threads=decode_threads)
    try:
        for video in videos:
            cache.save(video.video_id, video.embeddings, video.spans, num_frames=video.num_frames, fps=video.fps,
                       path=video.path)
            report.embedded += 1
            report.windows += int(video.embeddings.shape[0])
            bar.update(1)
            bar.set_postfix(windows_per_s=f"{report.windows / (time.perf_counter() - started):.1f}", refresh=False)
            if time.perf_counter() - last_flush > flush_every_seconds:
                cache.flush()
                last_flush = time.perf_counter()
    finally:
        videos.close()  # stops the decoding threads
        bar.close()
        cache.flush()
    report.seconds = time.perf_counter() - started
    return report
