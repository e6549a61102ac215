"""Evaluation of a trained bottleneck: faithfulness (top-k vs random), fast paths equal to the
model's own interventions, oracle corrective edits, sparsity, ground-truth metrics, the written
tables, and the evaluation of a training run directory."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from helpers_explain import CLASS_NAMES, CONCEPT_NAMES, marked_task, spans_of
from helpers_tools import load_tool
from motif.evaluation import (
    GroundTruth,
    attention_interventions,
    evaluate_run,
    faithfulness_curves,
    prepare_chunks,
    summarise_splits,
    write_evaluation,
)
from motif.evaluation.evaluate import json_safe
from motif.evaluation.faithfulness import edited_logits, selection_masks
from motif.evaluation.metrics import classifier_sparsity, concept_recovery, temporal_localisation
from motif.model import AttentionIntervention, ConceptIntervention, TemporalConceptBottleneck
from motif.model.corrections import apply_cell_edits, corrective_edits
from motif.sequences import ConceptSequence
from motif.stats import roc_auc_per_column

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def task():
    return marked_task()


@pytest.fixture(scope="module")
def chunks(task):
    # a small budget forces several chunks of different lengths
    return prepare_chunks(task["model"], task["test_x"], task["test_y"], budget=8 * 14 * len(CONCEPT_NAMES))


def _rows(rows, **match):
    return {r["ranking"]: r for r in rows if all(r[k] == v for k, v in match.items())}


# --- faithfulness ---------------------------------------------------------------------------------------


def test_removing_top_concepts_hurts_more_than_random_ones(task, chunks):
    assert len(chunks) > 1
    rows = faithfulness_curves(task["model"], chunks, ks=(1, 2, 3), trials=10, seed=0)
    for k in (1, 2, 3):
        pair = _rows(rows, target="concepts", mode="remove", k=k)
        assert pair["top"]["prob_drop"] > pair["random"]["prob_drop"] + 3 * pair["random"]["prob_drop_std"] + 0.2
        assert pair["top"]["agreement"] < pair["random"]["agreement"] - 0.3
        keep = _rows(rows, target="concepts", mode="keep", k=k)
        assert keep["top"]["agreement"] > keep["random"]["agreement"] + 0.3
    for target in ("windows", "cells"):
        pair = _rows(rows, target=target, mode="remove", k=3)
        assert pair["top"]["prob_drop"] > pair["random"]["prob_drop"] + 0.2
    assert {r["videos"] for r in rows} == {len(task["test_x"])}
    assert all(r["trials"] == (1 if r["ranking"] == "top" else 10) for r in rows)


def test_random_baselines_are_seeded(task, chunks):
    first = faithfulness_curves(task["model"], chunks[:1], ks=(2,), trials=3, seed=5, targets=("cells",))
    again = faithfulness_curves(task["model"], chunks[:1], ks=(2,), trials=3, seed=5, targets=("cells",))
    other = faithfulness_curves(task["model"], chunks[:1], ks=(2,), trials=3, seed=6, targets=("cells",))
    assert first == again and first != other


def test_selections_pick_the_top_of_the_explanation(chunks):
    chunk = chunks[-1]
    e = chunk.explanation
    concepts = selection_masks(chunk, "concepts", 2)[0]          # [b, T, C]
    assert torch.equal(concepts[:, 0, :].nonzero()[:, 1].view(-1, 2).sort(dim=1).values,
                       e.global_importance.topk(2, dim=1).indices.sort(dim=1).values)
    windows = selection_masks(chunk, "windows", 1)[0].any(dim=-1)
    assert torch.equal(windows.float().argmax(dim=1), e.window_importance.argmax(dim=1))
    random = selection_masks(chunk, "windows", 100, trials=2, seed=0)
    assert torch.equal(random.any(dim=-1), chunk.valid[None].expand(2, -1, -1))  # k > T: all valid windows, no padding
    cells = selection_masks(chunk, "cells", 3, trials=4, seed=0)
    assert cells.shape[0] == 4 and bool((cells.sum(dim=(2, 3)) == 3).all())


def test_fast_repooling_equals_the_model_intervention(task, chunks):
    model, chunk = task["model"], chunks[-1]
    edit = selection_masks(chunk, "cells", 5, trials=3, seed=1)
    fast = edited_logits(model, chunk, edit)
    for n in range(3):
        reference = model(chunk.x, chunk.padding_mask,
                          concept_intervention=ConceptIntervention(mode="zero", mask=edit[n])).logits
        torch.testing.assert_close(fast[n], reference, atol=1e-5, rtol=1e-5)


def test_per_video_attention_intervention_equals_per_video_runs(task, chunks):
    model, chunk = task["model"], chunks[-1]
    selection = torch.zeros(chunk.x.shape[0], len(CONCEPT_NAMES), dtype=torch.bool)
    for i in range(len(selection)):
        selection[i, [i % 3, 3 + i % 5]] = True
    batched = model(chunk.x, chunk.padding_mask,
                    attention_intervention=AttentionIntervention(kind="reverse", selection=selection)).logits
    for i in range(len(selection)):
        length = int(chunk.valid[i].sum())
        single = model(chunk.x[i:i + 1, :length], attention_intervention=AttentionIntervention(
            "reverse", concepts=selection[i].nonzero().squeeze(1).tolist())).logits
        torch.testing.assert_close(batched[i:i + 1], single, atol=1e-5, rtol=1e-5)


def test_attention_interventions_equal_the_explicit_path(task, chunks):
    """The evaluation runs the top-k and random selections of a chunk as alternatives of one pass (a small
    budget splits them into groups), editing only the chosen concepts on the fast path; its rows equal
    those of the same model writing out every [C, T, T] map."""
    model = task["model"]
    explicit = TemporalConceptBottleneck(len(CONCEPT_NAMES), len(CLASS_NAMES), dropout=0.0,
                                         attention_impl="explicit").eval()
    explicit.load_state_dict(model.state_dict())
    fast_rows = attention_interventions(model, chunks, ks=(1, 3), trials=3, seed=2, budget=3 * 14 * 16 * 8)
    explicit_rows = attention_interventions(explicit, chunks, ks=(1, 3), trials=3, seed=2, budget=3 * 14 * 16 * 8)
    assert len(fast_rows) == 4 * 2 * 2
    for fast_row, explicit_row in zip(fast_rows, explicit_rows):
        assert fast_row.keys() == explicit_row.keys()
        for name, value in fast_row.items():
            assert value == pytest.approx(explicit_row[name], abs=1e-6), (fast_row, name)


# --- corrective interventions ---------------------------------------------------------------------------------


def test_corrective_edits_on_a_hand_built_case():
    """Two windows, two concepts, class k reads concept k. Video 0 is predicted 0 but is class 1.

    z = [[2, .5], [1, .8]]: quantiles over time, concept 0: q10 = 1.1, q90 = 1.9; concept 1: q10 = .53,
    q90 = .77. π_pred = softmax([2, 1]), π_true = softmax([.5, .8]).
    Gains (v − z)·(π_true W_true − π_pred W_pred):
    cell (0,0) lowered to 1.1: .9·π_pred[0] = .658; cell (0,1) raised to .77: .27·π_true[0] = .115;
    the other two cells only lose margin, so the oracle stops after two edits.
    """
    z = torch.tensor([[[2.0, 0.5], [1.0, 0.8]]])
    mask = torch.zeros(1, 2, dtype=torch.bool)
    weight, bias = torch.eye(2), torch.zeros(2)
    edits = corrective_edits(z, mask, weight, bias, 1.0, torch.tensor([0]), torch.tensor([1]), max_edits=4)
    assert edits.cells[0, :2].tolist() == [[0, 0], [0, 1]]
    torch.testing.assert_close(edits.values[0, :2], torch.tensor([1.1, 0.77]))
    pi_pred, pi_true = torch.softmax(torch.tensor([2.0, 1.0]), 0), torch.softmax(torch.tensor([0.5, 0.8]), 0)
    torch.testing.assert_close(edits.gains[0, :2], torch.stack([0.9 * pi_pred[0], 0.27 * pi_true[0]]))
    assert not bool(torch.isfinite(edits.gains[0, 2:]).any())
    once = apply_cell_edits(z, edits, 1)
    torch.testing.assert_close(once, torch.tensor([[[1.1, 0.5], [1.0, 0.8]]]))
    assert torch.equal(apply_cell_edits(z, edits, 4), apply_cell_edits(z, edits, 2))
    # still class 0 after both edits: log(e^1.1 + e^1) > log(e^.77 + e^.8)
    logits = torch.logsumexp(apply_cell_edits(z, edits, 2)[0] @ weight.T, dim=0)
    assert int(logits.argmax()) == 0


def test_corrective_edits_repair_when_evidence_is_edited():
    """Class 1 is supported by concept 1 in a single low window: raising it to its q90 repairs it."""
    z = torch.tensor([[[1.0, 0.0], [1.2, 0.0], [0.0, 3.0], [0.0, 0.2]]])
    weight, bias = torch.tensor([[1.0, 0.0], [0.0, 0.45]]), torch.zeros(2)
    pred = torch.logsumexp(z[0] @ weight.T, dim=0)
    assert int(pred.argmax()) == 0
    edits = corrective_edits(z, torch.zeros(1, 4, dtype=torch.bool), weight, bias, 1.0, torch.tensor([0]),
                             torch.tensor([1]), max_edits=2)
    assert edits.cells[0, 0].tolist() == [1, 0]  # the strongest wrong-class cell is lowered first
    repaired = torch.logsumexp(apply_cell_edits(z, edits, 2)[0] @ weight.T, dim=0)
    assert int(repaired.argmax()) == 1


# --- metrics ---------------------------------------------------------------------------------------


def test_roc_auc_equals_pair_counting_with_ties():
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (40, 3), generator=g).float()
    labels = torch.rand(40, 3, generator=g) > 0.6
    labels[:, 2] = False
    auc = roc_auc_per_column(scores, labels)
    for c in range(2):
        pos, neg = scores[labels[:, c], c], scores[~labels[:, c], c]
        pairs = (pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()
        assert float(auc[c]) == pytest.approx(float(pairs.mean()), abs=1e-6)
    assert math.isnan(float(auc[2]))


def test_sparsity_counts_and_effective_concepts():
    weight = torch.tensor([[1.0, 1.0, 0.0, 0.0], [2.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    s = classifier_sparsity(weight)
    assert s["nonzero_per_class"] == [2, 1, 0] and s["concepts_used"] == 2
    assert s["effective_concepts_per_class"] == pytest.approx([2.0, 1.0, 0.0])


def test_localisation_and_recovery_by_hand():
    pi = torch.tensor([[0.1, 0.7, 0.2, 0.0], [0.5, 0.2, 0.3, 0.0]])
    padding = torch.tensor([[False, False, False, True], [False, False, False, True]])
    truth = torch.zeros(2, 4, 3, dtype=torch.bool)
    truth[0, 1, 0] = True           # video 0: its top window shows concept 0
    truth[1, 1, 2] = True           # video 1: concept 2 only in its second window
    defining = torch.tensor([[True, False, False], [False, False, True]])
    torch.testing.assert_close(temporal_localisation(pi, padding, truth, defining, top=1), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(temporal_localisation(pi, padding, truth, defining, top=2), torch.tensor([0.5, 0.0]))
    g = torch.tensor([[0.5, 0.9, 0.3, 0.2, 0.0], [0.5, 0.4, 0.3, 0.2, 0.1]])
    defining = torch.tensor([[True, True, False, False, False], [True, False, False, True, False]])
    all_, any_ = concept_recovery(g, defining, top=3)
    assert all_.tolist() == [True, False] and any_.tolist() == [True, True]


# --- evaluate_run and its outputs ------------------------------------------------------------------------------


def _test_videos(task) -> list[ConceptSequence]:
    return [ConceptSequence(f"video{i}", x, int(y), spans_of(len(x)))
            for i, (x, y) in enumerate(zip(task["test_x"], task["test_y"]))]


def test_evaluate_run_writes_every_table(task, tmp_path):
    truth = GroundTruth(window_concepts=task["test_truth"], class_concepts=[[0], [1], [2]],
                        labelled=torch.tensor([True] * 3 + [False] * (len(CONCEPT_NAMES) - 3)))
    result = evaluate_run(task["model"], _test_videos(task), class_names=CLASS_NAMES, concept_names=CONCEPT_NAMES,
                          ground_truth=truth, ks=(1, 2, 20), attention_ks=(1,), trials=2)
    assert {r["k"] for r in result.faithfulness if r["target"] == "concepts"} == {1, 2}  # k > C skipped
    assert {r["kind"] for r in result.attention} == {"identity", "uniform", "reverse", "shuffle"}
    g = result.ground_truth
    assert g["concept_auc_mean"] > 0.95 and set(g["concept_auc"]) == set(CONCEPT_NAMES[:3])
    assert g["localisation"] > 0.8 > g["localisation_chance"] and g["recovery_all"] > 0.8
    headline = result.headline()
    assert headline["accuracy"] == result.accuracy["top1"] > 0.8
    logged = _FakeWandbRun()
    paths = write_evaluation(result, tmp_path, wandb_run=logged)
    for name in ("evaluation.json", "headline.json", "faithfulness.csv", "faithfulness_remove.png",
                 "faithfulness_keep.png", "attention_interventions.csv", "attention_interventions.png",
                 "corrective.csv", "sparsity.csv", "sparsity.png", "concept_auc.csv", "concept_auc.png"):
        assert (tmp_path / name).is_file(), name
    with open(paths["faithfulness_csv"]) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.faithfulness) and {"target", "mode", "k", "ranking", "prob_drop_std"} <= set(rows[0])
    saved = json.loads(paths["json"].read_text())
    assert saved["corrective"]["edits"] == [1, 2, 3, 4] and saved["headline"] == json_safe(headline)
    import wandb

    (payload,) = logged.calls
    assert payload["eval/accuracy"] == headline["accuracy"]
    assert isinstance(payload["eval/faithfulness"], wandb.Table) and isinstance(payload["eval/faithfulness_remove"],
                                                                                wandb.Image)


class _FakeWandbRun:
    """Records what would be logged to a wandb run."""

    def __init__(self):
        self.calls = []

    def log(self, payload):
        self.calls.append(payload)


def test_summaries_over_splits(task):
    result = evaluate_run(task["model"], _test_videos(task)[:12], class_names=CLASS_NAMES,
                          concept_names=CONCEPT_NAMES, ks=(1,), trials=2, attention=False)
    other = evaluate_run(task["model"], _test_videos(task)[12:], class_names=CLASS_NAMES,
                         concept_names=CONCEPT_NAMES, ks=(1,), trials=2, attention=False)
    summary = summarise_splits({"1": result, "2": other})
    accuracy = [result.accuracy["top1"], other.accuracy["top1"]]
    assert summary["mean_std"]["accuracy"]["mean"] == pytest.approx(sum(accuracy) / 2)
    assert summary["mean_std"]["accuracy"]["std"] == pytest.approx(float(torch.tensor(accuracy).std()))


@pytest.mark.slow
def test_evaluate_tool_on_a_training_run(tmp_path):
    """Train the synthetic order task for one epoch with tools/train.py's code, then evaluate the run dir."""
    from motif.config import load_config
    from motif.training.experiment import train_and_evaluate

    cfg = load_config(REPO / "configs" / "synthetic_order.yaml", [
        f"output_dir={tmp_path}", "name=run", "optim.max_epochs=1", "data.synthetic.num_videos=60",
        "data.synthetic.feature_dim=64", "data.synthetic.num_concepts=12", "data.synthetic.max_windows=20",
        "baselines.zero_shot=false", "baselines.linear_probe=false", "baselines.mean_cbm=false",
        "baselines.full_attention=false", "baselines.time_shuffle=false", "logger.wandb.mode=disabled",
        "trainer.progress_bar=false", "trainer.accelerator=cpu"])
    train_and_evaluate(cfg)
    tool = load_tool("evaluate")
    assert tool.main(["--run", str(tmp_path / "run"), "--trials", "2", "--device", "cpu"]) == 0
    saved = json.loads((tmp_path / "run" / "evaluation" / "evaluation.json").read_text())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["accuracy"]["top1"] == pytest.approx(metrics["test_acc"], abs=1e-6)
    assert saved["settings"]["num_videos"] == metrics["num_test"]
    assert tool.main(["--run", str(tmp_path / "missing")]) == 2
