"""Figures of explanations and evaluations (matplotlib, Agg backend, PNG).

Every function returns a ``matplotlib.figure.Figure``; ``save_figure`` writes it and closes it.
Time axes are in seconds, taken from the window spans [T, 2].
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

PALETTE = ["#1f77b4", "#e45756", "#54a24b", "#f58518", "#8e6bbf", "#2bb3c0", "#b279a2", "#9d755d",
           "#4c78a8", "#bab0ac"]
ACCENT = "#e45756"
MUTED = "#9aa3ad"
_STYLE = {
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#e6e9ee",
    "grid.linewidth": 0.8,
    "axes.edgecolor": "#5b6470",
    "axes.labelcolor": "#2b3139",
    "axes.titleweight": "bold",
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.color": "#4a525c",
    "ytick.color": "#4a525c",
    "font.size": 9.5,
    "legend.frameon": False,
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "savefig.bbox": "tight",
}


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as PNG and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", facecolor="white", bbox_inches="tight", dpi=110)
    plt.close(fig)
    return path


def figure_png_bytes(fig: Figure) -> bytes:
    """The PNG encoding of ``fig``; the figure is closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", facecolor="white", bbox_inches="tight", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def window_edges(spans: np.ndarray) -> np.ndarray:
    """Cell edges in seconds [T + 1] for T windows: the span bounds when windows tile time,
    otherwise midpoints between window centres (overlapping or gapped windows)."""
    spans = np.asarray(spans, dtype=float)
    if len(spans) > 1 and np.allclose(spans[1:, 0], spans[:-1, 1]):
        return np.concatenate([spans[:, 0], spans[-1:, 1]])
    centres = spans.mean(axis=1)
    if len(centres) == 1:
        return spans[0].copy()
    mids = (centres[1:] + centres[:-1]) / 2
    return np.concatenate([[spans[0, 0]], mids, [spans[-1, 1]]])


def _time_limits(spans: np.ndarray) -> tuple[float, float]:
    return float(spans[0, 0]), float(spans[-1, 1])


def _draw_thumbnails(ax, spans: np.ndarray, thumbnails: Mapping[int, np.ndarray]) -> None:
    """Each thumbnail centred on its window, all the same width so the strip reads left to right."""
    start, end = _time_limits(spans)
    slot = (end - start) / max(len(thumbnails), 1)
    ax.set_ylim(0, 1)
    for t, image in sorted(thumbnails.items()):
        centre = float(spans[t].mean())
        ax.imshow(image, extent=(centre - slot * 0.47, centre + slot * 0.47, 0.02, 0.98), aspect="auto",
                  interpolation="bilinear", zorder=2)
    ax.set_xlim(start, end)
    ax.set_yticks([])
    ax.grid(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    ax.tick_params(axis="x", length=0, labelbottom=False)


def concept_timeline_figure(spans: np.ndarray, activations: np.ndarray, concept_names: Sequence[str], *,
                            window_importance: np.ndarray | None = None,
                            thumbnails: Mapping[int, np.ndarray] | None = None, title: str = "",
                            ylabel: str = "concept activation z", colours: Sequence[str] | None = None) -> Figure:
    """Activations [T, n] of n concepts over time, optionally above π [T] and below frame thumbnails.

    spans [T, 2] in seconds. Windows that tile time are drawn as steps over their spans. colours: one
    per shown concept [n] (from ``motif.plots.colours.concept_colours`` of the bank); default: the
    palette in order. The legend sits right of the axes: save with a tight bounding box.
    """
    spans = np.asarray(spans, dtype=float)
    activations = np.asarray(activations, dtype=float).reshape(len(spans), -1)
    edges = window_edges(spans)
    rows = [("thumbs", 1.0)] if thumbnails else []
    rows.append(("concepts", 3.2))
    if window_importance is not None:
        rows.append(("pi", 1.3))
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(len(rows), 1, figsize=(11, sum(h for _, h in rows) * 0.95 + 0.6), sharex=True,
                                 gridspec_kw={"height_ratios": [h for _, h in rows], "hspace": 0.12})
        axes = np.atleast_1d(axes)
        by_name = dict(zip([name for name, _ in rows], axes))
        if thumbnails:
            _draw_thumbnails(by_name["thumbs"], spans, thumbnails)
        ax = by_name["concepts"]
        for i in range(activations.shape[1]):
            colour = colours[i] if colours is not None else PALETTE[i % len(PALETTE)]
            ax.stairs(activations[:, i], edges, color=colour, linewidth=2.0, label=concept_names[i], zorder=3)
            ax.stairs(activations[:, i], edges, color=colour, alpha=0.10, fill=True, zorder=2)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=min(0.0, float(np.nanmin(activations)) if activations.size else 0.0))
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=9, handlelength=1.6)
        if title:
            axes[0].set_title(title, loc="left")
        if window_importance is not None:
            _draw_window_importance(by_name["pi"], spans, np.asarray(window_importance, dtype=float))
        axes[-1].set_xlabel("time (s)")
        axes[-1].set_xlim(*_time_limits(spans))
    return fig


