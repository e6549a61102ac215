"""Frozen vision-language backbones (open_clip): loading, frame and text encoding.

open_clip is imported when a backbone is first built or resolved, not by importing this package; the
custom model configs shipped in ``motif/backbone/model_configs/`` are registered then, so that they
load by name like any built-in model.
"""

from motif.backbone.encoder import (
    Backbone,
    load_backbone,
    load_backbone_from_identity,
    resolve_device,
    resolve_precision,
)
from motif.backbone.errors import BackboneError, UnknownModelError, WeightsUnavailableError
from motif.backbone.open_clip_models import MODEL_CONFIG_DIR
from motif.backbone.preprocess import FramePreprocessor
from motif.backbone.weights import ResolvedWeights, file_sha256, resolve_weights

__all__ = [
    "MODEL_CONFIG_DIR",
    "Backbone",
    "BackboneError",
    "FramePreprocessor",
    "ResolvedWeights",
    "UnknownModelError",
    "WeightsUnavailableError",
    "file_sha256",
    "load_backbone",
    "load_backbone_from_identity",
    "resolve_device",
    "resolve_precision",
    "resolve_weights",
]
