"""Self-contained model checkpoints: everything needed to explain a new video, and nothing pickled.

A checkpoint is a dict of tensors, strings, numbers, lists and dicts, saved with ``torch.save`` and
read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from motif.concepts import ConceptStandardizer
from motif.errors import MotifError
from motif.files import atomic_write
from motif.model import TemporalConceptBottleneck
from motif.video import VideoWindowSettings

CHECKPOINT_FORMAT = "motif-checkpoint"
CHECKPOINT_VERSION = 1
PASS_BEST_CKPT = "Pass the best.ckpt that tools/train.py wrote into the run directory."


class CheckpointError(MotifError, ValueError):
    """A checkpoint file is missing, not a motif checkpoint, or of an unsupported version."""


@dataclass
class MotifCheckpoint:
    """A trained bottleneck with its vocabulary, preprocessing and provenance.

    text_embeddings: [C, D] concept text embeddings (None for tasks without a text encoder);
    video: how the training videos were cut into windows and decoded (None for tasks without videos);
    backbone: open_clip identity; config: the resolved run config.
    """

    model: TemporalConceptBottleneck
    model_kwargs: dict
    class_names: list[str]
    concept_names: list[str]
    text_embeddings: Tensor | None
    standardizer: ConceptStandardizer
    video: VideoWindowSettings | None
    backbone: dict
    config: dict
    metrics: dict


def save_motif_checkpoint(path: str | Path, *, model: TemporalConceptBottleneck, model_kwargs: dict,
                          class_names: list[str], concept_names: list[str], text_embeddings: Tensor | None,
                          standardizer: ConceptStandardizer, video: VideoWindowSettings | None, backbone: dict,
                          config: dict, metrics: dict | None = None) -> Path:
    """Write a checkpoint atomically (temp file, then rename). ``video`` is stored as a plain dict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "model_kwargs": dict(model_kwargs),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "class_names": list(class_names),
        "concept_names": list(concept_names),
        "text_embeddings": None if text_embeddings is None else text_embeddings.detach().cpu().float(),
        "standardizer": {k: v.detach().cpu() for k, v in standardizer.state_dict().items()},
        "video": None if video is None else video.as_dict(),
        "backbone": dict(backbone),
        "config": config,
        "metrics": dict(metrics or {}),
    }
    with atomic_write(path) as temporary:
        torch.save(payload, temporary)
    return path


def load_motif_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> MotifCheckpoint:
    """Read a checkpoint written by ``save_motif_checkpoint``; the model is returned in eval mode."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint '{path}' does not exist.", where=path, hint=PASS_BEST_CKPT)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not our file"
        raise CheckpointError(f"Checkpoint '{path}' could not be read as a motif checkpoint: {exc}", where=path,
                              hint=PASS_BEST_CKPT) from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"'{path}' is not a motif checkpoint (a Lightning resume file?).", where=path,
                              hint=PASS_BEST_CKPT)
    if payload["version"] > CHECKPOINT_VERSION:
        raise CheckpointError(f"Checkpoint '{path}' has version {payload['version']}; this motif reads "
                              f"<= {CHECKPOINT_VERSION}.", where=path, hint="Upgrade motif.")
    model = TemporalConceptBottleneck(**payload["model_kwargs"])
    model.load_state_dict(payload["state_dict"])
    model.eval()
    standardizer = ConceptStandardizer.from_state_dict(payload["standardizer"])
    return MotifCheckpoint(model=model, model_kwargs=payload["model_kwargs"], class_names=payload["class_names"],
                           concept_names=payload["concept_names"], text_embeddings=payload["text_embeddings"],
                           standardizer=standardizer, video=_window_settings(payload["video"]),
                           backbone=payload["backbone"], config=payload["config"], metrics=payload["metrics"])


def _window_settings(stored: dict | None) -> VideoWindowSettings | None:
    """The stored window settings as their type. Checkpoints of tasks without videos hold None (older
    ones a dict without window settings, such as {"unit": "window"})."""
    if not stored or "window_size" not in stored:
        return None
    return VideoWindowSettings.from_dict(stored)
