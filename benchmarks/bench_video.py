"""Benchmark the streaming video reader; prints one JSON object.

Generates synthetic 320x240, 30 fps MPEG-4 videos of 1 and 10 minutes (10 s and 100 s with
``--quick``) in a temporary folder, then measures, each in a fresh subprocess:

- ``decode_fps``: frames delivered per second by ``VideoSource.iter_windows`` for window 8 with one
  frame per window (``window8_1frame``) and for every frame (``all_frames``), per backend;
- ``peak_rss_mb_1min`` / ``peak_rss_mb_10min`` (peak resident memory of the process, default
  reader: backend "auto", window 8, one frame per window) and ``rss_ratio_10_to_1``;
  ``baseline_rss_mb`` is the process after importing torch and the reader, before any video;
- ``naive``: decoding every frame into one array, as the original research code does, compared
  with the reader on the long video (``rss_ratio`` and ``time_ratio`` = naive / reader).

Timings depend on how busy the machine is: ``machine.load_average_1min`` is recorded at the start
and the end of the run.

Usage: ``python benchmarks/bench_video.py [--quick]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from meters import peak_rss_mb, timed

WIDTH, HEIGHT, FPS = 320, 240, 30


def generate(path: Path, seconds: float) -> float:
    """A moving colour pattern with a grid, MPEG-4 at 1 Mbit/s; returns the time it took."""
    from motif.video import write_video

    with timed() as took:
        columns = np.arange(2 * WIDTH)
        base = np.zeros((HEIGHT, 2 * WIDTH, 3), dtype=np.uint8)
        base[:, :, 0] = (columns * 255 // (2 * WIDTH))[None, :]
        base[:, :, 1] = (np.arange(HEIGHT) * 255 // HEIGHT)[:, None]
        base[::16, :, 2] = 255
        base[:, ::16, 2] = 255
        frames = (base[:, (3 * index) % WIDTH:(3 * index) % WIDTH + WIDTH] for index in range(int(seconds * FPS)))
        write_video(path, frames, FPS, "mpeg4", bit_rate=1_000_000)
    return took.wall


def measure(path: str, backend: str, mode: str) -> dict:
    """Runs inside a fresh process: read one video one way, report time and memory."""
    import torch  # noqa: F401  (part of the baseline, as in any real run)

    from motif.video import WindowPlan, open_video

    if backend in ("auto", "decord", "naive"):
        import decord  # noqa: F401
    baseline = peak_rss_mb()
    with timed() as took:
        if backend == "naive":
            import decord

            reader = decord.VideoReader(path, num_threads=1)
            video = reader.get_batch(list(range(len(reader)))).asnumpy()  # [N, H, W, 3], all in RAM
            frames = video.shape[0] if mode == "all_frames" else len(range(4, video.shape[0], 8))
        else:
            source = open_video(path, backend=backend)
            meta = source.meta
            sampling = "all" if mode == "all_frames" else "center"
            plan = WindowPlan.build(meta.num_frames, meta.fps, window_size=8, frames_per_window=1, sampling=sampling)
            frames = sum(chunk.frames.shape[0] for chunk in source.iter_windows(plan, chunk_windows=16))
    seconds = took.wall
    return {"frames": frames, "seconds": seconds, "fps": frames / seconds, "peak_rss_mb": peak_rss_mb(),
            "baseline_rss_mb": baseline}


def run_measure(path: Path, backend: str, mode: str) -> dict:
    command = [sys.executable, __file__, "--measure", str(path), backend, mode]
    result = subprocess.run(command, check=True, capture_output=True, text=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 s and 100 s videos instead of 1 and 10 min")
    parser.add_argument("--measure", nargs=3, metavar=("PATH", "BACKEND", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(*args.measure)))
        return

    short_s, long_s = (10, 100) if args.quick else (60, 600)
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        short, long = Path(folder) / "short.mp4", Path(folder) / "long.mp4"
        generation = {"short": generate(short, short_s), "long": generate(long, long_s)}
        runs: dict[str, dict] = {}
        for backend in ("decord", "pyav"):
            for mode in ("window8_1frame", "all_frames"):
                for name, path in (("short", short), ("long", long)):
                    runs[f"{backend}/{mode}/{name}"] = run_measure(path, backend, mode)
        for name, path in (("short", short), ("long", long)):
            runs[f"auto/window8_1frame/{name}"] = run_measure(path, "auto", "window8_1frame")
            runs[f"naive/window8_1frame/{name}"] = run_measure(path, "naive", "window8_1frame")
        sizes_mb = {"short": short.stat().st_size / 2**20, "long": long.stat().st_size / 2**20}

    def peak(key: str) -> float:
        return round(runs[key]["peak_rss_mb"], 1)

    reader_short, reader_long = runs["auto/window8_1frame/short"], runs["auto/window8_1frame/long"]
    naive_long = runs["naive/window8_1frame/long"]
    result = {
        "video": {"width": WIDTH, "height": HEIGHT, "fps": FPS, "codec": "mpeg4", "bit_rate": 1_000_000,
                  "seconds": [short_s, long_s], "file_mb": {k: round(v, 1) for k, v in sizes_mb.items()},
                  "generate_seconds": {k: round(v, 1) for k, v in generation.items()}, "quick": args.quick},
        "machine": {"cpu_count": os.cpu_count(), "load_average_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)]},
        "decode_fps": {backend: {mode: round(runs[f"{backend}/{mode}/long"]["fps"], 1)
                                 for mode in ("window8_1frame", "all_frames")} for backend in ("decord", "pyav")},
        "peak_rss_mb_1min": peak("auto/window8_1frame/short"),
        "peak_rss_mb_10min": peak("auto/window8_1frame/long"),
        "rss_ratio_10_to_1": round(reader_long["peak_rss_mb"] / reader_short["peak_rss_mb"], 3),
        "baseline_rss_mb": round(reader_short["baseline_rss_mb"], 1),
        "rss_above_baseline_mb": {key: round(run["peak_rss_mb"] - run["baseline_rss_mb"], 1)
                                  for key, run in runs.items()},
        "peak_rss_mb": {key: peak(key) for key in runs},
        "naive": {
            "peak_rss_mb_1min": peak("naive/window8_1frame/short"),
            "peak_rss_mb_10min": peak("naive/window8_1frame/long"),
            "seconds_10min": round(naive_long["seconds"], 2),
            "reader_seconds_10min": round(reader_long["seconds"], 2),
            "rss_ratio": round(naive_long["peak_rss_mb"] / reader_long["peak_rss_mb"], 2),
            "time_ratio": round(naive_long["seconds"] / reader_long["seconds"], 2),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
