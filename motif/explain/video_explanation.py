"""Explanation of one video: prediction, exact decomposition, windows, concepts, attention maps and
interventions with their before / after (spec sections 5 and 6).

The numbers come from the model's own explanation math (``motif.model.explain_class``) and its own
interventions; this module selects, orders and packages them for people (``to_dict``).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field, fields
from typing import Sequence

import torch
from torch import Tensor

from motif.errors import MotifError
from motif.explain.intervention_syntax import InterventionSpec, parse_interventions
from motif.model import (
    AttentionIntervention,
    BottleneckOutput,
    ConceptIntervention,
    Explanation,
    TemporalConceptBottleneck,
    explain,
    fold_views,
)
from motif.model.corrections import corrective_edits

RESIDUAL_TOLERANCE = 1e-4
MAX_ATTENTION_ELEMENTS = 2 ** 28   # C·T²·L elements of explicit maps (1 GiB in float32)
MAX_JSON_ATTENTION_WINDOWS = 256   # larger maps are drawn but not written into explanation.json
MIN_SHOWN_RELEVANCE = 0.01         # a window lists concepts with at least 1 % of its largest relevance


class ExplanationError(MotifError, ValueError):
    """The inputs to an explanation are inconsistent (shapes, names, unknown class)."""


@dataclass
class InterventionOutcome:
    """The same class explained before and after a set of interventions (unbatched tensors)."""

    specs: list[InterventionSpec]
    before: BottleneckOutput
    after: BottleneckOutput
    before_explanation: Explanation
    after_explanation: Explanation


@dataclass
class VideoExplanation:
    """Everything shown about one video.

    spans [T, 2] seconds; output: the model's output for this video without batch dim (concepts
    z [T, C], window_logits [T, K], logits [K], pooled_concepts [C]); explanation: the decomposition
    of class ``explanation.class_index`` (r [T, C], π [T], G [C], b, H, residual); class_weight:
    that class's classifier weights W[k] [C]; attention_concepts: indices of the n concepts whose
    maps are kept; attention_maps [L, n, T, T] or None (with ``attention_note`` saying why);
    model_info / video_info: plain facts shown in the report (τ, variant, file name, ...);
    suggested_edits: when the explained class is not the prediction, the oracle's concept edits
    that move the prediction towards it (``corrective_edits``), each with its --intervene syntax
    (models with one view per concept only: an edit of one view has no --intervene syntax);
    classifier_weight [K, C] / classifier_bias [K]: the readout after z (ℓ = z Wᵀ + b), which lets
    report.html recompute logits, π and G under concept edits.
    """

    video_id: str
    class_names: list[str]
    concept_names: list[str]   # names of the channels of z: the concepts, then "NAME (view)" for further views
    spans: Tensor
    output: BottleneckOutput
    explanation: Explanation
    class_weight: Tensor
    model_info: dict = field(default_factory=dict)
    video_info: dict = field(default_factory=dict)
    attention_concepts: list[int] = field(default_factory=list)
    attention_maps: Tensor | None = None
    attention_note: str = ""
    intervention: InterventionOutcome | None = None
    suggested_edits: list[dict] = field(default_factory=list)
    classifier_weight: Tensor | None = None
    classifier_bias: Tensor | None = None

    @property
    def probabilities(self) -> Tensor:
        """Softmax of the pooled logits, [K]."""
        return self.output.logits.softmax(dim=-1)

    @property
    def predicted(self) -> int:
        return int(self.output.logits.argmax())

    @property
    def target(self) -> int:
        """The explained class."""
        return int(self.explanation.class_index)

    def top_concepts(self, n: int = 5) -> list[int]:
        """Indices of the (at most) n concepts with the largest global importance G, leaving out
        concepts that contribute nothing (G = 0) unless none contributes."""
        g = self.explanation.global_importance
        order = g.argsort(descending=True)[:n].tolist()
        return [c for c in order if float(g[c]) > 0.0] or order[:1]

    def top_windows(self, n: int = 3) -> list[int]:
        """Indices of the n windows with the largest importance π."""
        return self.explanation.window_importance.argsort(descending=True)[:n].tolist()

    def to_dict(self, top_classes: int = 5, concepts_per_window: int = 5) -> dict:
        """The content of explanation.json (plain JSON types)."""
        e, names = self.explanation, self.concept_names
        spans = self.spans.tolist()
        z, r = self.output.concepts, e.relevance
        windows = []
        for t in range(len(spans)):
            order = r[t].argsort(descending=True)[:concepts_per_window].tolist()
            floor = MIN_SHOWN_RELEVANCE * float(r[t].max())
            windows.append({
                "index": t, "start_s": round(spans[t][0], 4), "end_s": round(spans[t][1], 4),
                "importance": float(e.window_importance[t]), "score": float(e.window_scores[t]),
                "top_concepts": [{"concept": names[c], "index": c, "relevance": float(r[t, c]),
                                  "activation": float(z[t, c])} for c in order if float(r[t, c]) > max(floor, 0.0)],
            })
        peak_window = (e.window_importance[:, None] * r).argmax(dim=0)
        global_rows = [{"concept": names[c], "index": c, "G": float(e.global_importance[c]),
                        "weight": float(self.class_weight[c]),
                        "peak_window": int(peak_window[c]),
                        "peak_time": round(float(self.spans[peak_window[c]].mean()), 2)}
                       for c in e.global_importance.argsort(descending=True).tolist()]
        out = {
            "video": {"id": self.video_id, "num_windows": len(spans),
                      "duration_s": float(self.spans[-1, 1] - self.spans[0, 0]) if spans else 0.0,
                      **self.video_info},
            "model": dict(self.model_info),
            "prediction": self._class_row(self.predicted),
            "explained_class": {**self._class_row(self.target), "bias": float(e.bias), "tau": e.tau},
            "top_classes": [self._class_row(k)
                            for k in self.probabilities.argsort(descending=True)[:top_classes].tolist()],
            "decomposition": decomposition_dict(e),
            "global_importance": global_rows,
            "windows": windows,
            "attention": self._attention_dict(),
        }
        if self.intervention is not None:
            out["intervention"] = self._intervention_dict(self.intervention, top_classes)
        if self.suggested_edits:
            out["suggested_edits"] = self.suggested_edits
        return out

    def _class_row(self, k: int, output: BottleneckOutput | None = None) -> dict:
        output = output or self.output
        return {"class": self.class_names[k], "index": k, "probability": float(output.logits.softmax(-1)[k]),
                "logit": float(output.logits[k])}

    def _attention_dict(self) -> dict:
        if self.attention_maps is None:
            return {"note": self.attention_note}
        block: dict = {"concepts": [self.concept_names[c] for c in self.attention_concepts],
                       "concept_indices": list(self.attention_concepts), "layers": int(self.attention_maps.shape[0]),
                       "axes": "[layer][concept][query window][key window]"}
        if self.attention_maps.shape[-1] <= MAX_JSON_ATTENTION_WINDOWS:
            block["maps"] = [[[[round(v, 5) for v in row] for row in m] for m in layer]
                             for layer in self.attention_maps.tolist()]
        else:
            block["note"] = (f"maps of {self.attention_maps.shape[-1]} windows are shown in attention.png but not "
                             f"written here (limit {MAX_JSON_ATTENTION_WINDOWS} windows)")
        return block

    def _intervention_side(self, output: BottleneckOutput, explanation: Explanation, top_classes: int) -> dict:
        order = output.logits.argsort(descending=True).tolist()
        return {"predicted": self.class_names[order[0]], "logit": float(explanation.logit),
                "probability": float(output.logits.softmax(-1)[self.target]),
                "top_classes": [self._class_row(k, output) for k in order[:top_classes]],
                "all_classes": [self._class_row(k, output) for k in range(len(self.class_names))],
                "top_concepts": [{"concept": self.concept_names[c], "G": float(explanation.global_importance[c])}
                                 for c in explanation.global_importance.argsort(descending=True)[:5].tolist()],
                "residual": float(explanation.residual)}

    def _intervention_dict(self, outcome: InterventionOutcome, top_classes: int) -> dict:
        return {"specs": [s.text for s in outcome.specs], "class": self.class_names[self.target],
                "before": self._intervention_side(outcome.before, outcome.before_explanation, top_classes),
                "after": self._intervention_side(outcome.after, outcome.after_explanation, top_classes)}


def decomposition_dict(e: Explanation) -> dict:
    """logit_k = Σ_c G[c] + b_k + H(π)/τ, its parts and the residual (unbatched Explanation)."""
    return {"logit": float(e.logit), "sum_global_importance": float(e.global_importance.sum()),
            "bias": float(e.bias), "entropy": float(e.entropy), "tau": e.tau,
            "entropy_over_tau": float(e.entropy / e.tau), "residual": float(e.residual),
            "tolerance": RESIDUAL_TOLERANCE}


def resolve_class(name: str | int | None, class_names: Sequence[str]) -> int | None:
    """Class index from a name (case-insensitive) or an index; None stays None (= the prediction)."""
    if name is None or isinstance(name, int):
        if isinstance(name, int) and not 0 <= name < len(class_names):
            raise ExplanationError(f"class index {name} does not exist (the model has {len(class_names)} classes)",
                                   where="--class")
        return name
    lookup = {c.lower().strip(): i for i, c in enumerate(class_names)}
    key = name.lower().strip()
    if key not in lookup:
        close = difflib.get_close_matches(key, list(lookup), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(class_names[lookup[c]]) for c in close)}?" if close else ""
        raise ExplanationError(f"--class {name!r} is not one of the model's {len(class_names)} classes.{hint}",
                               where="--class")
    return lookup[key]


def _unbatch(output: BottleneckOutput) -> BottleneckOutput:
    return BottleneckOutput(concepts=output.concepts[0], window_logits=output.window_logits[0], logits=output.logits[0],
                            pooled_concepts=output.pooled_concepts[0],
                            attentions=None if output.attentions is None else [a[0] for a in output.attentions])


def model_interventions(specs: Sequence[InterventionSpec]) -> tuple[list[ConceptIntervention],
                                                                     AttentionIntervention | None]:
    """The model's intervention objects for parsed specs (concept edits in the given order)."""
    concept_edits = []
    attention_concepts: list[int] = []
    attention_kind = None
    for spec in specs:
        if spec.kind == "attention":
            attention_kind = spec.attention
            attention_concepts.extend(spec.concepts)
            continue
        concept_edits.append(ConceptIntervention(mode=spec.kind, concepts=spec.concepts, windows=spec.windows,
                                                 cells=spec.cells, value=spec.value,
                                                 std=spec.value if spec.kind == "noise" else 1.0))
    attention = None
    if attention_kind is not None:
        attention = AttentionIntervention(kind=attention_kind, concepts=sorted(set(attention_concepts)))
    return concept_edits, attention


