"""Tiny open_clip backbones for tests: a config registered at test time and weights saved to a file,
loaded through ``load_backbone`` exactly like real weights."""

from __future__ import annotations

import json
from pathlib import Path

import open_clip
import torch

TINY_MODEL = "motif-test-tiny"
TINY_CONFIG = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 2, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
}


def register_tiny_model(folder: Path, name: str = TINY_MODEL, **overrides) -> str:
    """Write a tiny open_clip config JSON into ``folder`` and register it; returns the model name."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {**TINY_CONFIG, **overrides}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    open_clip.add_model_config(path)
    return name


def save_tiny_weights(path: Path, name: str = TINY_MODEL, seed: int = 0, quick_gelu: bool = False) -> Path:
    """Save the state dict of a seeded random instance of ``name`` (torch or safetensors by suffix)."""
    torch.manual_seed(seed)
    model = open_clip.create_model(name, pretrained=None, quick_gelu=quick_gelu)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path


def make_local_dir(folder: Path, name: str = TINY_MODEL, seed: int = 0) -> Path:
    """A ``local-dir:`` style folder: open_clip_config.json (model_cfg + preprocess_cfg) and weights."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"model_cfg": open_clip.get_model_config(name), "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    save_tiny_weights(folder / "open_clip_pytorch_model.bin", name, seed)
    return folder
