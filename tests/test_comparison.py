"""Several runs' explanations of one test video against its ground truth (tools/compare_explanations.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_tools import load_tool
from motif.evaluation.comparison import RunExplanation, comparison_figure, explain_against_truth, explain_runs_on_video
from motif.evaluation.test_sets import RunDirectoryError
from motif.model import TemporalConceptBottleneck, explain, fold_views
from motif.model.variants import MODEL_VARIANTS
from motif.sequences import ConceptSequence

REPO = Path(__file__).resolve().parents[1]
CONCEPTS = ["ball", "net", "racket", "shoe"]
CLASSES = ["tennis", "football", "running"]


def _video(windows: int = 6, seed: int = 0) -> ConceptSequence:
    generator = torch.Generator().manual_seed(seed)
    spans = torch.stack([torch.arange(windows), torch.arange(1, windows + 1)], dim=1).float() * 0.5
    return ConceptSequence("clips/v_tennis_01.mp4", torch.randn(windows, len(CONCEPTS), generator=generator), 1, spans)


@pytest.mark.parametrize("variant", ["motif", "evidence"])
def test_explanation_folds_views_and_measures_the_share_of_absent_concepts(variant):
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(len(CONCEPTS), len(CLASSES), variant=variant, dropout=0.0).eval()
    with torch.no_grad():
        model.classifier.weight.uniform_(0.0, 1.0)
    video = _video()
    visible = torch.zeros(6, 4, dtype=torch.bool)
    visible[1:3, 0] = visible[4, 2] = True            # ball and racket are shown, net and shoe never
    labelled = torch.tensor([True, True, True, False])  # the ground truth says nothing about shoes
    result = explain_against_truth(model, video, visible, concept_names=CONCEPTS, class_names=CLASSES,
                                   labelled=labelled, run="runs/a")

    with torch.no_grad():
        out = model(video.concepts[None])
        expected = fold_views(explain(model, out).global_importance[0], len(CONCEPTS))
    assert result.predicted == int(out.logits.argmax()) and result.label == 1 and result.model_name == MODEL_VARIANTS[variant].display_name
    np.testing.assert_allclose(result.global_importance, expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(result.activations, fold_views(out.concepts[0], len(CONCEPTS)).numpy(), rtol=1e-6)
    assert result.absent.tolist() == [False, True, False, False]
    magnitude = np.abs(result.global_importance)
    assert result.absent_share > 0 and result.absent_share == pytest.approx(magnitude[1] / magnitude.sum(), rel=1e-5)
    assert result.activations.shape == result.visible.shape == (6, 4)


def test_comparison_figure_has_a_row_per_run_and_marks_absent_concepts(tmp_path):
    rows = [RunExplanation(run=f"runs/{variant}", model_name=MODEL_VARIANTS[variant].display_name,
                           concept_names=CONCEPTS, class_names=CLASSES, label=0, predicted=k,
                           global_importance=np.array([0.5, -0.2, 0.1, 0.0]),
                           activations=np.random.default_rng(k).random((6, 4)), visible=np.eye(6, 4, dtype=bool),
                           absent=np.array([False, False, False, True]), absent_share=0.25,
                           spans=_video().spans.numpy())
            for k, variant in enumerate(["motif", "evidence"])]
    figure = comparison_figure(rows, "v_tennis_01")
    bar_axes = figure.axes[0], figure.axes[2]
    assert bar_axes[0].get_title().startswith(MODEL_VARIANTS["motif"].display_name + "\n")
    assert bar_axes[1].get_title().startswith(MODEL_VARIANTS["evidence"].display_name + "\n")
    assert "absent concepts hold 25% of Σ|G|" in bar_axes[1].get_title()
    assert [t.get_text() for t in bar_axes[0].get_yticklabels()] == ["ball", "racket", "shoe  (absent)", "net"]
    assert len(figure.axes[1].patches) == 4  # one outline per visible (window, concept)
    assert "true class 'tennis'" in figure._suptitle.get_text()


def test_a_missing_run_is_a_run_directory_error(tmp_path):
    with pytest.raises(RunDirectoryError, match="config.yaml does not exist"):
        explain_runs_on_video([tmp_path / "nope"], "v1")


def test_tool_reports_a_missing_run_in_one_line(tmp_path, capsys):
    arguments = ["--runs", str(tmp_path / "nope"), "--video", "v1", "--out", str(tmp_path / "c.png")]
    assert load_tool("compare_explanations").main(arguments) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and "config.yaml does not exist" in error and error.count("\n") == 1


def test_tool_help_loads_neither_torch_nor_the_library():
    code = ("import runpy, sys\nsys.argv = ['compare_explanations.py', '--help']\n"
            "try:\n    runpy.run_path('tools/compare_explanations.py', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'matplotlib', 'motif.evaluation', 'motif.model') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "--runs" in result.stdout and result.stdout.strip().splitlines()[-1] == "[]"
