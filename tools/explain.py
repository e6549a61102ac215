"""Explain one video with a trained checkpoint: explanation.json, figures and a self-contained report.html.

    python tools/explain.py --ckpt runs/ucf101/best.ckpt --video some.mp4 --out report/
        [--class "NAME"] [--intervene "zero:concept=paddle" ...] [--cache DIR]

Interventions (applied together, shown before / after):
    zero:concept=NAME   zero:window=3   zero:cell=3,NAME   set:cell=3,NAME,0.5   noise:concept=NAME,0.2
    attn:uniform:concept=NAME   (identity | uniform | reverse | shuffle)
"""

from __future__ import annotations

import argparse
import sys

from motif.cli import tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", required=True, help="best.ckpt of a training run")
    parser.add_argument("--video", required=True, help="the video file to explain")
    parser.add_argument("--out", required=True, help="output folder for explanation.json, PNGs and report.html")
    parser.add_argument("--class", dest="class_name", default=None, help="explain this class instead of the prediction")
    parser.add_argument("--intervene", action="append", default=[], metavar="SPEC",
                        help="a concept or attention intervention (repeatable), e.g. zero:concept=paddle")
    parser.add_argument("--cache", default=None, help="embedding cache folder to read the video's embeddings from")
    parser.add_argument("--device", default="auto", help="backbone device: auto, cpu, cuda, cuda:1, ...")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    from motif.explain import explain_video
    from motif.logs import configure_logging
    from motif.plots.colours import signed_term
    configure_logging()
    result, paths = explain_video(args.ckpt, args.video, args.out, class_name=args.class_name,
                                  interventions=args.intervene, cache_dir=args.cache, device=args.device)
    probability = float(result.probabilities[result.predicted])
    print(f"prediction: {result.class_names[result.predicted]} ({probability:.1%})")
    e = result.explanation
    print(f"explained class: {result.class_names[result.target]}; logit = Σ G + b + H(π)/τ: {float(e.logit):.4f} = "
          f"{float(e.global_importance.sum()):.4f} {signed_term(float(e.bias), 4)} {signed_term(float(e.entropy), 4)}"
          f"/{e.tau:g} (residual {float(e.residual):.2e})")
    top = ", ".join(result.concept_names[c] for c in result.top_concepts(5))
    print(f"top concepts: {top}")
    print(f"report: {paths['report']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
