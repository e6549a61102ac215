/* motif report.html: the explorer of one explained video. No library, no network.
 *
 * The readout after the concept activations z [T, C] is exact, so the page recomputes it:
 *   ℓ[t,k] = Σ_c z[t,c]·W[k,c] + b[k]
 *   logit[k] = (1/τ)·logsumexp_t(τ·ℓ[t,k]);  p = softmax(logit)
 *   π_t = softmax_t(τ·ℓ[t,k]);  r[t,c] = z[t,c]·W[k,c];  G[c] = Σ_t π_t·r[t,c];  H = −Σ_t π_t log π_t
 *   logit[k] = Σ_c G[c] + b[k] + H/τ
 * Concept interventions edit z in order (zero / set a concept, a window or a cell) with the syntax of
 * `tools/explain.py --intervene`, and every view is recomputed.
 *
 * Scripting API, window.motifReport:
 *   logits()            current pooled logits [K] (after the interventions applied so far)
 *   probabilities()     softmax of logits() [K]
 *   windowLogits()      ℓ [T][K]
 *   explanation(k?)     {classIndex, logit, bias, entropy, residual, G [C], pi [T], windowScores [T]} of class k
 *                       (default: the class shown)
 *   apply(spec)         apply an intervention: a string such as "zero:concept=red circle",
 *                       "set:cell=3,red circle,0.5", "zero:window=2-4", or an object
 *                       {mode: "zero"|"set", concepts: [i], windows: [t], cells: [[t, i]], value}; returns logits()
 *   reset()             undo every intervention
 *   edits()             the applied interventions as --intervene strings
 *   suggestions(k, n)   up to n corrective edits towards class k, ranked as the evaluation ranks them
 *   seek(seconds)       move the playhead (and the video); time(), window() read it back
 *   setClass(k|name)    explain another class; currentClass()
 *   setContrast(a, b)   contrast two classes
 *   renderedAt          milliseconds from the start of navigation to the end of the first render
 * <body data-ready="true"> is set once the page has rendered.
 */
