"""Write an explanation to disk: explanation.json, figures (PNG) and report.html."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Mapping

import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from motif.explain.report import write_report
from motif.explain.video_explanation import VideoExplanation
from motif.plots.colours import concept_colours
from motif.plots.figures import (
    attention_maps_figure,
    concept_timeline_figure,
    global_importance_figure,
    save_figure,
    window_importance_figure,
    window_scores_figure,
)

TIMELINE_CONCEPTS = 5
STRIP_THUMBNAILS = 24       # thumbnails drawn above the concept timelines
REPORT_THUMBNAILS = 48      # window cards in report.html (plus the most important windows)


def evenly_spaced(count: int, limit: int) -> list[int]:
    """At most ``limit`` indices spread evenly over range(count), first and last included."""
    if count <= limit:
        return list(range(count))
    return sorted({round(i * (count - 1) / (limit - 1)) for i in range(limit)})


def jpeg_bytes(image: np.ndarray, quality: int = 85) -> bytes:
    """JPEG encoding of an RGB uint8 image [H, W, 3]."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def explanation_figures(result: VideoExplanation, thumbnails: Mapping[int, np.ndarray] | None = None
                        ) -> dict[str, Figure]:
    """Figures by name: timeline, window_importance, global_importance, attention, intervention.

    thumbnails: RGB uint8 [h, w, 3] per window index (any subset of windows).
    """
    e, spans = result.explanation, result.spans.numpy()
    target = result.class_names[result.target]
    top = result.top_concepts(TIMELINE_CONCEPTS)
    strip = None
    if thumbnails:
        keys = sorted(thumbnails)
        strip = {keys[i]: thumbnails[keys[i]] for i in evenly_spaced(len(keys), STRIP_THUMBNAILS)}
    labels = [f"{result.concept_names[c]}  (G={float(e.global_importance[c]):.2f})" for c in top]
    colours = concept_colours(result.concept_names)
    figures = {
        "timeline": concept_timeline_figure(spans, result.output.concepts[:, top].numpy(), labels,
                                            window_importance=e.window_importance.numpy(), thumbnails=strip,
                                            title=f"Top concepts for '{target}' over time",
                                            colours=[colours[c] for c in top]),
        "window_importance": window_importance_figure(spans, e.window_importance.numpy(),
                                                      title=f"Window importance π for '{target}'"),
        "global_importance": global_importance_figure(result.concept_names, e.global_importance.numpy(),
                                                      title=f"Global concept importance G for '{target}'",
                                                      colours=colours),
    }
    if result.attention_maps is not None:
        maps = result.attention_maps[-1].numpy()
        layer = result.model_info["attention_maps"][-1]
        figures["attention"] = attention_maps_figure(
            spans, maps, [result.concept_names[c] for c in result.attention_concepts],
            title=f"Temporal attention maps of the top concepts ({layer})")
    if result.intervention is not None:
        figures["intervention"] = window_scores_figure(
            spans, result.intervention.before_explanation.window_scores.numpy(),
            result.intervention.after_explanation.window_scores.numpy(), class_name=target,
            title="Window scores before and after the intervention")
    return figures


def write_explanation(result: VideoExplanation, out_dir: str | Path,
                      thumbnails: Mapping[int, np.ndarray] | None = None, *,
                      video_path: str | Path | None = None) -> dict[str, Path]:
    """Write explanation.json, <figure>.png and report.html into ``out_dir``; returns their paths.

    video_path: the explained clip, shown in report.html (embedded when small, else linked)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = result.to_dict()
    paths = {"json": out_dir / "explanation.json"}
    paths["json"].write_text(json.dumps(data, indent=1, allow_nan=True))
    for name, fig in explanation_figures(result, thumbnails).items():
        paths[name] = save_figure(fig, out_dir / f"{name}.png")
    shown: dict[int, bytes] = {}
    if thumbnails:
        keys = sorted(thumbnails)
        chosen = {keys[i] for i in evenly_spaced(len(keys), REPORT_THUMBNAILS)}
        chosen |= {t for t in result.top_windows(3) if t in thumbnails}
        shown = {t: jpeg_bytes(thumbnails[t]) for t in sorted(chosen)}
    paths["report"] = write_report(out_dir / "report.html", result, shown, video_path=video_path)
    return paths
