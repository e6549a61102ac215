"""Explain videos with a trained checkpoint: explanation.json, figures and a self-contained report.html each.

    python tools/explain.py --ckpt runs/ucf101/best.ckpt --video some.mp4 --out report/
        [--class "NAME"] [--intervene "zero:concept=paddle" ...] [--cache DIR]
    python tools/explain.py --ckpt runs/ucf101/best.ckpt --video a.mp4 b.mp4 c.mp4 --out reports/
        (several videos: one process, the checkpoint and backbone loaded once; reports/<file stem>/ each)

Interventions (applied together, shown before / after):
    zero:concept=NAME   zero:window=3   zero:cell=3,NAME   set:cell=3,NAME,0.5   noise:concept=NAME,0.2
    attn:uniform:concept=NAME   (identity | uniform | reverse | shuffle)

With several videos, one that cannot be read is reported and skipped, the others are explained, and the
exit status is 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from motif.cli import tool_main


def output_folders(parser: argparse.ArgumentParser, videos: list[str], out: str) -> list[Path]:
    """``out`` itself for one video; ``out/<file stem>`` for each of several (the stems must differ)."""
    if len(videos) == 1:
        return [Path(out)]
    stems = [Path(video).stem for video in videos]
    repeated = sorted({stem for stem in stems if stems.count(stem) > 1})
    if repeated:
        parser.error(f"--video: several videos share the file stem(s) {', '.join(repeated)}, so their reports "
                     f"would share a folder under {out}; explain them in separate calls")
    return [Path(out) / stem for stem in stems]


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="best.ckpt of a training run")
    parser.add_argument("--video", required=True, nargs="+", help="the video file(s) to explain")
    parser.add_argument("--out", required=True, help="output folder for explanation.json, PNGs and report.html "
                        "(with several videos: one subfolder per video, named by its file stem)")
    parser.add_argument("--class", dest="class_name", default=None, help="explain this class instead of the prediction")
    parser.add_argument("--intervene", action="append", default=[], metavar="SPEC",
                        help="a concept or attention intervention (repeatable), e.g. zero:concept=paddle")
    parser.add_argument("--cache", default=None, help="embedding cache folder to read the videos' embeddings from")
    parser.add_argument("--device", default="auto", help="backbone device: auto, cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    folders = output_folders(parser, args.video, args.out)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    from motif.explain import explain_videos
    from motif.logs import configure_logging
    from motif.plots.colours import signed_term
    configure_logging()
    several = len(args.video) > 1
    skipped = []

    def skip(video, error) -> None:
        print(f"skipped {video}: {error}", file=sys.stderr)
        skipped.append(str(video))

    explained = explain_videos(args.ckpt, args.video, folders, class_name=args.class_name,
                               interventions=args.intervene, cache_dir=args.cache, device=args.device,
                               on_skip=skip if several else None)
    for video, result, paths in explained:
        probability = float(result.probabilities[result.predicted])
        print(f"{f'{video}: ' if several else ''}prediction: {result.class_names[result.predicted]} "
              f"({probability:.1%})")
        e = result.explanation
        print(f"explained class: {result.class_names[result.target]}; logit = Σ G + b + H(π)/τ: {float(e.logit):.4f} = "
              f"{float(e.global_importance.sum()):.4f} {signed_term(float(e.bias), 4)} "
              f"{signed_term(float(e.entropy), 4)}/{e.tau:g} (residual {float(e.residual):.2e})")
        print(f"top concepts: {', '.join(result.concept_names[c] for c in result.top_concepts(5))}")
        print(f"report: {paths['report']}")
    if skipped:
        print(f"{len(skipped)} of {len(args.video)} videos skipped (listed above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
