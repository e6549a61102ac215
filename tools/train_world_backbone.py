"""Train the small vision-language backbone of the synthetic world ("motif-world-vit").

The model is an ordinary open_clip CLIP whose config lives in motif/backbone/model_configs. It is
trained from scratch on frames of freshly drawn world videos (a different seed from any demo world;
half class videos, half random scenes), passed through the same video codec, with a sigmoid
(SigLIP-style) multi-label loss: every concept phrase visible in a frame is a positive for it, and
captions composed of several visible concepts are positives for every frame that shows all of
them. Frames are preprocessed exactly as at embedding time: resize to the model's image size,
normalise with the model's mean and std.

The weights are written as fp16 safetensors that open_clip loads with
``open_clip.create_model_and_transforms("motif-world-vit", pretrained=<file>)``, next to a JSON
file with the training settings and the concept-detection ROC-AUC on held-out frames (raw cosine
between frame and concept-phrase embeddings).

    python tools/train_world_backbone.py --out data/backbones/motif-world-vit.safetensors

Left/right fine-tuning. Trained from scratch, "on the left side" and "on the right side" partly
fire on any object near either edge. ``--init`` starts from existing weights, and three options
sharpen the sides: ``--side-oversample`` draws that fraction of each batch from frames where exactly
one side is occupied (balanced between the two sides, half of them with the class object "green
triangle"), ``--side-captions`` adds captions that pair a visible object with its side ("green
triangle on the left side"; the same object with the opposite side is the matching hard negative),
and ``--side-pair-weight`` adds a two-way softmax loss between the two side phrases on those
frames (the opposite side is an explicit hard negative). The shipped weights are the from-scratch
run above, fine-tuned with

    python tools/train_world_backbone.py --init base.safetensors --seed 2000 --steps 300 \
        --lr 2e-4 --warmup 20 --train-videos 600 --eval-videos 120 --eval-every 100 \
        --side-oversample 0.5 --side-captions 24 --side-pair-weight 1.0 --threads 2

where ``base.safetensors`` (with its ``base.json``) is the from-scratch run (``--seed 1000``, all
other options at their defaults), as committed in e3e4d32:

    git show e3e4d32:data/backbones/motif-world-vit.safetensors > base.safetensors
    git show e3e4d32:data/backbones/motif-world-vit.json > base.json

The JSON of a fine-tuned run records the SHA-256 and the report of the weights it started from.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import sys
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from safetensors.torch import load_file

from motif.cli import tool_main
from motif.data.synthetic import LEFT_SIDE, OBJECTS, RIGHT_SIDE, WORLD_CONCEPTS, render_labelled_frames, roc_auc

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_CONFIGS = REPO_ROOT / "motif" / "backbone" / "model_configs"
MODEL_NAME = "motif-world-vit"
TEMPLATES = ("{}", "a {}", "a frame with {}", "a video of {}", "a picture showing {}")
RESIZE_MODES = (("bilinear", True), ("bicubic", True), ("area", False), ("bilinear", False))

logger = logging.getLogger("train_world_backbone")


def preprocess(frames: torch.Tensor, size: int, mean: torch.Tensor, std: torch.Tensor,
               mode: str = "bilinear", antialias: bool = True) -> torch.Tensor:
    """uint8 [N, H, W, 3] -> normalised float [N, 3, size, size]."""
    x = frames.permute(0, 3, 1, 2).float() / 255.0
    if mode == "area":
        x = F.interpolate(x, size=(size, size), mode="area")
    else:
        x = F.interpolate(x, size=(size, size), mode=mode, antialias=antialias, align_corners=False)
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def compose_captions(labels: np.ndarray, rng: np.random.Generator, count: int) -> tuple[list[str], np.ndarray]:
    """Captions of 2-3 concepts visible in random frames, and their concept sets [count, C] bool."""
    captions, sets = [], np.zeros((count, labels.shape[1]), dtype=bool)
    rows = rng.integers(0, labels.shape[0], size=count)
    for k, row in enumerate(rows):
        visible = np.flatnonzero(labels[row])
        if visible.size == 0:
            visible = rng.integers(0, labels.shape[1], size=1)
        chosen = rng.permutation(visible)[: int(rng.integers(1, min(3, visible.size) + 1))]
        sets[k, chosen] = True
        words = [WORLD_CONCEPTS[c] for c in chosen]
        captions.append(" and ".join(words) if rng.random() < 0.5 else ", ".join(words))
    return captions, sets


LEFT, RIGHT = WORLD_CONCEPTS.index(LEFT_SIDE), WORLD_CONCEPTS.index(RIGHT_SIDE)
TRIANGLE = WORLD_CONCEPTS.index("green triangle")
NUM_OBJECTS = len(OBJECTS)


def one_side_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of frames where exactly one side is occupied: (left only, right only)."""
    left, right = labels[:, LEFT], labels[:, RIGHT]
    return np.flatnonzero(left & ~right), np.flatnonzero(right & ~left)


