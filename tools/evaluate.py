"""Evaluate a trained run: accuracy, faithfulness of the explanations (top-k vs random removals),
attention and corrective interventions, sparsity, and ground-truth scores where labels exist.

    python tools/evaluate.py --run runs/synthetic [--trials 10] [--device auto] [--no-wandb]

Writes CSV / JSON tables and PNG plots into <run>/evaluation/ (one folder per split when the run
has several, plus summary.json with mean ± std over splits). When the training run logged to wandb,
the results are logged too, to a run of the same group with job_type "evaluate".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from motif.cli import tool_main


def evaluation_wandb_run(run_dir: Path):
    """A wandb run (job_type evaluate, in the training run's group, with its config) when the training run
    used wandb (it has a wandb folder and its mode is not disabled); otherwise None."""
    from motif.config import load_config
    from motif.training.loggers import start_wandb_run

    if not any(run_dir.glob("wandb")) and not any(run_dir.glob("*/wandb")):
        return None
    return start_wandb_run(load_config(run_dir / "config.yaml"), run_dir, f"{run_dir.name}-evaluation", "evaluate")


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory written by tools/train.py")
    parser.add_argument("--out", default=None, help="output folder (default: <run>/evaluation)")
    parser.add_argument("--trials", type=int, default=10, help="random trials per baseline")
    parser.add_argument("--attention-trials", type=int, default=None,
                        help="random trials of the attention interventions (default: --trials; one forward pass each)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--no-attention", action="store_true", help="skip the attention interventions")
    parser.add_argument("--no-wandb", action="store_true",
                        help="do not log to wandb even though the training run did")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    import torch

    from motif.config import load_config
    from motif.evaluation import evaluate_run, format_headline, summarise_splits, write_evaluation
    from motif.evaluation.evaluate import json_safe
    from motif.evaluation.test_sets import load_test_sets
    from motif.logs import configure_logging
    configure_logging()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    run_dir = Path(args.run)
    out_root = Path(args.out) if args.out else run_dir / "evaluation"
    sets = load_test_sets(run_dir)
    threads = load_config(run_dir / "config.yaml").trainer.cpu_threads
    if threads is not None and device == "cpu":   # the run's setting for its bottleneck (a small one: 1)
        torch.set_num_threads(threads)
    wandb_run = None if args.no_wandb else evaluation_wandb_run(run_dir)
    results = {}
    for item in sets:
        ckpt = item.checkpoint
        result = evaluate_run(ckpt.model, item.test, class_names=ckpt.class_names, concept_names=ckpt.concept_names,
                              ground_truth=item.ground_truth, trials=args.trials,
                              attention_trials=args.attention_trials, seed=args.seed, device=device,
                              statistics=(ckpt.standardizer.mean, ckpt.standardizer.std),
                              attention=not args.no_attention)
        out_dir = out_root if len(sets) == 1 else out_root / f"split{item.split}"
        write_evaluation(result, out_dir, wandb_run=wandb_run)
        results[str(item.split)] = result
        print(f"split {item.split}: {out_dir}\n{format_headline(result.headline())}")
    if len(results) > 1:
        summary = summarise_splits(results)
        (out_root / "summary.json").write_text(json.dumps(json_safe(summary), indent=1))
        print("mean ± std over splits:")
        for key, stats in summary["mean_std"].items():
            print(f"  {key}: {stats['mean']:.4f} ± {stats['std']:.4f}")
    if wandb_run is not None:
        wandb_run.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
