"""Evaluating a trained run: accuracy, faithfulness curves, attention and corrective interventions,
ground-truth concept recovery and localisation, and the meaning probes (spec section 6).

Imports no Lightning: it reads checkpoints and concept sequences, never the training package.
"""

from motif.evaluation.evaluate import (
                                       EvaluationResult,
                                       GroundTruth,
                                       evaluate_run,
                                       format_headline,
                                       log_to_wandb,
                                       summarise_splits,
                                       write_evaluation,
)
from motif.evaluation.faithfulness import (
                                       attention_interventions,
                                       corrective_interventions,
                                       faithfulness_curves,
                                       prepare_chunks,
)
from motif.evaluation.test_sets import RunDirectoryError, RunTestSet, load_test_set, load_test_sets

__all__ = [
    "EvaluationResult", "GroundTruth", "RunDirectoryError", "RunTestSet", "attention_interventions",
    "corrective_interventions", "evaluate_run", "faithfulness_curves", "format_headline", "load_test_set",
    "load_test_sets", "log_to_wandb", "prepare_chunks", "summarise_splits", "write_evaluation",
]
