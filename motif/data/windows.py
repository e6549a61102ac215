"""Torch datasets that stream the windows of videos for embedding extraction.

Two shapes of the same data:

- :class:`VideoWindowStream` (``IterableDataset``) yields one :class:`VideoChunk` per chunk of
  ``chunk_windows`` windows, so memory stays bounded for videos of any length. Videos are sharded
  over DataLoader workers and distributed ranks (video ``i`` goes to shard ``i % num_shards``);
  each video's chunks come in order from one worker, but chunks of different videos interleave
  when ``num_workers > 1``: group them by ``video_id`` and keep a video once its ``is_last`` chunk
  arrived.
- :class:`VideoWindowDataset` (map-style) returns all sampled frames of one video per item
  (:class:`VideoWindows`); convenient for short clips and shuffled access.

A bad video does not stop iteration: the item for it is a :class:`SkippedVideo` (path, reason). It
travels back from worker processes like any item, so the main process can record it in a
:class:`SkipReport` (see :func:`record_skips`). With the stream, a video whose decoding fails part
way yields its first chunks and then a :class:`SkippedVideo`: discard that video's partial chunks.

Use them with ``DataLoader(dataset, batch_size=None, num_workers=k)`` (items are already
batches of frames), or ``collate_fn=list`` for several items per step. Decoders are opened inside
the worker that reads (no decord reader is ever created in the main process), with one decoding
thread each by default.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from os import PathLike
from typing import Iterable, Iterator, Sequence

import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from motif.data.records import VideoRecord
from motif.data.skips import SkippedVideo, SkipReport
from motif.video import VideoError, VideoMeta, VideoSource, WindowChunk, WindowPlan, open_video

logger = logging.getLogger(__name__)


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


@dataclass
class VideoChunk:
    """One item of :class:`VideoWindowStream`: a chunk of windows of one video.

    ``chunk``: the frames (see :class:`~motif.video.WindowChunk`); ``spans`` [n, 2]: the chunk's
    window spans in seconds; ``num_windows``: T of the whole video; ``is_last``: the video's last chunk.
    """

    index: int
    video_id: str
    label: int
    chunk: WindowChunk
    spans: torch.Tensor
    num_windows: int
    is_last: bool
    meta: VideoMeta


@dataclass
class VideoWindows:
    """One item of :class:`VideoWindowDataset`: every sampled frame of one video.

    ``frames`` [N, H, W, 3] uint8; ``frame_window`` [N] long: window of each frame;
    ``frame_indices`` [N] long: frame index in the video; ``spans`` [T, 2] seconds.
    """

    index: int
    video_id: str
    label: int
    frames: torch.Tensor
    frame_window: torch.Tensor
    frame_indices: torch.Tensor
    spans: torch.Tensor
    meta: VideoMeta

    @property
    def num_windows(self) -> int:
        return int(self.spans.shape[0])

    def mean_per_window(self, features: torch.Tensor) -> torch.Tensor:
        """Average per-frame features over each window: ``[N, ...]`` -> ``[T, ...]``."""
        chunk = WindowChunk(torch.arange(self.num_windows), self.frames, self.frame_window, self.frame_indices)
        return chunk.mean_per_window(features)


def _distributed_shard(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is not None and world_size is not None:
        return rank, world_size
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class VideoWindowStream(IterableDataset):
    """Streams :class:`VideoChunk` items (or :class:`SkippedVideo`) for ``records``.

    ``rank`` / ``world_size``: this process's shard of the records; by default taken from
    ``torch.distributed`` when it is initialised, else the whole list. Within a process the shard
    is split again over DataLoader workers.
    """

    def __init__(self, records: Sequence[VideoRecord], settings: VideoWindowSettings = VideoWindowSettings(),
                 *, rank: int | None = None, world_size: int | None = None) -> None:
        if (rank is None) != (world_size is None):
            raise ValueError("pass both rank and world_size, or neither")
        if world_size is not None and not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        self.records = list(records)
        self.settings = settings
        self.rank, self.world_size = rank, world_size

    def shard_indices(self) -> range:
        """Indices of the records this process / worker reads."""
        rank, world_size = _distributed_shard(self.rank, self.world_size)
        worker = get_worker_info()
        worker_id, num_workers = (worker.id, worker.num_workers) if worker is not None else (0, 1)
        return range(rank * num_workers + worker_id, len(self.records), world_size * num_workers)

    def __iter__(self) -> Iterator[VideoChunk | SkippedVideo]:
        for index in self.shard_indices():
            yield from self.iter_video(index)

    def iter_video(self, index: int) -> Iterator[VideoChunk | SkippedVideo]:
        """The chunks of one video, or a :class:`SkippedVideo` if it cannot be read."""
        record = self.records[index]
        try:
            with self.settings.open(record.path) as source:
                meta = source.meta
                plan = self.settings.plan(meta.num_frames, meta.fps, record.video_id)
                spans = plan.spans
                for chunk in source.iter_windows(plan, self.settings.chunk_windows):
                    last = int(chunk.window_ids[-1]) == plan.num_windows - 1
                    yield VideoChunk(index=index, video_id=record.video_id, label=record.label, chunk=chunk,
                                     spans=spans[chunk.window_ids], num_windows=plan.num_windows,
                                     is_last=last, meta=meta)
        except VideoError as error:
            logger.debug("skipping %s: %s", record.path, error)
            yield SkippedVideo.from_error(error, record.path, record.video_id)


class VideoWindowDataset(Dataset):
    """Map-style: item ``i`` holds every sampled frame of ``records[i]`` (or a :class:`SkippedVideo`)."""

    def __init__(self, records: Sequence[VideoRecord], settings: VideoWindowSettings = VideoWindowSettings()) -> None:
        self.records = list(records)
        self.settings = settings

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> VideoWindows | SkippedVideo:
        record = self.records[index]
        try:
            with self.settings.open(record.path) as source:
                meta = source.meta
                plan = self.settings.plan(meta.num_frames, meta.fps, record.video_id)
                chunks = list(source.iter_windows(plan, self.settings.chunk_windows))
        except VideoError as error:
            logger.debug("skipping %s: %s", record.path, error)
            return SkippedVideo.from_error(error, record.path, record.video_id)
        return VideoWindows(index=index, video_id=record.video_id, label=record.label,
                            frames=torch.cat([chunk.frames for chunk in chunks]),
                            frame_window=torch.cat([chunk.frame_window for chunk in chunks]),
                            frame_indices=torch.cat([chunk.frame_indices for chunk in chunks]),
                            spans=plan.spans, meta=meta)


def record_skips(items: Iterable[object], report: SkipReport) -> Iterator[object]:
    """Pass items through, recording :class:`SkippedVideo` items in ``report`` instead of yielding
    them; when the items are exhausted, ``report`` warns once with the count."""
    for item in items:
        if isinstance(item, SkippedVideo):
            report.record(item)
        else:
            yield item
    report.warn_once_summary()
