"""Do the explanations mean what they say? Every bottleneck variant, several seeds, two tasks; prints one JSON.

    python benchmarks/bench_meaning.py [--seeds 0 1 2] [--variants motif full space_time evidence]
        [--tasks world relative] [--measure-on test|val] [--out runs/meaning] [key=value ...]

Tasks:
- ``world``: the demo world (configs/synthetic.yaml; generate it first with tools/make_synthetic.py,
  random event placement) with its per-frame ground truth: test accuracy, the share of Σ|G| on
  concepts absent from the video, the rate of an absent concept in the top 3 of G, recovery (all
  class-defining concepts in the top 3), localisation and its chance level, the identical-windows and
  zero-evidence probes (see ``motif.evaluation.meaning``).
- ``relative``: the relative-order task (configs/synthetic_order_relative.yaml): test accuracy, the
  accuracy on time-shuffled test videos, and beside the models the absolute-position rule (the best
  threshold on one event's relative position) and the relative-order oracle.

``--measure-on val`` reports the world's numbers on the validation videos instead of the test videos
(accuracy: the validation accuracy of the selected checkpoint; the meaning metrics against the world's
ground truth of the validation videos, written to meaning-val.json): choose recipes on these, and read
the test set once for the chosen one.

``--measure-on fresh --fresh-world DIR`` measures them on every video of another world drawn from the
same generator (``tools/make_synthetic.py --out DIR --seed 1 --num-videos 640``: no video of it was
seen in training or in choosing a recipe), embedded like the run's own videos and standardised with
the checkpoint's statistics (meaning-fresh-<folder name>.json). With 64 test videos one video is 1.6 points of
accuracy; 640 fresh videos bring the binomial standard error from about 3 points to 1.

Each run trains with tools/train.py's code into ``<out>/<task>-<variant>-seed<k>`` (extra ``key=value``
overrides apply to every run, e.g. ``optim.max_epochs=100``). A run whose metrics.json exists is not
trained again, and its evaluation (meaning.json) is reused (unless it lacks a metric), so an
interrupted benchmark resumes where it stopped. The seed changes the model's initialisation and batch
order; the data stay the same.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from dataclasses import replace
from pathlib import Path

import torch

from motif.config import load_config
from motif.evaluation import evaluate_run
from motif.evaluation.evaluate import json_safe
from motif.evaluation.test_sets import ground_truth_from_world, load_test_set
from motif.logs import configure_logging
from motif.model.variants import MODEL_VARIANTS
from motif.sequences.prepare import prepare_sequences
from motif.training.experiment import train_and_evaluate
from motif.world.order_task import make_order_task, order_oracle_accuracy, position_rule_accuracy

REPO = Path(__file__).resolve().parents[1]
CONFIGS = {"world": REPO / "configs" / "synthetic.yaml", "relative": REPO / "configs" / "synthetic_order_relative.yaml"}
WORLD_KEYS = ("accuracy", "absent_importance_share", "absent_in_top3_rate", "absent_in_top3_rate_above_1pct",
              "recovery_all", "localisation",
              "localisation_chance", "identical_windows_max_deviation", "zero_evidence_max_z_ratio")
QUIET = ["baselines.zero_shot=false", "baselines.linear_probe=false", "baselines.mean_cbm=false",
         "baselines.full_attention=false", "baselines.time_shuffle=true", "logger.wandb.mode=disabled",
         "trainer.progress_bar=false"]

log = logging.getLogger("bench_meaning")


def evaluation_videos(run_dir: Path, subset: str):
    """(checkpoint, videos, ground truth) of a run's test or validation videos."""
    item = load_test_set(run_dir)
    if subset == "test":
        return item.checkpoint, item.test, item.ground_truth
    cfg = load_config(run_dir / "config.yaml")
    videos = prepare_sequences(cfg, item.split, item.split_dir).val
    truth_path = Path(cfg.data.ground_truth)
    root = truth_path if truth_path.is_absolute() else Path(cfg.data.root) / truth_path
    ckpt = item.checkpoint
    return ckpt, videos, ground_truth_from_world(root, videos, ckpt.class_names, ckpt.concept_names)


def fresh_world_videos(run_dir: Path, world: Path):
    """(checkpoint, videos, ground truth) of every video of another world of the same generator, embedded with
    the run's backbone and standardised with the checkpoint's training statistics."""
    checkpoint = load_test_set(run_dir).checkpoint
    cfg = load_config(run_dir / "config.yaml", [f"data.root={world}", f"cache.dir=cache/fresh-{world.name}"])
    data = prepare_sequences(cfg, cfg.data.splits[0], run_dir / f"fresh-{world.name}")
    if list(data.concept_names) != list(checkpoint.concept_names):
        raise SystemExit(f"{world}: its concepts differ from the checkpoint's; was it made with another bank?")
    fitted, own = data.standardizer, checkpoint.standardizer
    videos = [replace(video, concepts=own(fitted.inverse(video.concepts)))
              for video in (*data.train, *data.val, *data.test)]
    truth_path = Path(cfg.data.ground_truth)
    truth = ground_truth_from_world(truth_path if truth_path.is_absolute() else world / truth_path, videos,
                                    checkpoint.class_names, checkpoint.concept_names)
    return checkpoint, videos, truth


