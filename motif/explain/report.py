"""report.html: one self-contained, interactive page per explained video.

The page opens from disk with no network and no server. It holds the explanation as JSON (concept
activations z [T, C], the classifier W [K, C] and b [K], τ, window spans, the attention maps of the
top concepts) and a small script (``report.js``, inlined) that draws everything as inline SVG and
canvas, and recomputes the readout after z exactly as the model does,

    ℓ = z Wᵀ + b,   logit_k = (1/τ)·logsumexp_t(τ·ℓ[t,k]),
    π = softmax_t(τ·ℓ[:,k]),   G[c] = Σ_t π_t z[t,c] W[k,c],

so concept interventions (zero / set a concept, a window or a cell) are live in the page and equal
the ``--intervene`` path of ``tools/explain.py``. Float arrays travel as little-endian float32 in
base64 (exact, and smaller than decimal text); attention maps as 8-bit fractions of their shared
maximum (they are only drawn).

Scripting: ``window.motifReport`` (documented in ``report.js`` and in the README) gives the current
logits, applies and resets interventions, moves the playhead and switches the class; ``<body>``
gets ``data-ready="true"`` once the page has rendered.
"""

from __future__ import annotations

import base64
import html
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

import av
import numpy as np

from motif.errors import MotifError
from motif.explain.video_explanation import VideoExplanation
from motif.plots.colours import concept_colours
from motif.video import write_video

log = logging.getLogger(__name__)

_ASSETS = Path(__file__).with_name("report_assets")
EMBED_VIDEO_BYTES = 2 ** 20            # larger videos are linked by a path relative to report.html
ATTENTION_BUDGET_BYTES = 600 * 2 ** 10  # 8-bit attention cells embedded (maps are dropped beyond it)
PLAYABLE = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm", ".mov": "video/mp4"}
BROWSER_CODECS = ("h264", "vp8", "vp9", "av1")
REPORT_CLIP = "clip.mp4"                # a re-encoded clip too large to embed, written beside report.html


class ReportError(MotifError, ValueError):
    """The explanation cannot be rendered (e.g. it lacks the classifier the page recomputes with)."""


def data_uri(payload: bytes, mime: str) -> str:
    """``data:`` URI of ``payload`` (e.g. PNG bytes)."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _float32(values) -> str:
    return base64.b64encode(np.ascontiguousarray(np.asarray(values, dtype="<f4")).tobytes()).decode("ascii")


def concept_axis_names(concept_names: list[str], width: int) -> list[str]:
    """A name per channel of the concept axis: the concept names themselves, or, for a model that gives
    each concept ``m`` channels (``width = m·len(concept_names)``, channel-major), "name [j]"."""
    if width == len(concept_names):
        return list(concept_names)
    if concept_names and width % len(concept_names) == 0:
        per = width // len(concept_names)
        return [f"{name} [{j}]" for j in range(per) for name in concept_names]
    raise ReportError(f"the concept axis has {width} channels but there are {len(concept_names)} concept names")


def _browser_codec(path: Path) -> tuple[bool, float]:
    """Whether browsers decode ``path`` as it is (H.264 / VP8 / VP9 / AV1 in mp4 / webm), and its fps."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0) or 25.0
        return stream.codec_context.name in BROWSER_CODECS and path.suffix.lower() in PLAYABLE, fps


def _transcode(path: Path, target: Path, fps: float, max_height: int = 360) -> Path:
    """``path`` re-encoded as H.264 mp4 (even size, at most ``max_height`` rows) for the browser."""
    def frames():
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                height = min(max_height, frame.height)
                width = max(2, round(frame.width * height / frame.height / 2) * 2)
                yield frame.reformat(width=width, height=height - height % 2, format="rgb24").to_ndarray()

    return write_video(target, frames(), fps, options={"crf": "28", "preset": "veryfast"},
                       container_options={"movflags": "faststart"})


def _video_source(video_path: str | Path | None, out_dir: Path, embed_limit: int) -> dict:
    """How the page shows the clip: ``src`` a data URL (up to ``embed_limit`` bytes) or a path relative to
    ``out_dir``. A codec browsers cannot play (e.g. MPEG-4 part 2, the usual .avi) is re-encoded as H.264;
    a clip that cannot be read is linked as it is and the page says it cannot play it."""
    if video_path is None:
        return {}
    video_path = Path(video_path)
    try:
        playable, fps = _browser_codec(video_path)
        clip = video_path
        if not playable:
            with tempfile.TemporaryDirectory() as tmp:
                converted = _transcode(video_path, Path(tmp) / "clip.mp4", fps)
                if converted.stat().st_size <= embed_limit:
                    return {"src": data_uri(converted.read_bytes(), "video/mp4"), "embedded": True,
                            "transcoded": True}
                clip = Path(shutil.move(str(converted), out_dir / REPORT_CLIP))
        if clip.stat().st_size <= embed_limit:
            return {"src": data_uri(clip.read_bytes(), PLAYABLE[clip.suffix.lower()]), "embedded": True,
                    "transcoded": clip != video_path}
    except (av.FFmpegError, OSError, IndexError) as exc:
        log.warning("report.html links %s as it is (cannot prepare it for the browser: %s)", video_path, exc)
        clip = video_path
    relative = os.path.relpath(Path(clip).resolve(), out_dir.resolve()).replace(os.sep, "/")
    return {"src": relative, "embedded": False, "transcoded": Path(clip) != video_path}


