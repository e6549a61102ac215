"""Frozen vision-language backbones (open_clip): loading, frame and text encoding.

Importing this package registers the custom open_clip model configs shipped in
``motif/backbone/model_configs/`` so that they load by name like any built-in model.
"""

from pathlib import Path

import open_clip

from motif.backbone.encoder import (
    Backbone,
    load_backbone,
    load_backbone_from_identity,
    resolve_device,
    resolve_precision,
)
from motif.backbone.errors import BackboneError, UnknownModelError, WeightsUnavailableError
from motif.backbone.preprocess import FramePreprocessor
from motif.backbone.weights import ResolvedWeights, file_sha256, resolve_weights

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
if MODEL_CONFIG_DIR.is_dir():
    open_clip.add_model_config(MODEL_CONFIG_DIR)

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