@torch.no_grad()
def run_with_interventions(model: TemporalConceptBottleneck, x: Tensor, padding_mask: Tensor | None = None, *,
                           concept_edits: Sequence[ConceptIntervention] = (),
                           attention: AttentionIntervention | None = None,
                           return_attention: bool = False) -> BottleneckOutput:
    """Forward with an attention intervention and any number of concept edits applied in order.

    x [B, T, C]; padding_mask [B, T] bool or None. Equivalent to ``model(x, concept_intervention=...)``
    for a single edit.
    """
    z, maps = model.encode_concepts(x, padding_mask, return_attention=return_attention,
                                    attention_intervention=attention)
    for edit in concept_edits:
        z = edit.apply(z, padding_mask, views=model.num_views)
    return model.readout(z, padding_mask, maps)


def _attention_budget_ok(model: TemporalConceptBottleneck, num_windows: int, max_elements: int) -> tuple[bool, str]:
    if not model.variant_spec.per_concept_maps:
        return False, (f"variant '{model.variant}' has no per-concept temporal maps (e.g. per-head maps that mix "
                       "concepts)")
    if model.num_attention_maps == 0:
        return False, "the model has no attention layer"
    size = model.num_concepts * num_windows ** 2 * model.num_attention_maps
    if size > max_elements:
        return False, (f"{num_windows} windows x {model.num_concepts} concepts x {model.num_attention_maps} maps would "
                       f"need {size * 4 / 2 ** 30:.1f} GiB of maps (limit {max_elements * 4 / 2 ** 30:.1f} GiB)")
    return True, ""


