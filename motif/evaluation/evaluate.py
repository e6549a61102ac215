"""Evaluation of a trained bottleneck on a test set: accuracy, faithfulness of its explanations,
attention and corrective interventions, sparsity, and ground-truth metrics where concept labels
exist. Tables go to CSV + JSON, curves to PNG, and optionally to a wandb run."""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from motif.evaluation.faithfulness import (
    ATTENTION_KS,
    FAITHFULNESS_KS,
    EvalChunk,
    attention_interventions,
    corrective_interventions,
    faithfulness_curves,
    prepare_chunks,
)
from motif.evaluation.meaning import meaning_metrics
from motif.evaluation.metrics import classifier_sparsity, concept_recovery, temporal_localisation
from motif.model import TemporalConceptBottleneck, fold_views
from motif.plots.figures import bar_figure, faithfulness_figure, grouped_bars_figure, line_figure, save_figure
from motif.sequences import ConceptSequence, pad_sequences
from motif.stats import mean_std, roc_auc_per_column

log = logging.getLogger(__name__)

MEANING_HEADLINE = ("absent_importance_share", "absent_in_top3_rate", "identical_windows_max_deviation",
                    "zero_evidence_max_z_ratio")
METRIC_LABELS = (("accuracy", "accuracy"), ("agreement", "agreement with the unedited prediction"),
                 ("prob_drop", "drop of the predicted-class probability"))


@dataclass
class GroundTruth:
    """Per-window concept labels of the test videos.

    window_concepts: [T_i, C] bool per test video (same order as the test list), columns = the
    model's concepts; labelled: [C] bool, the concepts the labels cover (None = all);
    class_concepts: the class-defining concept indices of each class; evidence_concepts: per class,
    the concepts whose presence marks the windows that hold the class's evidence (None = the
    class-defining ones).
    """

    window_concepts: list[Tensor]
    class_concepts: list[list[int]]
    labelled: Tensor | None = None
    evidence_concepts: list[list[int]] | None = None


@dataclass
class EvaluationResult:
    """All tables of one evaluated test set (plain JSON types)."""

    accuracy: dict
    faithfulness: list[dict]
    attention: list[dict]
    corrective: dict
    sparsity: dict
    ground_truth: dict | None
    settings: dict
    seconds: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    def headline(self) -> dict[str, float]:
        """The scalar summary: accuracy, top-k vs random probability drops, repair rates, sparsity,
        ground-truth scores."""
        out = {"accuracy": self.accuracy["top1"], "accuracy_top5": self.accuracy["top5"]}
        for row in self.faithfulness:
            if row["mode"] == "remove" and row["k"] in (1, 5):
                out[f"remove_{row['target']}_k{row['k']}_prob_drop_{row['ranking']}"] = row["prob_drop"]
        for n, rate in zip(self.corrective["edits"], self.corrective["repair_rate"]):
            out[f"repair_rate_{n}_edits"] = rate
        out["nonzero_weights_per_class"] = self.sparsity["nonzero_per_class_mean"]
        out["effective_concepts_per_class"] = self.sparsity["effective_concepts_mean"]
        if self.ground_truth:
            for key in ("concept_auc_mean", "localisation", "localisation_chance", "recovery_all", "recovery_any",
                        *MEANING_HEADLINE):
                out[key] = self.ground_truth[key]
        return out


def _accuracy(chunks: Sequence[EvalChunk], num_classes: int) -> dict:
    correct = torch.zeros(num_classes, dtype=torch.long)
    counts = torch.zeros(num_classes, dtype=torch.long)
    top5 = 0
    for chunk in chunks:
        labels = chunk.labels.cpu()
        hit = (chunk.predicted.cpu() == labels).long()
        correct.index_add_(0, labels, hit)
        counts.index_add_(0, labels, torch.ones_like(labels))
        rank = (chunk.logits > chunk.logits.gather(1, chunk.labels[:, None])).sum(dim=1)
        top5 += int((rank < 5).sum())
    total = int(counts.sum())
    per_class = [float(c) / float(n) if n else math.nan for c, n in zip(correct.tolist(), counts.tolist())]
    return {"top1": float(correct.sum()) / total, "top5": top5 / total, "num_videos": total,
            "per_class": per_class, "videos_per_class": counts.tolist()}


