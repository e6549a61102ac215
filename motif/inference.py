"""A trained checkpoint, loaded once, that classifies and explains videos (``motif.load``).

    import motif

    model = motif.load("runs/ucf101/best.ckpt", device="cpu")
    prediction = model.predict("some.mp4")          # or model.predict(frames, fps=25)
    print(prediction.top(3))                         # [(class name, probability), ...]
    explanation = model.explain("some.mp4", out_dir="report/")

A video is a file path, RGB frames (uint8 [N, H, W, 3], a NumPy array or a tensor) with their ``fps``,
or a :class:`~motif.video.FrameArray`. Both methods run the one-video pipeline of
``motif.explain.video``: the checkpoint's window settings, its backbone, concept activations against
its concept text embeddings and its standardiser; ``explain`` is ``tools/explain.py`` without the
command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from motif.backbone import Backbone, load_backbone_from_identity
from motif.checkpoint import MotifCheckpoint, load_motif_checkpoint
from motif.explain import VideoExplanation, check_scores_videos, explain_video, video_concept_sequence
from motif.video import FrameArray, Video

VideoInput = Video | np.ndarray | Tensor  # a file, a FrameArray, or frames uint8 [N, H, W, 3] (with fps)


@dataclass(frozen=True)
class Prediction:
    """The class scores of one video: ``logits`` [K], the window logits s [T, K] pooled over the T windows,
    ℓ_k = (1/τ) log Σ_t exp(τ s_tk), and the names of the K classes."""

    class_names: list[str]
    logits: Tensor

    @property
    def probabilities(self) -> Tensor:
        """softmax(logits), [K]."""
        return self.logits.softmax(dim=-1)

    @property
    def class_index(self) -> int:
        """The predicted class (largest logit)."""
        return int(self.logits.argmax())

    @property
    def class_name(self) -> str:
        return self.class_names[self.class_index]

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The (at most) ``k`` most probable classes as (name, probability), most probable first."""
        probabilities = self.probabilities
        order = probabilities.argsort(descending=True)[:k].tolist()
        return [(self.class_names[i], float(probabilities[i])) for i in order]


class VideoClassifier:
    """A trained MoTIF bottleneck with the backbone its concept activations need.

    ``checkpoint.model`` (small) runs on the CPU; ``backbone`` embeds the frames on its own device.
    """

    def __init__(self, checkpoint: MotifCheckpoint, backbone: Backbone) -> None:
        check_scores_videos(checkpoint)
        self.checkpoint = checkpoint
        self.backbone = backbone

    @property
    def class_names(self) -> list[str]:
        return list(self.checkpoint.class_names)

    @property
    def concept_names(self) -> list[str]:
        return list(self.checkpoint.concept_names)

    @torch.inference_mode()
    def predict(self, video: VideoInput, *, fps: float | None = None) -> Prediction:
        """Class scores of one video: a file, frames uint8 [N, H, W, 3] with ``fps``, or a FrameArray."""
        x, _ = video_concept_sequence(self.checkpoint, _as_video(video, fps), self.backbone)
        return Prediction(self.class_names, self.checkpoint.model(x[None]).logits[0].float().cpu())

    def explain(self, video: VideoInput, out_dir: str | PathLike[str] | None = None, *, fps: float | None = None,
                class_name: str | int | None = None, interventions: Sequence[str] = (),
                thumbnails: bool = True) -> VideoExplanation:
        """The explanation of one video (prediction, exact decomposition, attention maps, interventions
        before / after), as ``tools/explain.py`` makes it.

        out_dir: also write explanation.json, the figures (PNG) and report.html there; class_name: explain
        this class (name or index) instead of the prediction; interventions: e.g. ``zero:concept=paddle``
        (syntax of ``motif.explain.intervention_syntax``); thumbnails: window thumbnails in the report.
        """
        result, _ = explain_video(self.checkpoint, _as_video(video, fps), out_dir, class_name=class_name,
                                  interventions=interventions, backbone=self.backbone, thumbnails=thumbnails)
        return result

    def __repr__(self) -> str:
        return (f"VideoClassifier({len(self.checkpoint.class_names)} classes, "
                f"{len(self.checkpoint.concept_names)} concepts, backbone {self.backbone.identity['model']!r} "
                f"on {self.backbone.device})")


def _as_video(video: VideoInput, fps: float | None) -> Path | FrameArray:
    """A file path as a Path, a FrameArray as it is, anything else as the frames of a FrameArray at ``fps``.

    ``fps`` belongs to frames only: a file's frame rate comes from its headers (or the checkpoint's
    ``video.fps_override``) and a FrameArray carries its own."""
    if isinstance(video, (str, PathLike, FrameArray)):
        if fps is not None:
            raise ValueError(f"fps={fps} is for frame arrays; {str(video)!r} brings its own frame rate "
                             "(leave fps out)")
        return video if isinstance(video, FrameArray) else Path(video)
    return FrameArray(video, fps)


def load(checkpoint: str | PathLike[str], device: str | torch.device = "auto") -> VideoClassifier:
    """Load the best.ckpt of a training run and the backbone it was trained with (the same weights,
    checked by sha256) on ``device`` (``auto``: the current CUDA device if there is one, else the CPU).

    Raises CheckpointError for a missing file or one that is not a motif checkpoint, ExplanationError
    for a checkpoint that cannot score video frames (trained on features without a text encoder) and
    BackboneError when the backbone's weights are not on this machine.
    """
    loaded = load_motif_checkpoint(checkpoint)
    check_scores_videos(loaded)  # before its (possibly empty) backbone identity is read
    return VideoClassifier(loaded, load_backbone_from_identity(loaded.backbone, device=device))
