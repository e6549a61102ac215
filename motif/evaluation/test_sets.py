"""The test set of a trained run directory, rebuilt from its saved config, checkpoint and cache.

Layout written by ``tools/train.py``: ``<run>/config.yaml``; with one split ``<run>/best.ckpt``,
with several ``<run>/split<k>/best.ckpt``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from motif.checkpoint import MotifCheckpoint, load_motif_checkpoint
from motif.config import load_config, split_dir_of
from motif.errors import RunDirectoryError
from motif.evaluation.evaluate import GroundTruth
from motif.sequences import ConceptSequence
from motif.sequences.prepare import prepare_sequences

log = logging.getLogger(__name__)


@dataclass
class RunTestSet:
    """One split of a run: its checkpoint, its test videos and their ground truth (if any)."""

    split: int
    split_dir: Path
    checkpoint: MotifCheckpoint
    test: list[ConceptSequence]
    ground_truth: GroundTruth | None


def _normalise(name: str) -> str:
    return " ".join(name.lower().split())


def ground_truth_from_world(root: str | Path, test: Sequence[ConceptSequence], class_names: Sequence[str],
                            concept_names: Sequence[str]) -> GroundTruth:
    """Per-window concept labels of ``test`` from a synthetic world folder (world.json +
    ground_truth.json), aligned with the model's concepts and classes by name.

    A window is labelled with a concept when the concept is visible in any of its frames; the
    frames of window t are [round(start_s·fps), round(end_s·fps)).
    """
    from motif.world.truth import WorldGroundTruth

    root = Path(root)
    world = WorldGroundTruth(root.parent if root.suffix == ".json" else root)
    model_index = {_normalise(c): i for i, c in enumerate(concept_names)}
    columns = [model_index.get(_normalise(c)) for c in world.concepts]
    labelled = torch.zeros(len(concept_names), dtype=torch.bool)
    labelled[[c for c in columns if c is not None]] = True
    if not bool(labelled.any()):
        raise RunDirectoryError(f"none of the world's concepts ({', '.join(world.concepts)}) is a concept of the "
                                "model", where=root, hint="check data.ground_truth in the run's config.yaml")
    window_concepts = []
    for video in test:
        truth = world.video(video.video_id)
        frames = np.rint(video.spans.double().numpy() * truth.fps).astype(int)
        per_window = world.window_concepts(video.video_id, frames[:, 0].tolist(), frames[:, 1].tolist())
        labels = torch.zeros(len(frames), len(concept_names), dtype=torch.bool)
        for j, c in enumerate(columns):
            if c is not None:
                labels[:, c] = torch.from_numpy(per_window[:, j])
        window_concepts.append(labels)
    return GroundTruth(window_concepts=window_concepts,
                       class_concepts=_concepts_per_class(world.class_concepts, class_names, model_index),
                       labelled=labelled,
                       evidence_concepts=_concepts_per_class(world.evidence_concepts, class_names, model_index))


def _concepts_per_class(table: dict[str, list[str]], class_names: Sequence[str], model_index: dict[str, int]
                        ) -> list[list[int]]:
    """{class name: concept names} -> per model class, the model indices of its concepts (by name)."""
    by_class = {_normalise(k): v for k, v in table.items()}
    return [[model_index[_normalise(c)] for c in by_class.get(_normalise(k), []) if _normalise(c) in model_index]
            for k in class_names]


def load_test_sets(run_dir: str | Path, splits: Sequence[int] | None = None) -> list[RunTestSet]:
    """Every (or the chosen) split of a trained run: checkpoint, test videos (rebuilt with the run's
    own data pipeline: the cache, or the generated task) and ground truth when the config names a
    ``data.ground_truth`` folder."""
    run_dir = Path(run_dir)
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        raise RunDirectoryError(f"{config_file} does not exist", where=config_file, hint="pass the directory that "
                                "tools/train.py wrote (it holds config.yaml and best.ckpt)")
    cfg = load_config(config_file)
    out = []
    for split in cfg.data.splits:
        directory = split_dir_of(cfg, split, run_dir)
        if splits is not None and split not in splits:
            continue
        ckpt_file = directory / "best.ckpt"
        if not ckpt_file.is_file():
            raise RunDirectoryError(f"{ckpt_file} does not exist", where=ckpt_file,
                                    hint=f"did the training of split {split} finish?")
        checkpoint = load_motif_checkpoint(ckpt_file)
        data = prepare_sequences(cfg, split, directory)
        if list(data.concept_names) != list(checkpoint.concept_names):
            raise RunDirectoryError("the checkpoint's concepts differ from those the config produces now",
                                    where=ckpt_file, hint="was the concept bank or the cache changed after training?")
        test = data.test
        truth = None
        if cfg.data.get("ground_truth"):
            truth_path = Path(cfg.data.ground_truth)
            truth = ground_truth_from_world(truth_path if truth_path.is_absolute() else Path(cfg.data.root) / truth_path,
                                            test, checkpoint.class_names, checkpoint.concept_names)
        log.info("Split %d: %d test videos, checkpoint %s%s", split, len(test), ckpt_file,
                 ", with ground truth" if truth is not None else "")
        out.append(RunTestSet(split=split, split_dir=directory, checkpoint=checkpoint, test=test, ground_truth=truth))
    if not out:
        raise RunDirectoryError(f"none of the splits {list(splits or [])} was trained in this run", where=run_dir)
    return out


def load_test_set(run_dir: str | Path, split: int | None = None) -> RunTestSet:
    """One split of a run (the first one when ``split`` is None)."""
    return load_test_sets(run_dir, None if split is None else [split])[0]
