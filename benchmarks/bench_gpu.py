"""GPU readiness benchmark: the bottleneck's train step, a long video, and embedding extraction.

Prints one JSON object. On a CUDA device (the first one) it measures the published shapes; without
one it runs on the CPU with smaller shapes and says so (``"device": "cpu"``, ``"shapes": "reduced"``):

- train_step: ``MotifModule``'s forward + loss (spec section 4) + backward + clipping + AdamW step +
  W >= 0 projection at B x T x C, K classes; milliseconds (median of --repeats after --warmup) for float32, bfloat16
  autocast of the bottleneck (``model.precision=bf16``) and, with --compile, torch.compile
  (``model.compile=true``; compile seconds reported apart); ``bf16_speedup``;
- long_video: forward + backward of one video of --long-windows windows and --long-concepts concepts,
  float32 and bf16: seconds, forward seconds, peak device memory (CUDA) or peak RSS (CPU) in MiB;
- extraction: windows/s of the whole extraction pipeline (decode + preprocess + encode + write a
  fresh cache) vs the encoder alone on the same frames already in memory (best of --repeats), on
  synthetic clips written to a temporary folder, with an open_clip model at random weights
  (PE-Core-L-14-336 on CUDA in the backbone's automatic precision, ViT-B-32 in float32 on the CPU).

    python benchmarks/bench_gpu.py [--compile] [--skip-extraction]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch
from bench_extract import prepared_frames
from bench_model import make_batch

from motif.backbone import load_backbone
from motif.cache import EmbeddingCache, extract_embeddings
from motif.config import OptimConfig
from motif.data import VideoRecord
from motif.model import TemporalConceptBottleneck
from motif.sequences import SequenceBatch
from motif.training.module import MotifModule
from motif.video import VideoWindowSettings
from motif.video.write import write_video

PUBLISHED = {"batch": 32, "windows": 64, "concepts": 200, "classes": 51, "long_windows": 16384, "long_concepts": 256,
             "backbone": "PE-Core-L-14-336", "clips": 16, "clip_seconds": 10.0}
REDUCED = {"batch": 8, "windows": 32, "concepts": 64, "classes": 10, "long_windows": 2048, "long_concepts": 64,
           "backbone": "ViT-B-32", "clips": 3, "clip_seconds": 4.0}
OPTIM = dataclasses.asdict(OptimConfig())   # the published recipe (configs/_base.yaml)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast(device: torch.device, precision: str):
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()


def peak_memory_mb(device: torch.device) -> float:
    """Peak device memory since the last reset (CUDA), else this process's peak resident memory (MiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2 ** 20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def train_step_ms(shapes: dict, device: torch.device, precision: str, repeats: int, warmup: int,
                  compile: bool = False) -> dict:
    """Milliseconds of one optimiser step of ``MotifModule`` at the given shapes (median of ``repeats``)."""
    torch.manual_seed(0)
    module = MotifModule({"num_concepts": shapes["concepts"], "num_classes": shapes["classes"]}, OPTIM,
                         precision=precision).to(device).train()
    optimizer = module.configure_optimizers()
    x, padding_mask, labels = make_batch(shapes["batch"], shapes["windows"], shapes["concepts"], shapes["classes"])
    batch = module.transfer_batch_to_device(SequenceBatch(x, padding_mask, labels, []), device, 0)
    compile_seconds = None
    if compile:
        start = time.perf_counter()
        module.model.compile()
        module(batch)
        synchronize(device)
        compile_seconds = time.perf_counter() - start

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        module._loss(batch, module(batch))["loss"].backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        module.model.clamp_classifier_()

    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    result = {"median_ms": round(statistics.median(times) * 1e3, 3), "min_ms": round(min(times) * 1e3, 3)}
    if compile_seconds is not None:
        result["compile_seconds"] = round(compile_seconds, 1)
    return result