def concept_heatmap_figure(spans: np.ndarray, concepts: np.ndarray, concept_names: Sequence[str], *,
                           order: Sequence[int] | None = None, max_concepts: int = 40, title: str = "",
                           colours: Sequence[str] | None = None) -> Figure:
    """[C, T] heatmap of concept activations z [T, C] over window time (s): one row per concept, in
    ``order`` (e.g. by global importance), at most ``max_concepts`` rows; row labels in the concept
    colours [C] when given."""
    spans = np.asarray(spans, dtype=float)
    rows = list(order if order is not None else range(len(concept_names)))[:max_concepts]
    edges = window_edges(spans)
    with plt.rc_context({**_STYLE, "axes.grid": False}):
        fig, ax = plt.subplots(figsize=(11, 0.24 * len(rows) + 1.3))
        mesh = ax.pcolormesh(edges, np.arange(len(rows) + 1), np.asarray(concepts, dtype=float)[:, rows].T,
                             cmap="viridis", shading="flat", rasterized=True)
        ax.set_yticks(np.arange(len(rows)) + 0.5, [concept_names[c] for c in rows], fontsize=8)
        if colours is not None:
            for label, c in zip(ax.get_yticklabels(), rows):
                label.set_color(colours[c])
        ax.set_ylim(len(rows), 0)
        ax.set_xlabel("time (s)")
        fig.colorbar(mesh, ax=ax, pad=0.01, label="concept activation z")
        if title:
            ax.set_title(title, loc="left")
    return fig


def _draw_window_importance(ax, spans: np.ndarray, importance: np.ndarray, highlight: int = 3) -> None:
    edges = window_edges(spans)
    widths = np.diff(edges)
    top = set(np.argsort(-importance)[:highlight].tolist())
    colours = [ACCENT if t in top else MUTED for t in range(len(importance))]
    ax.bar(edges[:-1], importance, width=widths * 0.92, align="edge", color=colours, zorder=3)
    ax.set_ylabel("window\nimportance π")
    ax.set_ylim(0, max(float(importance.max()) * 1.18, 1e-6))
    ax.grid(axis="x", visible=False)


def window_importance_figure(spans: np.ndarray, importance: np.ndarray, *, title: str = "",
                             highlight: int = 3) -> Figure:
    """Bar chart of π [T] over window time (s); the ``highlight`` most important windows in colour."""
    spans = np.asarray(spans, dtype=float)
    importance = np.asarray(importance, dtype=float)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(11, 2.6))
        _draw_window_importance(ax, spans, importance, highlight)
        for t in np.argsort(-importance)[:highlight]:
            ax.annotate(f"{importance[t]:.2f}", (spans[t].mean(), importance[t]), xytext=(0, 3),
                        textcoords="offset points", ha="center", fontsize=8.5, color="#2b3139")
        ax.set_xlabel("time (s)")
        ax.set_xlim(*_time_limits(spans))
        if title:
            ax.set_title(title, loc="left")
    return fig


def global_importance_figure(concept_names: Sequence[str], importance: np.ndarray, *, title: str = "",
                             top: int = 12, colours: Sequence[str] | None = None) -> Figure:
    """Horizontal bars of the ``top`` concepts by global importance G [C] (sorted, largest on top).

    colours: one per concept of the bank [C]; default: the palette for the first five bars, then grey.
    """
    importance = np.asarray(importance, dtype=float)
    order = np.argsort(-importance)[:top]
    if (importance[order] > 0).any():
        order = order[importance[order] > 0]
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7.5, 0.36 * len(order) + 1.0))
        bar_colours = ([colours[c] for c in order] if colours is not None else
                       [PALETTE[i % len(PALETTE)] if i < 5 else MUTED for i in range(len(order))])
        ax.barh(np.arange(len(order)), importance[order], color=bar_colours, zorder=3)
        ax.set_yticks(np.arange(len(order)), [concept_names[c] for c in order])
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.axvline(0, color="#5b6470", linewidth=0.8)
        ax.set_xlabel("global importance G (contribution to the class logit)")
        if title:
            ax.set_title(title, loc="left")
    return fig


