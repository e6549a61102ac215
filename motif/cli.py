"""What the command-line tools in ``tools/`` share: how a run ends, and the config arguments.

``@tool_main`` wraps a tool's ``main(argv) -> int``. A user mistake (:class:`motif.errors.MotifError`)
prints one ``error: ...`` paragraph naming the file or key at fault and what to do, exit status 2;
Ctrl-C prints one line, exit status 130; any other exception is a bug and keeps its traceback, exit
status 1. A tool that reads a run config takes ``--config FILE``, ``key=value`` overrides and
``--print-config`` (the resolved YAML, then exit 0).

This module imports neither torch nor the config stack: tools parse their arguments before loading the
heavy stack, so ``--help`` stays fast (benchmarks/bench_startup.py).
"""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from typing import Callable, Optional, Sequence

from motif.errors import MotifError

EXIT_BUG = 1
EXIT_USER_MISTAKE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it

ToolMain = Callable[[Optional[Sequence[str]]], Optional[int]]


def tool_main(main: ToolMain) -> Callable[[Optional[Sequence[str]]], int]:
    """Decorate a tool's ``main(argv)``: the wrapped function returns the exit status (``main``'s, 0 for
    None) instead of raising, printing a MotifError as one ``error:`` paragraph (status 2), an interrupt
    as one line (status 130) and anything else with its traceback (status 1). ``SystemExit`` (argparse's
    ``--help`` and usage errors) passes through."""

    @functools.wraps(main)
    def run(argv: Optional[Sequence[str]] = None) -> int:
        try:
            return main(argv) or 0
        except MotifError as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USER_MISTAKE
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception:  # noqa: BLE001 - a bug: show where it happened
            traceback.print_exc()
            return EXIT_BUG

    return run


def add_config_arguments(parser: argparse.ArgumentParser, override_example: str) -> None:
    """``--config FILE``, ``--print-config`` and the positional ``key=value`` overrides."""
    parser.add_argument("--config", required=True, help="YAML config (see configs/)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (every key: defaults, the file, the overrides; checked) "
                             "as YAML and exit")
    parser.add_argument("overrides", nargs="*", help=f"key=value overrides, e.g. {override_example}")


def print_config(cfg) -> int:
    """Print a loaded run config as YAML (what the run would save as its config.yaml); returns exit status 0."""
    from omegaconf import OmegaConf

    print(OmegaConf.to_yaml(cfg, resolve=True), end="")
    return 0
