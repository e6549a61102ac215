"""A tiny task where explanations must single out a few concepts, and a model trained on it.

Class k of K is marked by concept k being switched on (value ~ +3) during a few consecutive
windows; every other concept is N(0, 1) noise. A trained bottleneck can only use the class concepts,
so removing the top concepts by G must hurt far more than removing random ones.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from motif.model import TemporalConceptBottleneck

NUM_CLASSES = 3
NUM_CONCEPTS = 16
CLASS_NAMES = ["red circle shown", "blue square shown", "green triangle shown"]
CONCEPT_NAMES = ["red circle", "blue square", "green triangle"] + [f"noise {i}" for i in range(NUM_CONCEPTS - 3)]


def make_marked_videos(num_videos: int, seed: int = 0, min_windows: int = 6, max_windows: int = 14
                       ) -> tuple[list[torch.Tensor], list[int], list[torch.Tensor]]:
    """Videos X [T_i, C], labels, ground-truth window labels [T_i, C] bool (the class concept's on-windows)."""
    generator = torch.Generator().manual_seed(seed)
    videos, labels, truth = [], [], []
    for i in range(num_videos):
        label = i % NUM_CLASSES
        t = int(torch.randint(min_windows, max_windows + 1, (1,), generator=generator))
        x = torch.randn(t, NUM_CONCEPTS, generator=generator)
        start = int(torch.randint(0, t - 2, (1,), generator=generator))
        on = torch.zeros(t, NUM_CONCEPTS, dtype=torch.bool)
        on[start:start + 3, label] = True
        x[on] = 3.0 + 0.3 * torch.randn(int(on.sum()), generator=generator)
        videos.append(x)
        labels.append(label)
        truth.append(on)
    return videos, labels, truth


def train_marked_model(videos: list[torch.Tensor], labels: list[int], steps: int = 150, seed: int = 0
                       ) -> TemporalConceptBottleneck:
    """A 1-layer bottleneck trained full-batch with Adam, an L1 penalty and W >= 0."""
    torch.manual_seed(seed)
    model = TemporalConceptBottleneck(NUM_CONCEPTS, NUM_CLASSES, dropout=0.0)
    lengths = torch.tensor([len(v) for v in videos])
    x = torch.zeros(len(videos), int(lengths.max()), NUM_CONCEPTS)
    for i, v in enumerate(videos):
        x[i, : len(v)] = v
    mask = torch.arange(x.shape[1])[None] >= lengths[:, None]
    y = torch.tensor(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(steps):
        optimiser.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x, mask).logits, y) + 1e-2 * model.classifier.weight.abs().sum()
        loss.backward()
        optimiser.step()
        model.clamp_classifier_()
    return model.eval()


def spans_of(num_windows: int, seconds_per_window: float = 0.5) -> torch.Tensor:
    """Contiguous window spans [T, 2] in seconds."""
    starts = torch.arange(num_windows, dtype=torch.float32) * seconds_per_window
    return torch.stack([starts, starts + seconds_per_window], dim=1)


@functools.lru_cache(maxsize=1)
def marked_task() -> dict:
    """A trained model with train / test videos of the marked task (built once per test session)."""
    train_x, train_y, _ = make_marked_videos(60, seed=0)
    test_x, test_y, test_truth = make_marked_videos(45, seed=1)
    model = train_marked_model(train_x, train_y, steps=40)
    return {"model": model, "test_x": test_x, "test_y": test_y, "test_truth": test_truth}


def save_video_checkpoint(folder: Path, model: TemporalConceptBottleneck) -> dict:
    """``model`` (trained on the marked task) saved as a checkpoint that explains video files: a tiny
    open_clip backbone (registered in this process, weights in ``folder``), concept text embeddings
    from it and a fitted standardiser; and a small clip (22 frames of 40 x 56 at 8 fps).
    Returns {"ckpt", "video" (the clip), "backbone", "folder"}.
    """
    from helpers_backbone import register_tiny_model, save_tiny_weights
    from motif.backbone import load_backbone
    from motif.checkpoint import save_motif_checkpoint
    from motif.concepts import ConceptStandardizer
    from motif.video import VideoWindowSettings, write_video

    name = register_tiny_model(folder / "configs")
    backbone = load_backbone(name, str(save_tiny_weights(folder / "tiny.pt", name)), device="cpu")
    standardizer = ConceptStandardizer(len(CONCEPT_NAMES)).fit([torch.rand(50, len(CONCEPT_NAMES)) * 0.2])
    ckpt = save_motif_checkpoint(
        folder / "best.ckpt", model=model, model_kwargs={"num_concepts": len(CONCEPT_NAMES),
                                                         "num_classes": len(CLASS_NAMES), "dropout": 0.0},
        class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES, text_embeddings=backbone.encode_text(CONCEPT_NAMES),
        standardizer=standardizer,
        video=VideoWindowSettings(window_size=4, frames_per_window=2, frame_sampling="uniform"),
        backbone=backbone.identity, config={})
    rng = np.random.default_rng(0)
    frames = [np.full((40, 56, 3), (10 * i) % 255, np.uint8) + rng.integers(0, 30, (40, 56, 3), dtype=np.uint8)
              for i in range(22)]
    clip = write_video(folder / "clip.mp4", frames, fps=8.0)
    return {"ckpt": ckpt, "video": clip, "backbone": backbone, "folder": folder}