def _class_mask(indices: Sequence[Sequence[int]], labels: Tensor, num_concepts: int) -> Tensor:
    """[b, C] bool: the concepts listed for each video's class."""
    table = torch.zeros(len(indices), num_concepts, dtype=torch.bool)
    for k, concepts in enumerate(indices):
        table[k, list(concepts)] = True
    return table.to(labels.device)[labels]


def _ground_truth_metrics(model: TemporalConceptBottleneck, chunks: Sequence[EvalChunk],
                          test: Sequence[ConceptSequence], truth: GroundTruth, concept_names: Sequence[str],
                          localisation_top: int, recovery_top: int, statistics: tuple[Tensor, Tensor] | None,
                          device: str | torch.device) -> dict:
    num_concepts = len(concept_names)
    labelled = truth.labelled if truth.labelled is not None else torch.ones(num_concepts, dtype=torch.bool)
    scores = torch.cat([v.concepts.float() for v in test])
    labels = torch.cat([w.bool() for w in truth.window_concepts])
    if labels.shape != scores.shape:
        raise ValueError(f"ground-truth window labels {list(labels.shape)} do not match the test activations "
                         f"{list(scores.shape)} (all windows x concepts); were they built with another window plan?")
    auc = roc_auc_per_column(scores[:, labelled], labels[:, labelled])
    auc_by_name = {concept_names[c]: float(a) for c, a in zip(labelled.nonzero().squeeze(1).tolist(), auc)}
    evidence = truth.evidence_concepts or truth.class_concepts
    local, chance, recovered_all, recovered_any = [], [], [], []
    for chunk in chunks:
        correct = chunk.predicted == chunk.labels
        if not bool(correct.any()):
            continue
        windows, _ = pad_sequences([truth.window_concepts[int(i)].bool() for i in chunk.positions])
        windows = windows.to(chunk.z.device)[correct]
        mask, labels_k = chunk.padding_mask[correct], chunk.labels[correct]
        evidence_mask = _class_mask(evidence, labels_k, num_concepts)
        local.append(temporal_localisation(chunk.explanation.window_importance[correct], mask, windows,
                                           evidence_mask, localisation_top))
        holds = (windows & evidence_mask[:, None, :]).any(dim=-1) & ~mask
        chance.append(holds.sum(dim=1).double() / (~mask).sum(dim=1).double())
        all_, any_ = concept_recovery(fold_views(chunk.explanation.global_importance[correct], num_concepts),
                                      _class_mask(truth.class_concepts, labels_k, num_concepts), recovery_top)
        recovered_all.append(all_)
        recovered_any.append(any_)
    return {"concept_auc_mean": float(auc.nanmean()) if auc.numel() else math.nan, "concept_auc": auc_by_name,
            "localisation": _mean_of(local), "localisation_chance": _mean_of(chance),
            "localisation_top": localisation_top, "recovery_all": _mean_of(recovered_all),
            "recovery_any": _mean_of(recovered_any), "recovery_top": recovery_top,
            "videos_scored": int(sum(len(p) for p in local)),
            **meaning_metrics(model, chunks, [v.concepts for v in test], truth.window_concepts, labelled, concept_names,
                              statistics=statistics, device=device)}


def _mean_of(parts: list[Tensor]) -> float:
    return float(torch.cat(parts).double().mean()) if parts else math.nan


