"""Representative frames of a video for a vision-language model: spread over the video plus the
frames of largest motion, decoded with the video layer and sent as JPEG data URLs.

For ``k`` frames of a video of N frames: ``ceil(k / 2)`` are the centres of equal segments
(``floor((2i + 1) N / 2s)``, as the ``center`` window sampling). The rest are the frames of largest
motion: ``MOTION_PROBES`` evenly spaced probe frames are decoded small (``MOTION_SIDE`` pixels on the
shorter side); the motion of probe j is the mean absolute grey-level difference to its neighbours;
probes are taken by decreasing motion, skipping any closer than N / (2k) frames to a frame already
chosen. Fewer than k frames come back only when the video is shorter than k frames.
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from motif.video import open_video

MOTION_PROBES = 32
MOTION_SIDE = 64
JPEG_QUALITY = 90


@dataclass(frozen=True)
class VideoFrames:
    """The chosen frame indices (sorted), their JPEG bytes and (width, height) sizes, in the same order."""

    indices: list[int]
    jpegs: list[bytes]
    sizes: list[tuple[int, int]]

    @property
    def digest(self) -> str:
        """sha256 over the JPEG bytes: what the response cache keys on."""
        h = hashlib.sha256()
        for jpeg in self.jpegs:
            h.update(hashlib.sha256(jpeg).digest())
        return h.hexdigest()

    def data_urls(self) -> list[str]:
        return ["data:image/jpeg;base64," + base64.b64encode(jpeg).decode("ascii") for jpeg in self.jpegs]


def spread_indices(num_frames: int, count: int) -> list[int]:
    """Centres of ``count`` equal segments of ``num_frames`` frames."""
    return sorted({((2 * i + 1) * num_frames) // (2 * count) for i in range(count)})


def motion_scores(probes: torch.Tensor) -> torch.Tensor:
    """uint8 [P, H, W, 3] probe frames -> [P] mean absolute grey-level change to the neighbours."""
    grey = probes.float().mean(dim=-1)
    if len(grey) < 2:
        return torch.zeros(len(grey))
    step = (grey[1:] - grey[:-1]).abs().mean(dim=(1, 2))  # [P-1] change between consecutive probes
    padded = torch.cat([step[:1], step, step[-1:]])
    return (padded[:-1] + padded[1:]) / 2


def choose_frames(num_frames: int, count: int, probe_indices: list[int], motion: torch.Tensor) -> list[int]:
    """Spread frames plus the largest-motion probes (module docstring), sorted."""
    chosen = spread_indices(num_frames, math.ceil(count / 2))
    gap = num_frames / (2 * count)
    for j in torch.argsort(motion, descending=True, stable=True).tolist():
        if len(chosen) >= min(count, num_frames):
            break
        index = probe_indices[j]
        if all(abs(index - c) >= gap for c in chosen):
            chosen.append(index)
    for index in range(num_frames):  # short videos: fill with unused frames
        if len(chosen) >= min(count, num_frames):
            break
        if index not in chosen:
            chosen.append(index)
    return sorted(chosen)


def _jpeg(frame: np.ndarray, longer_side: int) -> tuple[bytes, tuple[int, int]]:
    image = Image.fromarray(frame)
    scale = longer_side / max(image.size)
    if scale < 1:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                             Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue(), image.size


def representative_frames(path: str, count: int, image_size: int, backend: str = "auto") -> VideoFrames:
    """``count`` frames of the video at ``path`` (module docstring), as JPEGs whose longer side is at
    most ``image_size`` pixels. Raises the video layer's VideoError for unreadable videos."""
    with open_video(path, backend=backend, resize=MOTION_SIDE) as small:
        num_frames = small.meta.num_frames
        probe_indices = spread_indices(num_frames, min(MOTION_PROBES, num_frames))
        motion = motion_scores(small.read_frames(probe_indices))
    indices = choose_frames(num_frames, count, probe_indices, motion)
    with open_video(path, backend=backend) as video:
        frames = video.read_frames(indices).numpy()
    encoded = [_jpeg(frame, image_size) for frame in frames]
    return VideoFrames(indices, [jpeg for jpeg, _ in encoded], [size for _, size in encoded])
