"""Training runs end to end: metrics, checkpoints, resume, cross-validation, wandb media, DDP."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from motif.checkpoint import CheckpointError, load_motif_checkpoint
from motif.config import load_config
from motif.errors import ConfigError
from motif.sequences.prepare import prepare_sequences
from motif.threads import cpu_threads
from motif.training.baselines import evaluate_bottleneck, shuffle_windows
from motif.training.experiment import train_and_evaluate

REPO = Path(__file__).resolve().parents[1]
SMALL = ["data.synthetic.num_videos=90", "data.synthetic.feature_dim=64", "data.synthetic.num_concepts=12",
         "data.synthetic.min_windows=8", "data.synthetic.max_windows=16", "optim.batch_size=16",
         "trainer.progress_bar=false", "model.head_dim=1"]


def small_config(tmp_path, *extra):
    return load_config(REPO / "configs" / "synthetic_order.yaml",
                       [f"output_dir={tmp_path}", "name=run", *SMALL, *extra])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    cfg = small_config(tmp, "optim.max_epochs=6", "baselines.zero_shot=true", "logger.wandb.mode=offline",
                       "logger.wandb.media_every_n_epochs=3",
                       "logger.wandb.num_videos=2")
    metrics = train_and_evaluate(cfg)
    return cfg, metrics, tmp / "run"


def test_run_writes_metrics_with_every_baseline(trained_run):
    cfg, metrics, run_dir = trained_run
    on_disk = json.loads((run_dir / "metrics.json").read_text())
    assert on_disk == json.loads(json.dumps(metrics))
    for key in ("val_acc", "test_acc", "test_acc_top5", "shuffled_test_acc"):
        assert 0.0 <= on_disk[key] <= 1.0
    for name in ("mean_cbm", "linear_probe", "full_attention"):
        assert 0.0 <= on_disk["baselines"][name]["test_acc"] <= 1.0
    assert "skipped" in on_disk["baselines"]["zero_shot"]  # no text encoder in this task
    assert on_disk["epochs"] == 6 and (run_dir / "config.yaml").is_file()
    assert (run_dir / "csv" / "metrics.csv").read_text().count("\n") > 6


def test_checkpoint_is_self_contained_and_reproduces_test_accuracy(trained_run):
    cfg, metrics, run_dir = trained_run
    ckpt = load_motif_checkpoint(run_dir / "best.ckpt")
    torch.load(run_dir / "best.ckpt", weights_only=True)  # nothing pickled
    data = prepare_sequences(cfg, 1, run_dir)
    assert ckpt.class_names == data.class_names and ckpt.concept_names == data.concept_names
    torch.testing.assert_close(ckpt.standardizer.mean, data.standardizer.mean)
    assert evaluate_bottleneck(ckpt.model, data.test).acc == pytest.approx(metrics["test_acc"])
    shuffled = evaluate_bottleneck(ckpt.model, shuffle_windows(data.test, cfg.seed)).acc
    assert shuffled == pytest.approx(metrics["shuffled_test_acc"])
    assert ckpt.config["optim"]["lr"] == cfg.optim.lr and ckpt.metrics["test_acc"] == metrics["test_acc"]


def test_checkpoint_errors_name_the_file(tmp_path, trained_run):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_motif_checkpoint(tmp_path / "missing.ckpt")
    lightning_ckpt = trained_run[2] / "lightning" / "motif" / "last.ckpt"
    with pytest.raises(CheckpointError, match="not a motif checkpoint"):
        load_motif_checkpoint(lightning_ckpt)


def test_wandb_offline_runs_hold_timelines_config_and_groups(trained_run):
    from helpers_wandb import offline_run_records
    from motif.training.callbacks import WINDOW_COLUMNS

    cfg, metrics, run_dir = trained_run
    runs = {r["job_type"]: (path, r) for path in (run_dir / "wandb").glob("offline-run-*")
            for r in [offline_run_records(path)]}
    assert sorted(runs) == ["baseline", "train"]
    assert {r["group"] for _, r in runs.values()} == {"run"}
    path, train = runs["train"]
    assert {"data", "model", "backbone", "concepts", "optim", "logger"} <= set(train["config"])  # the full config
    assert train["config"]["data"]["format"] == "synthetic_order" and "synthetic_order" in train["tags"]
    videos = {key.split("/")[1] for key in train["keys"] if key.startswith("timeline/")}
    assert len(videos) == 2
    for video in videos:
        for chart in ("windows", "z_table", "pi_table", "heatmap_table"):
            assert f"timeline/{video}/{chart}" in train["keys"], (video, chart)
        for kind in ("timeline", "heatmap", "attention"):
            assert f"media/{kind}/{video}" in train["keys"]
        assert train["charts"][f"timeline/{video}/z"] == "wandb/lineseries/v0"
        assert train["charts"][f"timeline/{video}/heatmap"] == "wandb/confusion_matrix/v1"
    assert "concepts/top_per_class" in train["keys"]
    table = json.loads(next((path / "files" / "media" / "table" / "timeline").rglob("windows*.table.json")).read_text())
    assert table["columns"] == WINDOW_COLUMNS and len(table["data"]) % 12 == 0  # windows x every concept (C = 12)
    _, baseline = runs["baseline"]
    assert "full_attention.test_acc" in baseline["summary_keys"] and "mean_cbm.test_acc" in baseline["summary_keys"]
    assert any(key.startswith("val/") for key in baseline["keys"])  # the ablation's training curves


def test_logged_validation_videos_cover_the_classes():
    from types import SimpleNamespace

    from motif.training.callbacks import videos_per_class

    items = [SimpleNamespace(video_id=f"v{i:02d}", label=i // 10) for i in range(30)]  # 3 classes, sorted by name
    chosen = videos_per_class(items, 4, seed=0)
    assert [it.label for it in chosen] == [0, 1, 2, 0] and len({it.video_id for it in chosen}) == 4
    assert [it.video_id for it in videos_per_class(items, 4, seed=0)] == [it.video_id for it in chosen]
    assert [it.video_id for it in videos_per_class(items, 4, seed=1)] != [it.video_id for it in chosen]
    assert len(videos_per_class(items[:2], 5, seed=0)) == 2


def test_resume_continues_from_last_checkpoint(tmp_path):
    cfg = small_config(tmp_path, "optim.max_epochs=2", "logger.wandb.mode=disabled", "baselines.full_attention=false")
    train_and_evaluate(cfg)
    last = tmp_path / "run" / "lightning" / "motif" / "last.ckpt"
    assert torch.load(last, weights_only=False)["epoch"] == 1
    cfg = small_config(tmp_path, "optim.max_epochs=4", "logger.wandb.mode=disabled", "baselines.full_attention=false")
    metrics = train_and_evaluate(cfg, resume=True)
    assert torch.load(last, weights_only=False)["epoch"] == 3
    assert metrics["epochs"] == 4


def test_the_bottleneck_trains_on_the_configured_cpu_threads(tmp_path, monkeypatch):
    import motif.training.experiment as experiment

    seen = {}

    def record(cfg, split, data, out_dir, start, resume):
        seen["threads"] = torch.get_num_threads()

    monkeypatch.setattr(experiment, "fit_and_evaluate", record)
    outside = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        train_and_evaluate(small_config(tmp_path, "trainer.cpu_threads=1", "logger.wandb.mode=disabled"))
        assert seen["threads"] == 1 and torch.get_num_threads() == 2   # restored afterwards
        train_and_evaluate(small_config(tmp_path, "logger.wandb.mode=disabled"))
        assert seen["threads"] == 2                                     # unset: left as it is
    finally:
        torch.set_num_threads(outside)
    with pytest.raises(ConfigError, match="trainer.cpu_threads"):
        small_config(tmp_path, "trainer.cpu_threads=0")


def test_cpu_threads_restores_the_setting_even_on_error():
    outside = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with cpu_threads(1):
                assert torch.get_num_threads() == 1
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
        with cpu_threads(None):
            assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outside)


def test_evaluation_after_training_runs_on_the_training_accelerator(monkeypatch):
    from motif.training.experiment import evaluation_device

    assert evaluation_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)
    assert evaluation_device("gpu") == evaluation_device("auto") == torch.device("cuda", 1)
    assert evaluation_device("cpu") == torch.device("cpu")


def test_cross_validation_reports_mean_and_std(tmp_path):
    cfg = small_config(tmp_path, "optim.max_epochs=1", "logger.wandb.mode=disabled", "data.splits=[1,2]",
                       "baselines.full_attention=false")
    summary = train_and_evaluate(cfg)
    per_split = [summary["splits"][k]["test_acc"] for k in ("1", "2")]
    assert summary["test_acc"] == pytest.approx(sum(per_split) / 2)
    assert summary["test_acc_std"] == pytest.approx(float(torch.tensor(per_split).std()))
    assert summary["baselines"]["mean_cbm"]["test_acc_std"] >= 0.0
    assert (tmp_path / "run" / "split1" / "best.ckpt").is_file() and (tmp_path / "run" / "split2" / "best.ckpt").is_file()


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    """Same global batches split over 2 gloo processes, with dropout, class weights, label smoothing and the
    sparsity term on: keyed dropout masks and loss shares normalised by the global batch make the averaged
    DDP gradient the single-process one (up to float summation order), so every metric is equal."""
    common = [*SMALL, "optim.max_epochs=4", "optim.batch_size=15", "model.dropout=0.3", "optim.sparsity_weight=0.1",
              "baselines.full_attention=false", "logger.wandb.mode=offline", "trainer.accelerator=cpu"]
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    results = {}
    for name, extra in (("single", ["trainer.devices=1"]), ("ddp", ["trainer.devices=2", "trainer.strategy=ddp"])):
        cmd = [sys.executable, str(REPO / "tools" / "train.py"), "--config", str(REPO / "configs" / "synthetic_order.yaml"),
               f"output_dir={tmp_path}", f"name={name}", *common, *extra]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results[name] = json.loads((tmp_path / name / "metrics.json").read_text())
        results[name].pop("seconds")
    assert len(list((tmp_path / "ddp" / "wandb").glob("offline-run-*"))) == 1  # rank 0 logs once
    assert results["ddp"] == results["single"]
    single, ddp = (torch.load(tmp_path / n / "best.ckpt", weights_only=True)["state_dict"] for n in ("single", "ddp"))
    key_bias = "encoder.layers.0.attention.qkv_bias"  # [query, key, value] biases; scores do not depend on the key bias
    single[key_bias], ddp[key_bias] = single[key_bias][[0, 2]], ddp[key_bias][[0, 2]]  # (gradient 0: float noise)
    for name, weight in single.items():
        torch.testing.assert_close(ddp[name], weight, rtol=1e-4, atol=1e-5)
