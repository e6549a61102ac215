"""Print what a run achieved and where its outputs are.

    python tools/summarize.py --run runs/synthetic
"""

from __future__ import annotations

import argparse
import sys

from motif.cli import tool_main


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run directory written by tools/train.py")
    args = parser.parse_args(argv)
    from motif.training.summary import summarize_run  # JSON files only: no torch, no Lightning
    print(summarize_run(args.run))
    return 0


if __name__ == "__main__":
    sys.exit(main())
