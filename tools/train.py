"""Train and evaluate a temporal concept bottleneck.

    python tools/train.py --config configs/ucf101.yaml [key=value ...] [--resume]
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("--resume", action="store_true", help="continue from the run's last Lightning checkpoint")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=3e-4 trainer.devices=2")
    args = parser.parse_args(argv)
    # The heavy stack (torch, Lightning, wandb, open_clip) loads after the arguments: --help stays fast.
    from motif.cache import CacheError
    from motif.concepts import ConceptBankError, NonFiniteActivationsError
    from motif.config import ConfigError, load_config, run_dir_of
    from motif.data import AnnotationError
    from motif.logs import configure_logging
    from motif.training.module import NonFiniteLossError
    from motif.training.resume import ResumeError
    from motif.training.experiment import format_summary, train_and_evaluate

    # Bad input or a full / read-only disk: a one-line error naming the file or key, exit status 1.
    training_errors = (CacheError, ConceptBankError, NonFiniteActivationsError, AnnotationError, NonFiniteLossError,
                       ResumeError, OSError)
    configure_logging()
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        metrics = train_and_evaluate(cfg, resume=args.resume)
    except training_errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if metrics is not None:
        print(format_summary(metrics, run_dir_of(cfg)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
