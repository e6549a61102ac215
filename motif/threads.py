"""The number of CPU threads torch's intra-op parallelism uses, set for a block of work."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def cpu_threads(count: int | None) -> Iterator[None]:
    """Inside the block torch runs intra-op CPU work on ``count`` threads; None leaves the setting alone.

    A small bottleneck (tens of concepts, tens of windows) trains faster on one thread: each op's work
    is too small to split, and the threads' synchronisation costs more than it saves, most of all when
    other processes keep the cores busy. The previous setting is restored on exit.
    """
    if count is None:
        yield
        return
    if count < 1:
        raise ValueError(f"cpu_threads: count must be >= 1 or None, got {count}")
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
