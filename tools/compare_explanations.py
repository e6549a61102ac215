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

from motif.cli import tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, help="run directories written by tools/train.py")
    parser.add_argument("--video", required=True, help="a test video: its id or file stem")
    parser.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    # The heavy stack (torch, matplotlib) loads after the arguments: --help stays fast.
    from motif.evaluation.comparison import comparison_figure, explain_runs_on_video
    from motif.plots.figures import save_figure

    explanations = explain_runs_on_video(args.runs, args.video)
    print(save_figure(comparison_figure(explanations, args.video), args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
