"""The explanations of several trained runs of one test video, side by side, against its ground truth.

For each run: the global importance G of every concept for the predicted class and the concepts'
activations z over time, a concept's views summed (``fold_views``) so that runs of different variants
compare, next to the windows where the ground truth shows each concept; and the share of Σ_c |G[c]|
held by concepts the video never shows (``absent_concept_importance``, as in the meaning metrics).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from motif.errors import MotifError
from motif.evaluation.meaning import absent_concept_importance
from motif.evaluation.test_sets import load_test_set
from motif.model import TemporalConceptBottleneck, explain, fold_views
from motif.plots.figures import truth_comparison_figure
from motif.sequences import ConceptSequence


class ComparisonError(MotifError, ValueError):
    """The runs cannot be compared on the video: a run has no ground truth, or the video is not one
    of its test videos."""


@dataclass
class RunExplanation:
    """One run's explanation of one test video, next to the video's ground truth (C concepts, T windows)."""

    run: str
    model_name: str                # the variant's display name
    concept_names: list[str]
    class_names: list[str]
    label: int
    predicted: int
    global_importance: np.ndarray  # G [C] of the predicted class, views summed
    activations: np.ndarray        # z [T, C], views summed
    visible: np.ndarray            # [T, C] bool: the ground truth shows the concept in the window
    absent: np.ndarray             # [C] bool: a concept the ground truth covers that the video never shows
    absent_share: float            # share of Σ_c |G[c]| held by the absent concepts
    spans: np.ndarray              # [T, 2] seconds


@torch.no_grad()
def explain_against_truth(model: TemporalConceptBottleneck, video: ConceptSequence, visible: Tensor, *,
                          concept_names: Sequence[str], class_names: Sequence[str],
                          labelled: Tensor | None = None, run: str = "") -> RunExplanation:
    """Explain the predicted class of ``video`` (concepts X [T, C]) with ``model``; visible [T, C] bool is the
    ground truth per window; labelled [C] bool the concepts it covers (None = all)."""
    model.eval()
    out = model(video.concepts[None].float())
    explanation = explain(model, out)
    num_concepts = len(concept_names)
    importance = fold_views(explanation.global_importance[0], num_concepts)
    present = visible.any(dim=0)
    labelled = torch.ones(num_concepts, dtype=torch.bool) if labelled is None else labelled.bool()
    share, _, _ = absent_concept_importance(importance[None], present[None], labelled)
    return RunExplanation(run=run, model_name=model.variant_spec.display_name, concept_names=list(concept_names),
                          class_names=list(class_names), label=int(video.label),
                          predicted=int(explanation.class_index[0]), global_importance=importance.numpy(),
                          activations=fold_views(out.concepts[0], num_concepts).numpy(),
                          visible=visible.numpy(), absent=(~present & labelled).numpy(), absent_share=float(share[0]),
                          spans=video.spans.numpy())


def explain_runs_on_video(runs: Sequence[str | Path], video: str) -> list[RunExplanation]:
    """Each run's explanation of the test video ``video`` (its id or its file stem), from the first
    split of each run; the runs need ground truth (``data.ground_truth`` in their configs)."""
    explanations = []
    for run in runs:
        test_set = load_test_set(run)
        if test_set.ground_truth is None:
            raise ComparisonError("the run has no ground truth", where=Path(run) / "config.yaml",
                                  hint="set data.ground_truth to the world folder of its videos")
        ids = [v.video_id for v in test_set.test]
        matches = [i for i, video_id in enumerate(ids) if video in (video_id, Path(video_id).stem)]
        if not matches:
            raise ComparisonError(f"{video!r} is not a test video of {run}", where="--video",
                                  hint=f"e.g. {', '.join(ids[:3])}")
        index = matches[0]
        truth = test_set.ground_truth
        explanations.append(explain_against_truth(
            test_set.checkpoint.model, test_set.test[index], truth.window_concepts[index],
            concept_names=test_set.checkpoint.concept_names, class_names=test_set.checkpoint.class_names,
            labelled=truth.labelled, run=str(run)))
    return explanations


def comparison_figure(explanations: Sequence[RunExplanation], video: str) -> Figure:
    """One row per run: G of every concept (absent ones hatched and grey) and z over time with the
    windows where the ground truth shows each concept outlined."""
    panels = [{"title": f"{e.model_name}\npredicted '{e.class_names[e.predicted]}'; "
                        f"absent concepts hold {e.absent_share:.0%} of Σ|G|",
               "concept_names": e.concept_names, "importance": e.global_importance, "absent": e.absent,
               "activations": e.activations, "visible": e.visible, "spans": e.spans} for e in explanations]
    first = explanations[0]
    return truth_comparison_figure(panels, title=f"test video {video} (true class '{first.class_names[first.label]}')")
