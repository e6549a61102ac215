"""Embedding extraction throughput: end-to-end pipeline vs the encoder alone, and a cached rerun.

    python benchmarks/bench_extract.py [--videos DIR] [--repeats 3]

On the sample clips (open_clip ViT-B-32 with random weights, 224 px, CPU, window 8, one frame per
window) it measures windows per second of the whole pipeline (decode + preprocess + encode + write
to a fresh cache) and of the encoder alone on the same prepared frames already in memory, in
interleaved repeats (best of each), and the time of a second run over the complete cache.
Wall-clock numbers are only meaningful on an otherwise idle machine (``load_average_1min`` is
reported); the ``*_cpu_*`` fields use the process's CPU time, which other processes do not inflate.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
from pathlib import Path

import torch
from meters import timed

from motif.backbone import load_backbone
from motif.cache import EmbeddingCache, extract_embeddings, iter_video_embeddings
from motif.data import VideoRecord
from motif.video import open_video
from motif.video.settings import VideoWindowSettings

DEFAULT_VIDEOS = Path(__file__).resolve().parents[1].parent / "shared" / "videos"


def prepared_frames(records: list[VideoRecord], backbone, settings: VideoWindowSettings) -> torch.Tensor:
    """The pipeline's encoder input for these videos, uint8 [N, 3, 224, 224], decoded beforehand."""
    chunks = []
    for record in records:
        with open_video(record.path, settings.backend) as probe:
            meta = probe.meta
        size = backbone.decode_size(meta.height, meta.width)
        with open_video(record.path, settings.backend, resize=size) as source:
            plan = settings.plan(source.meta.num_frames, source.meta.fps, record.video_id)
            for chunk in source.iter_windows(plan, settings.chunk_windows):
                chunks.append(backbone.prepare_frames(chunk.frames))
    return torch.cat(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=DEFAULT_VIDEOS, help="folder of .mp4 clips")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch intra-op threads")
    parser.add_argument("--decode-threads", type=int, default=None,
                        help="decoding threads (default: 0 on CPU, i.e. decode between encoder batches)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    records = [VideoRecord(p.stem, str(p), 0, "test") for p in sorted(args.videos.glob("*.mp4"))]
    if not records:
        raise SystemExit(f"no .mp4 clips in {args.videos}; pass --videos")
    backbone = load_backbone("ViT-B-32", None, device="cpu", precision="fp32", batch_size=args.batch_size)
    settings = VideoWindowSettings(window_size=8, frames_per_window=1, frame_sampling="center")

    pixels = prepared_frames(records, backbone, settings)
    windows = len(pixels)
    backbone.encode_prepared(pixels[: args.batch_size])  # warm-up
    assert sum(len(v.embeddings) for v in iter_video_embeddings(records, backbone, settings)) == windows

    encoder_times, pipeline_times, rerun_times, encoder_cpu, pipeline_cpu = [], [], [], [], []
    with tempfile.TemporaryDirectory() as root:
        for repeat in range(args.repeats):
            with timed() as encoder:
                backbone.encode_prepared(pixels)
            encoder_times.append(encoder.wall)
            encoder_cpu.append(encoder.cpu)

            cache_root = Path(root) / f"run{repeat}"
            with timed() as pipeline:
                cache = EmbeddingCache.for_backbone(cache_root, backbone, settings)
                report = extract_embeddings(records, backbone, settings, cache, decode_threads=args.decode_threads,
                                            progress=False)
            pipeline_times.append(pipeline.wall)
            pipeline_cpu.append(pipeline.cpu)
            assert report.windows == windows and not report.skipped

            with timed() as again:
                cache = EmbeddingCache.for_backbone(cache_root, backbone, settings)
                rerun = extract_embeddings(records, backbone, settings, cache, progress=False)
            rerun_times.append(again.wall)
            assert rerun.already_cached == len(records) and rerun.embedded == 0

    encoder_fps = windows / min(encoder_times)
    pipeline_fps = windows / min(pipeline_times)
    first_run = statistics.median(pipeline_times)
    rerun = statistics.median(rerun_times)
    print(json.dumps({
        "videos": len(records),
        "windows": windows,
        "model": "ViT-B-32 (random weights)",
        "image_size": backbone.image_size,
        "device": "cpu",
        "threads": args.threads,
        "batch_size": args.batch_size,
        "decode_threads": args.decode_threads if args.decode_threads is not None else 0,
        "repeats": args.repeats,
        "pipeline_fps": round(pipeline_fps, 3),
        "encoder_only_fps": round(encoder_fps, 3),
        "overhead_ratio": round(encoder_fps / pipeline_fps, 4),
        "first_run_seconds": round(first_run, 4),
        "cached_rerun_seconds": round(rerun, 5),
        "cached_rerun_fraction": round(rerun / first_run, 5),
        "encoder_cpu_seconds": round(min(encoder_cpu), 4),
        "pipeline_cpu_seconds": round(min(pipeline_cpu), 4),
        "overhead_ratio_cpu": round(min(pipeline_cpu) / min(encoder_cpu), 4),
        "pipeline_seconds_all": [round(t, 4) for t in pipeline_times],
        "encoder_seconds_all": [round(t, 4) for t in encoder_times],
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
