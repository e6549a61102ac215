"""What the benchmarks measure, in one place: wall-clock and CPU seconds of a block, and the peak
resident memory of the process.

Imported by the benchmark scripts as ``meters`` (run as ``python benchmarks/bench_*.py``, the
scripts' folder is on the import path).
"""

from __future__ import annotations

import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


@dataclass
class Elapsed:
    """Seconds a block took: ``wall`` clock time and ``cpu`` time of this process (all its threads;
    other processes on the machine do not inflate it)."""

    wall: float = 0.0
    cpu: float = 0.0


@contextmanager
def timed() -> Iterator[Elapsed]:
    """``with timed() as took: ...``; ``took.wall`` and ``took.cpu`` are set when the block ends."""
    took = Elapsed()
    start, start_cpu = time.perf_counter(), time.process_time()
    try:
        yield took
    finally:
        took.wall, took.cpu = time.perf_counter() - start, time.process_time() - start_cpu


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB: VmHWM (reset by exec, unlike ru_maxrss, which a
    child inherits from its parent), or ru_maxrss where /proc is not available."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
