"""Benchmark of the temporal concept bottleneck: fast vs explicit attention, and one long video.

Prints one JSON object:
- speedup_vs_explicit: train-step time (forward + loss + backward of the whole model) with the
  explicit [B, C, T, T] attention divided by the fast path's, same weights and batch, interleaved
  runs, best of --repeats (``_median``: the same with medians; ``_cpu_time``: with process CPU
  time, which is less disturbed by other load on the machine);
- speedup_vs_reference: the same against the previous fast block, kept here as a reference
  (``reference_block_forward``: LayerNorm with its affine, Q, K, V of width d from one broadcast
  addcmul, scaled_dot_product_attention of width d, then the FFN on the normalised input);
- max_abs_diff / max_abs_grad_diff: largest difference of outputs / parameter gradients between the
  fast path and each of the other two;
- long_video: forward + backward of one video of --long-windows windows on CPU (dropout masks as in
  training), with the fast block (its attention takes ``motif.model.binned_attention`` at this length)
  and with the reference block, each run in a fresh process: seconds and peak_rss_mb (peak resident
  memory of that process, including the PyTorch runtime, whose own footprint before the video is
  reported as baseline_rss_mb), and ``speedup_vs_reference``.

Quick run: python benchmarks/bench_model.py --repeats 2 --long-windows 2048
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import types

import torch
import torch.nn.functional as F
from einops import rearrange
from meters import peak_rss_mb, timed

from motif.model import ConceptTemporalBlock, TemporalConceptBottleneck, fast_attention
from motif.model.dropout import dropout_keys, sample_keys


def make_batch(batch: int, windows: int, concepts: int, classes: int, seed: int = 0):
    """Random standardised concepts [B, T, C], a padding mask with lengths in [T/2, T] and labels."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, windows, concepts, generator=generator)
    lengths = torch.randint(max(1, windows // 2), windows + 1, (batch,), generator=generator)
    lengths[0] = windows
    padding_mask = torch.arange(windows)[None, :] >= lengths[:, None]
    labels = torch.randint(0, classes, (batch,), generator=generator)
    return x, padding_mask, labels


def reference_block_forward(block: ConceptTemporalBlock, x, padding_mask, key_valid, **_):
    """The previous fast path of a MoTIF layer (the reference the folded block is measured against)."""
    attention = block.attention
    y = rearrange(block.norm_attention(x), "b t c -> b c t 1").contiguous()
    ones = torch.ones_like(attention.logit_scale)
    scale = rearrange(torch.stack([attention.score_scale(), ones, ones]), "n c -> n c 1")
    weight = rearrange(attention.qkv_weight * scale, "n c d -> n 1 c 1 d")
    bias = rearrange(attention.qkv_bias * scale, "n c d -> n 1 c 1 d")
    query, key, value = torch.addcmul(bias, y, weight).unbind(0)
    out = fast_attention(query, key, value, key_valid)
    out = out.squeeze(-1) if attention.head_dim == 1 else out.mean(dim=-1)
    x = x + block.dropout(rearrange(out, "b c t -> b t c"))
    return x + block.dropout(block.ffn(block.norm_ffn(x))), None


def with_reference_blocks(model: TemporalConceptBottleneck) -> TemporalConceptBottleneck:
    """``model`` (in place) with every MoTIF layer running ``reference_block_forward``."""
    for layer in model.encoder.layers:
        layer.forward = types.MethodType(reference_block_forward, layer)
    return model


def train_step(model: TemporalConceptBottleneck, x, padding_mask, labels) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) for one forward + loss + backward, with per-video dropout masks as
    in training (``dropout_keys``)."""
    model.zero_grad(set_to_none=True)
    keys = sample_keys([f"video {i}" for i in range(x.shape[0])], 0)
    with timed() as took, dropout_keys(model, keys):
        out = model(x, padding_mask)
        F.cross_entropy(out.logits, labels).backward()
    return took.wall, took.cpu


def make_model(args, impl: str = "fast", reference: bool = False) -> TemporalConceptBottleneck:
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(args.concepts, args.classes, num_layers=args.layers, head_dim=args.head_dim,
                                      attention_impl=impl)
    with torch.no_grad():   # away from the initial point (LayerNorm affines, logit scales)
        for name, parameter in model.named_parameters():
            if name.endswith(("norm_attention.weight", "norm_ffn.weight", "logit_scale")):
                parameter.uniform_(0.5, 1.5)
    return with_reference_blocks(model) if reference else model


def compare_paths(args) -> dict:
    models = {"fast": make_model(args), "explicit": make_model(args, "explicit"),
              "reference": make_model(args, reference=True)}
    x, padding_mask, labels = make_batch(args.batch, args.windows, args.concepts, args.classes)

    outputs, grads = {}, {}
    for name, model in models.items():
        model.eval()
        out = model(x, padding_mask)
        outputs[name] = (out.logits, out.window_logits, out.concepts)
        model.zero_grad()
        F.cross_entropy(model(x, padding_mask).logits, labels).backward()
        grads[name] = [p.grad for p in model.parameters()]
    report = {}
    for other in ("explicit", "reference"):
        report[f"max_abs_diff_{other}"] = max((a - b).abs().max().item()
                                              for a, b in zip(outputs["fast"], outputs[other]))
        report[f"max_abs_grad_diff_{other}"] = max((p - q).abs().max().item()
                                                   for p, q in zip(grads["fast"], grads[other]))

    for model in models.values():
        model.train()
    for _ in range(args.warmup):
        for model in models.values():
            train_step(model, x, padding_mask, labels)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in models}
    for _ in range(args.repeats):
        for name, model in models.items():
            runs[name].append(train_step(model, x, padding_mask, labels))
    wall = {name: [w for w, _ in times] for name, times in runs.items()}
    cpu = {name: [c for _, c in times] for name, times in runs.items()}
    for other in ("explicit", "reference"):
        report[f"speedup_vs_{other}"] = round(min(wall[other]) / min(wall["fast"]), 2)
        report[f"speedup_vs_{other}_median"] = round(statistics.median(wall[other])
                                                      / statistics.median(wall["fast"]), 2)
        report[f"speedup_vs_{other}_cpu_time"] = round(min(cpu[other]) / min(cpu["fast"]), 2)
    report["train_step_ms"] = {name: {"min": round(min(times) * 1e3, 2),
                                      "median": round(statistics.median(times) * 1e3, 2),
                                      "cpu_min": round(min(cpu[name]) * 1e3, 2)} for name, times in wall.items()}
    return report


def long_video_child(args) -> None:
    """Runs in a fresh process: one long video forward + backward; prints JSON."""
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(args.long_concepts, args.classes, num_layers=args.layers,
                                      head_dim=args.head_dim).train()
    if args.long_block == "reference":
        with_reference_blocks(model)
    x = torch.randn(1, args.long_windows, args.long_concepts)
    baseline_mb = peak_rss_mb()
    with timed() as total, dropout_keys(model, sample_keys(["long video"], 0)):   # masks as in training
        with timed() as forward:
            out = model(x)
        out.logits.logsumexp(dim=-1).sum().backward()
    print(json.dumps({"windows": args.long_windows, "concepts": args.long_concepts, "seconds": round(total.wall, 2),
                      "forward_seconds": round(forward.wall, 2),
                      "peak_rss_mb": round(peak_rss_mb(), 1),
                      "baseline_rss_mb": round(baseline_mb, 1)}))


def long_video(args, block: str) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--long-child", "--long-windows", str(args.long_windows),
               "--long-concepts", str(args.long_concepts), "--classes", str(args.classes),
               "--layers", str(args.layers), "--head-dim", str(args.head_dim), "--long-block", block]
    if args.threads:
        command += ["--threads", str(args.threads)]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def long_videos(args) -> dict:
    """Fast block, reference block, fast block again: the fast block's numbers are the mean of its two runs,
    which bracket the reference run in time (drift in the machine's load affects both sides alike)."""
    first, reference, again = (long_video(args, block) for block in ("fast", "reference", "fast"))
    fast = {key: round((first[key] + again[key]) / 2, 2) if isinstance(first[key], float) else first[key]
            for key in first}
    return {**fast, "fast_runs_seconds": [first["seconds"], again["seconds"]], "reference": reference,
            "speedup_vs_reference": round(reference["seconds"] / fast["seconds"], 2)}


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
    parser.add_argument("--long-block", choices=("fast", "reference"), default="fast", help=argparse.SUPPRESS)
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
        report["long_video"] = long_videos(args)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
