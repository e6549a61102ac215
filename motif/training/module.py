"""The thin LightningModule over a TemporalConceptBottleneck: loss, optimiser, metrics."""

from __future__ import annotations

import dataclasses
import math
import time

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import Tensor
from torchmetrics.classification import MulticlassAccuracy

from motif.config import L1_MODES, LR_SCHEDULES, PRECISIONS
from motif.errors import MotifError
from motif.model import BottleneckOutput, TemporalConceptBottleneck
from motif.model.dropout import dropout_keys, sample_keys
from motif.sequences.sequence import SequenceBatch
from motif.training.resume import rng_states, set_rng_states

SELECTION_LOSS_WEIGHT = 1e-4  # far below one validation video's share of accuracy: a pure tie-breaker
FINITE_CHECK_EVERY = 50       # training steps between checks that the loss stayed finite (one host sync each)


def motif_loss(out: BottleneckOutput, labels: Tensor, padding_mask: Tensor, classifier_weight: Tensor, *,
               class_weights: Tensor | None, label_smoothing: float, l1_weight: float,
               sparsity_weight: float, totals: Tensor | None = None) -> dict[str, Tensor]:
    """Spec section 4: weighted CE with label smoothing + λ1·Σ|W| + λs·mean of z over valid (t, c) cells.

    out.logits [B, K], out.concepts [B, T, C], labels [B], padding_mask [B, T] (True = pad).
    CE = Σ_i ce_i / Σ_i w_{y_i} (``F.cross_entropy``'s weighted mean); sparsity = Σ_valid z / #valid cells.
    totals [2] = (Σ w_{y_i}, #valid cells) that normalise the sums. Under DDP, when this batch is one of P
    processes' shares of a global batch, pass the global totals / P (``batch_totals`` summed over
    processes, divided by P): DDP averages the P gradients, so the average of the shares is then the
    single-process loss. Default: this batch's own totals.
    """
    ce_each = F.cross_entropy(out.logits, labels, weight=class_weights, label_smoothing=label_smoothing,
                              reduction="none")
    valid = (~padding_mask).unsqueeze(-1).to(out.concepts.dtype)
    if totals is None:
        totals = batch_totals(labels, padding_mask, out.concepts.shape[-1], class_weights)
    totals = totals.to(ce_each.dtype)
    ce = ce_each.sum() / totals[0].clamp_min(1e-12)
    l1 = classifier_weight.abs().sum()
    sparsity = (out.concepts * valid).sum() / totals[1].clamp_min(1.0)
    total = ce + l1_weight * l1 + sparsity_weight * sparsity
    return {"loss": total, "ce": ce, "l1": l1, "sparsity": sparsity}


def batch_totals(labels: Tensor, padding_mask: Tensor, num_concepts: int, class_weights: Tensor | None) -> Tensor:
    """[Σ_i w_{y_i} (the CE normaliser), number of valid (t, c) cells] of a batch, float64."""
    if class_weights is not None:
        weight_sum = class_weights[labels].sum()
    else:  # a fill, not a copy of a host scalar (which would wait for the device)
        weight_sum = torch.full((), labels.numel(), dtype=torch.float64, device=labels.device)
    cells = (~padding_mask).sum() * num_concepts
    return torch.stack([weight_sum.double(), cells.double()])


@torch.no_grad()
def adam_step_sizes(optimizer: torch.optim.Optimizer, parameter: Tensor) -> Tensor:
    """Per-element step size of Adam's (or AdamW's) last update of ``parameter``, shaped like it:
    lr / (√v̂ + ε), v̂ = v / (1 − β₂ᵗ), with v the running mean of squared gradients after t steps.

    Adam moves each weight by −step size · m̂; a proximal step in the same diagonal metric subtracts
    λ · step size, so an L1 term acts as strongly, relative to the loss gradient, as when it is added to
    the gradient, but reaches exact zeros.
    """
    group = next((g for g in optimizer.param_groups if any(p is parameter for p in g["params"])), None)
    state = optimizer.state.get(parameter, {})
    if group is None or "exp_avg_sq" not in state or group.get("amsgrad", False):
        raise ValueError("adam_step_sizes needs an Adam/AdamW optimiser (amsgrad off) that has updated the "
                         "parameter at least once")
    step = float(state["step"])
    second_moment = state["exp_avg_sq"] / (1.0 - group["betas"][1] ** step)
    return group["lr"] / (second_moment.sqrt() + group["eps"])


