"""Discover a concept bank for a dataset: propose phrases with a vision-language model, keep those the
backbone detects in the training windows and that separate classes.

    python tools/discover_concepts.py --config configs/ucf101.yaml [key=value ...] [--out DIR]

Writes DIR/bank.yaml ({class: [phrases]}, usable as concepts.bank) and DIR/provenance.json (for
every candidate: the classes and videos that proposed it, its scores, why it was kept or dropped).
The settings are the discovery.* keys of the config (motif/config.py); e.g. discovery.mode=select
scores the phrases of discovery.vocabulary on the cached training windows without any model server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("--out", help="output folder (default: <output_dir>/<name>/discovery)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. discovery.endpoint=http://host:8000/v1")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    from motif.backbone import BackboneError
    from motif.concepts import ConceptBankError
    from motif.config import ConfigError, load_config, run_dir_of
    from motif.data import AnnotationError
    from motif.discovery.pipeline import BANK_FILE, PROVENANCE_FILE, DiscoveryError, discover
    from motif.logs import configure_logging
    configure_logging()
    try:
        cfg = load_config(args.config, args.overrides)
        out = Path(args.out) if args.out else run_dir_of(cfg) / "discovery"
        provenance = discover(cfg, out)
    except (ConfigError, BackboneError, ConceptBankError, AnnotationError, DiscoveryError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"Kept {len(provenance['kept'])} concepts: {out / BANK_FILE} (why: {out / PROVENANCE_FILE})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
