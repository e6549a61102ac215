"""Train the small vision-language backbone of the synthetic world ("motif-world-vit").

    python tools/train_world_backbone.py --out data/backbones/motif-world-vit.safetensors

The loss, the left/right and small/large fine-tuning options and the recipe of the shipped weights are described in
motif/world/backbone_training.py. Writes the fp16 weights and a JSON report next to them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path

from motif.cli import tool_main
from motif.world.config import BackboneTrainingConfig

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data" / "backbones" / "motif-world-vit.safetensors"
HELP = {
    "seed": "training world seed (eval uses seed + 1)",
    "captions": "composed captions per step",
    "workers": "rendering processes",
    "threads": "torch threads",
    "init": "start from these weights (fine-tuning)",
    "side_oversample": "fraction of each batch drawn from frames with exactly one side occupied",
    "side_captions": "'<object> <side>' captions per step (half are opposite-side hard negatives)",
    "side_pair_weight": "weight of the left-vs-right softmax loss on one-side frames",
    "size_oversample": "fraction of each batch drawn from frames with a small shape and no large one",
    "size_pair_weight": "weight of the small-vs-large softmax loss on frames with exactly one of the two",
}


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="weights file (.safetensors) to write")
    for key, default in asdict(BackboneTrainingConfig()).items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=str if default is None else type(default),
                            default=default, help=f"{HELP.get(key, '')} (default: %(default)s)".lstrip())
    args = vars(parser.parse_args(argv))
    out = args.pop("out")
    config = BackboneTrainingConfig(**args)
    config.validate()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from motif.world.backbone_training import train_world_backbone

    report = train_world_backbone(out, config)
    print(json.dumps({k: report[k] for k in ("mean_concept_auc", "mean_concept_auc_template_a_video_of",
                                             "max_concept_text_cosine", "training_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
