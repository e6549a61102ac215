"""What a finished run achieved, as text: the accuracy table of the model and its baselines, the
evaluation headline and where the outputs are. Reads JSON files only (no Lightning, no torch), so that
``tools/summarize.py`` starts fast."""

from __future__ import annotations

import json
from pathlib import Path

from motif.errors import RunDirectoryError
from motif.model.variants import MODEL_VARIANTS


def format_summary(metrics: dict, run_dir: Path) -> str:
    """A short text table of the model and its baselines."""
    def pct(value) -> str:
        return f"{100 * value:6.1f}" if isinstance(value, (int, float)) else "     -"

    def std(tree: dict, key: str) -> str:
        return f" ± {100 * tree[key + '_std']:.1f}" if key + "_std" in tree else ""

    lines = [f"run directory: {run_dir}", f"{'method':<28}{'test acc %':>12}"]
    variant = metrics.get("variant", "motif")
    model = MODEL_VARIANTS[variant].display_name if variant in MODEL_VARIANTS else variant
    lines.append(f"{model:<28}{pct(metrics.get('test_acc'))}{std(metrics, 'test_acc')}")
    if "shuffled_test_acc" in metrics:
        lines.append(f"{model + ', windows shuffled':<28}{pct(metrics['shuffled_test_acc'])}"
                     f"{std(metrics, 'shuffled_test_acc')}")
    for name, tree in metrics.get("baselines", {}).items():
        if "skipped" in tree:
            lines.append(f"{name:<28}{'skipped':>12}  ({tree['skipped']})")
        else:
            lines.append(f"{name:<28}{pct(tree.get('test_acc'))}{std(tree, 'test_acc')}")
    return "\n".join(lines)


SUMMARY_SCORES = ("concept_auc_mean", "localisation", "localisation_chance", "recovery_all", "recovery_any",
                  "absent_importance_share", "absent_in_top3_rate", "identical_windows_max_deviation",
                  "zero_evidence_max_z_ratio",
                  "remove_concepts_k5_prob_drop_top", "remove_concepts_k5_prob_drop_random", "repair_rate_4_edits")


def summarize_run(run_dir: str | Path) -> str:
    """The accuracy table of a finished run, its evaluation headline (if ``tools/evaluate.py`` ran) and
    where its reports, logs and checkpoint are."""
    run_dir = Path(run_dir)
    metrics_file = run_dir / "metrics.json"
    if not metrics_file.is_file():
        raise RunDirectoryError(f"{metrics_file} does not exist", where=metrics_file,
                                hint="pass a run directory of tools/train.py, or train first")
    lines = [format_summary(json.loads(metrics_file.read_text()), run_dir)]
    headline = run_dir / "evaluation" / "headline.json"
    if headline.is_file():
        lines.append("\nevaluation (" + str(headline.parent) + "):")
        scores = json.loads(headline.read_text())
        lines += [f"  {key:<40}" + (f"{scores[key]:.3f}" if isinstance(scores[key], (int, float)) else "n/a")
                  for key in SUMMARY_SCORES if key in scores]
    reports = sorted(run_dir.glob("explanations/*/report.html"))
    if reports:
        lines.append("\nexplanation reports:")
        lines += [f"  {path}" for path in reports]
    wandb_runs = sorted((run_dir / "wandb").glob("offline-run-*"))
    if wandb_runs:
        lines.append(f"\nwandb offline runs (train, baselines, evaluation; upload with: wandb sync "
                     f"{run_dir / 'wandb' / 'offline-run-*'}):")
        lines += [f"  {path}" for path in wandb_runs]
    lines.append(f"checkpoint: {run_dir / 'best.ckpt'}")
    return "\n".join(lines)