@torch.no_grad()
def explain_sequence(model: TemporalConceptBottleneck, x: Tensor, spans: Tensor, *, class_names: Sequence[str],
                     concept_names: Sequence[str], class_index: int | str | None = None,
                     interventions: Sequence[str | InterventionSpec] = (), video_id: str = "",
                     attention_concepts: int = 5, max_attention_elements: int = MAX_ATTENTION_ELEMENTS,
                     suggested_edits: int = 4, video_info: dict | None = None) -> VideoExplanation:
    """Explain one video from its standardised concept activations.

    x [T, C]; spans [T, 2] window spans in seconds; class_index: the class to explain (index or
    name; None = the prediction); interventions: strings in the syntax of
    ``motif.explain.intervention_syntax`` (or parsed specs), applied together for a before / after;
    suggested_edits: how many corrective edits to suggest when the explained class is not the
    prediction.
    """
    if x.dim() != 2 or x.shape[1] != model.num_concepts:
        raise ExplanationError(f"concept activations must be [T, C] with C = {model.num_concepts}, got {list(x.shape)}")
    if spans.shape != (x.shape[0], 2):
        raise ExplanationError(f"spans must be [T, 2] = [{x.shape[0]}, 2], got {list(spans.shape)}")
    if len(class_names) != model.num_classes or len(concept_names) != model.num_concepts:
        raise ExplanationError(f"the model has {model.num_classes} classes and {model.num_concepts} concepts, but "
                               f"{len(class_names)} class names and {len(concept_names)} concept names were given")
    model.eval()
    device = next(model.parameters()).device
    x = x.to(device=device, dtype=torch.float32)
    target = resolve_class(class_index, class_names)
    specs = [s for s in interventions if isinstance(s, InterventionSpec)]
    specs += parse_interventions([s for s in interventions if isinstance(s, str)], concept_names, x.shape[0])
    if not model.variant_spec.attention_interventions and any(s.kind == "attention" for s in specs):
        raise ExplanationError(f"attention interventions need per-concept temporal maps, which this model (variant "
                               f"'{model.variant}') does not have. Use concept interventions instead.")

    maps_ok, note = _attention_budget_ok(model, x.shape[0], max_attention_elements)
    output = _unbatch(model(x[None], return_attention=maps_ok))
    explanation = explain(model, output, class_index=target)
    result = VideoExplanation(
        video_id=video_id, class_names=list(class_names), concept_names=model.channel_names(list(concept_names)),
        spans=spans.detach().float().cpu(), output=_to_cpu(output), explanation=_explanation_to_cpu(explanation),
        class_weight=model.classifier.weight[explanation.class_index].detach().cpu(), attention_note=note,
        classifier_weight=model.classifier.weight.detach().float().cpu(),
        classifier_bias=model.classifier.bias.detach().float().cpu(),
        model_info={"tau": model.tau, "variant": model.variant, "num_layers": model.num_layers,
                    "num_concepts": model.num_concepts, "num_classes": model.num_classes,
                    "attention_maps": list(model.attention_map_names)},
        video_info=dict(video_info or {}))
    if maps_ok and output.attentions is not None:
        by_concept = fold_views(result.explanation.global_importance, model.num_concepts)
        chosen = [c for c in by_concept.argsort(descending=True)[:attention_concepts].tolist()
                  if float(by_concept[c]) > 0.0] or by_concept.argsort(descending=True)[:1].tolist()
        result.attention_concepts = chosen
        result.attention_maps = torch.stack([layer[chosen] for layer in output.attentions]).cpu()
    if result.target != result.predicted and model.num_views == 1:  # --intervene edits name concepts, not views
        result.suggested_edits = suggest_edits(model, result, max_edits=suggested_edits)
    if specs:
        edits, attention = model_interventions(specs)
        after = _unbatch(run_with_interventions(model, x[None], concept_edits=edits, attention=attention))
        result.intervention = InterventionOutcome(
            specs=list(specs), before=result.output, after=_to_cpu(after), before_explanation=result.explanation,
            after_explanation=_explanation_to_cpu(explain(model, after, class_index=result.target)))
    return result