"use strict";
(function () {
  const D = JSON.parse(document.getElementById("motif-data").textContent);
  const [T, C, K] = D.shape;
  // A model may give each concept several channels (views such as now / before / after, view-major):
  // an edit of a concept or a cell edits every view of it, as the Python --intervene path does.
  const CONCEPTS = (D.model && D.model.num_concepts) || C;
  const viewsOf = (c) => { const out = []; for (let v = c % CONCEPTS; v < C; v += CONCEPTS) out.push(v); return out; };
  const tau = D.tau;
  const names = D.concepts, classes = D.classes, colours = D.colours, spans = D.spans;
  const $ = (id) => document.getElementById(id);

  function decode(b64) {
    const bin = atob(b64), bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return bytes;
  }
  const z0 = new Float32Array(decode(D.z).buffer);
  const W = new Float32Array(decode(D.W).buffer);
  const bias = new Float32Array(decode(D.b).buffer);
  const z = Float64Array.from(z0);
  const edges = (function () {
    const tiled = spans.every((s, t) => t === 0 || Math.abs(s[0] - spans[t - 1][1]) < 1e-6);
    if (tiled) return spans.map((s) => s[0]).concat([spans[T - 1][1]]);
    const centre = spans.map((s) => (s[0] + s[1]) / 2), e = [spans[0][0]];
    for (let t = 1; t < T; t++) e.push((centre[t - 1] + centre[t]) / 2);
    e.push(spans[T - 1][1]);
    return e;
  })();

  // ---- the readout ---------------------------------------------------------------------------------
  let windowLogits = new Float64Array(T * K), logits = new Float64Array(K), probs = new Float64Array(K);

  function lse(values) {
    let m = -Infinity;
    for (const v of values) m = Math.max(m, v);
    let s = 0;
    for (const v of values) s += Math.exp(v - m);
    return m + Math.log(s);
  }

  function forward() {
    for (let t = 0; t < T; t++) {
      for (let k = 0; k < K; k++) {
        let s = bias[k];
        const zo = t * C, wo = k * C;
        for (let c = 0; c < C; c++) s += z[zo + c] * W[wo + c];
        windowLogits[t * K + k] = s;
      }
    }
    const scaled = new Float64Array(T);
    for (let k = 0; k < K; k++) {
      for (let t = 0; t < T; t++) scaled[t] = tau * windowLogits[t * K + k];
      logits[k] = lse(scaled) / tau;
    }
    const m = lse(logits);
    for (let k = 0; k < K; k++) probs[k] = Math.exp(logits[k] - m);
  }

  function explainClass(k) {
    const score = new Float64Array(T), pi = new Float64Array(T), G = new Float64Array(C);
    for (let t = 0; t < T; t++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += z[t * C + c] * W[k * C + c];
      score[t] = s + bias[k];
    }
    let m = -Infinity;
    for (let t = 0; t < T; t++) m = Math.max(m, tau * score[t]);
    let total = 0;
    for (let t = 0; t < T; t++) { pi[t] = Math.exp(tau * score[t] - m); total += pi[t]; }
    let H = 0;
    for (let t = 0; t < T; t++) { pi[t] /= total; if (pi[t] > 0) H -= pi[t] * Math.log(pi[t]); }
    let sumG = 0;
    for (let c = 0; c < C; c++) {
      let g = 0;
      for (let t = 0; t < T; t++) g += pi[t] * z[t * C + c] * W[k * C + c];
      G[c] = g; sumG += g;
    }
    return { classIndex: k, logit: logits[k], bias: bias[k], entropy: H, windowScores: score, pi: pi, G: G,
             sumG: sumG, residual: logits[k] - (sumG + bias[k] + H / tau) };
  }

  function argmax(a) { let best = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i; return best; }

  // ---- interventions (the --intervene syntax, concept edits only) -----------------------------------
  const normalise = (s) => s.trim().toLowerCase().split(/\s+/).filter(Boolean).join(" ");
  const lookup = new Map();
  names.forEach((n, i) => { const key = normalise(n); if (!lookup.has(key)) lookup.set(key, i); });

  function syntaxError(text, reason) { return new Error(`Intervention '${text}': ${reason}`); }

  function resolveConcept(name, text) {
    name = name.trim();
    if (/^#\d+$/.test(name)) {
      const i = Number(name.slice(1));
      if (i >= C) throw syntaxError(text, `concept index ${name} is out of range (#0..#${C - 1})`);
      return i;
    }
    const exact = names.indexOf(name);
    if (exact >= 0) return exact;
    if (lookup.has(normalise(name))) return lookup.get(normalise(name));
    throw syntaxError(text, `unknown concept '${name}'`);
  }

  function parseWindows(field, text) {
    const m = /^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$/.exec(field);
    if (!m) throw syntaxError(text, `window '${field}' is not a window index (0-based) or a range such as 3-5`);
    const first = Number(m[1]), last = m[2] === undefined ? first : Number(m[2]);
    if (last < first) throw syntaxError(text, `window range '${field}' is empty`);
    if (last >= T) throw syntaxError(text, `window ${last} does not exist (the video has ${T} windows, 0..${T - 1})`);
    const out = [];
    for (let t = first; t <= last; t++) out.push(t);
    return out;
  }

  function parseSpec(text) {
    const eq = text.indexOf("=");
    if (eq < 0 || !text.slice(eq + 1).trim()) throw syntaxError(text, "expected MODE:TARGET=ARGUMENTS");
    const parts = text.slice(0, eq).split(":").map((p) => p.trim().toLowerCase());
    let args = text.slice(eq + 1);
    if (parts[0] === "attn" || parts[0] === "noise")
      throw syntaxError(text, `${parts[0]} interventions re-run the model; use tools/explain.py --intervene`);
    if (parts.length !== 2 || !["zero", "set"].includes(parts[0]) || !["concept", "window", "cell"].includes(parts[1]))
      throw syntaxError(text, "use zero|set:concept|window|cell=...");
    const [mode, target] = parts;
    let value = 0;
    if (mode === "set") {
      const comma = args.lastIndexOf(",");
      if (comma < 0 || !args.slice(0, comma).trim()) throw syntaxError(text, "set needs a trailing ,VALUE");
      const field = args.slice(comma + 1).trim();
      value = Number(field);
      if (!field || !Number.isFinite(value)) throw syntaxError(text, `value '${field}' is not a number`);
      args = args.slice(0, comma);
    }
    const spec = { text: text, mode: mode, concepts: [], windows: [], cells: [], value: value };
    for (const item of args.split("|")) {
      if (target === "concept") spec.concepts.push(resolveConcept(item, text));
      else if (target === "window") spec.windows.push(...parseWindows(item, text));
      else {
        const comma = item.indexOf(",");
        if (comma < 0) throw syntaxError(text, `cell '${item}' must read WINDOW,CONCEPT`);
        const c = resolveConcept(item.slice(comma + 1), text);
        for (const t of parseWindows(item.slice(0, comma), text)) spec.cells.push([t, c]);
      }
    }
    return spec;
  }

  function specText(o) {
    const mode = o.mode || "zero", tail = mode === "set" ? `,${o.value}` : "";
    const parts = [];
    if ((o.concepts || []).length) parts.push(`${mode}:concept=${o.concepts.map((c) => names[c]).join("|")}${tail}`);
    if ((o.windows || []).length) parts.push(`${mode}:window=${o.windows.join("|")}${tail}`);
    if ((o.cells || []).length) parts.push(`${mode}:cell=${o.cells.map(([t, c]) => `${t},${names[c]}`).join("|")}${tail}`);
    if (parts.length !== 1) throw new Error("an intervention object edits exactly one of concepts, windows or cells");
    return parts[0];
  }

  const edits = [];

  function applySpec(spec) {
    const v = spec.mode === "set" ? Math.fround(spec.value) : 0;  // z is float32 in the model
    for (const c of spec.concepts) for (const j of viewsOf(c)) for (let t = 0; t < T; t++) z[t * C + j] = v;
    for (const t of spec.windows) for (let c = 0; c < C; c++) z[t * C + c] = v;
    for (const [t, c] of spec.cells) for (const j of viewsOf(c)) z[t * C + j] = v;
  }

  function apply(input) {
    const spec = parseSpec(typeof input === "string" ? input : specText(input));
    applySpec(spec);
    edits.push(spec);
    update();
    return Array.from(logits);
  }

  function reset() {
    z.set(z0);
    edits.length = 0;
    update();
  }

  // corrective_edits of motif.model.corrections, for one video
  function quantile(sorted, q) {
    const pos = q * (sorted.length - 1), lo = Math.floor(pos), hi = Math.ceil(pos);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
  }

  function suggestions(trueClass, maxEdits) {
    maxEdits = maxEdits === undefined ? 4 : maxEdits;
    const pred = argmax(logits);
    if (trueClass === pred) return [];
    const piT = explainClass(trueClass).pi, piP = explainClass(pred).pi;
    const low = new Float64Array(C), high = new Float64Array(C), column = new Float64Array(T);
    for (let c = 0; c < C; c++) {
      for (let t = 0; t < T; t++) column[t] = z[t * C + c];
      const sorted = Float64Array.from(column).sort();
      low[c] = quantile(sorted, 0.1); high[c] = quantile(sorted, 0.9);
    }
    const found = [];
    for (let t = 0; t < T; t++) {
      for (let c = 0; c < C; c++) {
        const slope = piT[t] * W[trueClass * C + c] - piP[t] * W[pred * C + c], current = z[t * C + c];
        const gLow = (low[c] - current) * slope, gHigh = (high[c] - current) * slope;
        const useHigh = gHigh > gLow, gain = useHigh ? gHigh : gLow;
        if (gain > 0 && (found.length < maxEdits || gain > found[found.length - 1].gain)) {  // keep the best maxEdits
          let i = Math.min(found.length, maxEdits - 1);
          while (i > 0 && found[i - 1].gain < gain) i--;
          found.splice(i, 0, { window: t, concept: c, current: current, value: useHigh ? high[c] : low[c], gain: gain });
          found.length = Math.min(found.length, maxEdits);
        }
      }
    }
    return found.map((e) => Object.assign(e, {
      name: names[e.concept], intervene: `set:cell=${e.window},${names[e.concept]},${e.value}` }));
  }

  // ---- formatting ------------------------------------------------------------------------------------
  const esc = (s) => String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch]);
  const num = (v, d) => (v < 0 ? "−" : "") + Math.abs(v).toFixed(d === undefined ? 3 : d);
  const signed = (v, d) => (v < 0 ? "− " : "+ ") + Math.abs(v).toFixed(d === undefined ? 3 : d);
  const pct = (v) => (100 * v).toFixed(1) + "%";
  const span = (t) => `${spans[t][0].toFixed(1)}–${spans[t][1].toFixed(1)} s`;
  const swatch = (c) => `<span class="swatch" style="background:${colours[c]}"></span>`;
  const SVG = "http://www.w3.org/2000/svg";

  const tooltip = $("tooltip");
  function showTip(htmlText, event) {
    tooltip.innerHTML = htmlText;
    tooltip.hidden = false;
    const x = Math.min(event.clientX + 14, window.innerWidth - tooltip.offsetWidth - 8);
    const y = Math.min(event.clientY + 14, window.innerHeight - tooltip.offsetHeight - 8);
    tooltip.style.left = x + "px"; tooltip.style.top = y + "px";
  }
  function hideTip() { tooltip.hidden = true; }

  function windowAt(seconds) {
    let lo = 0, hi = T - 1;
    while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (edges[mid] <= seconds) lo = mid; else hi = mid - 1; }
    return lo;
  }

  // Perceptual colour scales (piecewise linear through a few stops of viridis / magma).
  function scale(stops) {
    const lut = new Uint8ClampedArray(256 * 3);
    for (let i = 0; i < 256; i++) {
      const x = i / 255 * (stops.length - 1), j = Math.min(Math.floor(x), stops.length - 2), f = x - j;
      for (let ch = 0; ch < 3; ch++) lut[i * 3 + ch] = stops[j][ch] + (stops[j + 1][ch] - stops[j][ch]) * f;
    }
    return lut;
  }
  const VIRIDIS = scale([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]]);
  const MAGMA = scale([[0, 0, 4], [81, 18, 124], [183, 55, 121], [252, 137, 97], [252, 253, 191]]);
  const lutColour = (lut, f) => { const i = Math.max(0, Math.min(255, Math.round(f * 255))) * 3; return `rgb(${lut[i]},${lut[i + 1]},${lut[i + 2]})`; };

  // ---- state -----------------------------------------------------------------------------------------
  let cls = D.explained, E = null, time = spans[0][0], current = 0, pinned = null;
  let sortKey = "G", query = "", contrastA = D.top_classes[0], contrastB = D.top_classes[1] === undefined ? D.top_classes[0] : D.top_classes[1];
  let correctClass = null;
  const modelLogits = D.model_logits;

  function shownConcepts() {
    if (pinned) return Array.from(pinned);
    const order = Array.from(E.G.keys()).sort((a, b) => E.G[b] - E.G[a]);
    const positive = order.slice(0, 5).filter((c) => E.G[c] > 0);
    return positive.length ? positive : order.slice(0, 1);
  }

  function topWindows(n) { return Array.from(E.pi.keys()).sort((a, b) => E.pi[b] - E.pi[a]).slice(0, n); }

  // ---- views -----------------------------------------------------------------------------------------
  function renderHeader() {
    const p = argmax(logits);
    $("video-id").textContent = D.video.id;
    $("video-sub").textContent = `${T} windows · ${D.video.duration_s.toFixed(1)} s · ${C} concepts · ${K} classes`;
    $("pred-name").textContent = classes[p];
    $("pred-prob").textContent = pct(probs[p]);
    const list = D.top_classes.includes(cls) ? D.top_classes : D.top_classes.concat([cls]);
    $("class-switch").innerHTML = list.map((k) =>
      `<button type="button" role="tab" data-class="${k}" aria-selected="${k === cls}">${esc(classes[k])}</button>`).join("");
    $("live-banner").hidden = edits.length === 0;
    $("live-count").textContent = edits.map((e) => e.text).join(" · ");
  }

  function renderClassTable() {
    const rows = D.top_classes.slice();
    const p = argmax(logits);
    if (!rows.includes(p)) rows.push(p);
    const top = Math.max(...rows.map((k) => probs[k])) || 1;
    $("class-table").innerHTML = rows.map((k) => {
      const delta = logits[k] - modelLogits[k];
      const change = edits.length ? ` <span class="${delta >= 0 ? "up" : "down"}">(${signed(delta)})</span>` : "";
      return `<tr class="${k === cls ? "current" : ""}"><td>${esc(classes[k])}</td><td class="num">${pct(probs[k])}</td>` +
        `<td class="num">${num(logits[k])}${change}</td><td class="num">${num(modelLogits[k])}</td>` +
        `<td style="width:30%"><div class="bar" style="width:${(100 * probs[k] / top).toFixed(1)}%"></div></td></tr>`;
    }).join("");
  }

  function renderEquation() {
    $("equation").innerHTML = `logit[${esc(classes[cls])}] = Σ<sub>c</sub> G[c] + b + H(π)/τ<br>` +
      `${num(E.logit, 6)} = ${num(E.sumG, 6)} ${signed(E.bias, 6)} + ${E.entropy.toFixed(6)}/${tau}`;
    let drift = 0;
    if (!edits.length) for (let k = 0; k < K; k++) drift = Math.max(drift, Math.abs(logits[k] - modelLogits[k]));
    const ok = Math.abs(E.residual) < 1e-4 && drift < 1e-4;
    $("check").innerHTML = `<span class="badge ${ok ? "ok" : "fail"}">${ok ? "exact" : "MISMATCH"}</span> residual ` +
      `${E.residual.toExponential(1)}` + (edits.length ? "" : `; the page's logits equal the model's to ${drift.toExponential(1)}`);
  }

  function svg(tag, attrs, parent) {
    const el = document.createElementNS(SVG, tag);
    for (const key in attrs) el.setAttribute(key, attrs[key]);
    if (parent) parent.appendChild(el);
    return el;
  }

  function chartWidth(el) { return Math.max(640, el.clientWidth || 1100); }

  const playheads = [];

  function timeAxis(root, x, y, width) {
    const span = edges[T] - edges[0], step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => span / s <= 12) || 600;
    for (let s = Math.ceil(edges[0] / step) * step; s <= edges[T] + 1e-9; s += step) {
      svg("line", { x1: x(s), x2: x(s), y1: y, y2: y + 4, stroke: "#8a939e" }, root);
      svg("text", { x: x(s), y: y + 15, "text-anchor": "middle", "font-size": 11, fill: "#4a525c" }, root).textContent = `${+s.toFixed(2)} s`;
    }
  }

  function stepPath(values, x, y) {
    let d = `M${x(edges[0]).toFixed(1)},${y(values[0]).toFixed(1)}`;
    for (let t = 0; t < T; t++) {
      d += `H${x(edges[t + 1]).toFixed(1)}`;
      if (t + 1 < T) d += `V${y(values[t + 1]).toFixed(1)}`;
    }
    return d;
  }

  function renderTimeline() {
    const box = $("timeline");
    box.innerHTML = "";
    const shown = shownConcepts();
    const legend = document.createElement("div");
    legend.className = "classes";
    legend.innerHTML = shown.map((c) => `<span>${swatch(c)}${esc(names[c])} <span class="note">G ${num(E.G[c], 2)}</span></span>`).join("");
    box.appendChild(legend);
    const width = chartWidth(box), left = 48, right = 12, top = 8, curveH = 190, gap = 16, piH = 70, height = top + curveH + gap + piH + 24;
    const root = svg("svg", { width: width, height: height, role: "img", "aria-label": "concept timelines" }, box);
    const x = (s) => left + (s - edges[0]) / (edges[T] - edges[0] || 1) * (width - left - right);
    let lo = 0, hi = 1e-9;
    for (const c of shown) for (let t = 0; t < T; t++) { lo = Math.min(lo, z[t * C + c]); hi = Math.max(hi, z[t * C + c]); }
    const y = (v) => top + curveH - (v - lo) / (hi - lo) * curveH;
    svg("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), stroke: "#cfd5dc" }, root);
    svg("text", { x: 4, y: top + 10, "font-size": 11, fill: "#66707c" }, root).textContent = num(hi, 2);
    svg("text", { x: 4, y: top + curveH, "font-size": 11, fill: "#66707c" }, root).textContent = "z";
    for (const c of shown) {
      const values = []; for (let t = 0; t < T; t++) values.push(z[t * C + c]);
      svg("path", { d: stepPath(values, x, y), fill: "none", stroke: colours[c], "stroke-width": 2 }, root);
    }
    const piTop = top + curveH + gap, piMax = Math.max(...E.pi) || 1, best = new Set(topWindows(3));
    for (let t = 0; t < T; t++) {
      const h = E.pi[t] / piMax * piH;
      svg("rect", { x: x(edges[t]), y: piTop + piH - h, width: Math.max(0.5, (x(edges[t + 1]) - x(edges[t])) * 0.92), height: h,
                    fill: best.has(t) ? "#e45756" : "#9aa3ad", class: "pi-bar", "data-window": t }, root);
    }
    svg("text", { x: 4, y: piTop + 10, "font-size": 11, fill: "#66707c" }, root).textContent = "π";
    timeAxis(root, x, piTop + piH + 2, width);
    const head = svg("line", { y1: top, y2: piTop + piH, stroke: "#1f2630", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "playhead" }, root);
    playheads.push({ el: head, x: x });
    const overlay = svg("rect", { x: left, y: top, width: width - left - right, height: piTop + piH - top, fill: "transparent", style: "cursor:crosshair" }, root);
    const pick = (event) => windowAt(edges[0] + (event.clientX - root.getBoundingClientRect().left - left) / (width - left - right) * (edges[T] - edges[0]));
    overlay.addEventListener("mousemove", (event) => {
      const t = pick(event);
      showTip(`<b>window ${t}</b> · ${span(t)}<br>π = ${E.pi[t].toFixed(4)} · ℓ = ${num(E.windowScores[t])}<br>` +
        shown.map((c) => `${swatch(c)}${esc(names[c])}: z = ${num(z[t * C + c])}, r = ${num(z[t * C + c] * W[cls * C + c])}`).join("<br>"), event);
    });
    overlay.addEventListener("mouseleave", hideTip);
    overlay.addEventListener("click", (event) => seek(spans[pick(event)][0]));
  }

  function renderStrip() {
    const best = new Set(topWindows(3)), piMax = Math.max(...E.pi) || 1;
    const cards = [];
    for (let t = 0; t < T; t++) {
      const r = [];
      for (let c = 0; c < C; c++) r.push([z[t * C + c] * W[cls * C + c], c]);
      r.sort((a, b) => b[0] - a[0]);
      const floor = 0.01 * Math.max(r[0][0], 0);
      const items = r.slice(0, 3).filter(([v]) => v > floor).map(([v, c]) => `<li>${swatch(c)}${esc(names[c])} <span>${v.toFixed(2)}</span></li>`).join("");
      const thumb = D.thumbnails[t] ? `<img alt="window ${t}" src="${D.thumbnails[t]}">` : "";
      cards.push(`<div class="window${best.has(t) ? " top" : ""}${t === current ? " now" : ""}" data-window="${t}">${thumb}` +
        `<div class="time"><span>#${t}</span><span>${span(t)}</span></div>` +
        `<div class="pi" title="π = ${E.pi[t].toFixed(4)}"><div style="width:${(100 * E.pi[t] / piMax).toFixed(1)}%"></div></div><ol>${items}</ol></div>`);
    }
    $("strip").innerHTML = cards.join("");
  }

  function conceptRows() {
    const logit = E.logit, rows = [];
    const q = query.trim().toLowerCase();
    for (let c = 0; c < C; c++) {
      if (q && !names[c].toLowerCase().includes(q)) continue;
      let peak = -Infinity;
      for (let t = 0; t < T; t++) peak = Math.max(peak, z[t * C + c]);
      rows.push({ c: c, name: names[c], G: E.G[c], share: Math.abs(logit) > 1e-12 ? E.G[c] / logit : NaN, peak: peak, weight: W[cls * C + c] });
    }
    const key = sortKey;
    rows.sort(key === "name" ? (a, b) => a.name.localeCompare(b.name) : (a, b) => (b[key] - a[key]) || (a.c - b.c));
    return rows;
  }

  let tableRows = [];
  function renderConceptTable() {
    tableRows = conceptRows();
    const shown = new Set(shownConcepts());
    const peak = Math.max(...tableRows.map((r) => Math.abs(r.G)), 1e-12);
    document.querySelectorAll("#concept-table th[data-sort]").forEach((th) => th.classList.toggle("sorted", th.dataset.sort === sortKey));
    $("concept-table").tBodies[0].innerHTML = tableRows.map((r) =>
      `<tr data-concept="${r.c}"><td>${swatch(r.c)}${esc(r.name)}<div class="bar" style="width:${(100 * Math.max(r.G, 0) / peak).toFixed(1)}%;background:${colours[r.c]}"></div></td>` +
      `<td class="num">${num(r.G)}</td><td class="num">${Number.isFinite(r.share) ? pct(r.share) : "–"}</td>` +
      `<td class="num">${num(r.peak)}</td><td class="num">${num(r.weight)}</td>` +
      `<td><input type="checkbox" data-show="${r.c}" ${shown.has(r.c) ? "checked" : ""} aria-label="show ${esc(r.name)}"></td>` +
      `<td><button type="button" data-zero="${r.c}">zero</button></td></tr>`).join("");
    $("concept-count").textContent = `${tableRows.length} of ${C} concepts, sorted by ${sortKey}`;
  }

  function renderHeatmap() {
    const canvas = $("heatmap"), rows = tableRows.map((r) => r.c);
    const labels = rows.length <= 60, labelW = labels ? 170 : 0;
    const avail = chartWidth(canvas.parentElement) - labelW;
    const cw = Math.max(1, Math.min(40, Math.floor(avail / T))), rh = Math.max(2, Math.min(14, Math.floor(640 / Math.max(rows.length, 1))));
    canvas.width = labelW + cw * T; canvas.height = Math.max(rh * rows.length, 1);
    const ctx = canvas.getContext("2d");
    let lo = Infinity, hi = -Infinity;
    for (let i = 0; i < T * C; i++) { lo = Math.min(lo, z[i]); hi = Math.max(hi, z[i]); }
    const range = hi - lo || 1;
    if (rows.length) {  // one pixel per cell, scaled up without smoothing
      const cells = document.createElement("canvas");
      cells.width = T; cells.height = rows.length;
      const image = cells.getContext("2d").createImageData(T, rows.length);
      rows.forEach((c, i) => {
        for (let t = 0; t < T; t++) {
          const v = Math.max(0, Math.min(255, Math.round((z[t * C + c] - lo) / range * 255))) * 3, o = 4 * (i * T + t);
          image.data[o] = VIRIDIS[v]; image.data[o + 1] = VIRIDIS[v + 1]; image.data[o + 2] = VIRIDIS[v + 2]; image.data[o + 3] = 255;
        }
      });
      cells.getContext("2d").putImageData(image, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(cells, labelW, 0, T * cw, rows.length * rh);
    }
    rows.forEach((c, i) => {
      if (labels && rh >= 8) {
        ctx.fillStyle = colours[c]; ctx.font = `${Math.min(12, rh)}px sans-serif`; ctx.textBaseline = "middle";
        ctx.fillText(names[c].slice(0, 26), 2, i * rh + rh / 2);
      }
    });
    canvas.onmousemove = (event) => {
      const rect = canvas.getBoundingClientRect();
      const t = Math.floor((event.clientX - rect.left - labelW) / cw), i = Math.floor((event.clientY - rect.top) / rh);
      if (t < 0 || t >= T || i < 0 || i >= rows.length) return hideTip();
      const c = rows[i];
      showTip(`${swatch(c)}<b>${esc(names[c])}</b><br>window ${t} · ${span(t)}<br>z = ${num(z[t * C + c])} · r = ${num(z[t * C + c] * W[cls * C + c])}`, event);
    };
    canvas.onmouseleave = hideTip;
    canvas.onclick = (event) => {
      const rect = canvas.getBoundingClientRect();
      const t = Math.floor((event.clientX - rect.left - labelW) / cw), i = Math.floor((event.clientY - rect.top) / rh);
      if (t < 0 || t >= T || i < 0 || i >= rows.length) return;
      $("edit-target").value = "cell"; $("edit-concept").value = names[rows[i]]; $("edit-window").value = String(t);
      seek(spans[t][0]);
    };
  }

  function renderMaps() {
    const a = D.attention, box = $("maps");
    if (!a.maps) { $("attention-note").textContent = a.note; return; }
    $("attention-note").textContent = `Row: the window that attends (query), column: the window attended to (key); ${a.layer}. ` +
      `One colour scale for all maps, 0 to ${a.scale.toFixed(3)} (stored at 8 bits of it).`;
    const cells = decode(a.maps), size = Math.max(160, Math.min(280, 6 * T));
    a.concepts.forEach((c, m) => {
      const fig = document.createElement("figure");
      fig.innerHTML = `<figcaption>${swatch(c)}${esc(names[c])}</figcaption>`;
      const canvas = document.createElement("canvas");
      canvas.width = T; canvas.height = T; canvas.style.width = size + "px"; canvas.style.height = size + "px";
      const ctx = canvas.getContext("2d"), image = ctx.createImageData(T, T);
      for (let i = 0; i < T * T; i++) {
        const v = cells[m * T * T + i] * 3;
        image.data[4 * i] = MAGMA[v]; image.data[4 * i + 1] = MAGMA[v + 1]; image.data[4 * i + 2] = MAGMA[v + 2]; image.data[4 * i + 3] = 255;
      }
      ctx.putImageData(image, 0, 0);
      canvas.addEventListener("mousemove", (event) => {
        const rect = canvas.getBoundingClientRect();
        const q = Math.min(T - 1, Math.floor((event.clientY - rect.top) / size * T)), k = Math.min(T - 1, Math.floor((event.clientX - rect.left) / size * T));
        showTip(`<b>${esc(names[c])}</b><br>query window ${q} (${span(q)})<br>key window ${k} (${span(k)})<br>attention ≈ ${(cells[m * T * T + q * T + k] / 255 * a.scale).toFixed(4)}`, event);
      });
      canvas.addEventListener("mouseleave", hideTip);
      fig.appendChild(canvas);
      box.appendChild(fig);
    });
    const bar = document.createElement("figure");
    const stops = [0, 0.25, 0.5, 0.75, 1].map((f) => lutColour(MAGMA, f)).join(",");
    bar.innerHTML = `<figcaption>attention</figcaption><div class="colourbar" style="background:linear-gradient(90deg,${stops})"></div>` +
      `<div class="note" style="display:flex;justify-content:space-between;width:220px"><span>0</span><span>${a.scale.toFixed(3)}</span></div>`;
    box.appendChild(bar);
  }

  function renderContrastSelects() {
    const options = (selected) => D.top_classes.map((k) => `<option value="${k}" ${k === selected ? "selected" : ""}>${esc(classes[k])}</option>`).join("");
    $("contrast-a").innerHTML = options(contrastA);
    $("contrast-b").innerHTML = options(contrastB);
  }

  function renderContrast() {
    const A = explainClass(contrastA), B = explainClass(contrastB);
    const margin = logits[contrastA] - logits[contrastB];
    $("contrast-equation").innerHTML = `logit<sub>A</sub> − logit<sub>B</sub> = Σ<sub>c</sub>(G<sub>A</sub> − G<sub>B</sub>) + (b<sub>A</sub> − b<sub>B</sub>) + (H<sub>A</sub> − H<sub>B</sub>)/τ<br>` +
      `${num(margin, 4)} = ${num(A.sumG - B.sumG, 4)} ${signed(A.bias - B.bias, 4)} ${signed((A.entropy - B.entropy) / tau, 4)}`;
    const box = $("contrast-chart");
    box.innerHTML = "";
    const width = chartWidth(box), left = 48, right = 12, h = 120, height = h + 26;
    const root = svg("svg", { width: width, height: height, role: "img", "aria-label": "window margin" }, box);
    const x = (s) => left + (s - edges[0]) / (edges[T] - edges[0] || 1) * (width - left - right);
    let peak = 1e-9;
    for (let t = 0; t < T; t++) peak = Math.max(peak, Math.abs(A.windowScores[t] - B.windowScores[t]));
    const mid = h / 2 + 4;
    svg("line", { x1: left, x2: width - right, y1: mid, y2: mid, stroke: "#8a939e" }, root);
    for (let t = 0; t < T; t++) {
      const d = A.windowScores[t] - B.windowScores[t], bh = Math.abs(d) / peak * (h / 2 - 4);
      const bar = svg("rect", { x: x(edges[t]), y: d >= 0 ? mid - bh : mid, width: Math.max(0.5, (x(edges[t + 1]) - x(edges[t])) * 0.92), height: bh, fill: d >= 0 ? "#2e8b57" : "#c0392b" }, root);
      bar.addEventListener("mousemove", (event) => showTip(`window ${t} · ${span(t)}<br>ℓ<sub>A</sub> − ℓ<sub>B</sub> = ${num(d)}<br>π<sub>A</sub> = ${A.pi[t].toFixed(3)}, π<sub>B</sub> = ${B.pi[t].toFixed(3)}`, event));
      bar.addEventListener("mouseleave", hideTip);
      bar.addEventListener("click", () => seek(spans[t][0]));
    }
    svg("text", { x: 4, y: 14, "font-size": 11, fill: "#66707c" }, root).textContent = "A wins";
    svg("text", { x: 4, y: h, "font-size": 11, fill: "#66707c" }, root).textContent = "B wins";
    timeAxis(root, x, h + 6, width);
    const head = svg("line", { y1: 4, y2: h + 4, stroke: "#1f2630", "stroke-width": 1.5, "stroke-dasharray": "4 3", class: "playhead" }, root);
    playheads.push({ el: head, x: x });
    const diff = Array.from({ length: C }, (_, c) => [A.G[c] - B.G[c], c]).sort((p, q) => q[0] - p[0]);
    const rows = diff.slice(0, 8).concat(diff.slice(-3).filter((d) => d[0] < 0 && !diff.slice(0, 8).includes(d)));
    $("contrast-overall").innerHTML = "<thead><tr><th>concept</th><th>G<sub>A</sub></th><th>G<sub>B</sub></th><th>A − B</th></tr></thead><tbody>" +
      rows.map(([d, c]) => `<tr><td>${swatch(c)}${esc(names[c])}</td><td class="num">${num(A.G[c])}</td><td class="num">${num(B.G[c])}</td>` +
        `<td class="num ${d >= 0 ? "up" : "down"}">${num(d)}</td></tr>`).join("") + "</tbody>";
    renderContrastWindow();
  }

  function renderContrastWindow() {
    const t = current, rows = [];
    for (let c = 0; c < C; c++) rows.push([z[t * C + c] * (W[contrastA * C + c] - W[contrastB * C + c]), c]);
    rows.sort((p, q) => Math.abs(q[0]) - Math.abs(p[0]));
    $("contrast-window-title").textContent = `In window ${t} (${span(t)})`;
    $("contrast-window").innerHTML = "<thead><tr><th>concept</th><th>z</th><th>z·(W<sub>A</sub> − W<sub>B</sub>)</th></tr></thead><tbody>" +
      rows.slice(0, 8).map(([d, c]) => `<tr><td>${swatch(c)}${esc(names[c])}</td><td class="num">${num(z[t * C + c])}</td>` +
        `<td class="num ${d >= 0 ? "up" : "down"}">${num(d)}</td></tr>`).join("") + "</tbody>";
  }

  function renderEdits() {
    $("edit-list").innerHTML = edits.map((e) => `<li><code>${esc(e.text)}</code></li>`).join("");
    let cli = "";
    if (D.cli_intervention) {
      const after = D.cli_intervention.logits, p = argmax(after);
      cli = ` tools/explain.py applied ${D.cli_intervention.specs.map((s) => `<code>${esc(s)}</code>`).join(", ")}: ` +
        `prediction ${esc(classes[p])}, logit ${num(after[p])} (concept edits can be re-applied here with "apply spec").`;
    }
    $("edit-command").innerHTML = (edits.length ? "The same with the command line: <code>tools/explain.py ... " +
      edits.map((e) => `--intervene "${esc(e.text)}"`).join(" ") + "</code>" : "No intervention applied in the page.") + cli;
  }

  function renderSuggestions() {
    const p = argmax(logits);
    const others = D.top_classes.filter((k) => k !== p);
    if (correctClass === null || correctClass === p || !others.includes(correctClass)) correctClass = others.length ? others[0] : p;
    $("correct-class").innerHTML = others.map((k) => `<option value="${k}" ${k === correctClass ? "selected" : ""}>${esc(classes[k])}</option>`).join("");
    const list = others.length ? suggestions(correctClass, 4) : [];
    $("suggestions").innerHTML = list.length ? "<thead><tr><th>window</th><th>time</th><th>concept</th><th>z</th><th>gain</th><th></th></tr></thead><tbody>" +
      list.map((e, i) => `<tr><td class="num">${e.window}</td><td class="num">${span(e.window)}</td><td>${swatch(e.concept)}${esc(e.name)}</td>` +
        `<td class="num">${num(e.current)} → ${num(e.value)}</td><td class="num">${e.gain.toFixed(4)}</td>` +
        `<td><button type="button" data-suggestion="${i}">apply</button></td></tr>`).join("") + "</tbody>"
      : "<tbody><tr><td class='note'>No edit raises this class against the prediction.</td></tr></tbody>";
    $("suggestions").dataset.specs = JSON.stringify(list.map((e) => e.intervene));
  }

  function renderFooter() {
    const m = D.model;
    $("footer").textContent = `motif report · τ = ${tau} · variant ${m.variant || "?"} · ${m.num_layers === undefined ? "" : m.num_layers + " layer(s) · "}` +
      `${C} concepts · ${K} classes`;
  }

  function renderAll() {
    playheads.length = 0;
    E = explainClass(cls);
    renderHeader(); renderClassTable(); renderEquation(); renderTimeline(); renderStrip();
    renderConceptTable(); renderHeatmap(); renderContrastSelects(); renderContrast(); renderEdits(); renderSuggestions();
    placePlayheads();
  }

  function update() { forward(); renderAll(); }

  // ---- playhead and video ----------------------------------------------------------------------------
  let video = null;

  function placePlayheads() {
    for (const p of playheads) { const px = p.x(time); p.el.setAttribute("x1", px); p.el.setAttribute("x2", px); }
  }

  function setTime(seconds, fromVideo) {
    time = Math.max(edges[0], Math.min(edges[T], seconds));
    $("scrub").value = time;
    $("scrub-time").textContent = `${time.toFixed(2)} s · window ${windowAt(time)}`;
    placePlayheads();
    const t = windowAt(time);
    if (t !== current) {
      const strip = $("strip");
      const old = strip.querySelector(`.window[data-window="${current}"]`), now = strip.querySelector(`.window[data-window="${t}"]`);
      if (old) old.classList.remove("now");
      if (now) now.classList.add("now");
      current = t;
      renderContrastWindow();
    }
    if (video && !fromVideo && Math.abs(video.currentTime - time) > 0.04) {
      try { video.currentTime = time; } catch (err) { /* not seekable yet */ }
    }
  }

  function seek(seconds) { setTime(seconds, false); return time; }

  function setupVideo() {
    const box = $("video-box"), v = D.video;
    const scrub = $("scrub");
    scrub.min = edges[0]; scrub.max = edges[T];
    scrub.addEventListener("input", () => seek(Number(scrub.value)));
    if (!v.src) { box.innerHTML = "<p class='note'>No video file was given; the playhead still moves every view.</p>"; return; }
    video = document.createElement("video");
    video.controls = true; video.muted = true; video.preload = "metadata"; video.playsInline = true;
    video.src = v.src;
    box.appendChild(video);
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = (v.embedded ? `${v.path || "the clip"} (embedded` : `linked: ${v.src} (`) +
      (v.transcoded ? ", re-encoded as H.264 for the browser)" : ")");
    box.appendChild(note);
    video.addEventListener("error", () => { note.textContent = `This browser cannot play ${v.path || v.src}; the playhead still works.`; video.remove(); video = null; });
    video.addEventListener("timeupdate", () => setTime(video.currentTime, true));
    const follow = () => { if (video && !video.paused) { setTime(video.currentTime, true); requestAnimationFrame(follow); } };
    video.addEventListener("play", () => requestAnimationFrame(follow));
  }

  // ---- controls --------------------------------------------------------------------------------------
  function setClass(k) {
    if (typeof k === "string") {
      const i = classes.findIndex((n) => n.toLowerCase() === k.toLowerCase());
      if (i < 0) throw new Error(`unknown class '${k}'`);
      k = i;
    }
    if (!(k >= 0 && k < K)) throw new Error(`class index ${k} does not exist (0..${K - 1})`);
    cls = k;
    renderAll();
    return cls;
  }

  function report(err) { $("edit-error").textContent = err ? err.message : ""; }

  function setupControls() {
    $("class-switch").addEventListener("click", (event) => { const b = event.target.closest("button[data-class]"); if (b) setClass(Number(b.dataset.class)); });
    $("strip").addEventListener("click", (event) => { const w = event.target.closest(".window"); if (w) seek(spans[Number(w.dataset.window)][0]); });
    $("concept-search").addEventListener("input", (event) => { query = event.target.value; renderConceptTable(); renderHeatmap(); });
    document.querySelectorAll("#concept-table th[data-sort]").forEach((th) => th.addEventListener("click", () => { sortKey = th.dataset.sort; renderConceptTable(); renderHeatmap(); }));
    $("concept-table").addEventListener("change", (event) => {
      const c = event.target.dataset.show;
      if (c === undefined) return;
      pinned = new Set(shownConcepts());
      if (event.target.checked) pinned.add(Number(c)); else pinned.delete(Number(c));
      renderTimeline(); placePlayheads();
    });
    $("concept-table").addEventListener("click", (event) => {
      const c = event.target.dataset.zero;
      if (c !== undefined) { try { apply(`zero:concept=#${c}`); report(null); } catch (err) { report(err); } }
    });
    $("concept-names").innerHTML = names.map((n) => `<option value="${esc(n)}"></option>`).join("");
    $("edit-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const mode = $("edit-mode").value, target = $("edit-target").value;
      const concept = $("edit-concept").value.trim(), win = $("edit-window").value.trim(), value = $("edit-value").value.trim();
      const tail = mode === "set" ? `,${value}` : "";
      const args = target === "concept" ? concept : target === "window" ? win : `${win},${concept}`;
      try { apply(`${mode}:${target}=${args}${tail}`); report(null); } catch (err) { report(err); }
    });
    $("spec-form").addEventListener("submit", (event) => {
      event.preventDefault();
      try { apply($("edit-spec").value); report(null); } catch (err) { report(err); }
    });
    const doReset = () => { reset(); report(null); };
    $("edit-reset").addEventListener("click", doReset);
    $("reset-top").addEventListener("click", doReset);
    $("contrast-a").addEventListener("change", (event) => { contrastA = Number(event.target.value); renderContrast(); placePlayheads(); });
    $("contrast-b").addEventListener("change", (event) => { contrastB = Number(event.target.value); renderContrast(); placePlayheads(); });
    $("correct-class").addEventListener("change", (event) => { correctClass = Number(event.target.value); renderSuggestions(); });
    $("suggestions").addEventListener("click", (event) => {
      const i = event.target.dataset.suggestion;
      if (i === undefined) return;
      try { apply(JSON.parse($("suggestions").dataset.specs)[Number(i)]); report(null); } catch (err) { report(err); }
    });
    let pending = null;
    window.addEventListener("resize", () => { clearTimeout(pending); pending = setTimeout(() => { renderAll(); }, 150); });
  }

  function explanationOf(k) {
    const e = explainClass(k === undefined ? cls : k);
    return { classIndex: e.classIndex, logit: e.logit, bias: e.bias, entropy: e.entropy, residual: e.residual,
             G: Array.from(e.G), pi: Array.from(e.pi), windowScores: Array.from(e.windowScores) };
  }

  window.motifReport = {
    version: 1,
    classNames: classes.slice(),
    conceptNames: names.slice(),
    logits: () => Array.from(logits),
    probabilities: () => Array.from(probs),
    windowLogits: () => Array.from({ length: T }, (_, t) => Array.from(windowLogits.subarray(t * K, (t + 1) * K))),
    explanation: explanationOf,
    apply: apply,
    reset: () => { reset(); return Array.from(logits); },
    edits: () => edits.map((e) => e.text),
    suggestions: (k, n) => suggestions(k, n).map((e) => ({ window: e.window, concept: e.name, index: e.concept,
                                                           current: e.current, value: e.value, gain: e.gain, intervene: e.intervene })),
    seek: seek,
    time: () => time,
    window: () => current,
    setClass: setClass,
    currentClass: () => cls,
    setContrast: (a, b) => { contrastA = a; contrastB = b; renderContrastSelects(); renderContrast(); placePlayheads(); },
  };

  forward();
  setupVideo();
  setupControls();
  renderAll();
  renderMaps();
  renderFooter();
  setTime(spans[0][0], true);
  window.motifReport.renderedAt = performance.now();
  document.body.dataset.ready = "true";
})();
