"""How much accuracy the world backbone's concept detection costs the evidence bottleneck; prints one JSON.

    python benchmarks/bench_concept_ceiling.py --fresh-world DIR [--seeds 0 1 2] [--kinds backbone truth-frame
        truth-window] [--out runs/ceiling] [key=value ...]

The evidence bottleneck is trained with the demo recipe (configs/synthetic.yaml, overrides apply) on the
demo world's training videos, once per kind of concept evidence, and evaluated on every video of a
fresh world of the same generator (``tools/make_synthetic.py --out DIR --seed 1 --num-videos 640``):

- ``backbone``: the concept scores of the world backbone (what ``make demo`` trains on);
- ``truth-frame``: the world's ground truth at the one frame each window's embedding is computed from
  (its centre frame): perfect detection of exactly what the backbone is shown;
- ``truth-window``: the ground truth over all frames of the window (visible in any of them), which no
  single-frame embedding sees.

Ground-truth evidence is 1 where the concept is visible and 0 elsewhere, standardised with the
training videos' statistics like the backbone's scores. The gap backbone → truth-frame is what the
backbone's detection costs; truth-frame → truth-window what sampling one frame per window costs.
Reported per kind: accuracy (mean ± std over seeds, with the per-seed values) and per-class accuracy;
and ``detection``: the ROC-AUC of the backbone's raw concept scores against the ground truth of the frame
each window is embedded from, over all windows of the fresh world and over the windows of each class's
videos (where the concept is sometimes visible there).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from motif.concepts.activations import ConceptStandardizer
from motif.config import load_config
from motif.logs import configure_logging
from motif.sequences.batching import collate_sequences
from motif.sequences.prepare import prepare_sequences
from motif.stats import roc_auc_per_column
from motif.training.experiment import fit_bottleneck
from motif.world.truth import WorldGroundTruth

REPO = Path(__file__).resolve().parents[1]
KINDS = ("backbone", "truth-frame", "truth-window")
QUIET = ["logger.wandb.mode=disabled", "trainer.progress_bar=false"]

log = logging.getLogger("bench_concept_ceiling")


def world_sequences(world: Path, out: Path, overrides: list[str]):
    """The prepared data of ``world`` (its own splits) with the run config's backbone and concepts."""
    world_cfg = load_config(REPO / "configs" / "synthetic.yaml",
                            [*QUIET, *overrides, f"data.root={world}", f"cache.dir=cache/fresh-{world.name}",
                             f"output_dir={out}", "name=fresh"])
    return prepare_sequences(world_cfg, world_cfg.data.splits[0], out / f"fresh-{world.name}")


def truth_evidence(videos, world: Path, concept_names: list[str], kind: str):
    """Each video with concepts [T, C] = 1 where the world's ground truth shows the concept (at the centre
    frame of the window, or in any of its frames) and 0 elsewhere (not yet standardised)."""
    truth = WorldGroundTruth(world)
    columns = {name: j for j, name in enumerate(truth.concepts)}
    missing = [name for name in concept_names if name not in columns]
    if missing:
        raise SystemExit(f"{world}: the world's ground truth has no concept {missing}")
    out = []
    for video in videos:
        fps = truth.video(video.video_id).fps
        frames = torch.round(video.spans.double() * fps).long()
        starts, ends = frames[:, 0], torch.maximum(frames[:, 1], frames[:, 0] + 1)
        if kind == "truth-frame":
            starts = starts + (ends - starts) // 2
            ends = starts + 1
        visible = torch.from_numpy(truth.window_concepts(video.video_id, starts.tolist(), ends.tolist())).float()
        out.append(replace(video, concepts=visible[:, [columns[name] for name in concept_names]]))
    return out


def standardised(videos, statistics: ConceptStandardizer):
    return [replace(v, concepts=statistics(v.concepts)) for v in videos]


def restandardised(videos, fitted: ConceptStandardizer, statistics: ConceptStandardizer):
    """Videos standardised with ``fitted`` -> standardised with ``statistics``."""
    return [replace(v, concepts=statistics(fitted.inverse(v.concepts))) for v in videos]


def detection_auc(scored, truth, concept_names: list[str], class_names: list[str]) -> dict:
    """ROC-AUC of the raw scores (``scored``: not standardised) against ``truth`` (0/1 concepts of the same
    videos): {"all": {concept: auc}, class name: {concept: auc}} (classes: only concepts both seen and unseen)."""
    scores = torch.cat([v.concepts for v in scored])
    labels = torch.cat([v.concepts for v in truth])
    classes = torch.cat([torch.full((v.num_windows,), v.label) for v in truth])

    def aucs(rows: torch.Tensor) -> dict:
        positives = labels[rows].sum(dim=0)
        keep = (positives > 0) & (positives < int(rows.sum()))
        values = roc_auc_per_column(scores[rows][:, keep], labels[rows][:, keep])
        return {name: round(float(value), 4) for name, value in zip(
            [n for n, k in zip(concept_names, keep.tolist()) if k], values.tolist())}

    report = {"all": aucs(torch.ones_like(classes, dtype=torch.bool))}
    for k, name in enumerate(class_names):
        report[name] = aucs(classes == k)
    return report