def attention_maps_figure(spans: np.ndarray, maps: np.ndarray, concept_names: Sequence[str], *,
                          title: str = "", columns: int = 3) -> Figure:
    """Temporal attention maps [n, T, T] of n concepts (rows = query window, columns = key window).

    Both axes in seconds; one colour scale for all maps (0 to the largest weight of any map, one
    colour bar), so a flat map looks flat next to a peaked one.
    """
    spans = np.asarray(spans, dtype=float)
    maps = np.asarray(maps, dtype=float)
    edges = window_edges(spans)
    n = len(maps)
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    vmax = max(float(maps.max()) if maps.size else 1.0, 1e-12)
    with plt.rc_context({**_STYLE, "axes.grid": False}):
        fig, axes = plt.subplots(rows, columns, figsize=(4.3 * columns, 3.9 * rows + (0.4 if title else 0)),
                                 squeeze=False, constrained_layout=True)
        mesh = None
        for i, ax in enumerate(axes.flat):
            if i >= n:
                ax.set_visible(False)
                continue
            mesh = ax.pcolormesh(edges, edges, maps[i], cmap="magma", vmin=0.0, vmax=vmax, shading="flat",
                                 rasterized=True)
            ax.set_xlim(edges[0], edges[-1])
            ax.set_ylim(edges[-1], edges[0])
            ax.set_aspect("equal")
            ax.set_title(concept_names[i], fontsize=10)
            ax.set_xlabel("key window time (s)")
            ax.set_ylabel("query window time (s)")
        if mesh is not None:
            fig.colorbar(mesh, ax=axes, shrink=0.82, pad=0.02, label="attention (shared scale)")
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    return fig


def window_scores_figure(spans: np.ndarray, before: np.ndarray, after: np.ndarray, *, class_name: str,
                         title: str = "") -> Figure:
    """Window scores ℓ[:, k] [T] of one class before and after an intervention, over time (s)."""
    spans = np.asarray(spans, dtype=float)
    edges = window_edges(spans)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(11, 2.8))
        ax.stairs(np.asarray(before, dtype=float), edges, color=MUTED, linewidth=4.0, alpha=0.8, label="before")
        ax.stairs(np.asarray(after, dtype=float), edges, color=ACCENT, linewidth=1.8, label="after")
        ax.set_ylabel(f"window score\n'{class_name}'")
        ax.set_xlabel("time (s)")
        ax.set_xlim(*_time_limits(spans))
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0))
        if title:
            ax.set_title(title, loc="left")
    return fig


def faithfulness_figure(rows: Sequence[Mapping], *, mode: str, metrics: Sequence[tuple[str, str]]) -> Figure:
    """Top-k vs random curves with error bars (± std over random trials).

    rows: faithfulness table rows with keys target, mode, k, ranking ("top" | "random"), and for
    each metric key ``m``: ``m`` (mean) and ``m_std``. One panel per (target, metric).
    """
    targets = [t for t in ("concepts", "windows", "cells") if any(r["target"] == t and r["mode"] == mode for r in rows)]
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(len(targets), len(metrics), figsize=(4.2 * len(metrics), 3.0 * len(targets)),
                                 squeeze=False, constrained_layout=True)
        for i, target in enumerate(targets):
            for j, (key, label) in enumerate(metrics):
                ax = axes[i, j]
                for ranking, colour, marker in (("top", ACCENT, "o"), ("random", MUTED, "s")):
                    sel = sorted((r for r in rows if r["target"] == target and r["mode"] == mode
                                  and r["ranking"] == ranking), key=lambda r: r["k"])
                    if not sel:
                        continue
                    ks = [r["k"] for r in sel]
                    ax.errorbar(ks, [r[key] for r in sel], yerr=[r.get(f"{key}_std", 0.0) for r in sel],
                                color=colour, marker=marker, markersize=5, linewidth=2, capsize=3,
                                label=f"top-k by {_RANK_NAME[target]}" if ranking == "top" else "random k")
                ax.set_xlabel(f"k ({target})")
                ax.set_title(f"{label}", loc="left", fontsize=10)
                if j == 0:
                    ax.set_ylabel(f"{mode} {target}", fontweight="bold")
                if key in ("accuracy", "agreement"):
                    ax.set_ylim(-0.02, 1.02)
                if j == len(metrics) - 1:
                    ax.legend(loc="best", fontsize=8.5)
        fig.suptitle(f"Faithfulness: {mode} top-k vs random k (error bars: ± std over random trials)",
                     x=0.01, ha="left", fontweight="bold", fontsize=11)
    return fig


_RANK_NAME = {"concepts": "G", "windows": "π", "cells": "r"}