def sample_rows(labels: np.ndarray, rng: np.random.Generator, batch_size: int, side_fraction: float,
                side_pools: list[np.ndarray]) -> np.ndarray:
    """Batch rows: uniform frames plus ``side_fraction`` of frames from the one-side pools."""
    num_side = int(round(batch_size * side_fraction)) if side_pools else 0
    rows = [rng.integers(0, labels.shape[0], size=batch_size - num_side)]
    for k in range(num_side):
        pool = side_pools[k % len(side_pools)]
        rows.append(pool[rng.integers(0, len(pool), size=1)])
    return np.concatenate(rows)


def side_captions(labels: np.ndarray, rng: np.random.Generator, count: int) -> tuple[list[str], np.ndarray]:
    """Captions "<object> <side>" for frames with exactly one side occupied, and for each of them
    the same object with the opposite side (a hard negative for that frame); concept sets [2 count, C]."""
    # frame labels do not say which object is on the side: use frames that show a single object,
    # or the green triangle (the only object of a class video that leaves the central column)
    single = labels[:, :NUM_OBJECTS].sum(1) == 1
    candidates = np.flatnonzero((labels[:, LEFT] ^ labels[:, RIGHT]) & (single | labels[:, TRIANGLE]))
    captions, sets = [], np.zeros((2 * (count // 2), labels.shape[1]), dtype=bool)
    if candidates.size == 0:
        return [], sets[:0]
    for k in range(count // 2):
        row = candidates[int(rng.integers(candidates.size))]
        obj = TRIANGLE if labels[row, TRIANGLE] else int(np.flatnonzero(labels[row, :NUM_OBJECTS])[0])
        side = LEFT if labels[row, LEFT] else RIGHT
        for j, s in enumerate((side, RIGHT if side == LEFT else LEFT)):
            sets[2 * k + j, [obj, s]] = True
            captions.append(f"{WORLD_CONCEPTS[obj]} {WORLD_CONCEPTS[s]}")
    return captions, sets


@torch.no_grad()
def concept_auc(model: torch.nn.Module, tokenizer, frames: np.ndarray, labels: np.ndarray,
                template: str = "{}", batch_size: int = 256, return_scores: bool = False):
    """Per-concept ROC-AUC of the raw cosine between frame and concept-phrase embeddings."""
    model.eval()
    cfg = model.visual.preprocess_cfg
    mean, std = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"])
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
    text = F.normalize(model.encode_text(tokenizer([template.format(c) for c in WORLD_CONCEPTS])), dim=-1)
    scores = []
    for start in range(0, len(frames), batch_size):
        batch = preprocess(torch.from_numpy(frames[start:start + batch_size]), size, mean, std)
        scores.append(F.normalize(model.encode_image(batch), dim=-1) @ text.T)
    scores = torch.cat(scores).numpy()
    return (roc_auc(scores, labels), scores) if return_scores else roc_auc(scores, labels)


def triangle_side_auc(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC of the two side concepts on the frames that show the green triangle."""
    rows = labels[:, TRIANGLE]
    auc = roc_auc(scores[rows][:, [LEFT, RIGHT]], labels[rows][:, [LEFT, RIGHT]])
    return {LEFT_SIDE: round(float(auc[0]), 4), RIGHT_SIDE: round(float(auc[1]), 4)}


def train(args: argparse.Namespace) -> dict:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    open_clip.add_model_config(MODEL_CONFIGS)
    model = open_clip.create_model(MODEL_NAME)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    if args.init:
        model.load_state_dict({k: v.float() for k, v in load_file(args.init).items()})
        logger.info("initialised from %s", args.init)
    cfg = model.visual.preprocess_cfg
    mean, std, size = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"]), int(cfg["size"][0])

    started = time.time()
    frames, labels = render_labelled_frames(args.seed, args.train_videos, args.random_scene_fraction,
                                            frame_stride=args.frame_stride, workers=args.workers)
    eval_frames, eval_labels = render_labelled_frames(args.seed + 1, args.eval_videos, 0.0,
                                                      frame_stride=args.frame_stride, workers=args.workers)
    logger.info("rendered %d training and %d held-out frames in %.0f s", len(frames), len(eval_frames),
                time.time() - started)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / args.warmup) * 0.5 * (
        1.0 + math.cos(math.pi * min(s, args.steps) / args.steps)))
    frames_t, labels_t = torch.from_numpy(frames), torch.from_numpy(labels)
    num_concepts = len(WORLD_CONCEPTS)
    off_diagonal = ~torch.eye(num_concepts, dtype=torch.bool)
    left_rows, right_rows = one_side_rows(labels)
    side_pools = []
    if args.side_oversample > 0:
        with_triangle = labels[:, TRIANGLE]
        side_pools = [left_rows, right_rows, left_rows[with_triangle[left_rows]],
                      right_rows[with_triangle[right_rows]]]
        side_pools = [p for p in side_pools if p.size > 0]
        logger.info("one-side pools: %s frames", [int(p.size) for p in side_pools])
    history = []
    train_started = time.time()
    for step in range(args.steps):
        model.train()
        rows = torch.from_numpy(sample_rows(labels, rng, args.batch_size, args.side_oversample, side_pools))
        mode, antialias = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
        images = preprocess(frames_t[rows], size, mean, std, mode, antialias)
        batch_labels = labels_t[rows]
        phrases = [TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(c) for c in WORLD_CONCEPTS]
        captions, caption_sets = compose_captions(labels[rows.numpy()], rng, args.captions)
        if args.side_captions > 0:
            extra, extra_sets = side_captions(labels[rows.numpy()], rng, args.side_captions)
            captions, caption_sets = captions + extra, np.concatenate([caption_sets, extra_sets])
        caption_sets_t = torch.from_numpy(caption_sets).float()
        caption_targets = (batch_labels.float() @ caption_sets_t.T) >= caption_sets_t.sum(1).view(1, -1)
        targets = torch.cat([batch_labels, caption_targets], dim=1).float() * 2 - 1
        plain = [WORLD_CONCEPTS[c] for c in range(num_concepts)]

        image_emb = F.normalize(model.encode_image(images), dim=-1)
        text_emb = F.normalize(model.encode_text(tokenizer(phrases + captions + plain)), dim=-1)
        texts, plain_emb = text_emb[: -num_concepts], text_emb[-num_concepts:]
        logits = model.logit_scale.exp() * image_emb @ texts.T + model.logit_bias
        loss = -F.logsigmoid(targets * logits).mean()
        pair_loss = torch.zeros(())
        one_side = batch_labels[:, LEFT] ^ batch_labels[:, RIGHT]
        if args.side_pair_weight > 0 and bool(one_side.any()):
            # the opposite side phrase is an explicit hard negative of a one-side frame
            pair = logits[one_side][:, [LEFT, RIGHT]]
            pair_loss = F.cross_entropy(pair, batch_labels[one_side, RIGHT].long())
            loss = loss + args.side_pair_weight * pair_loss
        # keep the concept phrases apart so that near-duplicate filtering never merges two of them
        similarity = plain_emb @ plain_emb.T
        separation = F.relu(similarity[off_diagonal] - args.max_text_similarity).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        (loss + separation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == args.steps - 1:
            logger.info("step %d/%d loss %.4f pair %.4f sep %.4f scale %.1f bias %.2f (%.0f s)", step, args.steps,
                        loss.item(), pair_loss.item(), separation.item(), model.logit_scale.exp().item(),
                        model.logit_bias.item(), time.time() - train_started)
        if (step + 1) % args.eval_every == 0 or step == args.steps - 1:
            auc, scores = concept_auc(model, tokenizer, eval_frames, eval_labels, return_scores=True)
            sides = triangle_side_auc(scores, eval_labels)
            history.append({"step": step + 1, "mean_auc": float(np.nanmean(auc)),
                            "side_auc": {WORLD_CONCEPTS[c]: round(float(auc[c]), 4) for c in (LEFT, RIGHT)},
                            "side_auc_triangle_frames": sides,
                            "seconds": round(time.time() - train_started, 1)})
            logger.info("step %d held-out mean concept AUC %.4f (min %.4f) sides %.4f %.4f triangle %s",
                        step + 1, np.nanmean(auc), np.nanmin(auc), auc[LEFT], auc[RIGHT], sides)

    model.eval()
    auc, scores = concept_auc(model, tokenizer, eval_frames, eval_labels, return_scores=True)
    auc_template = concept_auc(model, tokenizer, eval_frames, eval_labels, template="a video of {}")
    with torch.no_grad():
        text = F.normalize(model.encode_text(tokenizer(list(WORLD_CONCEPTS))), dim=-1)
        max_text_cos = float((text @ text.T)[off_diagonal].max())
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out), metadata={"model": MODEL_NAME, "seed": str(args.seed)})
    report = {
        "model": MODEL_NAME,
        "weights": out.name,
        "dtype": "float16",
        "seed": args.seed,
        "steps": args.steps,
        "batch_size": args.batch_size,
        "captions_per_step": args.captions,
        "lr": args.lr,
        "warmup": args.warmup,
        "init": Path(args.init).name if args.init else None,
        "side_oversample": args.side_oversample,
        "side_captions_per_step": args.side_captions,
        "side_pair_weight": args.side_pair_weight,
        "train_videos": args.train_videos,
        "train_frames": int(len(frames)),
        "random_scene_fraction": args.random_scene_fraction,
        "eval_videos": args.eval_videos,
        "eval_frames": int(len(eval_frames)),
        "eval_seed": args.seed + 1,
        "concepts": list(WORLD_CONCEPTS),
        "concept_auc": {c: round(float(a), 4) for c, a in zip(WORLD_CONCEPTS, auc)},
        "side_auc_triangle_frames": triangle_side_auc(scores, eval_labels),
        "mean_concept_auc": round(float(np.nanmean(auc)), 4),
        "mean_concept_auc_template_a_video_of": round(float(np.nanmean(auc_template)), 4),
        "max_concept_text_cosine": round(max_text_cos, 4),
        "training_seconds": round(time.time() - train_started, 1),
        "torch_threads": torch.get_num_threads(),
        "history": history,
    }
    if args.init:
        report["init_sha256"] = hashlib.sha256(Path(args.init).read_bytes()).hexdigest()
        init_json = Path(args.init).with_suffix(".json")
        if init_json.is_file():  # the settings and scores of the weights this run started from
            base = json.loads(init_json.read_text())
            report["init_report"] = {k: base[k] for k in (
                "seed", "steps", "batch_size", "captions_per_step", "lr", "train_videos",
                "random_scene_fraction", "concept_auc", "mean_concept_auc", "training_seconds") if k in base}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report


@tool_main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=str(REPO_ROOT / "data" / "backbones" / f"{MODEL_NAME}.safetensors"))
    parser.add_argument("--seed", type=int, default=1000, help="training world seed (eval uses seed + 1)")
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--captions", type=int, default=48, help="composed captions per step")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--weight-decay", type=float, default=0.05)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--max-text-similarity", type=float, default=0.5)
    parser.add_argument("--train-videos", type=int, default=1500)
    parser.add_argument("--eval-videos", type=int, default=160)
    parser.add_argument("--random-scene-fraction", type=float, default=0.5)
    parser.add_argument("--frame-stride", type=int, default=4)
    parser.add_argument("--eval-every", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--init", default=None, help="start from these weights (fine-tuning)")
    parser.add_argument("--side-oversample", type=float, default=0.0,
                        help="fraction of each batch drawn from frames with exactly one side occupied")
    parser.add_argument("--side-captions", type=int, default=0,
                        help="'<object> <side>' captions per step (half are opposite-side hard negatives)")
    parser.add_argument("--side-pair-weight", type=float, default=0.0,
                        help="weight of the left-vs-right softmax loss on one-side frames")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    report = train(args)
    print(json.dumps({k: report[k] for k in ("mean_concept_auc", "mean_concept_auc_template_a_video_of",
                                             "max_concept_text_cosine", "training_seconds")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
