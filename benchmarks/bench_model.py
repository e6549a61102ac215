"""Benchmark of the temporal concept bottleneck: fast vs explicit attention, and one long video.

Prints one JSON object:
- speedup_vs_explicit: train-step time (forward + loss + backward of the whole model) with the
  explicit [B, C, T, T] attention divided by the fast path's, same weights and batch, interleaved
  runs, best of --repeats (``_median``: the same with medians; ``_cpu_time``: with process CPU
  time, which is less disturbed by other load on the machine);
- max_abs_diff / max_abs_grad_diff: largest difference of outputs / parameter gradients between the paths;
- long_video: forward + backward of one video of --long-windows windows on CPU, run in a fresh
  process: seconds and peak_rss_mb (peak resident memory of that process, including the PyTorch
  runtime, whose own footprint before the video is reported as baseline_rss_mb).

Quick run: python benchmarks/bench_model.py --repeats 2 --long-windows 2048
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import torch
import torch.nn.functional as F
from meters import peak_rss_mb, timed

from motif.model import TemporalConceptBottleneck


def make_batch(batch: int, windows: int, concepts: int, classes: int, seed: int = 0):
    """Random standardised concepts [B, T, C], a padding mask with lengths in [T/2, T] and labels."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, windows, concepts, generator=generator)
    lengths = torch.randint(max(1, windows // 2), windows + 1, (batch,), generator=generator)
    lengths[0] = windows
    padding_mask = torch.arange(windows)[None, :] >= lengths[:, None]
    labels = torch.randint(0, classes, (batch,), generator=generator)
    return x, padding_mask, labels


def train_step(model: TemporalConceptBottleneck, x, padding_mask, labels) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for one forward + loss + backward."""
    model.zero_grad(set_to_none=True)
    with timed() as took:
        out = model(x, padding_mask)
        F.cross_entropy(out.logits, labels).backward()
    return took.wall, took.cpu


def compare_paths(args) -> dict:
    torch.manual_seed(0)
    fast = TemporalConceptBottleneck(args.concepts, args.classes, num_layers=args.layers, head_dim=args.head_dim,
                                     attention_impl="fast")
    explicit = TemporalConceptBottleneck(args.concepts, args.classes, num_layers=args.layers,
                                         head_dim=args.head_dim, attention_impl="explicit")
    explicit.load_state_dict(fast.state_dict())
    x, padding_mask, labels = make_batch(args.batch, args.windows, args.concepts, args.classes)

    fast.eval(), explicit.eval()
    out_fast, out_explicit = fast(x, padding_mask), explicit(x, padding_mask)
    max_abs_diff = max((a - b).abs().max().item() for a, b in [
        (out_fast.logits, out_explicit.logits), (out_fast.window_logits, out_explicit.window_logits),
        (out_fast.concepts, out_explicit.concepts)])
    for model in (fast, explicit):
        model.zero_grad()
        F.cross_entropy(model(x, padding_mask).logits, labels).backward()
    max_abs_grad_diff = max((p.grad - q.grad).abs().max().item()
                            for p, q in zip(fast.parameters(), explicit.parameters()))

    fast.train(), explicit.train()
    for _ in range(args.warmup):
        train_step(fast, x, padding_mask, labels), train_step(explicit, x, padding_mask, labels)
    fast_runs, explicit_runs = [], []
    for _ in range(args.repeats):
        fast_runs.append(train_step(fast, x, padding_mask, labels))
        explicit_runs.append(train_step(explicit, x, padding_mask, labels))
    wall = {"fast": [w for w, _ in fast_runs], "explicit": [w for w, _ in explicit_runs]}
    cpu = {"fast": [c for _, c in fast_runs], "explicit": [c for _, c in explicit_runs]}
    summary = {name: {"min": round(min(times) * 1e3, 2), "median": round(statistics.median(times) * 1e3, 2),
                      "cpu_min": round(min(cpu[name]) * 1e3, 2)} for name, times in wall.items()}
    return {"speedup_vs_explicit": round(min(wall["explicit"]) / min(wall["fast"]), 2),
            "speedup_vs_explicit_median": round(statistics.median(wall["explicit"])
                                                / statistics.median(wall["fast"]), 2),
            "speedup_vs_explicit_cpu_time": round(min(cpu["explicit"]) / min(cpu["fast"]), 2),
            "train_step_ms": summary,
            "max_abs_diff": max_abs_diff, "max_abs_grad_diff": max_abs_grad_diff}


def long_video_child(args) -> None:
    """Runs in a fresh process: one long video forward + backward; prints JSON."""
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(args.long_concepts, args.classes, num_layers=args.layers,
                                      head_dim=args.head_dim).train()
    x = torch.randn(1, args.long_windows, args.long_concepts)
    baseline_mb = peak_rss_mb()
    with timed() as total:
        with timed() as forward:
            out = model(x)
        out.logits.logsumexp(dim=-1).sum().backward()
    print(json.dumps({"windows": args.long_windows, "concepts": args.long_concepts, "seconds": round(total.wall, 2),
                      "forward_seconds": round(forward.wall, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1),
                      "baseline_rss_mb": round(baseline_mb, 1)}))


def long_video(args) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--long-child", "--long-windows", str(args.long_windows),
               "--long-concepts", str(args.long_concepts), "--classes", str(args.classes),
               "--layers", str(args.layers), "--head-dim", str(args.head_dim)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--windows", type=int, default=64)
    parser.add_argument("--concepts", type=int, default=200)
    parser.add_argument("--classes", type=int, default=51)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--head-dim", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--long-windows", type=int, default=16384)
    parser.add_argument("--long-concepts", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: PyTorch's choice)")
    parser.add_argument("--skip-long", action="store_true", help="skip the long-video run")
    parser.add_argument("--long-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.long_child:
        long_video_child(args)
        return
    report = {"config": {"batch": args.batch, "windows": args.windows, "concepts": args.concepts,
                         "classes": args.classes, "layers": args.layers, "head_dim": args.head_dim,
                         "threads": torch.get_num_threads(), "torch": torch.__version__, "device": "cpu"}}
    report.update(compare_paths(args))
    if not args.skip_long:
        report["long_video"] = long_video(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
