"""Figures drawn to PNG in a worker process, off the caller's critical path: training goes on while
matplotlib draws."""

from __future__ import annotations

import logging
import multiprocessing
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable

from matplotlib.figure import Figure

from motif.plots.figures import figure_png_bytes

log = logging.getLogger(__name__)


def render_png(builder: Callable[..., Figure], args: tuple, kwargs: dict) -> bytes:
    """``figure_png_bytes(builder(*args, **kwargs))``: what the worker runs."""
    return figure_png_bytes(builder(*args, **kwargs))


class BackgroundRenderer:
    """Renders figures in one spawned worker process (it imports matplotlib and numpy, not torch).

    ``submit(key, builder, *args, **kwargs)`` queues ``builder(*args, **kwargs)`` (a module-level function
    returning a Figure, called with numpy arrays and plain values) and returns at once; ``results()`` waits
    for everything queued and returns {key: PNG bytes}. A figure whose drawing fails is logged with its
    key and left out; when no worker process can start, figures are drawn in this process instead.
    """

    def __init__(self) -> None:
        self._pending: dict[str, Future] = {}
        self._executor: ProcessPoolExecutor | None = None

    def submit(self, key: str, builder: Callable[..., Figure], *args: Any, **kwargs: Any) -> None:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            self._pending[key] = self._executor.submit(render_png, builder, args, kwargs)
        except (OSError, RuntimeError) as error:   # no process could start: draw here
            log.warning("Drawing figure %s in this process (no worker process: %s)", key, error)
            done: Future = Future()
            done.set_result(render_png(builder, args, kwargs))
            self._pending[key] = done

    def results(self) -> dict[str, bytes]:
        rendered = {}
        for key, future in self._pending.items():
            try:
                rendered[key] = future.result()
            except Exception as error:   # a failed figure must not lose the others or the run
                log.warning("Figure %s could not be drawn: %s: %s", key, type(error).__name__, error)
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown()
            self._executor = None
        return rendered
