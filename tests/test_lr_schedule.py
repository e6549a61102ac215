"""optim.lr_schedule / warmup_epochs / final_lr_ratio: the learning rate of each epoch, through Lightning and
across a resume; "constant" without warm-up keeps the bare AdamW of the published recipe."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader

from motif.config import ConfigError, OptimConfig, load_config
from motif.sequences import ConceptSequence, SequenceDataset, collate_sequences
from motif.training.module import LearningRateSchedule, MotifModule

REPO = Path(__file__).resolve().parents[1]
CONCEPTS, CLASSES, LR = 4, 2, 1e-2
MODEL = dict(num_concepts=CONCEPTS, num_classes=CLASSES, num_layers=1, dropout=0.0, variant="evidence")

pytestmark = pytest.mark.usefixtures("single_thread")


def optim(**overrides) -> dict:
    return {**dataclasses.asdict(OptimConfig()), "lr": LR, "l1_mode": "proximal", **overrides}


def items(count: int = 8) -> list[ConceptSequence]:
    generator = torch.Generator().manual_seed(0)
    return [ConceptSequence(f"v{i}", torch.randn(5, CONCEPTS, generator=generator).abs(), i % CLASSES,
                            torch.zeros(5, 2)) for i in range(count)]


class LearningRates(pl.Callback):
    """The optimiser's learning rate at the start of every training epoch, and at every step."""

    def __init__(self) -> None:
        self.per_epoch: dict[int, float] = {}
        self.per_step: list[tuple[int, float]] = []

    def on_train_epoch_start(self, trainer, module) -> None:
        self.per_epoch[trainer.current_epoch] = trainer.optimizers[0].param_groups[0]["lr"]

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self.per_step.append((trainer.current_epoch, trainer.optimizers[0].param_groups[0]["lr"]))


def fit(module: MotifModule, epochs: int, *, ckpt_path: str | None = None, save_to: Path | None = None):
    rates = LearningRates()
    trainer = pl.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                         callbacks=[rates])
    loader = DataLoader(SequenceDataset(items()), batch_size=4, collate_fn=collate_sequences)
    trainer.fit(module, loader, ckpt_path=ckpt_path, weights_only=True)
    if save_to is not None:
        trainer.save_checkpoint(save_to)
    return rates


def new_module(**overrides) -> MotifModule:
    torch.manual_seed(0)
    module = MotifModule(MODEL, optim(**overrides))
    module.model.set_input_statistics(torch.full((CONCEPTS,), 0.5), torch.full((CONCEPTS,), 0.5))
    return module


def test_the_factor_is_the_formula_at_chosen_epochs():
    cosine = LearningRateSchedule("cosine", max_epochs=11, final_lr_ratio=0.1)
    assert cosine(0) == 1.0 and cosine(10) == pytest.approx(0.1, abs=1e-15)  # r in the last epoch
    assert cosine(5) == pytest.approx(0.1 + 0.9 * 0.5)                         # halfway: p = 1/2
    assert cosine(2) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.2)))
    warm = LearningRateSchedule("cosine", max_epochs=12, warmup_epochs=3, final_lr_ratio=0.0)
    assert [warm(e) for e in range(4)] == [0.25, 0.5, 0.75, 1.0]            # (e + 1) / (W + 1), then the cosine
    assert warm(7) == pytest.approx(0.5) and warm(11) == pytest.approx(0.0, abs=1e-15)  # p = (e − 3) / 8
    assert [LearningRateSchedule("constant", 5, warmup_epochs=1)(e) for e in range(5)] == [0.5, 1, 1, 1, 1]
    values = [LearningRateSchedule("cosine", 50, final_lr_ratio=0.2)(e) for e in range(50)]
    assert all(a > b for a, b in zip(values, values[1:]))                   # strictly decreasing


def test_lightning_trains_each_epoch_at_the_scheduled_rate():
    rates = fit(new_module(lr_schedule="cosine", max_epochs=6, warmup_epochs=1, final_lr_ratio=0.1), 6)
    # W = 1, E = 6: epoch 0 at lr/2, then r + (1 − r)(1 + cos(π (e − 1) / 4)) / 2
    expected = [LR / 2] + [LR * (0.1 + 0.45 * (1 + math.cos(math.pi * (e - 1) / 4))) for e in range(1, 6)]
    assert list(rates.per_epoch) == list(range(6))
    for epoch, rate in rates.per_epoch.items():
        assert rate == pytest.approx(expected[epoch], rel=1e-12), epoch
    assert {epoch: rate for epoch, rate in rates.per_step} == rates.per_epoch  # constant within an epoch


def test_constant_without_warmup_is_the_bare_optimiser_at_optim_lr():
    module = new_module()
    assert OptimConfig().lr_schedule == "constant" and OptimConfig().warmup_epochs == 0
    optimizer = module.configure_optimizers()
    assert type(optimizer) is torch.optim.AdamW and optimizer.param_groups[0]["lr"] == LR
    rates = fit(module, 3)
    assert set(rates.per_epoch.values()) == {LR} and len(rates.per_step) == 6
    warmed = new_module(warmup_epochs=2).configure_optimizers()  # a warm-up needs a scheduler even when constant
    assert isinstance(warmed["lr_scheduler"]["scheduler"], torch.optim.lr_scheduler.LambdaLR)


def test_the_schedule_continues_exactly_after_a_resume(tmp_path):
    """Two epochs, a Lightning checkpoint, then two more: the same rates and weights as four in one go."""
    settings = dict(lr_schedule="cosine", max_epochs=4, final_lr_ratio=0.0)
    whole_module = new_module(**settings)
    whole = fit(whole_module, 4)
    first_module = new_module(**settings)
    first = fit(first_module, 2, save_to=tmp_path / "half.ckpt")
    second_module = new_module(**settings)
    second = fit(second_module, 4, ckpt_path=str(tmp_path / "half.ckpt"))
    assert {**first.per_epoch, **second.per_epoch} == whole.per_epoch and list(second.per_epoch) == [2, 3]
    for name, value in whole_module.state_dict().items():
        assert torch.equal(value, second_module.state_dict()[name]), name


@pytest.mark.parametrize("override, key, message", [
    ("optim.lr_schedule=cosin", "optim.lr_schedule", "choose one of constant, cosine. Did you mean 'cosine'"),
    ("optim.final_lr_ratio=1.5", "optim.final_lr_ratio", r"must be in \[0, 1\]"),
    ("optim.warmup_epochs=-1", "optim.warmup_epochs", "must be >= 0"),
    ("optim.warmup_epochs=150", "optim.warmup_epochs", r"not less than 'optim.max_epochs' \(150\).*Lower"),
])
def test_a_bad_schedule_key_is_refused_naming_it(override, key, message):
    with pytest.raises(ConfigError, match=rf"'{key}'.*{message}"):
        load_config(REPO / "configs" / "synthetic.yaml", [override])


def test_the_module_refuses_a_schedule_the_config_would_refuse():
    with pytest.raises(ValueError, match="optim.lr_schedule must be one of"):
        MotifModule(MODEL, optim(lr_schedule="step"))
    with pytest.raises(ValueError, match="optim.warmup_epochs must be in"):
        MotifModule(MODEL, optim(warmup_epochs=100, max_epochs=100))
