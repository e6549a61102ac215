"""Size and render time of report.html in headless Chromium.

    python benchmarks/bench_report.py [--windows 450] [--concepts 200] [--classes 101] [--repeats 3]
                                      [--also path/to/report.html ...]

Builds the report of a synthetic 1-minute video (``--windows`` windows of 60/T s, ``--concepts``
concepts, an untrained bottleneck with ``--classes`` classes, attention maps of the top concepts,
a thumbnail for 48 windows and a 1-minute H.264 clip, embedded when it fits), then opens it and
every ``--also`` report in Chromium (``MOTIF_CHROMIUM``, default /usr/bin/chromium, driven by
selenium and /usr/bin/chromedriver). Render time: navigation start to the end of the page's first
render (``motifReport.renderedAt``), best and median of ``--repeats`` fresh loads; load time: the
driver's wall time of ``get``; intervention time: one concept zeroed in the page, every view redrawn.
Targets: under 3 MB and under 2 s. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

import numpy as np
import torch
from meters import timed

from motif.explain import explain_sequence, write_explanation
from motif.model import TemporalConceptBottleneck
from motif.video import write_video

CHROMIUM = os.environ.get("MOTIF_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MOTIF_CHROMEDRIVER", "/usr/bin/chromedriver")


def synthetic_report(out_dir: Path, windows: int, concepts: int, classes: int, seconds: float = 60.0) -> Path:
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(concepts, classes, dropout=0.0).eval()
    with torch.no_grad():
        model.classifier.weight.uniform_(0.0, 0.2)
    x = torch.randn(windows, concepts)
    step = seconds / windows
    spans = torch.stack([torch.arange(windows) * step, (torch.arange(windows) + 1) * step], dim=1).float()
    result = explain_sequence(model, x, spans, class_names=[f"class {k}" for k in range(classes)],
                              concept_names=[f"concept {c}" for c in range(concepts)], video_id="synthetic")
    fps = 8.0
    frames = (np.full((120, 160, 3), (i * 3) % 255, np.uint8) for i in range(int(seconds * fps)))
    clip = write_video(out_dir / "clip_1min.mp4", frames, fps=fps)
    rng = np.random.default_rng(0)
    thumbnails = {t: rng.integers(0, 255, (90, 120, 3), dtype=np.uint8) for t in range(windows)}
    return write_explanation(result, out_dir / "report", thumbnails, video_path=clip)["report"]


def measure(driver, report: Path, repeats: int) -> dict:
    render, load = [], []
    for _ in range(repeats):
        driver.get("about:blank")
        with timed() as took:
            driver.get(report.resolve().as_uri())
        load.append(took.wall)
        assert driver.execute_script("return document.body.dataset.ready") == "true", report
        render.append(driver.execute_script("return motifReport.renderedAt") / 1000.0)
    apply_s = driver.execute_script("const t0 = performance.now(); motifReport.apply('zero:concept=#0'); "
                                    "const t1 = performance.now(); motifReport.reset(); return (t1 - t0) / 1000;")
    errors = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    shape = driver.execute_script("return [motifReport.windowLogits().length, motifReport.conceptNames.length, "
                                  "motifReport.classNames.length]")
    return {"report": str(report), "bytes": report.stat().st_size, "mb": round(report.stat().st_size / 1e6, 3),
            "windows": shape[0], "concepts": shape[1], "classes": shape[2],
            "render_s_best": round(min(render), 3), "render_s_median": round(statistics.median(render), 3),
            "load_s_best": round(min(load), 3), "intervention_s": round(apply_s, 3), "console_errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=int, default=450)
    parser.add_argument("--concepts", type=int, default=200)
    parser.add_argument("--classes", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--also", nargs="*", default=[], help="further report.html files to measure")
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as tmp:
        with timed() as build:
            report = synthetic_report(Path(tmp), args.windows, args.concepts, args.classes)
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--window-size=1300,1000", f"--user-data-dir={Path(tmp) / 'profile'}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            results = [{**measure(driver, report, args.repeats), "report": "synthetic", "build_s": round(build.wall, 2)}]
            results += [measure(driver, Path(path), args.repeats) for path in args.also]
        finally:
            driver.quit()
    print(json.dumps({"load_average_1min": round(os.getloadavg()[0], 2), "repeats": args.repeats,
                      "targets": {"mb": 3.0, "render_s": 2.0}, "reports": results}, indent=1))


if __name__ == "__main__":
    main()
