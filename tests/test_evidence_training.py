"""The evidence bottleneck in a training run (statistics into the model and the checkpoint), and early
stopping that never stops before optim.min_epochs."""

from pathlib import Path

import pytest
import torch

from motif.checkpoint import load_motif_checkpoint
from motif.config import load_config
from motif.sequences.prepare import prepare_sequences
from motif.training.experiment import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SMALL = ["data.synthetic.variant=relative", "data.synthetic.num_videos=60", "data.synthetic.feature_dim=64",
         "data.synthetic.num_concepts=8", "data.synthetic.min_windows=10", "data.synthetic.max_windows=16",
         "optim.batch_size=16", "trainer.progress_bar=false", "logger.wandb.mode=disabled",
         "baselines.full_attention=false", "baselines.linear_probe=false", "baselines.mean_cbm=false",
         "baselines.time_shuffle=false", "optim.min_epochs=0"]


def config(tmp_path, *extra):
    return load_config(REPO / "configs" / "synthetic_order_relative.yaml",
                       [f"output_dir={tmp_path}", "name=run", *SMALL, *extra])


def test_evidence_run_stores_its_input_statistics_in_the_checkpoint(tmp_path):
    cfg = config(tmp_path, "model.variant=evidence", "optim.max_epochs=2")
    metrics = train_and_evaluate(cfg)
    checkpoint = load_motif_checkpoint(tmp_path / "run" / "best.ckpt")
    model, standardizer = checkpoint.model, checkpoint.standardizer
    torch.testing.assert_close(model.encoder.evidence_offset, standardizer.mean / standardizer.std)
    data = prepare_sequences(cfg, 1, tmp_path / "run")
    correct = 0
    with torch.no_grad():
        for item in data.test:
            correct += int(model(item.concepts[None]).logits.argmax() == item.label)
    assert correct / len(data.test) == pytest.approx(metrics["test_acc"])


@pytest.mark.parametrize("min_epochs, expected", [(0, 2), (5, 5)])
def test_early_stopping_waits_for_min_epochs(tmp_path, min_epochs, expected):
    """lr = 1e-30: validation never improves, so patience 1 stops after epoch 2 unless min_epochs says wait."""
    cfg = config(tmp_path, "optim.lr=1e-30", "optim.patience=1", "optim.max_epochs=8", f"optim.min_epochs={min_epochs}")
    assert train_and_evaluate(cfg)["epochs"] == expected