def accuracy(model, videos, num_classes: int) -> tuple[float, list[float]]:
    batch = collate_sequences(videos)
    with torch.no_grad():
        predicted = model.eval()(batch.concepts, batch.padding_mask).logits.argmax(dim=-1)
    correct = (predicted == batch.labels).float()
    per_class = [float(correct[batch.labels == k].mean()) for k in range(num_classes)]
    return float(correct.mean()), per_class


def run(kind: str, seed: int, fresh: Path, out: Path, overrides: list[str]) -> dict:
    cfg = load_config(REPO / "configs" / "synthetic.yaml",
                      [*QUIET, f"seed={seed}", f"output_dir={out}", f"name={kind}-seed{seed}", *overrides])
    if kind == "truth-frame" and (cfg.video.frames_per_window != 1 or cfg.video.frame_sampling != "center"):
        raise SystemExit("truth-frame reads the centre frame of each window: it needs video.frames_per_window=1 "
                         "and video.frame_sampling=center")
    run_dir = out / f"{kind}-seed{seed}"
    data = prepare_sequences(cfg, cfg.data.splits[0], run_dir)
    fresh_data = world_sequences(fresh, out, overrides)
    fresh_videos = [*fresh_data.train, *fresh_data.val, *fresh_data.test]
    detection = None
    if kind == "backbone":
        evaluation = restandardised(fresh_videos, fresh_data.standardizer, data.standardizer)
        statistics = fresh_data.standardizer
        raw = [replace(v, concepts=statistics.inverse(v.concepts)) for v in fresh_videos]
        detection = detection_auc(raw, truth_evidence(fresh_videos, fresh, data.concept_names, "truth-frame"),
                                  data.concept_names, data.class_names)
    else:
        world = Path(cfg.data.root)
        raw = {split: truth_evidence(getattr(data, split), world, data.concept_names, kind)
               for split in ("train", "val", "test")}
        statistics = ConceptStandardizer(len(data.concept_names)).fit([v.concepts for v in raw["train"]])
        data = replace(data, standardizer=statistics,
                       **{split: standardised(videos, statistics) for split, videos in raw.items()})
        evaluation = standardised(truth_evidence(fresh_videos, fresh, data.concept_names, kind), statistics)
    module, epochs = fit_bottleneck(cfg, data, run_dir, cfg.model.variant, loggers=[])
    total, per_class = accuracy(module.model, evaluation, len(data.class_names))
    log.info("%s seed %d: %.4f on %d fresh videos (%d epochs)", kind, seed, total, len(evaluation), epochs)
    return {"accuracy": total, "per_class": dict(zip(data.class_names, per_class)), "epochs": epochs,
            "fresh_videos": len(evaluation), "detection": detection}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh-world", type=Path, required=True,
                        help="folder of another world of the same generator (evaluation videos)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--out", type=Path, default=Path("runs/ceiling"), help="folder of the runs")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides for every run")
    args = parser.parse_args(argv)
    if not (args.fresh_world / "ground_truth.json").is_file():
        parser.error(f"--fresh-world {args.fresh_world}: no ground_truth.json there; make it with "
                     f"tools/make_synthetic.py --out {args.fresh_world} --seed 1 --num-videos 640")
    configure_logging()
    report: dict = {"load_average_start": list(os.getloadavg()), "seeds": args.seeds, "overrides": args.overrides,
                    "fresh_world": str(args.fresh_world)}
    for kind in args.kinds:
        rows = [run(kind, seed, args.fresh_world, args.out, args.overrides) for seed in args.seeds]
        values = torch.tensor([r["accuracy"] for r in rows], dtype=torch.float64)
        report[kind] = {"accuracy": {"mean": float(values.mean()),
                                     "std": float(values.std()) if len(rows) > 1 else 0.0,
                                     "values": values.tolist()},
                        "per_class": {name: sum(r["per_class"][name] for r in rows) / len(rows)
                                      for name in rows[0]["per_class"]},
                        "fresh_videos": rows[0]["fresh_videos"], "epochs": [r["epochs"] for r in rows]}
        if rows[0]["detection"] is not None:
            report[kind]["detection"] = rows[0]["detection"]
    report["load_average_end"] = list(os.getloadavg())
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
