"""tools/embed.py end to end: one process in-process, and two DDP processes on CPU (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from helpers_backbone import make_local_dir, register_tiny_model
from motif.backbone import load_backbone
from motif.cache import EmbeddingCache
from motif.config import load_config, window_settings_of
from motif.video import write_video

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import embed  # noqa: E402


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """Four tiny clips in two classes, list files, a concept bank and a local-dir backbone."""
    root = tmp_path_factory.mktemp("embed_data")
    rng = np.random.default_rng(0)
    lines = {"train": [], "test": []}
    for i, (name, frames) in enumerate([("jump_1", 17), ("jump_2", 9), ("run_1", 24), ("run_2", 12)]):
        clip = [rng.integers(0, 256, (40, 56, 3), dtype=np.uint8) for _ in range(frames)]
        write_video(root / f"{name}.mp4", clip, 10.0)
        lines["train" if i % 2 == 0 else "test"].append(f"{name}.mp4 {name.split('_')[0]}")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "bank.txt").write_text("legs in the air\nrunning shoes\ntrack\n")
    register_tiny_model(root / "configs", name="motif-test-embed")
    model_dir = make_local_dir(root / "backbone", "motif-test-embed")
    config = {
        "data": {"format": "list", "root": str(root), "train_list": "train.txt", "test_list": "test.txt",
                 "val_fraction": 0.0},
        "video": {"window_size": 4},
        "backbone": {"model": "motif-test-embed", "pretrained": f"local-dir:{model_dir}", "batch_size": 8},
        "concepts": {"bank": str(root / "bank.txt")},
        "trainer": {"accelerator": "cpu", "devices": 1},
    }
    (root / "embed.yaml").write_text(yaml.safe_dump(config))
    return root


def _cache(root: Path, cache_dir: Path) -> EmbeddingCache:
    cfg = load_config(root / "embed.yaml", [f"cache.dir={cache_dir}"])
    backbone = load_backbone(cfg.backbone.model, cfg.backbone.pretrained, device="cpu")
    return EmbeddingCache.for_backbone(cache_dir, backbone, window_settings_of(cfg), writer="check")


def test_embed_tool_fills_the_cache_and_resumes(dataset, tmp_path, capsys):
    args = ["--config", str(dataset / "embed.yaml"), f"cache.dir={tmp_path / 'cache'}", "--no-progress"]
    assert embed.main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["embedded"], first["already_cached"], first["windows"]) == (4, 0, 5 + 3 + 6 + 3)
    cache = _cache(dataset, tmp_path / "cache")
    manifest = json.loads((cache.dir / "manifest.json").read_text())
    assert sorted(manifest["videos"]) == ["jump_1", "jump_2", "run_1", "run_2"]
    assert embed.main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["embedded"], second["already_cached"]) == (0, 4)


def test_embed_tool_reports_bad_settings(dataset, tmp_path, capsys):
    base = ["--config", str(dataset / "embed.yaml"), f"cache.dir={tmp_path / 'cache'}"]
    assert embed.main([*base, "video.window_sise=4"]) == 2
    assert "video.window_size" in capsys.readouterr().err
    assert embed.main([*base, f"backbone.pretrained={tmp_path / 'missing.bin'}"]) == 2
    assert "missing.bin does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_two_ddp_processes_share_the_videos(dataset, tmp_path):
    cache_dir = tmp_path / "ddp_cache"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    command = [sys.executable, str(REPO / "tools" / "embed.py"), "--config", str(dataset / "embed.yaml"),
               f"cache.dir={cache_dir}", "trainer.devices=2", "trainer.strategy=ddp", "--no-progress"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Rank 0/2 embeds 2 of 4 videos" in result.stderr and "Rank 1/2 embeds 2 of 4 videos" in result.stderr
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert (summary["embedded"], summary["windows"]) == (4, 17), (summary, result.stderr[-2000:])
    ddp = _cache(dataset, cache_dir)
    manifest = json.loads((ddp.dir / "manifest.json").read_text())
    assert sorted(manifest["videos"]) == ["jump_1", "jump_2", "run_1", "run_2"]
    assert not list(ddp.dir.glob("manifest.*.json"))  # the per-rank parts were merged
    single_run = ["--config", str(dataset / "embed.yaml"), f"cache.dir={tmp_path / 'single'}", "--no-progress"]
    assert embed.main(single_run) == 0
    single = _cache(dataset, tmp_path / "single")
    for video_id in manifest["videos"]:
        torch.testing.assert_close(ddp.load(video_id)["embeddings"], single.load(video_id)["embeddings"],
                                   rtol=1e-5, atol=1e-5)
