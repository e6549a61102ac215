"""Extract window embeddings of a dataset into the embedding cache.

    python tools/embed.py --config configs/ucf101.yaml [key=value ...] [--print-config]

Runs the frozen backbone once per video (decode, preprocess, encode, write). Resumable: run it
again after an interruption and only the unfinished videos are redone. With trainer.devices=N trainer.strategy=ddp (and trainer.num_nodes)
the videos are shared among the processes.
"""

from __future__ import annotations

import argparse
import json
import sys

from motif.cli import add_config_arguments, print_config, tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, "backbone.batch_size=256")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    from motif.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        return print_config(cfg)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the config is checked: --help stays fast.
    from motif.cache.extraction_job import build_fabric, run_extraction
    from motif.logs import configure_logging

    configure_logging()
    fabric = build_fabric(cfg)
    report = run_extraction(cfg, fabric=fabric, progress=not args.no_progress)
    if fabric.is_global_zero:
        print(json.dumps(report.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
