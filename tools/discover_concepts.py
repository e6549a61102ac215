"""Discover a concept bank for a dataset: propose phrases with a vision-language model, keep those the
backbone detects in the training windows and that separate classes.

    python tools/discover_concepts.py --config configs/ucf101.yaml [key=value ...] [--out DIR] [--print-config]

Writes DIR/bank.yaml ({class: [phrases]}, usable as concepts.bank) and DIR/provenance.json (for
every candidate: the classes and videos that proposed it, its scores, why it was kept or dropped).
The settings are the discovery.* keys of the config (motif/config.py); e.g. discovery.mode=select
scores the phrases of discovery.vocabulary on the cached training windows without any model server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from motif.cli import add_config_arguments, print_config, tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_arguments(parser, "discovery.endpoint=http://host:8000/v1")
    parser.add_argument("--out", help="output folder (default: <output_dir>/<name>/discovery)")
    args = parser.parse_args(argv)
    from motif.config import load_config, run_dir_of

    cfg = load_config(args.config, args.overrides)
    if args.print_config:
        return print_config(cfg)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the config is checked: --help stays fast.
    from motif.discovery.pipeline import BANK_FILE, PROVENANCE_FILE, discover
    from motif.logs import configure_logging

    configure_logging()
    out = Path(args.out) if args.out else run_dir_of(cfg) / "discovery"
    provenance = discover(cfg, out)
    print(f"Kept {len(provenance['kept'])} concepts: {out / BANK_FILE} (why: {out / PROVENANCE_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
