"""Extract window embeddings of a dataset into the embedding cache.

    python tools/embed.py --config configs/ucf101.yaml [key=value ...]

Runs the frozen backbone once per video (decode, preprocess, encode, write). Resumable: run it
again after an interruption and only the unfinished videos are redone. With trainer.devices=N trainer.strategy=ddp (and trainer.num_nodes)
the videos are shared among the processes.
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. backbone.batch_size=256")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    from motif.backbone import BackboneError
    from motif.cache import CacheError
    from motif.cache.extraction_job import build_fabric, run_extraction
    from motif.concepts import ConceptBankError
    from motif.config import ConfigError, load_config
    from motif.data import AnnotationError
    from motif.logs import configure_logging
    configure_logging()
    try:
        cfg = load_config(args.config, args.overrides)
        fabric = build_fabric(cfg)
        report = run_extraction(cfg, fabric=fabric, progress=not args.no_progress)
    except (ConfigError, BackboneError, ConceptBankError, AnnotationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (CacheError, OSError) as exc:  # e.g. a full disk; finished videos stay in the cache
        print(f"error: {exc}; run the same command again to embed the remaining videos", file=sys.stderr)
        return 1
    if fabric.is_global_zero:
        print(json.dumps(report.to_dict(), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
