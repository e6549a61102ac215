"""Tensor image preprocessing equivalent to open_clip's evaluation transform, batched.

open_clip preprocesses one PIL image at a time (resize, centre crop, to tensor, normalise). Video
frames arrive as uint8 tensors by the hundred, so the same steps run here on whole batches:
antialiased resize with ``torch.nn.functional.interpolate`` (uint8 kernels on CPU, which follow
PIL's filters), the same output sizes and crop offsets as torchvision, then normalisation with the
model's mean and std. Results match the PIL path up to interpolation rounding (tested).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

RESIZE_MODES = ("shortest", "longest", "squash")
INTERPOLATIONS = ("bicubic", "bilinear")


@dataclass(frozen=True)
class FramePreprocessor:
    """Resize, crop (or pad) and normalise frames as open_clip's eval transform does.

    ``image_size`` is the model input (height, width); ``resize_mode`` is open_clip's
    (``shortest``: shorter side to size then centre crop; ``longest``: longer side to size then
    centre pad; ``squash``: resize to size ignoring aspect).
    """

    image_size: tuple[int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"
    resize_mode: str = "shortest"
    fill_color: int = 0

    def __post_init__(self) -> None:
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode '{self.resize_mode}' is not one of {', '.join(RESIZE_MODES)}")
        if self.interpolation not in INTERPOLATIONS:
            # open_clip treats 'random' (a training option) as bicubic at evaluation time
            object.__setattr__(self, "interpolation", "bicubic")

    def resize_target(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) a frame of this size is resized to before the crop or pad."""
        target_h, target_w = self.image_size
        if self.resize_mode == "squash":
            return target_h, target_w
        if self.resize_mode == "shortest" and target_h == target_w:
            # torchvision Resize(int): the shorter side becomes `size`, the longer is truncated
            short, long = min(height, width), max(height, width)
            new_short, new_long = target_h, int(target_h * long / short)
            return (new_long, new_short) if height > width else (new_short, new_long)
        ratio_h, ratio_w = height / target_h, width / target_w
        ratio = max(ratio_h, ratio_w) if self.resize_mode == "longest" else min(ratio_h, ratio_w)
        return round(height / ratio), round(width / ratio)

    def _interpolation_for(self, height: int, width: int) -> str:
        if self.resize_mode == "shortest" and self.image_size[0] != self.image_size[1]:
            return "bicubic"  # open_clip's non-square 'shortest' path always resizes bicubic
        return self.interpolation

    def resize_and_crop(self, frames: Tensor) -> Tensor:
        """uint8 [N, H, W, 3] -> uint8 [N, 3, h, w] at the model's input size."""
        if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be uint8 [N, H, W, 3], got {frames.dtype} {list(frames.shape)}")
        x = frames.permute(0, 3, 1, 2)
        height, width = x.shape[-2:]
        size = self.resize_target(height, width)
        if (height, width) != size and x.shape[0] > 0:
            x = _resize_uint8(x, size, self._interpolation_for(height, width))
        return _center_crop_or_pad(x, self.image_size, self.fill_color)

    def normalize(self, pixels: Tensor) -> Tensor:
        """uint8 [N, 3, h, w] -> float32 [N, 3, h, w], (x / 255 - mean) / std."""
        mean = torch.tensor(self.mean, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32, device=pixels.device).view(1, 3, 1, 1)
        return (pixels.float() / 255.0 - mean) / std

    def __call__(self, frames: Tensor) -> Tensor:
        """uint8 [N, H, W, 3] -> normalised float32 [N, 3, h, w]."""
        return self.normalize(self.resize_and_crop(frames))


def _resize_uint8(x: Tensor, size: tuple[int, int], mode: str) -> Tensor:
    """Antialiased resize of uint8 [N, 3, H, W]; rounds and clamps like PIL on the float path."""
    if x.device.type == "cpu":
        return F.interpolate(x.contiguous(memory_format=torch.channels_last), size=size, mode=mode, antialias=True)
    y = F.interpolate(x.float(), size=size, mode=mode, antialias=True, align_corners=False)
    return y.round_().clamp_(0, 255).to(torch.uint8)


def _center_crop_or_pad(x: Tensor, size: tuple[int, int], fill: int) -> Tensor:
    """Centre crop [N, 3, H, W] to ``size`` (offsets as torchvision), padding with ``fill`` first
    where the image is smaller."""
    crop_h, crop_w = size
    height, width = x.shape[-2:]
    if crop_h > height or crop_w > width:
        pad_left = (crop_w - width) // 2 if crop_w > width else 0
        pad_top = (crop_h - height) // 2 if crop_h > height else 0
        pad_right = (crop_w - width + 1) // 2 if crop_w > width else 0
        pad_bottom = (crop_h - height + 1) // 2 if crop_h > height else 0
        x = F.pad(x, (pad_left, pad_right, pad_top, pad_bottom), value=fill)
        height, width = x.shape[-2:]
    top = int(round((height - crop_h) / 2.0))
    left = int(round((width - crop_w) / 2.0))
    return x[..., top : top + crop_h, left : left + crop_w].contiguous()
