"""Meaning metrics: absent concepts' share of the explanation, the identical-windows and zero-evidence
probes, and the flag for concepts whose activation does not follow their evidence. Ground truth: the
published variant (a sinusoid in each concept channel) fails the probes, the evidence variant passes."""

from __future__ import annotations

import math

import pytest
import torch

from motif.evaluation.faithfulness import prepare_chunks
from motif.evaluation.meaning import (
    absent_concept_importance,
    concepts_not_following_evidence,
    identical_windows_deviation,
    meaning_metrics,
    zero_evidence_max_activation,
)
from motif.model import TemporalConceptBottleneck

C = 4


def test_absent_share_and_top3_by_hand():
    g = torch.tensor([[4.0, 3.0, 2.0, 1.0], [0.0, 0.0, 5.0, 5.0]])
    present = torch.tensor([[True, True, False, True], [True, True, False, False]])
    labelled = torch.tensor([True, True, True, False])   # concept 3 is not covered by the ground truth
    share, in_top, in_top_floor = absent_concept_importance(g, present, labelled)
    torch.testing.assert_close(share, torch.tensor([2.0 / 10.0, 5.0 / 10.0]))
    assert in_top.tolist() == [True, True] and in_top_floor.tolist() == [True, True]
    share, in_top, _ = absent_concept_importance(torch.tensor([[4.0, 3.0, 0.0, 1.0]]), present[:1], labelled)
    assert in_top.tolist() == [False]                   # absent but G = 0: not counted as "in the top 3"
    _, in_top, in_top_floor = absent_concept_importance(torch.tensor([[40.0, 30.0, 0.5, 0.0]]), present[:1],
                                                        labelled)
    assert in_top.tolist() == [True] and in_top_floor.tolist() == [False]   # 0.5 of 70.5 is under 1 %


def models():
    torch.manual_seed(0)
    published = TemporalConceptBottleneck(C, 3, variant="motif").eval()
    with torch.no_grad():
        published.encoder.concept_head.shift.fill_(5.0)          # concepts "on" unless strongly negative
    evidence = TemporalConceptBottleneck(C, 3, variant="evidence").eval()
    mean, std = torch.full((C,), 0.2), torch.full((C,), 0.05)
    evidence.set_input_statistics(mean, std)
    return published, evidence, mean, std


def test_probes_separate_the_published_clock_from_the_evidence_variant():
    published, evidence, mean, std = models()
    generator = torch.Generator().manual_seed(1)
    sequences = [torch.randn(length, C, generator=generator) for length in (12, 20, 7)]
    assert identical_windows_deviation(evidence, sequences) < 1e-5
    assert identical_windows_deviation(published, sequences) > 1e-2
    assert zero_evidence_max_activation(evidence, sequences, mean, std) == 0.0
    assert zero_evidence_max_activation(published, sequences, mean, std) > 0.05


def test_meaning_metrics_on_a_world_where_the_truth_is_known():
    """Concept 0 is visible exactly where its score is high; the evidence model (threshold at the mean)
    follows it; a model whose concept 0 reads concept 1's score is flagged."""
    _, evidence, mean, std = models()
    generator = torch.Generator().manual_seed(2)
    truth, sequences = [], []
    for length in (10, 14, 9, 16):
        visible = torch.zeros(length, C, dtype=torch.bool)
        visible[2:5, 0] = True
        visible[6:8, 1] = True
        raw = torch.where(visible, 0.4, 0.1) + 0.01 * torch.rand(length, C, generator=generator)
        truth.append(visible)
        sequences.append((raw - mean) / std)
    labels = [0] * len(sequences)
    chunks = prepare_chunks(evidence, sequences, labels)
    labelled = torch.tensor([True, True, False, False])
    out = meaning_metrics(evidence, chunks, sequences, truth, labelled, ["a", "b", "c", "d"],
                          statistics=(mean, std))
    assert out["identical_windows_max_deviation"] < 1e-5 and out["zero_evidence_max_z_ratio"] == 0.0
    assert out["present_concept_mean_z"] > 0 and out["concepts_not_following_evidence"] == []
    assert 0.0 <= out["absent_importance_share"] <= 1.0 and not math.isnan(out["absent_in_top3_rate"])
    swapped = [x[:, [1, 1, 2, 3]] for x in sequences]     # concept 0's activation now follows concept 1
    flagged = concepts_not_following_evidence(prepare_chunks(evidence, swapped, labels), truth, labelled,
                                              ["a", "b", "c", "d"])
    assert [f["concept"] for f in flagged] == []          # its raw score (the input) is also wrong: no flag
    chunks = prepare_chunks(evidence, sequences, labels)
    for chunk in chunks:                                  # a model whose z for "a" is "b"'s evidence
        chunk.z[..., 0] = chunk.z[..., 1]
    flagged = concepts_not_following_evidence(chunks, truth, labelled, ["a", "b", "c", "d"])
    assert [f["concept"] for f in flagged] == ["a"]
    assert flagged[0]["activation_auc"] < 0.75 <= flagged[0]["score_auc"]
    for chunk in chunks:                                  # switched off entirely: unused, not flagged
        chunk.z[..., 0] = 0.0
    assert concepts_not_following_evidence(chunks, truth, labelled, ["a", "b", "c", "d"]) == []


@pytest.mark.parametrize("variant", ["motif", "evidence"])
def test_probes_run_with_padding_and_every_variant_shape(variant):
    published, evidence, mean, std = models()
    model = published if variant == "motif" else evidence
    sequences = [torch.randn(length, C) for length in (1, 5, 30)]
    assert identical_windows_deviation(model, sequences) >= 0.0
    assert zero_evidence_max_activation(model, sequences, mean, std) >= 0.0


def test_evaluate_run_writes_the_meaning_headline_for_the_evidence_variant(tmp_path):
    """Every meaning key in headline.json; attention interventions pick concepts (not channels)."""
    from motif.evaluation import evaluate_run, write_evaluation
    from motif.evaluation.evaluate import GroundTruth
    from motif.sequences import ConceptSequence

    _, evidence, mean, std = models()
    generator = torch.Generator().manual_seed(4)
    videos, truth = [], []
    for i, length in enumerate((6, 9, 12, 7)):
        visible = torch.rand(length, C, generator=generator) > 0.6
        raw = torch.where(visible, 0.4, 0.05)
        spans = torch.stack([torch.arange(length), torch.arange(1, length + 1)], 1).float()
        videos.append(ConceptSequence(f"v{i}", (raw - mean) / std, i % 3, spans))
        truth.append(visible)
    result = evaluate_run(evidence, videos, class_names=["x", "y", "z"], concept_names=list("abcd"),
                          ground_truth=GroundTruth(window_concepts=truth, class_concepts=[[0], [1], [2, 3]]),
                          ks=(1,), attention_ks=(1, 2), trials=1, statistics=(mean, std))
    assert {r["k"] for r in result.attention} == {1, 2}
    write_evaluation(result, tmp_path)
    import json

    headline = json.loads((tmp_path / "headline.json").read_text())
    for key in ("absent_importance_share", "absent_in_top3_rate", "recovery_all", "localisation",
                "localisation_chance", "identical_windows_max_deviation", "zero_evidence_max_z_ratio"):
        assert key in headline, key
    assert headline["zero_evidence_max_z_ratio"] == 0.0
