"""Explanations people can read, checked to be faithful: one-video reports, interventions, and the
faithfulness / ground-truth evaluation of a trained bottleneck (spec sections 5 and 6)."""

from motif.explain.evaluation import (EvalVideo, EvaluationResult, GroundTruth, evaluate_run, format_headline,
                                      log_to_wandb, summarise_splits, write_evaluation)
from motif.explain.explain import (ExplanationError, InterventionOutcome, VideoExplanation, explain_sequence,
                                   run_with_interventions)
from motif.explain.faithfulness import (attention_interventions, apply_cell_edits, corrective_edits,
                                        corrective_interventions, faithfulness_curves, prepare_chunks)
from motif.explain.interventions import (InterventionSpec, InterventionSyntaxError, parse_intervention,
                                         parse_interventions)
from motif.explain.outputs import explanation_figures, write_explanation
from motif.explain.report import ReportError, render_report, report_payload
from motif.explain.video import explain_video

__all__ = [
    "EvaluationResult", "ExplanationError", "GroundTruth", "InterventionOutcome", "InterventionSpec",
    "InterventionSyntaxError", "EvalVideo", "VideoExplanation", "apply_cell_edits", "attention_interventions",
    "corrective_edits", "corrective_interventions", "evaluate_run", "explain_sequence", "explain_video",
    "explanation_figures", "faithfulness_curves", "format_headline", "log_to_wandb", "parse_intervention",
    "parse_interventions", "prepare_chunks", "ReportError", "render_report", "report_payload",
    "run_with_interventions", "summarise_splits", "write_evaluation", "write_explanation",
]
