"""Explain a video (a file, or frames in memory) with a trained checkpoint: decode, embed, score concepts,
explain, write."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from torch import Tensor

from motif.backbone import Backbone, load_backbone_from_identity
from motif.cache import DamagedCacheFileError, EmbeddingCache, cache_key, cache_key_fields, iter_video_embeddings
from motif.checkpoint import MotifCheckpoint, load_motif_checkpoint
from motif.concepts import concept_activations
from motif.data import VideoRecord
from motif.explain.intervention_syntax import parse_interventions
from motif.explain.outputs import write_explanation
from motif.explain.video_explanation import ExplanationError, VideoExplanation, explain_sequence, resolve_class
from motif.video import FrameArray, Video, VideoError, VideoNotFoundError, VideoWindowSettings, open_video

log = logging.getLogger(__name__)

THUMBNAIL_HEIGHT = 90


def embed_video(video: Video, backbone: Backbone, settings: VideoWindowSettings, video_id: str
                ) -> tuple[Tensor, Tensor]:
    """Window embeddings [T, D] and spans [T, 2] (s) of one video (a file or a FrameArray), exactly as
    the embedding cache computes them. Raises the video layer's typed ``VideoError`` for a bad video."""
    failures: list[VideoError] = []
    record = VideoRecord(video_id, video, label=0, split="test")  # its class is unknown; embedding reads none
    videos = list(iter_video_embeddings([record], backbone, settings,
                                        on_skip=lambda record, error: failures.append(error)))
    if failures:
        raise failures[0]
    return videos[0].embeddings, videos[0].spans


def window_thumbnails(video: Video, settings: VideoWindowSettings, height: int = THUMBNAIL_HEIGHT
                      ) -> dict[int, np.ndarray]:
    """The centre frame of every window (same windows as the embeddings), RGB uint8 [h, w, 3] with
    h = ``height``."""
    centres = replace(settings, frames_per_window=1, frame_sampling="center")
    with open_video(video, backend=settings.backend, resize=height, fps_override=settings.fps_override,
                    min_frames=settings.min_frames) as source:
        meta = source.meta
        plan = centres.plan(meta.num_frames, meta.fps, "thumbnails")
        thumbnails = {}
        for chunk in source.iter_windows(plan, chunk_windows=64):
            for window, frame in zip(chunk.frame_window.tolist(), chunk.frames):
                thumbnails[int(window)] = frame.numpy()
    return thumbnails


def check_scores_videos(checkpoint: MotifCheckpoint) -> None:
    """ExplanationError unless the checkpoint can score a video's frames (it has concept text embeddings
    and window settings)."""
    if checkpoint.text_embeddings is None or checkpoint.video is None:
        raise ExplanationError("the checkpoint has no concept text embeddings (it was trained on features without a "
                               "text encoder, e.g. the synthetic order task), so it cannot score a video's frames; "
                               "explain its concept sequences with motif.explain.explain_sequence")


def video_concepts(checkpoint: MotifCheckpoint, embeddings: Tensor) -> Tensor:
    """Standardised concept activations X [T, C] of window embeddings [T, D] with the checkpoint's
    concept text embeddings and training statistics."""
    check_scores_videos(checkpoint)
    return checkpoint.standardizer(concept_activations(embeddings, checkpoint.text_embeddings))


def _cached_embeddings(cache_dir: str | Path, backbone: Backbone, settings: VideoWindowSettings, video: Path
                       ) -> dict | None:
    """The cached embeddings and spans of the video file ``video`` for this backbone and window plan, or
    None (the cache folder is only read, never created). The video is found by its recorded path (the
    ids of list datasets are relative paths), else by its file stem."""
    fields = cache_key_fields(backbone.cache_identity, settings)
    if not (Path(cache_dir) / cache_key(fields)).is_dir():
        log.info("No embedding cache for this backbone and window plan in %s; embedding the video", cache_dir)
        return None
    cache = EmbeddingCache(cache_dir, fields, embed_dim=int(backbone.embed_dim))
    video_id = cache.video_id_of_file(video) or video.stem
    if not cache.has(video_id):
        log.info("Video %s is not in the cache %s; embedding it", video, cache.dir)
        return None
    try:
        entry = cache.load(video_id)
    except DamagedCacheFileError as error:
        log.warning("%s; embedding the video instead", error)
        return None
    log.info("Window embeddings of %s (video id %s) read from the cache %s", video, video_id, cache.dir)
    return entry


def _checked_video(video: Video) -> Path | FrameArray:
    """A video file as a Path (VideoNotFoundError when it is not a file), or the FrameArray itself."""
    if isinstance(video, FrameArray):
        return video
    path = Path(video)
    if not path.is_file():
        raise VideoNotFoundError(path, "the video file does not exist")
    return path


def _video_id(video: Path | FrameArray) -> str:
    return video.name if isinstance(video, FrameArray) else video.stem


