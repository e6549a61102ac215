"""Nothing silently wrong: config ranges, concept bank shrinking, non-finite statistics and losses,
keyed dropout and the DDP loss shares."""

import logging
from pathlib import Path

import pytest
import torch

from motif.concepts import ConceptBank, ConceptStandardizer, NonFiniteActivationsError
from motif.concepts.bank import embed_concept_bank
from motif.config import _KEYS, _RANGES, ConfigError, load_config
from motif.model import TemporalConceptBottleneck
from motif.model.dropout import KeyedDropout, dropout_keys, sample_keys
from motif.sequences.batching import LengthBucketBatchSampler, collate_sequences
from motif.sequences.prepare import prepare_sequences
from motif.training.experiment import model_kwargs_of
from motif.training.module import MotifModule, batch_totals, class_weights_from_labels

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC = REPO / "configs" / "synthetic_order.yaml"
SMALL = ["data.synthetic.num_videos=90", "data.synthetic.feature_dim=64", "data.synthetic.num_concepts=12",
         "data.synthetic.min_windows=8", "data.synthetic.max_windows=16", "optim.batch_size=16",
         "trainer.progress_bar=false", "model.head_dim=1", "logger.wandb.mode=disabled"]


# --- config ranges -------------------------------------------------------------------------------------


def test_every_numeric_config_key_has_a_range():
    """Every schema key that holds numbers (int, float, their Optional and list forms) has a range."""
    numeric = [key for key, kind in _KEYS.items() if isinstance(kind, str)
               and any(word in kind.replace("Optional", "").split("[")[-1] for word in ("int", "float"))]
    assert sorted(numeric) == sorted(_RANGES)


@pytest.mark.parametrize("override, key, bound", [
    ("optim.max_epochs=-3", "optim.max_epochs", ">= 1"), ("optim.lr=-1", "optim.lr", "> 0"),
    ("optim.lr=0", "optim.lr", "> 0"), ("video.window_size=0", "video.window_size", ">= 1"),
    ("model.dropout=1.0", "model.dropout", "[0, 1)"), ("optim.label_smoothing=1.5", "optim.label_smoothing", "[0, 1]"),
    ("data.val_fraction=-0.1", "data.val_fraction", "[0, 1)"), ("optim.lr=nan", "optim.lr", "> 0"),
    ("optim.weight_decay=inf", "optim.weight_decay", ">= 0"), ("data.splits=[1,0]", "data.splits", ">= 1"),
    ("video.stride=0", "video.stride", ">= 1"), ("model.tau=0", "model.tau", "> 0"),
])
def test_out_of_range_values_fail_naming_the_key(override, key, bound):
    with pytest.raises(ConfigError) as error:
        load_config(SYNTHETIC, [override])
    message = str(error.value)
    assert f"Config key '{key}' is " in message and message.rstrip(".").endswith(bound), message


def test_values_on_the_boundaries_are_accepted():
    cfg = load_config(SYNTHETIC, ["optim.max_epochs=1", "model.dropout=0", "optim.label_smoothing=1",
                                  "optim.patience=0", "video.stride=null", "model.num_layers=0"])
    assert cfg.optim.max_epochs == 1 and cfg.video.stride is None
    with pytest.raises(ConfigError, match="min_windows"):
        load_config(SYNTHETIC, ["data.synthetic.min_windows=20", "data.synthetic.max_windows=10"])


def test_shipped_configs_are_in_range():
    for path in sorted((REPO / "configs").glob("*.yaml")):
        load_config(path, ["data.root=."])


# --- concept banks ---------------------------------------------------------------------------------------