def long_video(shapes: dict, device: torch.device, precision: str) -> dict:
    """Forward + backward of one video of ``long_windows`` windows (a warm-up at a tenth of the length first)."""
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(shapes["long_concepts"], shapes["classes"]).to(device).train()
    for windows in (max(1, shapes["long_windows"] // 10), shapes["long_windows"]):
        x = torch.randn(1, windows, shapes["long_concepts"], device=device)
        model.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        synchronize(device)
        start = time.perf_counter()
        with autocast(device, precision):
            out = model(x)
        synchronize(device)
        forward = time.perf_counter() - start
        out.logits.float().logsumexp(dim=-1).sum().backward()
        synchronize(device)
        seconds = time.perf_counter() - start
    return {"seconds": round(seconds, 4), "forward_seconds": round(forward, 4),
            "backward_over_forward": round((seconds - forward) / forward, 2),
            "peak_memory_mb": round(peak_memory_mb(device), 1)}


def write_clips(folder: Path, count: int, seconds: float, fps: float = 25.0, size: tuple[int, int] = (240, 320)):
    """``count`` clips of moving noise blocks (libx264), as VideoRecords."""
    generator = np.random.default_rng(0)
    records = []
    for i in range(count):
        base = generator.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
        frames = (np.roll(base, t, axis=1).repeat(8, axis=0).repeat(8, axis=1) for t in range(int(seconds * fps)))
        path = write_video(folder / f"clip{i}.mp4", frames, fps)
        records.append(VideoRecord(path.stem, str(path), 0, "test"))
    return records


def extraction(shapes: dict, device: torch.device, repeats: int, batch_size: int) -> dict:
    logging.disable(logging.WARNING)
    backbone = load_backbone(shapes["backbone"], None, device=device, precision="auto", batch_size=batch_size)
    settings = VideoWindowSettings(window_size=8, frames_per_window=1, frame_sampling="center")
    encoder, pipeline = [], []
    with tempfile.TemporaryDirectory() as root:
        records = write_clips(Path(root), shapes["clips"], shapes["clip_seconds"])
        pixels = prepared_frames(records, backbone, settings)
        backbone.encode_prepared(pixels[:batch_size])          # warm-up
        for repeat in range(repeats):
            synchronize(device)
            start = time.perf_counter()
            backbone.encode_prepared(pixels)
            encoder.append(time.perf_counter() - start)
            cache = EmbeddingCache.for_backbone(Path(root) / f"cache{repeat}", backbone, settings)
            start = time.perf_counter()
            report = extract_embeddings(records, backbone, settings, cache, progress=False)
            pipeline.append(time.perf_counter() - start)
            assert report.windows == len(pixels) and not report.skipped, report
    windows = len(pixels)
    return {"model": f"{shapes['backbone']} (random weights)", "image_size": backbone.image_size,
            "precision": backbone.precision, "batch_size": batch_size, "clips": len(records), "windows": windows,
            "pipeline_windows_per_s": round(windows / min(pipeline), 2),
            "encoder_only_windows_per_s": round(windows / min(encoder), 2),
            "pipeline_over_encoder": round(min(pipeline) / min(encoder), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd train step")
    parser.add_argument("--skip-long", action="store_true")
    parser.add_argument("--skip-extraction", action="store_true")
    parser.add_argument("--extraction-repeats", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=None, help="encoder batch (default 64 on CUDA, 16 on CPU)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda", torch.cuda.current_device()) if cuda else torch.device("cpu")
    shapes = PUBLISHED if cuda else REDUCED
    report: dict = {"device": torch.cuda.get_device_name(device) if cuda else "cpu",
                    "shapes": "published" if cuda else "reduced (no CUDA device)", **shapes,
                    "torch": torch.__version__, "threads": torch.get_num_threads(),
                    "peak_memory": "torch.cuda.max_memory_allocated" if cuda else "peak RSS of this process",
                    "load_average_1min": round(os.getloadavg()[0], 2)}
    steps = {precision: train_step_ms(shapes, device, precision, args.repeats, args.warmup)
             for precision in ("32", "bf16")}
    if args.compile:
        steps["32_compiled"] = train_step_ms(shapes, device, "32", args.repeats, args.warmup, compile=True)
    steps["bf16_speedup"] = round(steps["32"]["median_ms"] / steps["bf16"]["median_ms"], 2)
    report["train_step"] = steps
    if not args.skip_long:
        report["long_video"] = {precision: long_video(shapes, device, precision) for precision in ("32", "bf16")}
    if not args.skip_extraction:
        batch_size = args.batch_size or (64 if cuda else 16)
        report["extraction"] = extraction(shapes, device, args.extraction_repeats, batch_size)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
