"""The training step on any device: it reads no tensor value on the host, a non-finite loss is still
named exactly (checked every few steps), and the bottleneck's bf16 autocast and torch.compile options."""

from __future__ import annotations

import dataclasses

import pytest
import pytorch_lightning as pl
import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode
from torch.utils.data import DataLoader

import motif.training.module as module_file
from motif.config import OptimConfig
from motif.model.dropout import KeyedDropout, as_int32_bits, hash32, hash32_int32, sample_keys
from motif.sequences import ConceptSequence, SequenceDataset, collate_sequences
from motif.training.module import MotifModule, NonFiniteLossError

pytestmark = pytest.mark.usefixtures("single_thread")

CONCEPTS, CLASSES = 6, 3
MODEL = dict(num_concepts=CONCEPTS, num_classes=CLASSES, num_layers=1, dropout=0.2)
OPTIM = {**dataclasses.asdict(OptimConfig()), "lr": 1e-2}  # the published recipe (L1 penalty, constant lr)


def make_items(count: int, seed: int = 0) -> list[ConceptSequence]:
    generator = torch.Generator().manual_seed(seed)
    items = []
    for i in range(count):
        windows = int(torch.randint(3, 9, (1,), generator=generator))
        items.append(ConceptSequence(f"v{i}", torch.randn(windows, CONCEPTS, generator=generator), i % CLASSES,
                                     torch.zeros(windows, 2)))
    return items


def fit(module: MotifModule, items: list[ConceptSequence], batch_size: int = 2, epochs: int = 1) -> pl.Trainer:
    trainer = pl.Trainer(accelerator="cpu", max_epochs=epochs, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    trainer.fit(module, DataLoader(SequenceDataset(items), batch_size=batch_size, collate_fn=collate_sequences))
    return trainer


class HostReads(TorchFunctionMode):
    """Records every read of a tensor's value by the host (each one waits for the device on a GPU)."""

    READS = {Tensor.item, Tensor.__bool__, Tensor.__int__, Tensor.__float__, Tensor.__index__, Tensor.tolist,
             Tensor.numpy}

    def __init__(self):
        super().__init__()
        self.reads: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in self.READS:
            self.reads.append(func.__name__)
        return func(*args, **(kwargs or {}))


def test_the_training_step_reads_no_tensor_value_on_the_host(monkeypatch):
    with HostReads() as probe:      # the probe sees what the previous step did
        bool(torch.zeros(2, dtype=torch.bool).any()), int(torch.ones(3).sum())
    assert probe.reads == ["__bool__", "__int__"]
    reads, steps = [], []
    original = MotifModule.training_step

    def watched(self, batch, batch_idx):
        with HostReads() as mode:
            loss = original(self, batch, batch_idx)
        reads.extend(mode.reads)
        steps.append(batch_idx)
        return loss

    monkeypatch.setattr(MotifModule, "training_step", watched)
    fit(MotifModule(MODEL, OPTIM, class_weights=[1.0, 2.0, 1.0]), make_items(12), epochs=2)
    assert len(steps) == 12 and reads == []


def test_a_non_finite_loss_stops_training_naming_its_step_and_videos(monkeypatch):
    """The loss turns NaN at step 3 (videos v6, v7); the check every 4 steps finds it after step 3 and
    names that step, not the step of the check."""
    monkeypatch.setattr(module_file, "FINITE_CHECK_EVERY", 4)
    items = make_items(20)
    items[6].concepts[0, 0] = float("nan")
    module = MotifModule(MODEL, OPTIM)
    with pytest.raises(NonFiniteLossError, match=r"became nan at epoch 0, step 3 \(videos v6, v7\); training stopped"):
        fit(module, items)
    assert module.global_step == 4      # found by the check after the 4th step
    last = make_items(5)                # a bad last batch is found before the epoch ends (before validation)
    last[4].concepts[:] = float("inf")
    with pytest.raises(NonFiniteLossError, match=r"at epoch 0, step 2 \(videos v4\)"):
        fit(MotifModule(MODEL, OPTIM), last)


def test_bf16_autocast_of_the_bottleneck_stays_close_to_float32():
    """Outputs come back in float32; logits within 0.05 + 2 % of the float32 model (bfloat16 keeps 8 bits of
    mantissa), and a bf16 training run stays finite."""
    batch = collate_sequences(make_items(8))
    full = MotifModule(MODEL, OPTIM).eval()
    half = MotifModule(MODEL, OPTIM, precision="bf16").eval()
    half.load_state_dict(full.state_dict())
    reference, out = full(batch), half(batch)
    assert out.logits.dtype == out.concepts.dtype == torch.float32
    torch.testing.assert_close(out.logits, reference.logits, atol=0.05, rtol=0.02)
    torch.testing.assert_close(out.concepts, reference.concepts, atol=0.05, rtol=0.02)
    assert (out.logits - reference.logits).abs().max() > 0      # autocast did act
    half.train()
    fit(half, make_items(8))
    assert all(torch.isfinite(p).all() for p in half.parameters())
    with pytest.raises(ValueError, match="model.precision must be one of"):
        MotifModule(MODEL, OPTIM, precision="16")


def test_keyed_dropout_hashes_in_int32_give_the_int64_masks():
    """The salt hashed on the host, the per-element hashes on int32 bits: the masks and outputs of the
    int64 formula (module docstring of motif.model.dropout), for several p and calls."""
    for value in (0, 1, 65536 * 3 + 2, 2 ** 32 - 1):
        assert hash32(value) == int(hash32(torch.tensor(value, dtype=torch.int64)))
    values = torch.randint(0, 2 ** 32, (5, 999), dtype=torch.int64, generator=torch.Generator().manual_seed(0))
    assert torch.equal(hash32_int32(as_int32_bits(values)).long() & 0xFFFFFFFF, hash32(values))
    x = torch.randn(7, 33, 13)
    for p in (0.1, 1 / 3, 0.5, 0.9):
        dropout = KeyedDropout(p).train()
        dropout.keys, dropout.salt = sample_keys([f"v{i}" for i in range(7)], 3, 2), 5
        for call in range(3):
            stream = hash32(dropout.keys ^ hash32(torch.tensor(dropout.salt * 65536 + call)))
            index = torch.arange(33 * 13, dtype=torch.int64)
            bits = hash32(hash32(index[None, :] ^ stream[:, None]) ^ hash32(stream[:, None] + 0x9E3779B9))
            keep = ((bits >> 8).to(torch.float32) / float(1 << 24)) >= p
            dropout.calls = call
            assert torch.equal(dropout(x), x * keep.view_as(x).to(x.dtype) / (1.0 - p)), (p, call)


@pytest.mark.slow
def test_compiled_bottleneck_gives_the_eager_logits():
    batch = collate_sequences(make_items(4))
    eager = MotifModule(MODEL, OPTIM).eval()
    compiled = MotifModule(MODEL, OPTIM, compile=True).eval()
    compiled.load_state_dict(eager.state_dict())
    assert compiled.state_dict().keys() == eager.state_dict().keys()       # checkpoints are unchanged
    torch.testing.assert_close(compiled(batch).logits, eager(batch).logits, atol=1e-5, rtol=1e-5)
