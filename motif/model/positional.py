"""Sinusoidal positional encoding over time, computed for the number of windows at hand."""

from __future__ import annotations

import torch
from torch import Tensor

ROWS_PER_CHUNK = 1024


def sinusoidal_encoding(num_windows: int, channels: int, *, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None, base: float = 10000.0) -> Tensor:
    """The transformer sinusoidal encoding, PE [T, C], for any T (there is no maximum length).

    Channel c uses the frequency base^(-2·⌊c/2⌋ / C): sine on even channels, cosine on odd ones, so
    with d_model = C every concept channel gets the frequency of its own index. Angles are computed
    in float64 on the CPU (exact for any realistic T) and then cast, ROWS_PER_CHUNK rows at a time (a
    long video needs no [T, C] float64 temporaries).
    """
    if num_windows < 0 or channels < 1:
        raise ValueError(f"sinusoidal_encoding: need num_windows >= 0 and channels >= 1, got "
                         f"num_windows={num_windows}, channels={channels}")
    index = torch.arange(channels)
    frequency = base ** (-(2 * (index // 2)).to(torch.float64) / channels)
    even = index % 2 == 0
    encoding = torch.empty(num_windows, channels, dtype=dtype)
    for start in range(0, num_windows, ROWS_PER_CHUNK):
        position = torch.arange(start, min(start + ROWS_PER_CHUNK, num_windows), dtype=torch.float64).unsqueeze(1)
        angle = position * frequency
        encoding[start:start + ROWS_PER_CHUNK] = torch.where(even, angle.sin(), angle.cos())
    return encoding.to(device=device)


_TABLES: dict[tuple[int, torch.device, torch.dtype], Tensor] = {}


def cached_sinusoidal_encoding(num_windows: int, channels: int, *, dtype: torch.dtype,
                               device: torch.device) -> Tensor:
    """``sinusoidal_encoding(num_windows, channels)`` on ``device`` in ``dtype``, from a cache: [T, C], read-only.

    Row t of the encoding does not depend on T, so each (C, device, dtype) keeps one table and
    returns its first T rows; the table is recomputed (at the next power of two >= T) only when a
    longer video comes, so a forward pass neither recomputes it in float64 nor copies it to the device.
    """
    key = (channels, torch.device(device), dtype)
    table = _TABLES.get(key)
    if table is None or table.shape[0] < num_windows:
        capacity = 1 << max(num_windows - 1, 0).bit_length()
        table = _TABLES[key] = sinusoidal_encoding(capacity, channels, dtype=dtype, device=device)
    return table[:num_windows]
