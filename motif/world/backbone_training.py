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
frames (the opposite side is an explicit hard negative).

Small/large fine-tuning. "small shape" fired weakly on the appearing purple diamond, which pops in
small for a moment (frame-level ROC-AUC 0.85-0.87 on the diamond videos of a fresh world against 0.97-0.99
on the star's), and that moment is the only thing that tells "appearing" from "disappearing".
``--size-oversample`` draws that fraction of each batch from frames with a small shape and no large one
(half of them showing the purple diamond), and ``--size-pair-weight`` adds the two-way softmax loss
between "large shape" and "small shape" on frames that show exactly one of them.

The shipped weights come in three steps. A from-scratch run (``--seed 1000``, all other options at their
defaults), as committed in e3e4d32:

    git show e3e4d32:data/backbones/motif-world-vit.safetensors > base.safetensors
    git show e3e4d32:data/backbones/motif-world-vit.json > base.json

fine-tuned for the sides (the weights shipped until 978072f):

    python tools/train_world_backbone.py --init base.safetensors --out sides.safetensors --seed 2000 \
        --steps 300 --lr 2e-4 --warmup 20 --train-videos 600 --eval-videos 120 --eval-every 100 \
        --side-oversample 0.5 --side-captions 24 --side-pair-weight 1.0 --threads 2

and then for the sizes (keeping a quarter of each batch on the sides):

    python tools/train_world_backbone.py --init sides.safetensors --seed 3000 --steps 240 --lr 2e-4 \
        --warmup 20 --train-videos 600 --eval-videos 120 --eval-every 120 --side-oversample 0.25 \
        --side-captions 24 --side-pair-weight 1.0 --size-oversample 0.35 --size-pair-weight 1.0 --threads 2

The JSON of a fine-tuned run records the SHA-256 and the report of the weights it started from.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import open_clip
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor

from motif.backbone import MODEL_CONFIG_DIR
from motif.stats import roc_auc_per_column
from motif.world.config import BackboneTrainingConfig
from motif.world.generate import render_labelled_frames
from motif.world.vocabulary import LARGE_SHAPE, LEFT_SIDE, OBJECTS, RIGHT_SIDE, SMALL_SHAPE, WORLD_CONCEPTS

MODEL_NAME = "motif-world-vit"
TEMPLATES = ("{}", "a {}", "a frame with {}", "a video of {}", "a picture showing {}")
RESIZE_MODES = (("bilinear", True), ("bicubic", True), ("area", False), ("bilinear", False))

logger = logging.getLogger(__name__)


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
LARGE, SMALL = WORLD_CONCEPTS.index(LARGE_SHAPE), WORLD_CONCEPTS.index(SMALL_SHAPE)
TRIANGLE = WORLD_CONCEPTS.index("green triangle")
DIAMOND = WORLD_CONCEPTS.index("purple diamond")
NUM_OBJECTS = len(OBJECTS)


def one_side_rows(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows of frames where exactly one side is occupied: (left only, right only)."""
    left, right = labels[:, LEFT], labels[:, RIGHT]
    return np.flatnonzero(left & ~right), np.flatnonzero(right & ~left)


def small_only_pools(labels: np.ndarray) -> list[np.ndarray]:
    """Frames with a small shape and no large one: all of them, and those showing the purple diamond (the
    appearing diamond pops in small: the smallest class object and the one the small-shape phrase misses
    most)."""
    small_only = labels[:, SMALL] & ~labels[:, LARGE]
    return [pool for pool in (np.flatnonzero(small_only), np.flatnonzero(small_only & labels[:, DIAMOND]))
            if pool.size > 0]


def sample_rows(labels: np.ndarray, rng: np.random.Generator, batch_size: int,
                oversampled: list[tuple[float, list[np.ndarray]]]) -> np.ndarray:
    """Batch rows: for each (fraction, pools) that fraction of the batch drawn from the pools in turn, the rest
    uniform frames."""
    parts = [(int(round(batch_size * fraction)), pools) for fraction, pools in oversampled if pools]
    rows = [rng.integers(0, labels.shape[0], size=batch_size - sum(count for count, _ in parts))]
    for count, pools in parts:
        for k in range(count):
            pool = pools[k % len(pools)]
            rows.append(pool[rng.integers(0, len(pool), size=1)])
    return np.concatenate(rows)


def pair_loss(logits: Tensor, labels: Tensor, first: int, second: int) -> Tensor:
    """Two-way softmax loss between two concept phrases on the frames that show exactly one of them (the
    other phrase is an explicit hard negative); 0 when no frame of the batch qualifies."""
    exactly_one = labels[:, first] ^ labels[:, second]
    if not bool(exactly_one.any()):
        return logits.new_zeros(())
    return F.cross_entropy(logits[exactly_one][:, [first, second]], labels[exactly_one, second].long())


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
                template: str = "{}", batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Per-concept ROC-AUC [C] of the raw cosine between frame and concept-phrase embeddings
    (frames [M, H, W, 3] uint8, labels [M, C] bool), and the cosines [M, C]."""
    model.eval()
    cfg = model.visual.preprocess_cfg
    mean, std = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"])
    size = cfg["size"][0] if isinstance(cfg["size"], (tuple, list)) else cfg["size"]
    text = F.normalize(model.encode_text(tokenizer([template.format(c) for c in WORLD_CONCEPTS])), dim=-1)
    scores = []
    for start in range(0, len(frames), batch_size):
        batch = preprocess(torch.from_numpy(frames[start:start + batch_size]), size, mean, std)
        scores.append(F.normalize(model.encode_image(batch), dim=-1) @ text.T)
    scores = torch.cat(scores)
    return roc_auc_per_column(scores, torch.from_numpy(labels)).numpy(), scores.numpy()


def triangle_side_auc(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUC of the two side concepts on the frames that show the green triangle (scores, labels [M, C])."""
    rows = labels[:, TRIANGLE]
    auc = roc_auc_per_column(torch.from_numpy(scores[rows][:, [LEFT, RIGHT]]),
                             torch.from_numpy(labels[rows][:, [LEFT, RIGHT]]))
    return {LEFT_SIDE: round(float(auc[0]), 4), RIGHT_SIDE: round(float(auc[1]), 4)}


def train_world_backbone(out: str | Path, config: BackboneTrainingConfig = BackboneTrainingConfig()) -> dict:
    """Train the world backbone (see the module docstring) with ``config``; write the fp16 weights to
    ``out`` and the report (settings, held-out concept AUC, history) to ``out`` with suffix ``.json``.
    Returns the report."""
    config.validate()
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    open_clip.add_model_config(MODEL_CONFIG_DIR)
    model = open_clip.create_model(MODEL_NAME)
    tokenizer = open_clip.get_tokenizer(MODEL_NAME)
    if config.init:
        model.load_state_dict({k: v.float() for k, v in load_file(config.init).items()})
        logger.info("initialised from %s", config.init)
    cfg = model.visual.preprocess_cfg
    mean, std, size = torch.tensor(cfg["mean"]), torch.tensor(cfg["std"]), int(cfg["size"][0])

    started = time.time()
    frames, labels = render_labelled_frames(config.seed, config.train_videos, config.random_scene_fraction,
                                            frame_stride=config.frame_stride, workers=config.workers)
    eval_frames, eval_labels = render_labelled_frames(config.seed + 1, config.eval_videos, 0.0,
                                                      frame_stride=config.frame_stride, workers=config.workers)
    logger.info("rendered %d training and %d held-out frames in %.0f s", len(frames), len(eval_frames),
                time.time() - started)

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / config.warmup) * 0.5 * (
        1.0 + math.cos(math.pi * min(s, config.steps) / config.steps)))
    frames_t, labels_t = torch.from_numpy(frames), torch.from_numpy(labels)
    num_concepts = len(WORLD_CONCEPTS)
    off_diagonal = ~torch.eye(num_concepts, dtype=torch.bool)
    left_rows, right_rows = one_side_rows(labels)
    side_pools = []
    if config.side_oversample > 0:
        with_triangle = labels[:, TRIANGLE]
        side_pools = [left_rows, right_rows, left_rows[with_triangle[left_rows]],
                      right_rows[with_triangle[right_rows]]]
        side_pools = [p for p in side_pools if p.size > 0]
        logger.info("one-side pools: %s frames", [int(p.size) for p in side_pools])
    size_pools = small_only_pools(labels) if config.size_oversample > 0 else []
    if size_pools:
        logger.info("small-shape pools: %s frames", [int(p.size) for p in size_pools])
    oversampled = [(config.side_oversample, side_pools), (config.size_oversample, size_pools)]
    history = []
    train_started = time.time()
    for step in range(config.steps):
        model.train()
        rows = torch.from_numpy(sample_rows(labels, rng, config.batch_size, oversampled))
        mode, antialias = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
        images = preprocess(frames_t[rows], size, mean, std, mode, antialias)
        batch_labels = labels_t[rows]
        phrases = [TEMPLATES[int(rng.integers(len(TEMPLATES)))].format(c) for c in WORLD_CONCEPTS]
        captions, caption_sets = compose_captions(labels[rows.numpy()], rng, config.captions)
        if config.side_captions > 0:
            extra, extra_sets = side_captions(labels[rows.numpy()], rng, config.side_captions)
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
        pairs = (config.side_pair_weight * pair_loss(logits, batch_labels, LEFT, RIGHT)
                 + config.size_pair_weight * pair_loss(logits, batch_labels, LARGE, SMALL))
        loss = loss + pairs
        # keep the concept phrases apart so that near-duplicate filtering never merges two of them
        similarity = plain_emb @ plain_emb.T
        separation = F.relu(similarity[off_diagonal] - config.max_text_similarity).pow(2).mean()
        optimizer.zero_grad(set_to_none=True)
        (loss + separation).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 50 == 0 or step == config.steps - 1:
            logger.info("step %d/%d loss %.4f pairs %.4f sep %.4f scale %.1f bias %.2f (%.0f s)", step, config.steps,
                        loss.item(), pairs.item(), separation.item(), model.logit_scale.exp().item(),
                        model.logit_bias.item(), time.time() - train_started)
        if (step + 1) % config.eval_every == 0 or step == config.steps - 1:
            auc, scores = concept_auc(model, tokenizer, eval_frames, eval_labels)
            sides = triangle_side_auc(scores, eval_labels)
            history.append({"step": step + 1, "mean_auc": float(np.nanmean(auc)),
                            "side_auc": {WORLD_CONCEPTS[c]: round(float(auc[c]), 4) for c in (LEFT, RIGHT)},
                            "side_auc_triangle_frames": sides,
                            "seconds": round(time.time() - train_started, 1)})
            logger.info("step %d held-out mean concept AUC %.4f (min %.4f) sides %.4f %.4f triangle %s",
                        step + 1, np.nanmean(auc), np.nanmin(auc), auc[LEFT], auc[RIGHT], sides)

    model.eval()
    auc, scores = concept_auc(model, tokenizer, eval_frames, eval_labels)
    auc_template, _ = concept_auc(model, tokenizer, eval_frames, eval_labels, template="a video of {}")
    with torch.no_grad():
        text = F.normalize(model.encode_text(tokenizer(list(WORLD_CONCEPTS))), dim=-1)
        max_text_cos = float((text @ text.T)[off_diagonal].max())
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out), metadata={"model": MODEL_NAME, "seed": str(config.seed)})
    report = {
        "model": MODEL_NAME,
        "weights": out.name,
        "dtype": "float16",
        "seed": config.seed,
        "steps": config.steps,
        "batch_size": config.batch_size,
        "captions_per_step": config.captions,
        "lr": config.lr,
        "warmup": config.warmup,
        "init": Path(config.init).name if config.init else None,
        "side_oversample": config.side_oversample,
        "side_captions_per_step": config.side_captions,
        "side_pair_weight": config.side_pair_weight,
        "size_oversample": config.size_oversample,
        "size_pair_weight": config.size_pair_weight,
        "train_videos": config.train_videos,
        "train_frames": int(len(frames)),
        "random_scene_fraction": config.random_scene_fraction,
        "eval_videos": config.eval_videos,
        "eval_frames": int(len(eval_frames)),
        "eval_seed": config.seed + 1,
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
    if config.init:
        report["init_sha256"] = hashlib.sha256(Path(config.init).read_bytes()).hexdigest()
        init_json = Path(config.init).with_suffix(".json")
        if init_json.is_file():  # the settings and scores of the weights this run started from
            base = json.loads(init_json.read_text())
            report["init_report"] = {k: base[k] for k in (
                "seed", "steps", "batch_size", "captions_per_step", "lr", "train_videos",
                "random_scene_fraction", "concept_auc", "mean_concept_auc", "training_seconds") if k in base}
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    return report