def suggest_edits(model: TemporalConceptBottleneck, result: VideoExplanation, max_edits: int = 4) -> list[dict]:
    """Up to ``max_edits`` cell edits (oracle policy of ``corrective_edits``) that move the prediction of
    ``result`` towards its explained class, with the --intervene string that applies each."""
    weight, bias = model.classifier.weight.detach().cpu(), model.classifier.bias.detach().cpu()
    z = result.output.concepts[None]
    edits = corrective_edits(z, torch.zeros(z.shape[:2], dtype=torch.bool), weight, bias, model.tau,
                             torch.tensor([result.predicted]), torch.tensor([result.target]), max_edits)
    out = []
    for (t, c), value, gain in zip(edits.cells[0].tolist(), edits.values[0].tolist(), edits.gains[0].tolist()):
        if not math.isfinite(gain):
            break
        name = result.concept_names[c]
        out.append({"window": t, "concept": name, "index": c, "current": float(z[0, t, c]), "value": value,
                    "margin_gain": gain, "intervene": f"set:cell={t},{name},{value:.4g}"})
    return out


def _to_cpu(output: BottleneckOutput) -> BottleneckOutput:
    return BottleneckOutput(concepts=output.concepts.cpu(), window_logits=output.window_logits.cpu(),
                            logits=output.logits.cpu(), pooled_concepts=output.pooled_concepts.cpu(), attentions=None)


def _explanation_to_cpu(e: Explanation) -> Explanation:
    values = {f.name: getattr(e, f.name) for f in fields(e)}
    return Explanation(**{k: v.cpu() if isinstance(v, Tensor) else v for k, v in values.items()})
