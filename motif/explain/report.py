"""One self-contained HTML page per explained video: inline CSS, images as data URIs, no scripts,
no network access."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Mapping

_CSS = """
:root { --ink:#1f2630; --muted:#66707c; --line:#e3e7ec; --card:#ffffff; --bg:#f5f7fa; --accent:#e45756;
        --good:#2e8b57; --bad:#c0392b; --bar:#4c78a8; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink);
       font: 14px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 28px 24px 48px; }
header h1 { font-size: 24px; margin: 0 0 4px; }
header .sub { color: var(--muted); }
section { background: var(--card); border: 1px solid var(--line); border-radius: 10px; padding: 18px 20px;
          margin-top: 18px; }
h2 { font-size: 16px; margin: 0 0 10px; }
p.note { color: var(--muted); margin: 4px 0 12px; font-size: 13px; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; }
@media (max-width: 860px) { .grid { grid-template-columns: 1fr; } }
.headline { display:flex; gap: 28px; flex-wrap: wrap; align-items: baseline; margin-top: 14px; }
.headline .big { font-size: 28px; font-weight: 700; }
.headline .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: middle; }
th { color: var(--muted); font-weight: 600; font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bar { height: 10px; background: var(--bar); border-radius: 5px; min-width: 1px; }
.bar.accent { background: var(--accent); }
.barcell { width: 38%; }
tr.explained td { font-weight: 700; }
img.fig { max-width: 100%; height: auto; display: block; margin: 0 auto; }
.badge { display:inline-block; padding: 2px 10px; border-radius: 999px; font-weight: 700; font-size: 12px; }
.badge.ok { background: #e3f4ea; color: var(--good); } .badge.fail { background: #fbe3e0; color: var(--bad); }
.equation { font: 15px/1.6 "SFMono-Regular", Menlo, Consolas, monospace; background: var(--bg);
            padding: 10px 14px; border-radius: 8px; overflow-x: auto; }
.strip { display: flex; gap: 10px; overflow-x: auto; padding-bottom: 8px; }
.window { flex: 0 0 150px; border: 1px solid var(--line); border-radius: 8px; padding: 6px; background: #fff; }
.window.top { border-color: var(--accent); box-shadow: 0 0 0 1px var(--accent) inset; }
.window img { width: 100%; height: auto; border-radius: 4px; display: block; background: #ddd; }
.window .time { font-size: 12px; color: var(--muted); margin: 4px 0 2px; display:flex; justify-content: space-between; }
.window .pi { height: 6px; background: var(--line); border-radius: 3px; margin-bottom: 5px; }
.window .pi div { height: 6px; background: var(--accent); border-radius: 3px; }
.window ol { margin: 0; padding-left: 18px; font-size: 12px; }
.window li span { color: var(--muted); font-variant-numeric: tabular-nums; }
.delta.up { color: var(--good); } .delta.down { color: var(--bad); }
code { background: var(--bg); padding: 1px 5px; border-radius: 4px; }
footer { color: var(--muted); font-size: 12px; margin-top: 22px; }
"""


def data_uri(payload: bytes, mime: str) -> str:
    """``data:`` URI of ``payload`` (e.g. PNG bytes)."""
    return f"data:{mime};base64,{base64.b64encode(payload).decode('ascii')}"


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _figure(figures: Mapping[str, bytes], name: str, alt: str) -> str:
    if name not in figures:
        return ""
    return f'<img class="fig" alt="{_e(alt)}" src="{data_uri(figures[name], "image/png")}">'


def _class_table(rows: list[dict], explained: int) -> str:
    top = max((r["probability"] for r in rows), default=1.0) or 1.0
    body = "".join(
        f'<tr class="{"explained" if r["index"] == explained else ""}"><td>{i + 1}</td><td>{_e(r["class"])}</td>'
        f'<td class="num">{r["probability"]:.1%}</td><td class="num">{r["logit"]:.3f}</td>'
        f'<td class="barcell"><div class="bar{" accent" if r["index"] == explained else ""}" '
        f'style="width:{100 * r["probability"] / top:.1f}%"></div></td></tr>'
        for i, r in enumerate(rows))
    return (f"<table><thead><tr><th>#</th><th>class</th><th>probability</th><th>logit</th><th></th></tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _concept_table(rows: list[dict], logit: float, top: int) -> str:
    rows = [r for r in rows[:top] if r["G"] > 0] or rows[:1]
    peak = max((abs(r["G"]) for r in rows[:top]), default=1.0) or 1.0
    body = "".join(
        f'<tr><td>{_e(r["concept"])}</td><td class="num">{r["G"]:.3f}</td>'
        f'<td class="num">{(r["G"] / logit if abs(logit) > 1e-12 else float("nan")):.0%}</td>'
        f'<td class="num">{r["weight"]:.3f}</td><td class="num">{_e(r.get("peak_time", ""))}</td>'
        f'<td class="barcell"><div class="bar" style="width:{100 * max(r["G"], 0) / peak:.1f}%"></div></td></tr>'
        for r in rows[:top])
    return ("<table><thead><tr><th>concept</th><th>G</th><th>of logit</th><th>weight</th>"
            f"<th>peak (s)</th><th></th></tr></thead><tbody>{body}</tbody></table>")


def _decomposition(d: dict) -> str:
    ok = abs(d["residual"]) < d.get("tolerance", 1e-4)
    badge = (f'<span class="badge {"ok" if ok else "fail"}">{"exact" if ok else "MISMATCH"}: '
             f'residual {d["residual"]:.2e}</span>')
    return (f'<div class="equation">logit = Σ<sub>c</sub> G[c] + b + H(π)/τ<br>'
            f'{d["logit"]:.6f} = {d["sum_global_importance"]:.6f} + {d["bias"]:.6f} + '
            f'{d["entropy"]:.6f}/{d["tau"]:g}</div><p>{badge}</p>'
            '<p class="note">Each concept\'s G is its exact share of the class logit: the explanation is the '
            'model\'s computation, not an approximation of it.</p>')


def _window_strip(windows: list[dict], thumbnails: Mapping[int, bytes], top_windows: set[int], limit: int) -> str:
    peak = max((w["importance"] for w in windows), default=1.0) or 1.0
    shown = [w for w in windows if w["index"] in thumbnails] or windows
    cards = []
    for w in shown[:limit]:
        image = (f'<img alt="window {w["index"]}" src="{data_uri(thumbnails[w["index"]], "image/jpeg")}">'
                 if w["index"] in thumbnails else "")
        items = "".join(f'<li>{_e(c["concept"])} <span>{c["relevance"]:.2f}</span></li>' for c in w["top_concepts"][:3])
        cards.append(
            f'<div class="window{" top" if w["index"] in top_windows else ""}">{image}'
            f'<div class="time"><span>#{w["index"]}</span><span>{w["start_s"]:.1f}–{w["end_s"]:.1f} s</span></div>'
            f'<div class="pi" title="π = {w["importance"]:.3f}">'
            f'<div style="width:{100 * w["importance"] / peak:.1f}%">'
            f'</div></div><ol>{items}</ol></div>')
    return f'<div class="strip">{"".join(cards)}</div>'


def _interventions(block: dict, figures: Mapping[str, bytes]) -> str:
    specs = "".join(f"<li><code>{_e(s)}</code></li>" for s in block["specs"])
    before, after = block["before"], block["after"]
    names = [r["class"] for r in before["top_classes"]]
    names += [r["class"] for r in after["top_classes"] if r["class"] not in names]
    prob_b = {r["class"]: r["probability"] for r in before["all_classes"]}
    prob_a = {r["class"]: r["probability"] for r in after["all_classes"]}
    rows = []
    for name in names:
        delta = prob_a[name] - prob_b[name]
        rows.append(f'<tr><td>{_e(name)}</td><td class="num">{prob_b[name]:.1%}</td>'
                    f'<td class="num">{prob_a[name]:.1%}</td>'
                    f'<td class="num delta {"up" if delta > 0 else "down"}">{delta:+.1%}</td></tr>')
    return (f"<section><h2>Intervention: before / after</h2><ul>{specs}</ul>"
            f'<p>Prediction: <b>{_e(before["predicted"])}</b> → <b>{_e(after["predicted"])}</b>; '
            f'logit of <b>{_e(block["class"])}</b>: {before["logit"]:.3f} → {after["logit"]:.3f}</p>'
            "<table><thead><tr><th>class</th><th>before</th><th>after</th><th>change</th></tr></thead>"
            f'<tbody>{"".join(rows)}</tbody></table>'
            f'{_figure(figures, "intervention", "window scores before and after the intervention")}</section>')


def _suggested_edits(edits: list[dict], target: str, windows: list[dict]) -> str:
    rows = "".join(
        f'<tr><td class="num">{e["window"]}</td><td class="num">{windows[e["window"]]["start_s"]:.1f}–'
        f'{windows[e["window"]]["end_s"]:.1f} s</td><td>{_e(e["concept"])}</td><td class="num">{e["current"]:.3f} → '
        f'{e["value"]:.3f}</td><td><code>{_e(e["intervene"])}</code></td></tr>' for e in edits)
    command = " ".join(f'--intervene "{_e(e["intervene"])}"' for e in edits)
    return (f"<section><h2>Concept edits towards <b>{_e(target)}</b></h2><p class='note'>The concept values whose "
            "change moves the prediction most towards this class (first-order effect on the margin), each set "
            "to a typical high or low value of that concept in this video. Apply them with "
            f"<code>tools/explain.py ... {command}</code></p><table><thead><tr><th>window</th><th>time</th>"
            f"<th>concept</th><th>z</th><th>intervention</th></tr></thead><tbody>{rows}</tbody></table></section>")


def render_report(explanation: dict, figures: Mapping[str, bytes], thumbnails: Mapping[int, bytes], *,
                  max_windows_in_strip: int = 64, top_concepts: int = 10) -> str:
    """The HTML page of one explanation.

    explanation: the dict written to explanation.json; figures: PNG bytes by name ("timeline",
    "window_importance", "global_importance", "attention", "intervention"); thumbnails: JPEG bytes
    per window index.
    """
    video, pred, target = explanation["video"], explanation["prediction"], explanation["explained_class"]
    windows = explanation["windows"]
    top_windows = {w["index"] for w in sorted(windows, key=lambda w: -w["importance"])[:3]}
    explaining = ("the prediction" if target["index"] == pred["index"]
                  else f"class <b>{_e(target['class'])}</b> (not the prediction)")
    attention = explanation.get("attention", {})
    attention_html = (_figure(figures, "attention", "temporal attention maps") if "attention" in figures else
                      f'<p class="note">{_e(attention.get("note", "No attention maps."))}</p>')
    parts = [
        f"<header><h1>{_e(video['id'])}</h1><div class='sub'>{video['num_windows']} windows · "
        f"{video['duration_s']:.1f} s · explaining {explaining}</div>"
        "<div class='headline'><div><div class='label'>prediction</div>"
        f"<div class='big'>{_e(pred['class'])}</div></div>"
        f"<div><div class='label'>probability</div><div class='big'>{pred['probability']:.1%}</div></div>"
        f"<div><div class='label'>explained class logit</div><div class='big'>{target['logit']:.3f}</div></div>"
        f"</div></header>",
        "<section class='grid'><div><h2>Top classes</h2>"
        f"{_class_table(explanation['top_classes'], target['index'])}</div>"
        f"<div><h2>Decomposition check</h2>{_decomposition(explanation['decomposition'])}</div></section>",
        "<section><h2>What the model saw, when</h2><p class='note'>Frames of the windows (top), the activations "
        f"of the most important concepts for <b>{_e(target['class'])}</b> over time (middle), and how much each "
        "window contributes to the class score, π (bottom; the exact weights of the log-sum-exp pooling).</p>"
        f"{_figure(figures, 'timeline', 'concept timelines')}</section>",
        "<section><h2>Windows</h2><p class='note'>Each window with its time span, its importance π (bar) and its "
        "most relevant concepts r = z·w. Outlined: the three most important windows.</p>"
        f"{_window_strip(windows, thumbnails, top_windows, max_windows_in_strip)}</section>",
        f"<section class='grid'><div><h2>Top concepts</h2><p class='note'>G[c] = Σ<sub>t</sub> π<sub>t</sub> r[t,c]: "
        f"the contribution of each concept to the logit of <b>{_e(target['class'])}</b>.</p>"
        f"{_concept_table(explanation['global_importance'], target['logit'], top_concepts)}</div>"
        f"<div>{_figure(figures, 'global_importance', 'global concept importance')}</div></section>",
        "<section><h2>Temporal attention of the top concepts</h2><p class='note'>Row: the window that attends "
        "(query), column: the window attended to (key); each concept has its own map.</p>"
        f"{attention_html}</section>",
    ]
    if explanation.get("suggested_edits"):
        parts.append(_suggested_edits(explanation["suggested_edits"], target["class"], windows))
    if explanation.get("intervention"):
        parts.append(_interventions(explanation["intervention"], figures))
    model = explanation.get("model", {})
    parts.append(f"<footer>motif · τ = {model.get('tau', '')} · {_e(model.get('variant', ''))} · "
                 f"{model.get('num_concepts', '')} concepts · {model.get('num_classes', '')} classes</footer>")
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{_e(video['id'])}: {_e(pred['class'])}</title><style>{_CSS}</style></head><body><main>"
            + "".join(parts) + "</main></body></html>")


def write_report(path: str | Path, explanation: dict, figures: Mapping[str, bytes],
                 thumbnails: Mapping[int, bytes]) -> Path:
    """Render and write report.html."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(explanation, figures, thumbnails), encoding="utf-8")
    return path
