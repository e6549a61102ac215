"""Baselines of spec section 7 and plain-torch evaluation of a trained bottleneck."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from motif.model import TemporalConceptBottleneck
from motif.sequences.batching import collate_sequences, length_sorted_batches
from motif.sequences.sequence import ConceptSequence


@dataclass
class Evaluation:
    """Accuracy of a classifier on a set of videos; logits [N, K] in the order of the items."""

    acc: float
    acc_top5: float
    logits: Tensor
    labels: Tensor


def _accuracies(logits: Tensor, labels: Tensor) -> Evaluation:
    top = min(5, logits.shape[1])
    pred = logits.argmax(dim=1)
    top5 = (logits.topk(top, dim=1).indices == labels[:, None]).any(dim=1)
    return Evaluation(float((pred == labels).float().mean()), float(top5.float().mean()), logits, labels)


def shuffle_windows(items: Sequence[ConceptSequence], seed: int) -> list[ConceptSequence]:
    """The same videos with their windows permuted in time (one seeded permutation per video)."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for it in items:
        perm = torch.randperm(it.num_windows, generator=gen)
        out.append(ConceptSequence(it.video_id, it.concepts[perm], it.label, it.spans[perm],
                                None if it.embeddings is None else it.embeddings[perm]))
    return out


@torch.no_grad()
def evaluate_bottleneck(model: TemporalConceptBottleneck, items: Sequence[ConceptSequence], batch_size: int = 64,
                        device: str | torch.device = "cpu") -> Evaluation:
    """Top-1 / top-5 accuracy of the bottleneck on whole videos (eval mode, length-sorted batches)."""
    model = model.eval().to(device)
    logits = torch.empty(len(items), model.num_classes)
    for idx in length_sorted_batches([it.num_windows for it in items], batch_size=batch_size):
        batch = collate_sequences([items[i] for i in idx]).to(device)
        logits[idx] = model(batch.concepts, batch.padding_mask).logits.float().cpu()
    return _accuracies(logits, torch.tensor([it.label for it in items]))


def train_linear_classifier(train_x: Tensor, train_y: Tensor, val_x: Tensor, val_y: Tensor, num_classes: int, *,
                            epochs: int = 100, lr: float = 1e-2, weight_decay: float = 1e-4, seed: int = 0,
                            class_weights: Tensor | None = None) -> tuple[torch.nn.Module, float]:
    """Full-batch AdamW logistic regression on standardised features [N, F]; the epoch with the best
    validation accuracy is kept. Returns (classifier including the standardisation, val_acc)."""
    torch.manual_seed(seed)
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    linear = torch.nn.Linear(train_x.shape[1], num_classes)
    opt = torch.optim.AdamW(linear.parameters(), lr=lr, weight_decay=weight_decay)
    xs, xv = (train_x - mean) / std, (val_x - mean) / std
    best_acc, best_state = -1.0, None
    for _ in range(epochs):
        opt.zero_grad()
        F.cross_entropy(linear(xs), train_y, weight=class_weights).backward()
        opt.step()
        with torch.no_grad():
            acc = float((linear(xv).argmax(1) == val_y).float().mean()) if len(val_y) else 0.0
        if acc > best_acc:
            best_acc, best_state = acc, {k: v.clone() for k, v in linear.state_dict().items()}
    linear.load_state_dict(best_state)
    return torch.nn.Sequential(_Standardise(mean, std), linear), best_acc


class _Standardise(torch.nn.Module):
    def __init__(self, mean: Tensor, std: Tensor):
        super().__init__()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std


def time_mean(items: Sequence[ConceptSequence], field: str) -> Tensor:
    """[N, F] time-mean of each video's ``concepts`` or ``embeddings``."""
    return torch.stack([getattr(it, field).float().mean(0) for it in items])


def labels_of(items: Sequence[ConceptSequence]) -> Tensor:
    return torch.tensor([it.label for it in items], dtype=torch.long)


def linear_baseline(train: Sequence[ConceptSequence], val: Sequence[ConceptSequence], test: Sequence[ConceptSequence],
                    field: str, num_classes: int, *, epochs: int, seed: int,
                    class_weights: Tensor | None = None) -> dict[str, float]:
    """Linear probe (field="embeddings") or mean-CBM (field="concepts") on time-mean features."""
    clf, val_acc = train_linear_classifier(time_mean(train, field), labels_of(train), time_mean(val, field),
                                           labels_of(val), num_classes, epochs=epochs, seed=seed,
                                           class_weights=class_weights)
    with torch.no_grad():
        ev = _accuracies(clf(time_mean(test, field)), labels_of(test))
    return {"val_acc": val_acc, "test_acc": ev.acc, "test_acc_top5": ev.acc_top5}


def zero_shot(items: Sequence[ConceptSequence], class_text_embeddings: Tensor,
              logit_scale: float = 100.0) -> dict[str, dict[str, float]]:
    """Zero-shot accuracy with three poolings over windows (spec section 7).

    mean_embedding: cosine of the mean window embedding with each class prompt;
    mean_softmax: mean over windows of softmax(logit_scale · cos);
    majority_vote: most frequent per-window argmax (ties broken by mean softmax).
    """
    text = F.normalize(class_text_embeddings.float(), dim=-1)
    labels = labels_of(items)
    scores = {"mean_embedding": [], "mean_softmax": [], "majority_vote": []}
    for it in items:
        emb = it.embeddings.float()
        scores["mean_embedding"].append(F.normalize(emb.mean(0), dim=-1) @ text.T)
        probs = (logit_scale * F.normalize(emb, dim=-1) @ text.T).softmax(-1)
        mean_probs = probs.mean(0)
        scores["mean_softmax"].append(mean_probs)
        votes = torch.bincount(probs.argmax(-1), minlength=text.shape[0]).float()
        scores["majority_vote"].append(votes + 0.5 * mean_probs)
    return {name: {"test_acc": _accuracies(torch.stack(s), labels).acc} for name, s in scores.items()}