@dataclasses.dataclass
class LearningRateSchedule:
    """The factor f(e) of the learning rate in epoch e (0-based): epoch e trains at optim.lr · f(e).

    With W = warmup_epochs, E = max_epochs (W < E), r = final_lr_ratio:
      warm-up, e < W:     f(e) = (e + 1) / (W + 1)                      (linear, reaching 1 at epoch W)
      constant, e >= W:   f(e) = 1
      cosine, e >= W:     f(e) = r + (1 − r) · (1 + cos(π · p)) / 2,   p = (e − W) / max(E − 1 − W, 1)
                          (1 at epoch W, r in the last epoch E − 1)
    The proximal L1 step uses the scheduled learning rate too (its threshold is λ1 · lr / (√v̂ + ε)).
    A plain dataclass so that its fields travel in the Lightning checkpoint (``LambdaLR.state_dict``).
    """

    name: str
    max_epochs: int
    warmup_epochs: int = 0
    final_lr_ratio: float = 0.0

    def __post_init__(self) -> None:
        if self.name not in LR_SCHEDULES:
            raise ValueError(f"optim.lr_schedule must be one of {LR_SCHEDULES.names()}, got {self.name!r}")
        if not 0 <= self.warmup_epochs < self.max_epochs:
            raise ValueError(f"optim.warmup_epochs must be in [0, optim.max_epochs = {self.max_epochs}), "
                             f"got {self.warmup_epochs}")

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup_epochs:
            return (epoch + 1) / (self.warmup_epochs + 1)
        if self.name == "constant":
            return 1.0
        progress = min((epoch - self.warmup_epochs) / max(self.max_epochs - 1 - self.warmup_epochs, 1), 1.0)
        return self.final_lr_ratio + (1.0 - self.final_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    @property
    def is_constant(self) -> bool:
        """True when every epoch trains at optim.lr (no scheduler is needed)."""
        return self.name == "constant" and self.warmup_epochs == 0


class NonFiniteLossError(MotifError, FloatingPointError):
    """The training loss became NaN or inf; the message names the epoch, step and videos."""


def to_device(tensor: Tensor, device: torch.device) -> Tensor:
    """``tensor`` on ``device``. A host tensor bound for a CUDA device is copied from pinned memory without
    blocking the host (the copy is ordered on the device's stream before any use of the result)."""
    if device.type != "cuda" or tensor.device.type != "cpu":
        return tensor.to(device)
    return (tensor if tensor.is_pinned() else tensor.pin_memory()).to(device, non_blocking=True)


def class_weights_from_labels(labels: list[int], num_classes: int) -> Tensor:
    """weight_k = max_count / count_k (classes absent from training get weight 0)."""
    counts = torch.bincount(torch.tensor(labels, dtype=torch.long), minlength=num_classes).float()
    weights = torch.where(counts > 0, counts.max() / counts.clamp_min(1.0), torch.zeros_like(counts))
    return weights


class MotifModule(pl.LightningModule):
    """Trains a ``TemporalConceptBottleneck`` on padded concept sequences.

    Hyper-parameters are plain values (``model_kwargs`` and ``optim``) so that checkpoints hold no
    pickled objects. The classifier is projected to W >= 0 after every optimiser step.

    ``optim["l1_mode"]`` says how λ1·Σ|W| acts: "penalty" (the published recipe) adds it to the loss, so
    Adam sees ∂/∂W (loss) + λ1 and the clamp leaves many small non-zero weights; "proximal" leaves it out
    of the loss (train/l1 still logs Σ|W|) and soft-thresholds after each step,
    W <- max(0, W − λ1 · lr / (√v̂ + ε)) with Adam's own step sizes (``adam_step_sizes``), so a weight whose
    loss gradient stays below λ1 is exactly 0.

    ``optim["lr_schedule"]``, ``optim["warmup_epochs"]`` and ``optim["final_lr_ratio"]`` give the learning rate of
    each epoch (``LearningRateSchedule``); "constant" without warm-up trains at optim.lr with no scheduler.

    Exact under resume and DDP: dropout masks are keyed by (seed, epoch, video id) (``KeyedDropout``),
    the loss of a process's share of a global batch is normalised by the global batch's totals, and
    the global RNG states travel in the Lightning checkpoint. A non-finite loss on any process stops
    training on all of them with ``NonFiniteLossError``: each step records the first non-finite loss on
    the device, and every ``FINITE_CHECK_EVERY`` steps and at the last batch of each epoch (before
    validation and checkpoints) one check reads it, so a training step never waits for the device.

    precision "bf16" runs the bottleneck under bfloat16 autocast (its outputs are cast back to float32
    for the loss); ``compile`` compiles the bottleneck with ``torch.compile`` (state dict unchanged).
    """

    def __init__(self, model_kwargs: dict, optim: dict, class_weights: list[float] | None = None, seed: int = 0,
                 precision: str = "32", compile: bool = False):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"model.precision must be one of {PRECISIONS.names()}, got {precision!r}")
        self.seed, self.bottleneck_precision = seed, precision
        self.save_hyperparameters()
        self.model = TemporalConceptBottleneck(**model_kwargs)
        if optim["l1_mode"] not in L1_MODES:
            raise ValueError(f"optim.l1_mode must be one of {L1_MODES.names()}, got {optim['l1_mode']!r}")
        self.lr_schedule = LearningRateSchedule(optim["lr_schedule"], optim["max_epochs"], optim["warmup_epochs"],
                                                optim["final_lr_ratio"])
        if compile:
            self.model.compile()
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
        self._epoch_windows: Tensor | int = 0
        self._first_nonfinite: tuple[Tensor, Tensor] | None = None   # (global step or -1, loss) on the device
        self._unchecked_videos: dict[int, list[str]] = {}            # step -> its videos, since the last check

    def forward(self, batch: SequenceBatch, **kwargs) -> BottleneckOutput:
        if self.bottleneck_precision == "32":
            return self.model(batch.concepts, batch.padding_mask, **kwargs)
        with torch.autocast(device_type=batch.concepts.device.type, dtype=torch.bfloat16):
            out = self.model(batch.concepts, batch.padding_mask, **kwargs)
        return dataclasses.replace(out, concepts=out.concepts.float(), window_logits=out.window_logits.float(),
                                   logits=out.logits.float(), pooled_concepts=out.pooled_concepts.float())

    def _loss(self, batch: SequenceBatch, out: BottleneckOutput, totals: Tensor | None = None) -> dict[str, Tensor]:
        return motif_loss(out, batch.labels, batch.padding_mask, self.model.classifier.weight,
                          class_weights=self.class_weights, label_smoothing=self.optim["label_smoothing"],
                          l1_weight=self.optim["l1_weight"] if self.optim["l1_mode"] == "penalty" else 0.0,
                          sparsity_weight=self.optim["sparsity_weight"],
                          totals=totals)

    def _record_finite(self, loss: Tensor, batch: SequenceBatch) -> None:
        """Remember on the device the step and value of the first non-finite loss (no host sync)."""
        loss = loss.detach()
        if self._first_nonfinite is None:
            self._first_nonfinite = (torch.full((), -1, dtype=torch.long, device=loss.device), torch.zeros_like(loss))
        step, value = self._first_nonfinite
        first = (step < 0) & ~torch.isfinite(loss)
        self._first_nonfinite = (torch.where(first, self.global_step, step), torch.where(first, loss, value))
        self._unchecked_videos[self.global_step] = batch.video_ids[:8]

    def _check_finite(self) -> None:
        """Raise NonFiniteLossError on every process if the loss of any process was not finite since the last
        check, naming the first such step and its videos."""
        step = -1 if self._first_nonfinite is None else int(self._first_nonfinite[0])
        bad = step >= 0
        if self.trainer.strategy.reduce_boolean_decision(bad, all=False):
            where = f"videos {', '.join(self._unchecked_videos[step])}" if bad else "another process's batch"
            value = float(self._first_nonfinite[1]) if bad else "non-finite"
            raise NonFiniteLossError(
                f"The training loss became {value} at epoch {self.current_epoch}, "
                f"step {step if bad else self.global_step} ({where}); training stopped. Lower optim.lr or check "
                f"these inputs; the checkpoints of the last finished epoch are kept.")
        self._unchecked_videos.clear()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["rng_states"] = rng_states()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        if "rng_states" in checkpoint:
            set_rng_states(checkpoint["rng_states"])

    def on_train_epoch_start(self) -> None:
        self._epoch_start, self._epoch_windows = time.perf_counter(), 0

    def training_step(self, batch: SequenceBatch, batch_idx: int) -> Tensor:
        world = self.trainer.world_size
        totals = batch_totals(batch.labels, batch.padding_mask, self.model.num_concepts, self.class_weights)
        if world > 1:  # DDP averages the processes' gradients: dividing by global totals / world makes the
            # average of the shares the single-process loss
            totals = self.trainer.strategy.reduce(totals, reduce_op="sum") / world
        keys = to_device(sample_keys(batch.video_ids, self.seed, self.current_epoch), self.device)
        with dropout_keys(self.model, keys):
            out = self(batch)
        losses = self._loss(batch, out, totals)
        self._record_finite(losses["loss"], batch)
        bs = batch.labels.shape[0]
        self._epoch_windows = self._epoch_windows + (~batch.padding_mask).sum()   # a device tensor: read at epoch end
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, on_step=False, on_epoch=True, batch_size=bs,
                      sync_dist=True)
        return losses["loss"]

    def on_train_batch_end(self, outputs, batch: SequenceBatch, batch_idx: int) -> None:
        if (batch_idx + 1) % FINITE_CHECK_EVERY == 0 or self.trainer.is_last_batch:
            self._check_finite()

    def on_train_epoch_end(self) -> None:
        seconds = max(time.perf_counter() - self._epoch_start, 1e-9)
        self.log("train/windows_per_s", self._epoch_windows / seconds, sync_dist=True, reduce_fx="sum")
        nonzero = (self.model.classifier.weight > 0).sum(dim=1).float()
        self.log("sparsity/nonzero_weights_per_class", nonzero.mean())

    def optimizer_step(self, epoch: int, batch_idx: int, optimizer, optimizer_closure=None) -> None:
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.optim["l1_mode"] == "proximal":
            weight = self.model.classifier.weight
            self.model.classifier.soft_threshold_(self.optim["l1_weight"] * adam_step_sizes(optimizer, weight))
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
        """AdamW at optim.lr, and for a non-constant ``LearningRateSchedule`` a per-epoch ``LambdaLR``."""
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.optim["lr"],
                                      weight_decay=self.optim["weight_decay"])
        if self.lr_schedule.is_constant:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_schedule)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "epoch"}}

    def transfer_batch_to_device(self, batch: SequenceBatch, device: torch.device, dataloader_idx: int) -> SequenceBatch:
        return SequenceBatch(to_device(batch.concepts, device), to_device(batch.padding_mask, device),
                             to_device(batch.labels, device), batch.video_ids)