def _attention_payload(result: VideoExplanation, budget: int) -> dict:
    if result.attention_maps is None:
        return {"note": result.attention_note or "no attention maps"}
    maps = result.attention_maps[-1].float().numpy()                     # [n, T, T], last layer
    cells = maps.shape[-1] ** 2
    keep = min(len(maps), max(budget // max(cells, 1), 0))
    if keep == 0:
        return {"note": f"maps of {maps.shape[-1]} windows are too large for the page; see attention.png"}
    maps = maps[:keep]
    scale = max(float(maps.max()), 1e-12)
    quantised = np.clip(np.rint(maps / scale * 255.0), 0, 255).astype(np.uint8)
    layers = int(result.attention_maps.shape[0])
    return {"concepts": [int(c) for c in result.attention_concepts[:keep]], "scale": scale,
            "layer": f"layer {layers} of {layers}", "maps": base64.b64encode(quantised.tobytes()).decode("ascii")}


def report_payload(result: VideoExplanation, thumbnails: Mapping[int, bytes] | None = None, *,
                   video_path: str | Path | None = None, out_dir: str | Path = ".",
                   embed_video_bytes: int = EMBED_VIDEO_BYTES,
                   attention_budget_bytes: int = ATTENTION_BUDGET_BYTES) -> dict:
    """The JSON the page reads: everything it draws and recomputes (see the module docstring).

    thumbnails: JPEG bytes per window index (any subset); video_path: the explained clip, embedded up
    to ``embed_video_bytes``, else linked relative to ``out_dir`` (where report.html is written).
    """
    if result.classifier_weight is None or result.classifier_bias is None:
        raise ReportError("the explanation has no classifier (classifier_weight / classifier_bias); build it with "
                          "motif.explain.explain_sequence")
    z = result.output.concepts.float().numpy()                           # [T, C']
    weight = result.classifier_weight.float().numpy()                    # [K, C']
    if weight.shape[1] != z.shape[1]:
        raise ReportError(f"the classifier reads {weight.shape[1]} concept channels but z has {z.shape[1]}")
    names = concept_axis_names(result.concept_names, z.shape[1])
    probabilities = result.probabilities
    data = {
        "video": {"id": result.video_id, "num_windows": int(z.shape[0]),
                  "duration_s": float(result.spans[-1, 1] - result.spans[0, 0]) if len(result.spans) else 0.0,
                  **{k: v for k, v in result.video_info.items() if isinstance(v, (str, int, float))},
                  **_video_source(video_path, Path(out_dir), embed_video_bytes)},
        "model": {k: v for k, v in result.model_info.items() if isinstance(v, (str, int, float))},
        "tau": float(result.explanation.tau),
        "classes": list(result.class_names),
        "concepts": names,
        "colours": concept_colours(names),
        "explained": result.target,
        "predicted": result.predicted,
        "top_classes": probabilities.argsort(descending=True)[:5].tolist(),
        "spans": [[round(float(a), 4), round(float(b), 4)] for a, b in result.spans.tolist()],
        "shape": [int(z.shape[0]), int(z.shape[1]), int(weight.shape[0])],
        "z": _float32(z),
        "W": _float32(weight),
        "b": _float32(result.classifier_bias.float().numpy()),
        "model_logits": [float(v) for v in result.output.logits.tolist()],
        "attention": _attention_payload(result, attention_budget_bytes),
        "thumbnails": {str(t): data_uri(jpeg, "image/jpeg") for t, jpeg in sorted((thumbnails or {}).items())},
    }
    if result.intervention is not None:
        data["cli_intervention"] = {
            "specs": [s.text for s in result.intervention.specs],
            "logits": [float(v) for v in result.intervention.after.logits.tolist()]}
    return data


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


def render_report(payload: dict) -> str:
    """The HTML page of a ``report_payload``."""
    title = f"{payload['video']['id']}: {payload['classes'][payload['predicted']]}"
    data = json.dumps(payload, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")
    script = _asset("report.js").replace("</script", "<\\/script")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{html.escape(title)}</title><style>{_asset('report.css')}</style></head>"
            f"<body data-ready='false'>{_asset('report.html')}"
            f"<script type='application/json' id='motif-data'>{data}</script>"
            f"<script>{script}</script></body></html>")


def write_report(path: str | Path, result: VideoExplanation, thumbnails: Mapping[int, bytes] | None = None, *,
                 video_path: str | Path | None = None) -> Path:
    """Render and write report.html (the clip embedded or linked relative to ``path``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = report_payload(result, thumbnails, video_path=video_path, out_dir=path.parent)
    path.write_text(render_report(payload), encoding="utf-8")
    return path
