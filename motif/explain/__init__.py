"""Explaining one video: prediction, exact decomposition, attention maps, interventions with their
before / after, and the outputs people read (explanation.json, figures, report.html).

The evaluation of a whole run (faithfulness, attention interventions, ground truth) lives in
``motif.evaluation``.
"""

from motif.explain.intervention_syntax import (
                                               InterventionSpec,
                                               InterventionSyntaxError,
                                               parse_intervention,
                                               parse_interventions,
)
from motif.explain.outputs import explanation_figures, write_explanation
from motif.explain.report import ReportError, render_report, report_payload
from motif.explain.video import check_scores_videos, explain_video, explain_videos, video_concept_sequence
from motif.explain.video_explanation import (
                                               ExplanationError,
                                               InterventionOutcome,
                                               VideoExplanation,
                                               explain_sequence,
                                               run_with_interventions,
)

__all__ = [
    "ExplanationError", "InterventionOutcome", "InterventionSpec", "InterventionSyntaxError", "ReportError",
    "VideoExplanation", "check_scores_videos", "explain_sequence", "explain_video", "explain_videos",
    "explanation_figures",
    "parse_intervention", "parse_interventions", "render_report", "report_payload", "run_with_interventions",
    "video_concept_sequence", "write_explanation",
]
