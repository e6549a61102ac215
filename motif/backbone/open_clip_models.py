"""open_clip, imported on first use, with the model configs shipped in ``model_configs/`` registered.

open_clip is slow to import and loads wandb with it, so nothing in ``motif.backbone`` imports it at
module level: every use goes through ``import_open_clip``, and importing ``motif.backbone`` (or a
package that only types against ``Backbone``) costs nothing until a backbone is built.
"""

from __future__ import annotations

import functools
from pathlib import Path
from types import ModuleType

MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"


@functools.cache
def import_open_clip() -> ModuleType:
    """The open_clip module; the first call registers ``MODEL_CONFIG_DIR`` so that its configs load by
    name like any built-in model (configs registered by others before or after are kept)."""
    import open_clip

    if MODEL_CONFIG_DIR.is_dir():
        open_clip.add_model_config(MODEL_CONFIG_DIR)
    return open_clip
