"""Benchmark of the attention-intervention evaluation: chosen concepts only vs explicit maps of all concepts.

Prints one JSON object:
- new.seconds / new.cpu_seconds: ``attention_interventions`` (4 kinds x k in {1, 3, 5} x top-k and
  --trials random selections) on --videos random videos of --concepts concepts;
- old vs new on the first --reference-videos videos, interleaved (new, old, new, ...; best of
  --repeats): ``speedup`` (wall) and ``speedup_cpu_time``. "old" is the previous implementation, kept
  here as a reference: every selection is one forward pass that writes out the [B, C, T, T] maps of
  ALL concepts, replaces the maps of every concept and keeps those of the chosen ones, with a Python
  loop over the videos for the key permutation;
- max_abs_row_diff: the largest difference of accuracy / agreement / prob_drop between old and new
  for the kinds identity, uniform and reverse (same selections; "shuffle" draws its permutations
  differently, so its rows agree only in distribution).

Quick run: python benchmarks/bench_evaluate.py --videos 100 --reference-videos 20 --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch import Tensor

from motif.evaluation.faithfulness import (
    ATTENTION_KS,
    EvalChunk,
    _Tally,
    attention_interventions,
    attention_selections,
    prepare_chunks,
)
from motif.model import AttentionIntervention, Explanation, TemporalConceptBottleneck

KINDS = ("identity", "uniform", "reverse", "shuffle")


def make_task(videos: int, concepts: int, classes: int, min_windows: int, max_windows: int, seed: int = 0):
    """A random model away from its initial point and random standardised videos X [T_i, C] with labels."""
    torch.manual_seed(seed)
    model = TemporalConceptBottleneck(concepts, classes).eval()
    with torch.no_grad():
        model.encoder.layers[0].attention.logit_scale.uniform_(-1.0, 1.0)
        model.encoder.concept_head.shift.uniform_(-1.0, 1.0)
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_windows, max_windows + 1, (videos,), generator=generator).tolist()
    sequences = [torch.randn(t, concepts, generator=generator) for t in lengths]
    labels = torch.randint(0, classes, (videos,), generator=generator).tolist()
    return model, sequences, labels


# --- the previous implementation (reference) ----------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ReferenceKeyPermutation(AttentionIntervention):
    """The previous key permutation: a Python loop over the videos on the host. Run on the explicit path,
    ``apply`` writes out replacement maps for ALL concepts and keeps those of the selected ones, as before."""

    def key_permutation(self, key_valid: Tensor) -> Tensor:
        batch, num_windows = key_valid.shape
        permutation = torch.arange(num_windows).repeat(batch, 1)
        generator = torch.Generator().manual_seed(self.seed)
        for b, valid in enumerate(key_valid.cpu()):
            positions = valid.nonzero().squeeze(1)
            if self.kind == "reverse":
                permutation[b, positions] = positions.flip(0)
            else:
                permutation[b, positions] = positions[torch.randperm(len(positions), generator=generator)]
        return permutation.to(key_valid.device)


def _reference_sub_batches(chunk: EvalChunk, model: TemporalConceptBottleneck, budget: int) -> Iterator[slice]:
    b, t, c = chunk.x.shape
    size = max(1, budget // max(c * t * t * max(model.num_attention_maps, 1), 1))
    for start in range(0, b, size):
        yield slice(start, min(start + size, b))


def _reference_sub_chunk(chunk: EvalChunk, part: slice) -> EvalChunk:
    e = chunk.explanation
    sub_e = Explanation(**{name: getattr(e, name)[part] for name in (
        "class_index", "relevance", "window_scores", "window_importance", "global_importance", "bias", "entropy",
        "logit")}, tau=e.tau)
    return EvalChunk(positions=chunk.positions[part], x=chunk.x[part], padding_mask=chunk.padding_mask[part],
                     labels=chunk.labels[part], z=chunk.z[part], logits=chunk.logits[part], explanation=sub_e)


@torch.no_grad()
def reference_attention_interventions(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk], *,
                                      ks: Sequence[int] = ATTENTION_KS, trials: int = 10, seed: int = 0,
                                      budget: int = 2 ** 25) -> list[dict]:
    """The previous loop (selections drawn as the new code draws them, so that rows compare)."""
    explicit = copy.deepcopy(model)
    explicit.attention_impl = "explicit"
    rows = []
    for kind in KINDS:
        for k in ks:
            top, random = _Tally(1), _Tally(trials)
            for i, chunk in enumerate(chunks):
                selections = attention_selections(chunk, model.num_concepts, k, trials=trials, seed=seed,
                                                  chunk_index=i)
                for part in _reference_sub_batches(chunk, model, budget):
                    sub = _reference_sub_chunk(chunk, part)
                    logits = torch.stack([
                        explicit(sub.x, sub.padding_mask, attention_intervention=ReferenceKeyPermutation(
                            kind=kind, seed=seed + j, selection=selection[part])).logits
                        for j, selection in enumerate(selections)])
                    top.add(sub, logits[:1])
                    random.add(sub, logits[1:])
            for ranking, tally in (("top", top), ("random", random)):
                rows.append({"kind": kind, "k": k, "ranking": ranking, **tally.row()})
    return rows


# --- measurement --------------------------------------------------------------------------------------------


def timed(function, *args, **kwargs) -> tuple[list[dict], float, float]:
    start, start_cpu = time.perf_counter(), time.process_time()
    rows = function(*args, **kwargs)
    return rows, time.perf_counter() - start, time.process_time() - start_cpu


def max_row_diff(new: list[dict], old: list[dict]) -> float:
    diffs = [abs(a[name] - b[name]) for a, b in zip(new, old) if a["kind"] != "shuffle"
             for name in ("accuracy", "agreement", "prob_drop", "accuracy_std", "agreement_std", "prob_drop_std")]
    return max(diffs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=500)
    parser.add_argument("--reference-videos", type=int, default=100, help="videos for the old vs new comparison")
    parser.add_argument("--concepts", type=int, default=200)
    parser.add_argument("--classes", type=int, default=51)
    parser.add_argument("--min-windows", type=int, default=16)
    parser.add_argument("--max-windows", type=int, default=64)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads (default: PyTorch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    model, sequences, labels = make_task(args.videos, args.concepts, args.classes, args.min_windows, args.max_windows)
    report: dict = {"config": {**vars(args), "threads": torch.get_num_threads(), "torch": torch.__version__,
                               "device": "cpu"}}

    chunks = prepare_chunks(model, sequences, labels)
    rows, seconds, cpu_seconds = timed(attention_interventions, model, chunks, trials=args.trials)
    report["new"] = {"videos": args.videos, "rows": len(rows), "seconds": round(seconds, 2),
                     "cpu_seconds": round(cpu_seconds, 2)}

    subset = args.reference_videos
    chunks = prepare_chunks(model, sequences[:subset], labels[:subset])
    runs: dict[str, list[tuple[float, float]]] = {"new": [], "old": []}
    for _ in range(args.repeats):
        new_rows, *new_time = timed(attention_interventions, model, chunks, trials=args.trials)
        old_rows, *old_time = timed(reference_attention_interventions, model, chunks, trials=args.trials)
        runs["new"].append(tuple(new_time))
        runs["old"].append(tuple(old_time))
    best = {name: (min(w for w, _ in times), min(c for _, c in times)) for name, times in runs.items()}
    report["old_vs_new"] = {
        "videos": subset,
        "old_seconds": round(best["old"][0], 2), "new_seconds": round(best["new"][0], 2),
        "speedup": round(best["old"][0] / best["new"][0], 1),
        "speedup_cpu_time": round(best["old"][1] / best["new"][1], 1),
        "max_abs_row_diff": max_row_diff(new_rows, old_rows)}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
