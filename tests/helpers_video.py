"""Synthetic test videos whose frames encode their own index, and byte-level corruptions."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from motif.video import write_video

INDEX_BITS = 12
BLOCKS_PER_ROW = 6


def index_frame(index: int, height: int = 64, width: int = 96) -> np.ndarray:
    """An RGB frame ``[H, W, 3]`` whose top two block rows spell ``index`` in binary (white = 1),
    with a colour ramp below that changes with the index."""
    frame = np.full((height, width, 3), 60, dtype=np.uint8)
    block_h, block_w = height // 8, width // BLOCKS_PER_ROW
    for bit in range(INDEX_BITS):
        row, col = divmod(bit, BLOCKS_PER_ROW)
        value = 255 if (index >> bit) & 1 else 0
        frame[row * block_h:(row + 1) * block_h, col * block_w:(col + 1) * block_w] = value
    frame[2 * block_h:, :, 0] = (index * 37) % 256
    frame[2 * block_h:, :, 2] = np.linspace(0, 255, width, dtype=np.uint8)[None, :]
    return frame


def decode_index(frame: np.ndarray) -> int:
    """Read the index back from a decoded (possibly resized, lossy) frame."""
    frame = np.asarray(frame)
    height, width = frame.shape[:2]
    block_h, block_w = height / 8, width / BLOCKS_PER_ROW
    index = 0
    for bit in range(INDEX_BITS):
        row, col = divmod(bit, BLOCKS_PER_ROW)
        top, left = int((row + 0.3) * block_h), int((col + 0.3) * block_w)
        bottom, right = int((row + 0.7) * block_h) + 1, int((col + 0.7) * block_w) + 1
        if frame[top:bottom, left:right].mean() > 128:
            index |= 1 << bit
    return index


def make_index_video(path: Path, num_frames: int, fps: float = 25, codec: str = "libx264",
                     size: tuple[int, int] = (64, 96), options: dict[str, str] | None = None,
                     container_options: dict[str, str] | None = None) -> Path:
    """Write ``num_frames`` index frames; by default libx264 is lossless (qp 0) and other codecs
    use a fine quantiser, with a keyframe every 12 frames."""
    if options is None:
        options = ({"qp": "0", "g": "12"} if codec == "libx264"
                   else {"flags": "+qscale", "global_quality": "236", "g": "12"})  # quantiser 2
    frames = (index_frame(index, *size) for index in range(num_frames))
    return write_video(path, frames, fps, codec, options=options, container_options=container_options)


def truncate(source: Path, target: Path, keep: float = 0.5) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[:int(len(data) * keep)])
    return target


def strip_mp4_timing(source: Path, target: Path) -> Path:
    """Copy an mp4 with its frame timing erased (sample durations and media duration set to 0),
    so that no frame rate can be derived from it."""
    data = bytearray(source.read_bytes())
    stts = data.find(b"stts")
    entries = struct.unpack(">I", data[stts + 8:stts + 12])[0]
    for entry in range(entries):
        offset = stts + 16 + 8 * entry
        data[offset:offset + 4] = b"\0\0\0\0"
    for box, offset in ((b"mdhd", 20), (b"mvhd", 20), (b"tkhd", 24)):
        position = data.find(box)
        data[position + offset:position + offset + 4] = b"\0\0\0\0"
    edit_list = data.find(b"elst")
    if edit_list >= 0:
        data[edit_list:edit_list + 4] = b"free"
    target.write_bytes(bytes(data))
    return target
