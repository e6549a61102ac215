"""Write RGB frames to a video file with PyAV (synthetic data, tests, benchmarks, report clips)."""

from __future__ import annotations

from fractions import Fraction
from os import PathLike
from pathlib import Path
from typing import Iterable

import av
import numpy as np
import torch


def write_video(path: str | PathLike[str], frames: Iterable[np.ndarray | torch.Tensor], fps: float,
                codec: str = "libx264", *, pix_fmt: str = "yuv420p", bit_rate: int | None = None,
                options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None) -> Path:
    """Encode frames ``[H, W, 3]`` uint8 (RGB, all the same size) at ``fps`` frames per second.

    ``options`` go to the encoder (e.g. ``{"qp": "0"}`` for lossless libx264, ``{"g": "12"}`` for
    the keyframe interval); ``container_options`` to the muxer (e.g. ``{"movflags": "faststart"}``).
    Returns the path. Raises ValueError for an empty frame sequence or a frame of the wrong shape.
    """
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"write_video: fps must be positive, got {fps}")
    stream = None
    count = 0
    with av.open(str(path), mode="w", options=container_options or {}) as container:
        for frame in frames:
            array = frame.numpy() if isinstance(frame, torch.Tensor) else np.asarray(frame)
            if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
                raise ValueError(f"write_video: frames must be uint8 [H, W, 3], got {array.dtype} {array.shape}")
            if stream is None:
                stream = container.add_stream(codec, rate=rate)
                stream.height, stream.width = array.shape[:2]
                stream.pix_fmt = pix_fmt
                if bit_rate is not None:
                    stream.bit_rate = bit_rate
                if options:
                    stream.options = dict(options)
            elif array.shape[:2] != (stream.height, stream.width):
                raise ValueError(f"write_video: frame {count} has size {array.shape[:2]}, expected "
                                 f"{(stream.height, stream.width)}")
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format="rgb24")
            container.mux(stream.encode(video_frame))
            count += 1
        if stream is None:
            raise ValueError("write_video: no frames to write")
        container.mux(stream.encode(None))
    return path