def grouped_bars_figure(groups: Sequence[str],
                        panels: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]], *,
                        title: str = "") -> Figure:
    """One panel per entry of ``panels`` {panel title: {series: (means, stds)}}: bars per group with
    error bars; the first series in the accent colour, the second muted."""
    x = np.arange(len(groups))
    with plt.rc_context(_STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(max(3.2, 1.1 * len(groups) + 1.4) * len(panels), 3.4),
                                 squeeze=False, constrained_layout=True)
        for ax, (panel, series) in zip(axes[0], panels.items()):
            width = 0.8 / max(len(series), 1)
            for i, (name, (means, stds)) in enumerate(series.items()):
                colour = ACCENT if i == 0 else (MUTED if i == 1 else PALETTE[i % len(PALETTE)])
                ax.bar(x + (i - (len(series) - 1) / 2) * width, means, width * 0.95, yerr=stds, capsize=3,
                       color=colour, label=name, zorder=3)
            ax.set_xticks(x, groups)
            ax.grid(axis="x", visible=False)
            ax.set_title(panel, loc="left", fontsize=10)
        axes[0, -1].legend(loc="best", fontsize=8.5)
        if title:
            fig.suptitle(title, x=0.01, ha="left", fontweight="bold", fontsize=11)
    return fig


def bar_figure(labels: Sequence[str], values: Sequence[float], *, xlabel: str, title: str = "",
               reference: float | None = None, max_labels: int = 40) -> Figure:
    """Horizontal bars, one per label (labels hidden when there are more than ``max_labels``), with
    an optional dashed reference line (e.g. chance level)."""
    values = np.asarray(values, dtype=float)
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(7.5, min(0.26 * len(values), 12.0) + 1.2))
        ax.barh(np.arange(len(values)), values, color=PALETTE[0], zorder=3)
        if len(values) <= max_labels:
            ax.set_yticks(np.arange(len(values)), list(labels))
        else:
            ax.set_yticks([])
            ax.set_ylabel(f"{len(values)} items")
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        if reference is not None:
            ax.axvline(reference, color=ACCENT, linestyle="--", linewidth=1.2, zorder=4)
        ax.set_xlabel(xlabel)
        if title:
            ax.set_title(title, loc="left")
    return fig


def line_figure(x: Sequence[float], y: Sequence[float], *, xlabel: str, ylabel: str, title: str = "",
                ylim: tuple[float, float] | None = (0.0, 1.02)) -> Figure:
    """A single line with markers (e.g. repair rate vs number of edits)."""
    with plt.rc_context(_STYLE):
        fig, ax = plt.subplots(figsize=(5.0, 3.2))
        ax.plot(list(x), list(y), color=ACCENT, marker="o", linewidth=2, zorder=3)
        ax.set_xticks(list(x))
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if ylim is not None:
            ax.set_ylim(*ylim)
        if title:
            ax.set_title(title, loc="left")
    return fig


def truth_comparison_figure(panels: Sequence[Mapping], *, title: str) -> Figure:
    """One row per explanation: global importance bars and concept activations over time, against the
    ground truth of the video.

    Each panel: "title"; "concept_names" [C]; "importance" G [C] (bars, largest first; an "absent"
    [C] concept, one the video never shows, hatched and grey); "activations" z [T, C] over "spans"
    [T, 2] s as a heatmap with the windows where "visible" [T, C] shows a concept outlined.
    """
    fig, axes = plt.subplots(len(panels), 2, figsize=(13, 3.6 * len(panels)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    for (bar_ax, time_ax), panel in zip(axes, panels):
        names, importance, absent = panel["concept_names"], np.asarray(panel["importance"]), np.asarray(panel["absent"])
        order = importance.argsort()[::-1]
        bars = bar_ax.barh(range(len(order)), importance[order],
                           color=["#bab0ac" if absent[c] else "#4c78a8" for c in order])
        for bar, c in zip(bars, order):
            if absent[c]:
                bar.set_hatch("//")
        bar_ax.set_yticks(range(len(order)), [names[c] + ("  (absent)" if absent[c] else "") for c in order])
        bar_ax.invert_yaxis()
        bar_ax.set_xlabel("global importance G (views summed)")
        bar_ax.set_title(panel["title"], fontsize=10)
        spans, visible = np.asarray(panel["spans"], dtype=float), np.asarray(panel["visible"])
        image = time_ax.pcolormesh(window_edges(spans), range(len(names) + 1), np.asarray(panel["activations"]).T,
                                   cmap="Blues", shading="flat")
        for t, c in zip(*np.nonzero(visible)):
            time_ax.add_patch(plt.Rectangle((spans[t, 0], c), spans[t, 1] - spans[t, 0], 1, fill=False,
                                            edgecolor=ACCENT, linewidth=1.2))
        time_ax.set_yticks([c + 0.5 for c in range(len(names))], names)
        time_ax.invert_yaxis()
        time_ax.set_xlabel("time (s)")
        time_ax.set_title("activation z over time (views summed); red boxes: visible (ground truth)", fontsize=10)
        fig.colorbar(image, ax=time_ax, fraction=0.03)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    return fig