def evaluate_run(model: TemporalConceptBottleneck, test: Sequence[ConceptSequence], *, class_names: Sequence[str],
                 concept_names: Sequence[str], ground_truth: GroundTruth | None = None,
                 ks: Sequence[int] = FAITHFULNESS_KS, attention_ks: Sequence[int] = ATTENTION_KS, trials: int = 10,
                 attention_trials: int | None = None, seed: int = 0, max_edits: int = 4, localisation_top: int = 1,
                 recovery_top: int = 3, statistics: tuple[Tensor, Tensor] | None = None,
                 device: str | torch.device = "cpu", attention: bool = True) -> EvaluationResult:
    """Evaluate ``model`` on ``test`` (standardised concept sequences X [T, C] with their labels).

    Faithfulness: remove / keep-only top-k concepts (G), windows (π), cells (r) vs k random ones
    (``trials`` seeded trials); attention interventions on the top-k vs random concepts
    (``attention_trials``, default ``trials``; each trial is a full forward pass); oracle
    corrective edits (up to ``max_edits``); classifier sparsity; with ``ground_truth``: concept
    detection AUC of the input scores (X is an increasing function of the raw score clamp(cos, 0)
    per concept, so it has the raw scores' AUC), temporal localisation (top-``localisation_top`` windows by π)
    and concept recovery (all / any class-defining concepts in the top ``recovery_top`` of G, a concept's G
    summed over its views) over correctly classified videos, and the meaning metrics of
    ``motif.evaluation.meaning`` (absent concepts' share of the explanation, identical-windows and
    zero-evidence probes; the latter needs ``statistics``, the standardiser's (mean, std) [C]).
    """
    if not test:
        raise ValueError("evaluate_run: the test set is empty")
    if ground_truth is not None and len(ground_truth.window_concepts) != len(test):
        raise ValueError(f"ground truth has {len(ground_truth.window_concepts)} videos, the test set {len(test)}")
    seconds = {}
    clock = time.perf_counter()
    model = model.eval().to(device)
    chunks = prepare_chunks(model, [v.concepts for v in test], [v.label for v in test], device=device)
    accuracy = _accuracy(chunks, len(class_names))
    seconds["forward"] = time.perf_counter() - clock
    clock = time.perf_counter()
    faithfulness = faithfulness_curves(model, chunks, ks=ks, trials=trials, seed=seed)
    seconds["faithfulness"] = time.perf_counter() - clock
    clock = time.perf_counter()
    attention_rows = []
    if attention:
        attention_rows = attention_interventions(model, chunks, ks=attention_ks, seed=seed,
                                                 trials=trials if attention_trials is None else attention_trials)
    seconds["attention"] = time.perf_counter() - clock
    clock = time.perf_counter()
    corrective = corrective_interventions(model, chunks, max_edits=max_edits)
    seconds["corrective"] = time.perf_counter() - clock
    truth = None
    if ground_truth is not None:
        clock = time.perf_counter()
        truth = _ground_truth_metrics(model, chunks, test, ground_truth, concept_names, localisation_top, recovery_top,
                                      statistics, device)
        seconds["ground_truth"] = time.perf_counter() - clock
    log.info("Evaluated %d test videos in %s", len(test), ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    sparsity = classifier_sparsity(model.classifier.weight)
    sparsity["class_names"] = list(class_names)
    settings = {"ks": list(ks), "attention_ks": list(attention_ks), "trials": trials,
                "attention_trials": trials if attention_trials is None else attention_trials, "seed": seed,
                "max_edits": max_edits, "num_videos": len(test), "num_concepts": len(concept_names),
                "num_classes": len(class_names), "variant": model.variant, "tau": model.tau,
                "removal": "zero the concept activations z of the selected concepts / windows / cells"}
    return EvaluationResult(accuracy=accuracy, faithfulness=faithfulness, attention=attention_rows,
                            corrective=corrective, sparsity=sparsity, ground_truth=truth, settings=settings,
                            seconds=seconds)


def json_safe(value: Any) -> Any:
    """``value`` with NaN and infinities replaced by None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _attention_figure(rows: Sequence[dict]):
    k = max(r["k"] for r in rows)
    kinds = list(dict.fromkeys(r["kind"] for r in rows))
    panels = {}
    for key, label in METRIC_LABELS:
        series = {}
        for ranking, name in (("top", f"top-{k} concepts by G"), ("random", f"{k} random concepts")):
            sel = {r["kind"]: r for r in rows if r["k"] == k and r["ranking"] == ranking}
            series[name] = ([sel[kind][key] for kind in kinds], [sel[kind][f"{key}_std"] for kind in kinds])
        panels[label] = series
    return grouped_bars_figure(kinds, panels, title=f"Attention interventions on {k} concepts (error bars: ± std "
                                                    "over random trials)")


def write_evaluation(result: EvaluationResult, out_dir: str | Path, *, wandb_run: Any = None) -> dict[str, Path]:
    """Write evaluation.json, CSV tables and PNG plots into ``out_dir``; log them to ``wandb_run``
    (a wandb Run or a Lightning WandbLogger) when given."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "evaluation.json"}
    paths["json"].write_text(json.dumps(json_safe({**result.to_dict(), "headline": result.headline()}), indent=1))
    paths["headline"] = out / "headline.json"
    paths["headline"].write_text(json.dumps(json_safe(result.headline()), indent=1))
    paths["faithfulness_csv"] = _write_csv(out / "faithfulness.csv", result.faithfulness)
    for mode in ("remove", "keep"):
        if any(r["mode"] == mode for r in result.faithfulness):
            paths[f"faithfulness_{mode}"] = save_figure(
                faithfulness_figure(result.faithfulness, mode=mode, metrics=METRIC_LABELS),
                out / f"faithfulness_{mode}.png")
    if result.attention:
        paths["attention_csv"] = _write_csv(out / "attention_interventions.csv", result.attention)
        paths["attention_plot"] = save_figure(_attention_figure(result.attention), out / "attention_interventions.png")
    c = result.corrective
    paths["corrective_csv"] = _write_csv(out / "corrective.csv", [
        {"edits": n, "repair_rate": rate, "repaired": rep, "eligible": c["eligible"]}
        for n, rate, rep in zip(c["edits"], c["repair_rate"], c["repaired"])])
    if c["eligible"]:
        paths["corrective_plot"] = save_figure(line_figure(
            c["edits"], c["repair_rate"], xlabel="concept edits", ylabel="top-1 repair rate",
            title=f"Oracle corrective edits ({c['eligible']} misclassified videos, true class in top {c['top']})"),
            out / "corrective.png")
    s = result.sparsity
    paths["sparsity_csv"] = _write_csv(out / "sparsity.csv", [
        {"class": name, "nonzero_weights": n, "effective_concepts": e}
        for name, n, e in zip(s["class_names"], s["nonzero_per_class"], s["effective_concepts_per_class"])])
    paths["sparsity_plot"] = save_figure(bar_figure(
        s["class_names"], s["nonzero_per_class"],
        xlabel=f"non-zero classifier weights (of {s['num_concepts']} concepts)",
        title="Sparsity: concepts used per class"), out / "sparsity.png")
    if result.ground_truth:
        g = result.ground_truth
        paths["concept_auc_csv"] = _write_csv(out / "concept_auc.csv",
                                              [{"concept": k, "auc": v} for k, v in g["concept_auc"].items()])
        scored = {k: v for k, v in g["concept_auc"].items() if math.isfinite(v)}
        paths["concept_auc_plot"] = save_figure(bar_figure(
            list(scored), list(scored.values()), xlabel="ROC-AUC of the raw concept scores",
            title=f"Concept detection (mean AUC {g['concept_auc_mean']:.3f})", reference=0.5), out / "concept_auc.png")
    if wandb_run is not None:
        log_to_wandb(result, wandb_run, paths)
    return paths


def log_to_wandb(result: EvaluationResult, run: Any, paths: Mapping[str, Path], prefix: str = "eval/") -> None:
    """Log the headline scalars, the tables and the plots to a wandb run (or Lightning WandbLogger)."""
    import wandb

    run = getattr(run, "experiment", run)
    payload: dict[str, Any] = {f"{prefix}{k}": v for k, v in result.headline().items()}
    for name, rows in (("faithfulness", result.faithfulness), ("attention_interventions", result.attention)):
        if rows:
            columns = list(rows[0])
            payload[f"{prefix}{name}"] = wandb.Table(columns=columns, data=[[r[c] for c in columns] for r in rows])
    for name, path in paths.items():
        if path.suffix == ".png":
            payload[f"{prefix}{name}"] = wandb.Image(str(path))
    run.log(payload)


def summarise_splits(results: Mapping[str, EvaluationResult]) -> dict:
    """Headline scalars per split and their mean ± std over splits."""
    per_split = {split: r.headline() for split, r in results.items()}
    keys = list(dict.fromkeys(k for h in per_split.values() for k in h))
    summary = {}
    for key in keys:
        mean, std = mean_std([h[key] for h in per_split.values() if key in h and not math.isnan(h[key])])
        summary[key] = {"mean": mean, "std": std}
    return {"splits": per_split, "mean_std": summary}


def format_headline(headline: Mapping[str, float]) -> str:
    """A short text summary of ``EvaluationResult.headline()``."""
    width = max(len(k) for k in headline)
    return "\n".join(f"{k:<{width}}  {v:.4f}" for k, v in headline.items())
