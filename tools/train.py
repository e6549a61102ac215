"""Train and evaluate a temporal concept bottleneck.

    python tools/train.py --config configs/ucf101.yaml [key=value ...] [--resume] [--print-config]
"""

from __future__ import annotations

import argparse
import sys

from motif.cli import add_config_arguments, print_config, tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, "optim.lr=3e-4 trainer.devices=2")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last Lightning checkpoint")
    args = parser.parse_args(argv)
    from motif.config import load_config, run_dir_of

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        return print_config(cfg)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the config is checked: --help stays fast.
    from motif.logs import configure_logging
    from motif.training.experiment import train_and_evaluate
    from motif.training.summary import format_summary

    configure_logging()
    metrics = train_and_evaluate(cfg, resume=args.resume)
    if metrics is not None:
        print(format_summary(metrics, run_dir_of(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
