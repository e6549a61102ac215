"""A new model variant is its block and one registration: this file registers a toy variant without
attention maps, trains a run with it through the config, reads the checkpoint back and explains and
evaluates a video, and every capability check sees what the variant can do."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor, nn

from motif.checkpoint import load_motif_checkpoint
from motif.config import load_config
from motif.evaluation import attention_interventions, evaluate_run, prepare_chunks
from motif.explain import explain_sequence
from motif.explain.video_explanation import ExplanationError
from motif.model import TemporalConceptBottleneck
from motif.model.dropout import KeyedDropout
from motif.model.variants import MODEL_VARIANTS, ModelVariant
from motif.registry import UnknownChoiceError
from motif.sequences.prepare import prepare_sequences
from motif.training.experiment import train_and_evaluate
from motif.training.summary import format_summary

REPO = Path(__file__).resolve().parents[1]
SMALL = ["data.synthetic.num_videos=60", "data.synthetic.feature_dim=32", "data.synthetic.num_concepts=8",
         "data.synthetic.min_windows=6", "data.synthetic.max_windows=10", "optim.max_epochs=1",
         "trainer.progress_bar=false", "logger.wandb.mode=disabled"]


class RunningMeanBlock(nn.Module):
    """x + g_c · mean_{u <= t} x[u, c] over the valid windows: each concept on its own, no attention maps."""

    def __init__(self, num_concepts: int, dropout: float):
        super().__init__()
        self.gain = nn.Parameter(torch.full((num_concepts,), 0.5))
        self.dropout = KeyedDropout(dropout)

    def forward(self, x: Tensor, padding_mask: Tensor | None, key_valid: Tensor | None, *, impl: str,
                return_attention: bool, attention_intervention) -> tuple[Tensor, None]:
        valid = torch.ones_like(x[..., :1]) if padding_mask is None else (~padding_mask)[..., None].to(x.dtype)
        running = (x * valid).cumsum(dim=1) / valid.cumsum(dim=1).clamp_min(1.0)
        return x + self.gain * self.dropout(running), None


@pytest.fixture
def running_mean_variant(monkeypatch):
    """The variant "running_mean", registered for one test (the registry is restored afterwards)."""
    monkeypatch.setattr(MODEL_VARIANTS, "_entries", dict(MODEL_VARIANTS._entries))
    MODEL_VARIANTS.register("running_mean", ModelVariant(
        "running mean", "a causal running mean per concept", block=RunningMeanBlock, options=("dropout",),
        per_concept_maps=False, attention_interventions=False))


def test_a_variant_registered_here_trains_explains_and_evaluates(running_mean_variant, tmp_path):
    cfg = load_config(REPO / "configs" / "synthetic_order.yaml",
                      [f"output_dir={tmp_path}", "name=run", "model.variant=running_mean", "model.num_layers=2",
                       *SMALL])
    metrics = train_and_evaluate(cfg)
    assert metrics["variant"] == "running_mean" and 0.0 <= metrics["test_acc"] <= 1.0
    assert 0.0 <= metrics["baselines"]["full_attention"]["test_acc"] <= 1.0   # the "full" variant beside it
    assert format_summary(metrics, tmp_path).splitlines()[2].startswith("running mean ")

    checkpoint = load_motif_checkpoint(tmp_path / "run" / "best.ckpt")
    model = checkpoint.model
    assert [type(layer) for layer in model.encoder.layers] == [RunningMeanBlock, RunningMeanBlock]
    assert checkpoint.video is None   # generated features: no window settings
    video = prepare_sequences(cfg, 1, tmp_path / "run").test[0]
    result = explain_sequence(model, video.concepts, video.spans, class_names=checkpoint.class_names,
                              concept_names=checkpoint.concept_names, interventions=["zero:window=0"])
    assert abs(float(result.explanation.residual)) < 1e-4 and result.intervention is not None
    assert result.attention_maps is None and "no per-concept temporal maps" in result.attention_note
    assert result.model_info["attention_maps"] == ["layer 1 of 2", "layer 2 of 2"]
    with pytest.raises(ExplanationError, match="variant 'running_mean'"):
        explain_sequence(model, video.concepts, video.spans, class_names=checkpoint.class_names,
                         concept_names=checkpoint.concept_names,
                         interventions=[f"attn:uniform:concept={checkpoint.concept_names[0]}"])

    chunks = prepare_chunks(model, [video.concepts], [video.label])
    assert attention_interventions(model, chunks, ks=(1,), trials=1) == []
    evaluation = evaluate_run(model, [video], class_names=checkpoint.class_names,
                              concept_names=checkpoint.concept_names, ks=(1,), trials=1)
    assert evaluation.attention == [] and evaluation.settings["variant"] == "running_mean"


def test_an_unregistered_variant_is_named_with_the_choices():
    with pytest.raises(UnknownChoiceError, match=r"unknown model variant 'running_mean' \(model.variant\); choose one "
                                                 r"of motif, full, space_time, evidence\."):
        TemporalConceptBottleneck(4, 2, variant="running_mean")