def run_one(task: str, variant: str, seed: int, out: Path, overrides: list[str], subset: str = "test",
            fresh_world: Path | None = None) -> dict:
    """Train (unless done) and evaluate one run on its ``subset`` ("test", "val" or "fresh": every video of
    ``fresh_world``) videos; returns its numbers."""
    name = f"{task}-{variant}-seed{seed}"
    cfg = load_config(CONFIGS[task], [f"name={name}", f"output_dir={out}", f"seed={seed}", f"model.variant={variant}",
                                      *QUIET, *overrides])
    run_dir = out / name
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        log.info("training %s", name)
        train_and_evaluate(cfg)
    metrics = json.loads(metrics_file.read_text())
    measured = "test" if subset == "fresh" and task != "world" else subset
    row = {"accuracy": metrics.get(f"{measured}_acc", math.nan),
           "shuffled_accuracy": metrics.get(f"shuffled_{measured}_acc", math.nan), "epochs": metrics["epochs"]}
    if task != "world":
        return row
    meaning_file = run_dir / {"test": "meaning.json", "val": "meaning-val.json",
                              "fresh": f"meaning-fresh-{fresh_world.name if fresh_world else ''}.json"}[subset]
    if not meaning_file.is_file() or not set(WORLD_KEYS) <= set(json.loads(meaning_file.read_text())):
        if subset == "fresh":
            ckpt, videos, truth = fresh_world_videos(run_dir, fresh_world)
        else:
            ckpt, videos, truth = evaluation_videos(run_dir, subset)
        result = evaluate_run(ckpt.model, videos, class_names=ckpt.class_names, concept_names=ckpt.concept_names,
                              ground_truth=truth, ks=(1,), trials=1, attention=False,
                              statistics=(ckpt.standardizer.mean, ckpt.standardizer.std))
        truth = result.ground_truth
        meaning_file.write_text(json.dumps(json_safe({**result.headline(), "flagged": truth[
            "concepts_not_following_evidence"], "absent_in_top3_rate_above_1pct": truth[
            "absent_in_top3_rate_above_1pct"]}), indent=1))
    meaning = json.loads(meaning_file.read_text())
    if subset == "fresh":
        row["accuracy"] = meaning["accuracy"]
    return {**row, **{key: meaning[key] for key in WORLD_KEYS if key != "accuracy"},
            "flagged_concepts": len(meaning["flagged"])}


def summarise(rows: list[dict]) -> dict:
    """{metric: {mean, std, values}} over seeds (sample std; None where a value is missing)."""
    out = {}
    for key in rows[0]:
        values = [r[key] for r in rows]
        numbers = torch.tensor([math.nan if v is None else float(v) for v in values], dtype=torch.float64)
        out[key] = {"mean": float(numbers.mean()), "std": float(numbers.std()) if len(values) > 1 else 0.0,
                    "values": values}
    return out


def rules(overrides: list[str]) -> dict:
    """The absolute-position rules and the relative-order oracle on the relative-order task's split."""
    cfg = load_config(CONFIGS["relative"], overrides)
    s = cfg.data.synthetic
    task = make_order_task(s.variant, num_videos=s.num_videos, feature_dim=s.feature_dim, num_concepts=s.num_concepts,
                           min_windows=s.min_windows, max_windows=s.max_windows, test_fraction=s.test_fraction,
                           seed=s.seed)
    return {"position_rule_event_A": position_rule_accuracy(task, "event A"),
            "position_rule_event_B": position_rule_accuracy(task, "event B"),
            "order_oracle": order_oracle_accuracy(task)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=list(MODEL_VARIANTS), choices=list(MODEL_VARIANTS))
    parser.add_argument("--tasks", nargs="+", default=["world", "relative"], choices=sorted(CONFIGS))
    parser.add_argument("--measure-on", choices=("test", "val", "fresh"), default="test",
                        help="which videos the world's numbers are measured on")
    parser.add_argument("--fresh-world", type=Path, default=None,
                        help="with --measure-on fresh: the folder of another world of the same generator")
    parser.add_argument("--out", default="runs/meaning", help="folder of the runs")
    parser.add_argument("overrides", nargs="*", help="key=value config overrides for every run")
    args = parser.parse_args(argv)
    if (args.measure_on == "fresh") != (args.fresh_world is not None):
        parser.error("--measure-on fresh and --fresh-world DIR go together")
    if args.fresh_world is not None and not (args.fresh_world / "classes.txt").is_file():
        parser.error(f"--fresh-world {args.fresh_world}: no classes.txt there; make it with tools/make_synthetic.py "
                     f"--out {args.fresh_world} --seed 1")
    configure_logging()
    out = Path(args.out)
    report: dict = {"load_average_start": list(os.getloadavg()), "seeds": args.seeds, "overrides": args.overrides,
                    "measured_on": args.measure_on if args.fresh_world is None else f"fresh: {args.fresh_world}"}
    for task in args.tasks:
        report[task] = {variant: summarise([run_one(task, variant, seed, out, args.overrides, args.measure_on,
                                                    args.fresh_world) for seed in args.seeds])
                        for variant in args.variants}
    if "relative" in args.tasks:
        report["relative_rules"] = rules([o for o in args.overrides if o.startswith("data.")])
    report["load_average_end"] = list(os.getloadavg())
    print(json.dumps(json_safe(report), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
