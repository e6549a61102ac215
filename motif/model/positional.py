"""Sinusoidal positional encoding over time, computed for the number of windows at hand."""

from __future__ import annotations

import torch
from torch import Tensor


def sinusoidal_encoding(num_windows: int, channels: int, *, dtype: torch.dtype = torch.float32,
                        device: torch.device | str | None = None, base: float = 10000.0) -> Tensor:
    """The transformer sinusoidal encoding, PE [T, C], for any T (there is no maximum length).

    Channel c uses the frequency base^(-2·⌊c/2⌋ / C): sine on even channels, cosine on odd ones, so
    with d_model = C every concept channel gets the frequency of its own index. Angles are computed
    in float64 on the CPU (exact for any realistic T) and then cast.
    """
    if num_windows < 0 or channels < 1:
        raise ValueError(f"sinusoidal_encoding: need num_windows >= 0 and channels >= 1, got "
                         f"num_windows={num_windows}, channels={channels}")
    position = torch.arange(num_windows, dtype=torch.float64).unsqueeze(1)
    index = torch.arange(channels)
    frequency = base ** (-(2 * (index // 2)).to(torch.float64) / channels)
    angle = position * frequency
    encoding = torch.where(index % 2 == 0, angle.sin(), angle.cos())
    return encoding.to(device=device, dtype=dtype)
