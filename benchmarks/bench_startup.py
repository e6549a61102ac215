"""Start-up time of the command-line tools: ``tools/X.py --help`` against ``import torch``.

    python benchmarks/bench_startup.py [--repeats 5]

Prints one JSON object: per tool the median wall seconds of ``--help`` over interleaved repeats, the
same for ``python -c "import torch"`` as the reference, each tool's ratio to it, and the load average.
Target: every tool's ``--help`` under 1 s (the heavy stack is imported only after the arguments).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from meters import timed

REPO = Path(__file__).resolve().parents[1]


def _seconds(command: list[str]) -> float:
    with timed() as took:
        subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return took.wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    commands = {"import torch": [sys.executable, "-c", "import torch"],
                "import motif": [sys.executable, "-c", "import motif"]}
    commands.update({tool.name: [sys.executable, str(tool), "--help"] for tool in sorted((REPO / "tools").glob("*.py"))})
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):  # interleaved: every command once per round
        for name, command in commands.items():
            times[name].append(_seconds(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians["import torch"]
    print(json.dumps({
        "median_seconds": medians,
        "ratio_to_import_torch": {name: value / reference for name, value in medians.items()},
        "tools_over_1s": sorted(name for name, value in medians.items() if name.endswith(".py") and value > 1.0),
        "repeats": args.repeats,
        "load_average": os.getloadavg(),
    }, indent=1))


if __name__ == "__main__":
    main()
