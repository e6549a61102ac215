"""Generate the synthetic video world (videos, class list, split files, concept bank, ground truth).

    python tools/make_synthetic.py --out data/synthetic --seed 0 --num-videos 320 [--placement random|fixed]
        [--min-seconds 6 --max-seconds 12]   (e.g. 20 and 40 for a longer-video world)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from motif.cli import tool_main
from motif.world.config import CODECS, PLACEMENTS, WorldConfig


@tool_main
def main(argv: list[str] | None = None) -> int:
    defaults = WorldConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="folder to write the world into")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--num-videos", type=int, default=defaults.num_videos,
                        help="total videos, spread evenly over the classes")
    parser.add_argument("--size", type=int, default=defaults.size, help="frame side in pixels")
    parser.add_argument("--fps", type=float, default=defaults.fps)
    parser.add_argument("--min-seconds", type=int, default=defaults.min_seconds)
    parser.add_argument("--max-seconds", type=int, default=defaults.max_seconds)
    parser.add_argument("--max-distractors", type=int, default=defaults.max_distractors)
    parser.add_argument("--codec", default=defaults.codec, choices=CODECS)
    parser.add_argument("--val-fraction", type=float, default=defaults.val_fraction)
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction)
    parser.add_argument("--placement", default=defaults.placement, choices=PLACEMENTS,
                        help="random: each event at a random place, length and gap (absolute time does not tell a "
                             "class from its mirror); fixed: first event always in the first half")
    parser.add_argument("--workers", type=int, default=2, help="rendering processes")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = WorldConfig(num_videos=args.num_videos, seed=args.seed, size=args.size, fps=args.fps,
                         min_seconds=args.min_seconds, max_seconds=args.max_seconds,
                         max_distractors=args.max_distractors, codec=args.codec,
                         val_fraction=args.val_fraction, test_fraction=args.test_fraction, placement=args.placement)
    config.validate()
    from motif.world.generate import generate_world

    started = time.time()
    world_file = generate_world(args.out, config, workers=args.workers)
    world = json.loads(Path(world_file).read_text())
    logging.info("wrote %s: %d videos (%s) in %.1f s", world_file, config.num_videos,
                 ", ".join(f"{k} {v}" for k, v in world["counts"].items()), time.time() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