class _TextEncoder:
    """encode_text with fixed vectors per phrase."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors

    def encode_text(self, texts):
        return torch.tensor([self.vectors[t] for t in texts])


def test_every_dropped_concept_is_logged(caplog):
    bank = ConceptBank.from_entries(["paddle", "Paddle", "a kayak", "a canoe", "river"], source="'bank.txt'")
    encoder = _TextEncoder({"paddle": [1, 0, 0], "a kayak": [0, 1, 0], "a canoe": [0, 0.99, 0.1],
                            "river": [0, 0, 1]})
    with caplog.at_level(logging.INFO):
        ConceptBank.from_entries(["paddle", "Paddle", "a kayak"], source="'bank.txt'")
        kept, text = embed_concept_bank(bank, encoder, 0.9)
    assert kept.names == ["paddle", "a kayak", "river"] and text.shape == (3, 3)
    messages = [r.getMessage() for r in caplog.records]
    assert any("dropping 'Paddle', a duplicate of 'paddle'" in m for m in messages)
    assert any("dropping 'a canoe' as a near-duplicate of 'a kayak' (cosine 0.995" in m for m in messages)


def test_shared_concepts_of_a_per_class_bank_are_not_reported_as_duplicates(caplog):
    with caplog.at_level(logging.INFO):
        bank = ConceptBank.from_entries({"kayak": ["water", "paddle"], "swim": ["water"]})
    assert bank.classes_of[0] == ["kayak", "swim"] and not caplog.records


# --- non-finite statistics and losses -------------------------------------------------------------------------


def test_standardizer_refuses_non_finite_activations_and_names_the_videos():
    good, bad = torch.rand(5, 3), torch.rand(4, 3)
    bad[2, 1] = float("nan")
    with pytest.raises(NonFiniteActivationsError, match="1 training video.*: clip_b;"):
        ConceptStandardizer(3).fit([good, bad, good], names=["clip_a", "clip_b", "clip_c"])
    inf = torch.rand(4, 3)
    inf[0, 0] = float("inf")
    with pytest.raises(NonFiniteActivationsError, match="#1"):
        ConceptStandardizer(3).fit([good, inf])
    assert ConceptStandardizer(3).fit([good, good]).fitted


# --- keyed dropout and DDP loss shares --------------------------------------------------------------------------


def test_keyed_dropout_masks_depend_only_on_the_sample_key():
    torch.manual_seed(0)
    model = TemporalConceptBottleneck(6, 3, num_layers=2, dropout=0.3).train()
    x = torch.randn(3, 9, 6)
    mask = torch.zeros(3, 9, dtype=torch.bool)
    mask[1, 6:] = True
    keys = sample_keys(["a", "b", "c"], 7, 2)
    with dropout_keys(model, keys):
        together = model(x, mask).logits
    torch.manual_seed(123)  # the global RNG plays no part
    with dropout_keys(model, keys[1:2]):
        alone = model(x[1:2, :6]).logits  # other batch, no padding
    torch.testing.assert_close(alone[0], together[1], rtol=0, atol=1e-6)
    with dropout_keys(model, sample_keys(["a", "b", "c"], 7, 3)):  # another epoch: other masks
        assert not torch.allclose(model(x, mask).logits, together)
    layer = KeyedDropout(0.25).train()
    with dropout_keys(layer, sample_keys([str(i) for i in range(200)], 0)):
        kept = layer(torch.ones(200, 20, 10)) > 0
    assert abs(kept.float().mean().item() - 0.75) < 0.01


def test_plain_dropout_is_refused_under_keys():
    model = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Dropout(0.2))
    with pytest.raises(ValueError, match="module '1' is a plain nn.Dropout"):
        with dropout_keys(model, sample_keys(["a"], 0)):
            pass


def test_process_shares_of_a_global_batch_add_up_to_its_gradient(tmp_path):
    """DDP's rank r takes items r::2 of each global batch; with the global totals and the world-size scale
    the averaged gradients of the shares equal the single-process gradient (class weights, label
    smoothing, sparsity and dropout all on, an odd share size)."""
    cfg = load_config(SYNTHETIC, [*SMALL, "optim.batch_size=15", "optim.sparsity_weight=0.1", "model.dropout=0.3"])
    data = prepare_sequences(cfg, 1, tmp_path)
    weights = class_weights_from_labels([it.label for it in data.train], len(data.class_names))
    module = MotifModule(model_kwargs_of(cfg, len(data.concept_names), len(data.class_names)), dict(cfg.optim),
                         weights.tolist(), seed=0)
    module.model.train()
    batch_ids = LengthBucketBatchSampler([it.num_windows for it in data.train], 15, seed=0).global_batches()[0]
    items = [data.train[i] for i in batch_ids]

    def gradients(share, totals, scale):
        batch = collate_sequences(share)
        module.zero_grad()
        with dropout_keys(module.model, sample_keys(batch.video_ids, 0, 0)):
            losses = module._loss(batch, module(batch), totals)
        (scale * (losses["ce"] + cfg.optim.sparsity_weight * losses["sparsity"])
         + cfg.optim.l1_weight * losses["l1"]).backward()
        return {n: p.grad.clone() for n, p in module.named_parameters()}

    whole = gradients(items, None, 1.0)
    full_batch = collate_sequences(items)
    totals = batch_totals(full_batch.labels, full_batch.padding_mask, len(data.concept_names), module.class_weights)
    shares = [gradients(items[r::2], totals, 2.0) for r in range(2)]
    for name, grad in whole.items():
        torch.testing.assert_close((shares[0][name] + shares[1][name]) / 2, grad, rtol=1e-5, atol=1e-7)


def test_a_resumed_run_keeps_its_wandb_run_id(tmp_path):
    from motif.training.resume import wandb_run_id

    first = wandb_run_id(tmp_path, resume=False)
    assert wandb_run_id(tmp_path, resume=True) == first == (tmp_path / "wandb" / "run_id").read_text()
    assert wandb_run_id(tmp_path, resume=False) != first  # a new run gets a new id
