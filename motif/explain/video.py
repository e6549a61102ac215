"""Explain a video file with a trained checkpoint: decode, embed, score concepts, explain, write."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from torch import Tensor

from motif.backbone import Backbone, load_backbone_from_identity
from motif.cache import DamagedCacheFileError, EmbeddingCache, cache_key, cache_key_fields, iter_video_embeddings
from motif.concepts import concept_activations
from motif.explain.video_explanation import ExplanationError, VideoExplanation, explain_sequence, resolve_class
from motif.explain.intervention_syntax import parse_interventions
from motif.explain.outputs import write_explanation
from motif.checkpoint import MotifCheckpoint, load_motif_checkpoint
from motif.video import VideoError, VideoNotFoundError, WindowPlan, open_video

log = logging.getLogger(__name__)

THUMBNAIL_HEIGHT = 90


@dataclass(frozen=True)
class _VideoRecord:
    video_id: str
    path: str
    label: int = -1


def _setting(video_cfg: dict, name: str, default=None):
    value = video_cfg.get(name, default)
    return default if value is None else value


def embed_video(path: str | Path, backbone: Backbone, video_cfg: dict, video_id: str) -> tuple[Tensor, Tensor]:
    """Window embeddings [T, D] and spans [T, 2] (s) of one video, exactly as the embedding cache
    computes them. Raises the video layer's typed ``VideoError`` for a bad file."""
    failures: list[VideoError] = []
    videos = list(iter_video_embeddings([_VideoRecord(video_id, str(path))], backbone, video_cfg,
                                        on_skip=lambda record, error: failures.append(error)))
    if failures:
        raise failures[0]
    return videos[0].embeddings, videos[0].spans


def window_thumbnails(path: str | Path, video_cfg: dict, height: int = THUMBNAIL_HEIGHT) -> dict[int, np.ndarray]:
    """The centre frame of every window (same windows as the embeddings), RGB uint8 [h, w, 3] with
    h = ``height``."""
    with open_video(path, backend=_setting(video_cfg, "backend", "auto"), resize=height,
                    fps_override=video_cfg.get("fps_override"),
                    min_frames=int(_setting(video_cfg, "min_frames", 1))) as source:
        meta = source.meta
        plan = WindowPlan.build(meta.num_frames, meta.fps, window_size=int(_setting(video_cfg, "window_size", 8)),
                                stride=video_cfg.get("stride"), frames_per_window=1, sampling="center")
        thumbnails = {}
        for chunk in source.iter_windows(plan, chunk_windows=64):
            for window, frame in zip(chunk.frame_window.tolist(), chunk.frames):
                thumbnails[int(window)] = frame.numpy()
    return thumbnails


def _check_scores_videos(checkpoint: MotifCheckpoint) -> None:
    if checkpoint.text_embeddings is None:
        raise ExplanationError("the checkpoint has no concept text embeddings (it was trained on features without a "
                               "text encoder, e.g. the synthetic order task), so it cannot score a video's frames; "
                               "explain its concept sequences with motif.explain.explain_sequence")


def video_concepts(checkpoint: MotifCheckpoint, embeddings: Tensor) -> Tensor:
    """Standardised concept activations X [T, C] of window embeddings [T, D] with the checkpoint's
    concept text embeddings and training statistics."""
    _check_scores_videos(checkpoint)
    return checkpoint.standardizer(concept_activations(embeddings, checkpoint.text_embeddings))


def _cached_embeddings(cache_dir: str | Path, backbone: Backbone, video_cfg: dict, video: Path) -> dict | None:
    """The cached embeddings and spans of the video file ``video`` for this backbone and window plan, or
    None (the cache folder is only read, never created). The video is found by its recorded path (the
    ids of list datasets are relative paths), else by its file stem."""
    fields = cache_key_fields(backbone.cache_identity, video_cfg)
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


def explain_video(checkpoint: str | Path | MotifCheckpoint, video: str | Path, out_dir: str | Path | None = None, *,
                  class_name: str | None = None, interventions: Sequence[str] = (), cache_dir: str | Path | None = None,
                  device: str = "auto", backbone: Backbone | None = None, thumbnails: bool = True
                  ) -> tuple[VideoExplanation, dict[str, Path]]:
    """Explain ``video`` with a trained checkpoint and write explanation.json, PNGs and report.html
    into ``out_dir`` (nothing is written when it is None).

    The window embeddings come from ``cache_dir`` when that embedding cache (same backbone and
    window settings) holds the video (found by its path, else its file stem), otherwise the video is
    decoded and embedded with the checkpoint's backbone. class_name: explain this class instead of the
    prediction; interventions: strings such as ``zero:concept=red circle`` (before / after).
    """
    ckpt = checkpoint if isinstance(checkpoint, MotifCheckpoint) else load_motif_checkpoint(checkpoint)
    video = Path(video)
    video_id = video.stem
    _check_scores_videos(ckpt)
    target = resolve_class(class_name, ckpt.class_names)
    parse_interventions(interventions, ckpt.concept_names)  # syntax and names; windows are checked once T is known
    if not video.is_file():
        raise VideoNotFoundError(video, "the video file does not exist")
    backbone = backbone or load_backbone_from_identity(ckpt.backbone, device=device)
    cached = _cached_embeddings(cache_dir, backbone, ckpt.video, video) if cache_dir is not None else None
    if cached is not None:
        embeddings, spans = cached["embeddings"].float(), cached["spans"].float()
    else:
        embeddings, spans = embed_video(video, backbone, ckpt.video, video_id)
    x = video_concepts(ckpt, embeddings)
    result = explain_sequence(ckpt.model, x, spans, class_names=ckpt.class_names, concept_names=ckpt.concept_names,
                              class_index=target, interventions=interventions, video_id=video_id,
                              video_info={"path": video.name})
    paths: dict[str, Path] = {}
    if out_dir is not None:
        frames = window_thumbnails(video, ckpt.video) if thumbnails else None
        paths = write_explanation(result, out_dir, frames, video_path=video)
    return result, paths
