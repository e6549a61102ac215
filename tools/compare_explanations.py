"""Explain the same test video with several trained runs, side by side, against the world's ground truth.

    python tools/compare_explanations.py --runs runs/a runs/b --video VIDEO_ID --out docs/compare.png

One row per run: the global importance G of every concept for the predicted class (a concept's views
summed), bars of concepts that are never visible in the video drawn hatched and grey; and the
concepts' activations over time (sum over views) with the windows where the ground truth shows each
concept outlined. The runs must share the test set and have ground truth (``data.ground_truth``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from motif.cli import tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run directories written by tools/train.py")
    parser.add_argument("--video", required=True, help="a test video: its id or file stem")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import torch

    from motif.plots.figures import save_figure
    from motif.errors import MotifError
    from motif.evaluation.test_sets import RunDirectoryError, load_test_set
    from motif.model import explain, fold_views
    rows = []
    for run in args.runs:
        item = load_test_set(run)
        if item.ground_truth is None:
            raise RunDirectoryError("the run has no ground truth", where=Path(run) / "config.yaml",
                                    hint="set data.ground_truth to the world's ground_truth.json and train again")
        ids = [v.video_id for v in item.test]
        matches = [i for i, video_id in enumerate(ids) if args.video in (video_id, Path(video_id).stem)]
        if not matches:
            raise MotifError(f"{args.video!r} is not a test video of {run}", where="--video",
                             hint=f"e.g. {', '.join(ids[:3])}")
        index = matches[0]
        model, names = item.checkpoint.model, item.checkpoint.concept_names
        with torch.no_grad():
            out = model(item.test[index].concepts[None].float())
            explanation = explain(model, out)
        rows.append({"run": run, "model": model.variant_spec.display_name, "names": names,
                     "classes": item.checkpoint.class_names,
                     "predicted": int(explanation.class_index[0]), "label": item.test[index].label,
                     "G": fold_views(explanation.global_importance[0], len(names)).numpy(),
                     "z": fold_views(out.concepts[0], len(names)).numpy(),
                     "truth": item.ground_truth.window_concepts[index].numpy(),
                     "spans": item.test[index].spans.numpy()})
    fig, axes = plt.subplots(len(rows), 2, figsize=(13, 3.6 * len(rows)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1.6]})
    for (bar_ax, time_ax), row in zip(axes, rows):
        present = row["truth"].any(axis=0)
        order = row["G"].argsort()[::-1]
        total = abs(row["G"]).sum()
        absent_share = abs(row["G"])[~present].sum() / total if total > 0 else 0.0
        bars = bar_ax.barh(range(len(order)), row["G"][order],
                           color=["#4c78a8" if present[c] else "#bab0ac" for c in order])
        for bar, c in zip(bars, order):
            if not present[c]:
                bar.set_hatch("//")
        bar_ax.set_yticks(range(len(order)), [row["names"][c] + ("" if present[c] else "  (absent)") for c in order])
        bar_ax.invert_yaxis()
        bar_ax.set_xlabel("global importance G (views summed)")
        bar_ax.set_title(f"{row['model']}\npredicted "
                         f"'{row['classes'][row['predicted']]}'; absent concepts hold {absent_share:.0%} of Σ|G|",
                         fontsize=10)
        spans = row["spans"]
        edges = list(spans[:, 0]) + [spans[-1, 1]]
        image = time_ax.pcolormesh(edges, range(len(row["names"]) + 1), row["z"].T, cmap="Blues", shading="flat")
        for c in range(len(row["names"])):
            for t in range(len(spans)):
                if row["truth"][t, c]:
                    time_ax.add_patch(plt.Rectangle((spans[t, 0], c), spans[t, 1] - spans[t, 0], 1, fill=False,
                                                    edgecolor="#e45756", linewidth=1.2))
        time_ax.set_yticks([c + 0.5 for c in range(len(row["names"]))], row["names"])
        time_ax.invert_yaxis()
        time_ax.set_xlabel("time (s)")
        time_ax.set_title("activation z over time (views summed); red boxes: visible (ground truth)", fontsize=10)
        fig.colorbar(image, ax=time_ax, fraction=0.03)
    fig.suptitle(f"test video {args.video} (true class '{rows[0]['classes'][rows[0]['label']]}')", fontsize=12)
    fig.tight_layout()
    print(save_figure(fig, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
