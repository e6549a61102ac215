"""The video settings of an extraction, from whichever form the ``video`` config comes in."""

from __future__ import annotations

from dataclasses import asdict, fields, is_dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from motif.data.windows import VideoWindowSettings


def video_window_settings(video_cfg: Any) -> VideoWindowSettings:
    """VideoWindowSettings from the ``video`` config (DictConfig, dataclass, dict or settings)."""
    if isinstance(video_cfg, VideoWindowSettings):
        return video_cfg
    if isinstance(video_cfg, DictConfig):
        data = OmegaConf.to_container(video_cfg, resolve=True)
    elif is_dataclass(video_cfg):
        data = asdict(video_cfg)
    else:
        data = dict(video_cfg)
    known = {f.name for f in fields(VideoWindowSettings)}
    return VideoWindowSettings(**{k: v for k, v in data.items() if k in known})
