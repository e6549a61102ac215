"""Figures drawn in a worker process (the end-of-training wandb figures): same PNG as in-process drawing,
and a failing figure loses neither the others nor the run."""

from __future__ import annotations

import logging

import numpy as np

from motif.plots.background import BackgroundRenderer, render_png
from motif.plots.figures import concept_timeline_figure


def failing_figure(message: str):
    raise ValueError(message)


def test_the_worker_draws_the_same_png_and_reports_a_failed_figure(caplog):
    spans = np.stack([np.arange(6), np.arange(1, 7)], axis=1).astype(float)
    z = np.linspace(0, 1, 12).reshape(6, 2)
    renderer = BackgroundRenderer()
    renderer.submit("timeline", concept_timeline_figure, spans, z, ["red circle", "blue square"], title="t")
    renderer.submit("broken", failing_figure, "no data for this figure")
    renderer.submit("again", concept_timeline_figure, spans, 2 * z, ["red circle", "blue square"])
    with caplog.at_level(logging.WARNING):
        rendered = renderer.results()
    assert set(rendered) == {"timeline", "again"}
    assert rendered["timeline"] == render_png(concept_timeline_figure, (spans, z, ["red circle", "blue square"]),
                                              {"title": "t"})
    assert rendered["timeline"].startswith(b"\x89PNG") and rendered["again"] != rendered["timeline"]
    assert "broken" in caplog.text and "no data for this figure" in caplog.text
    assert renderer.results() == {}   # everything was handed over once
