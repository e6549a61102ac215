"""The thin LightningModule over a TemporalConceptBottleneck: loss, optimiser, metrics."""

from __future__ import annotations

import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from motif.model import BottleneckOutput, TemporalConceptBottleneck
from motif.training.data import SequenceBatch


SELECTION_LOSS_WEIGHT = 1e-4  # far below one validation video's share of accuracy: a pure tie-breaker


def motif_loss(out: BottleneckOutput, labels: Tensor, padding_mask: Tensor, classifier_weight: Tensor, *,
               class_weights: Tensor | None, label_smoothing: float, l1_weight: float,
               sparsity_weight: float) -> dict[str, Tensor]:
    """Spec section 4: weighted CE with label smoothing + λ1·Σ|W| + λs·mean of z over valid (t, c) cells.

    out.logits [B, K], out.concepts [B, T, C], labels [B], padding_mask [B, T] (True = pad).
    """
    ce = F.cross_entropy(out.logits, labels, weight=class_weights, label_smoothing=label_smoothing)
    l1 = classifier_weight.abs().sum()
    valid = (~padding_mask).unsqueeze(-1).to(out.concepts.dtype)
    sparsity = (out.concepts * valid).sum() / (valid.sum() * out.concepts.shape[-1]).clamp_min(1.0)
    total = ce + l1_weight * l1 + sparsity_weight * sparsity
    return {"loss": total, "ce": ce, "l1": l1, "sparsity": sparsity}


def class_weights_from_labels(labels: list[int], num_classes: int) -> Tensor:
    """weight_k = max_count / count_k (classes absent from training get weight 0)."""
    counts = torch.bincount(torch.tensor(labels, dtype=torch.long), minlength=num_classes).float()
    weights = torch.where(counts > 0, counts.max() / counts.clamp_min(1.0), torch.zeros_like(counts))
    return weights


class MotifModule(pl.LightningModule):
    """Trains a ``TemporalConceptBottleneck`` on padded concept sequences.

    Hyper-parameters are plain values (``model_kwargs`` and ``optim``) so that checkpoints hold no
    pickled objects. The classifier is projected to W >= 0 after every optimiser step.
    """

    def __init__(self, model_kwargs: dict, optim: dict, class_weights: list[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.model = TemporalConceptBottleneck(**model_kwargs)
        self.optim = optim
        weights = torch.tensor(class_weights) if class_weights is not None else None
        self.register_buffer("class_weights", weights, persistent=False)
        k = model_kwargs["num_classes"]
        top5 = min(5, k)
        self.metrics = torch.nn.ModuleDict({
            "val_acc": MulticlassAccuracy(k, average="micro"),
            "val_acc_top5": MulticlassAccuracy(k, top_k=top5, average="micro"),
            "test_acc": MulticlassAccuracy(k, average="micro"),
            "test_acc_top5": MulticlassAccuracy(k, top_k=top5, average="micro"),
        })
        self._epoch_start = 0.0
        self._epoch_windows = 0

    def forward(self, batch: SequenceBatch, **kwargs) -> BottleneckOutput:
        return self.model(batch.concepts, batch.padding_mask, **kwargs)

    def _loss(self, batch: SequenceBatch, out: BottleneckOutput) -> dict[str, Tensor]:
        return motif_loss(out, batch.labels, batch.padding_mask, self.model.classifier.weight,
                          class_weights=self.class_weights, label_smoothing=self.optim["label_smoothing"],
                          l1_weight=self.optim["l1_weight"], sparsity_weight=self.optim["sparsity_weight"])

    def on_train_epoch_start(self) -> None:
        self._epoch_start, self._epoch_windows = time.perf_counter(), 0

    def training_step(self, batch: SequenceBatch, batch_idx: int) -> Tensor:
        out = self(batch)
        losses = self._loss(batch, out)
        bs = batch.labels.shape[0]
        self._epoch_windows += int((~batch.padding_mask).sum())
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True, batch_size=bs,
                      sync_dist=True)
        return losses["loss"]

    def on_train_epoch_end(self) -> None:
        seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
        self.log("train/windows_per_s", self._epoch_windows / seconds, sync_dist=True, reduce_fx="sum")
        nonzero = (self.model.classifier.weight > 0).sum(dim=1).float()
        self.log("sparsity/nonzero_weights_per_class", nonzero.mean())

    def optimizer_step(self, *args, **kwargs) -> None:
        super().optimizer_step(*args, **kwargs)
        self.model.clamp_classifier_()

    def _eval_step(self, batch: SequenceBatch, stage: str) -> None:
        out = self(batch)
        losses = self._loss(batch, out)
        bs = batch.labels.shape[0]
        self.log(f"{stage}/loss", losses["ce"], on_epoch=True, batch_size=bs, sync_dist=True)
        if stage == "val":
            self._val_ce += torch.stack([losses["ce"].detach() * bs, losses["ce"].new_tensor(float(bs))])
        for name in (f"{stage}_acc", f"{stage}_acc_top5"):
            self.metrics[name](out.logits, batch.labels)
            self.log(f"{stage}/{name.removeprefix(stage + '_')}", self.metrics[name], on_epoch=True, batch_size=bs)

    def validation_step(self, batch: SequenceBatch, batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def on_validation_epoch_start(self) -> None:
        self._val_ce = torch.zeros(2, device=self.device)  # [sum of CE · batch size, number of videos]

    def on_validation_epoch_end(self) -> None:
        """``val/selection`` = accuracy, ties broken by the lower validation CE (the model selection key)."""
        ce_sum, count = self.trainer.strategy.reduce(self._val_ce, reduce_op="sum")
        acc = self.metrics["val_acc"].compute()
        self.log("val/selection", acc - SELECTION_LOSS_WEIGHT * ce_sum / count.clamp_min(1.0))

    def test_step(self, batch: SequenceBatch, batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def configure_optimizers(self):
        return torch.optim.AdamW(self.model.parameters(), lr=self.optim["lr"], weight_decay=self.optim["weight_decay"])

    def transfer_batch_to_device(self, batch: SequenceBatch, device: torch.device, dataloader_idx: int) -> SequenceBatch:
        return batch.to(device)