def video_concept_sequence(checkpoint: MotifCheckpoint, video: Video, backbone: Backbone, *,
                           cache_dir: str | Path | None = None) -> tuple[Tensor, Tensor]:
    """Standardised concept activations X [T, C] and window spans [T, 2] (s) of one video, a file or a
    FrameArray (video id: the file stem or the array's name).

    The window embeddings of a file come from ``cache_dir`` when that embedding cache (same backbone and
    window settings) holds it (found by its path, else its file stem); otherwise the video is decoded and
    embedded with ``backbone``."""
    check_scores_videos(checkpoint)
    video = _checked_video(video)
    cached = None
    if cache_dir is not None and isinstance(video, Path):
        cached = _cached_embeddings(cache_dir, backbone, checkpoint.video, video)
    if cached is not None:
        embeddings, spans = cached["embeddings"].float(), cached["spans"].float()
    else:
        embeddings, spans = embed_video(video, backbone, checkpoint.video, _video_id(video))
    return video_concepts(checkpoint, embeddings), spans


def explain_video(checkpoint: str | Path | MotifCheckpoint, video: Video, out_dir: str | Path | None = None, *,
                  class_name: str | None = None, interventions: Sequence[str] = (), cache_dir: str | Path | None = None,
                  device: str = "auto", backbone: Backbone | None = None, thumbnails: bool = True
                  ) -> tuple[VideoExplanation, dict[str, Path]]:
    """Explain ``video`` (a file or a FrameArray) with a trained checkpoint and write explanation.json,
    PNGs and report.html into ``out_dir`` (nothing is written when it is None).

    The concept activations come from ``video_concept_sequence`` (window embeddings from ``cache_dir``
    when that cache holds the file, else embedded with the checkpoint's backbone, or ``backbone``).
    class_name: explain this class instead of the prediction; interventions: strings such as
    ``zero:concept=red circle`` (before / after). report.html shows a file's clip, not a FrameArray's.
    """
    ckpt = checkpoint if isinstance(checkpoint, MotifCheckpoint) else load_motif_checkpoint(checkpoint)
    check_scores_videos(ckpt)
    target = resolve_class(class_name, ckpt.class_names)
    parse_interventions(interventions, ckpt.concept_names)  # syntax and names; windows are checked once T is known
    video = _checked_video(video)  # before the backbone loads
    backbone = backbone or load_backbone_from_identity(ckpt.backbone, device=device)
    x, spans = video_concept_sequence(ckpt, video, backbone, cache_dir=cache_dir)
    result = explain_sequence(ckpt.model, x, spans, class_names=ckpt.class_names, concept_names=ckpt.concept_names,
                              class_index=target, interventions=interventions, video_id=_video_id(video),
                              video_info={"path": video.name})
    paths: dict[str, Path] = {}
    if out_dir is not None:
        frames = window_thumbnails(video, ckpt.video) if thumbnails else None
        paths = write_explanation(result, out_dir, frames, video_path=video if isinstance(video, Path) else None)
    return result, paths


def explain_videos(checkpoint: str | Path | MotifCheckpoint, videos: Sequence[Video], out_dirs: Sequence[str | Path],
                   *, class_name: str | None = None, interventions: Sequence[str] = (),
                   cache_dir: str | Path | None = None, device: str = "auto",
                   on_skip: Callable[[Video, VideoError], None] | None = None
                   ) -> Iterator[tuple[Video, VideoExplanation, dict[str, Path]]]:
    """``explain_video`` over several videos (``out_dirs[i]`` receives video i's outputs), loading the
    checkpoint once and the backbone once (when the first readable file needs it).

    The class and the interventions are checked before any video is read. A video that cannot be read
    (``VideoError``: missing, undecodable) goes to ``on_skip(video, error)`` and the others go on; without
    ``on_skip`` the error is raised. Yields (video, explanation, written paths) per explained video.
    """
    if len(videos) != len(out_dirs):
        raise ValueError(f"explain_videos: {len(videos)} videos but {len(out_dirs)} output folders")
    ckpt = checkpoint if isinstance(checkpoint, MotifCheckpoint) else load_motif_checkpoint(checkpoint)
    check_scores_videos(ckpt)
    resolve_class(class_name, ckpt.class_names)
    parse_interventions(interventions, ckpt.concept_names)
    backbone = None
    for video, out_dir in zip(videos, out_dirs):
        try:
            checked = _checked_video(video)
            if backbone is None:
                backbone = load_backbone_from_identity(ckpt.backbone, device=device)
            result, paths = explain_video(ckpt, checked, out_dir, class_name=class_name, interventions=interventions,
                                          cache_dir=cache_dir, backbone=backbone)
        except VideoError as error:
            if on_skip is None:
                raise
            on_skip(video, error)
            continue
        yield video, result, paths
