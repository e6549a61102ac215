"""Training on video files: annotations -> tiny open_clip backbone -> embedding cache (or stream) ->
MoTIF -> checkpoint -> explanation of a new video; bad videos are skipped and reported."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers_backbone import register_tiny_model, save_tiny_weights
from motif.config import load_config
from motif.explain import explain_video
from motif.sequences.prepare import prepare_sequences
from motif.training.experiment import train_and_evaluate
from motif.video import write_video

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["red then blue", "blue then red"]


def coloured_video(path: Path, first: tuple, second: tuple, frames: int = 24) -> None:
    video = np.zeros((frames, 32, 32, 3), dtype=np.uint8)
    video[: frames // 2] = first
    video[frames // 2:] = second
    write_video(path, video, fps=8)


@pytest.fixture(scope="module")
def video_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    (root / "clips").mkdir()
    red, blue = (220, 30, 30), (30, 30, 220)
    lines = {"train": [], "test": []}
    for i in range(12):
        label = i % 2
        name = f"clips/v{i:02d}.mp4"
        coloured_video(root / name, *((red, blue) if label == 0 else (blue, red)))
        lines["train" if i < 8 else "test"].append(f"{name} {label}")
    (root / "clips" / "broken.mp4").write_text("not a video")
    lines["train"].append("clips/broken.mp4 0")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "bank.txt").write_text("red\nblue\nred colour\na square\n")
    register_tiny_model(root / "model_configs")
    weights = save_tiny_weights(root / "tiny.safetensors")
    return root, weights


def config(root: Path, weights: Path, out: Path, *extra):
    return load_config(REPO / "configs" / "_base.yaml", [
        "data.format=list", f"data.root={root}", "data.train_list=train.txt", "data.test_list=test.txt",
        "data.class_names=classes.txt", "data.val_fraction=0.25", f"concepts.bank={root / 'bank.txt'}",
        "backbone.model=motif-test-tiny", f"backbone.pretrained={weights}", "backbone.device=cpu",
        f"cache.dir={out / 'cache'}", f"output_dir={out}", "name=run", "optim.max_epochs=3", "optim.batch_size=4",
        "logger.wandb.mode=disabled", "trainer.accelerator=cpu", "trainer.progress_bar=false",
        "baselines.full_attention=false", *extra])


def test_video_run_caches_trains_and_reports_skips(video_dataset, tmp_path):
    root, weights = video_dataset
    cfg = config(root, weights, tmp_path)
    metrics = train_and_evaluate(cfg)
    run = tmp_path / "run"
    assert metrics["skipped_videos"] == 1
    skipped = json.loads((run / "skipped.json").read_text())
    assert skipped["count"] == 1 and skipped["videos"][0]["path"].endswith("broken.mp4")
    assert metrics["num_train"] + metrics["num_val"] == 8 and metrics["num_test"] == 4
    assert {"mean_embedding", "mean_softmax", "majority_vote"} <= set(metrics["baselines"]["zero_shot"])
    assert 0.0 <= metrics["baselines"]["linear_probe"]["test_acc"] <= 1.0
    ckpt = torch.load(run / "best.ckpt", weights_only=True)
    assert ckpt["backbone"]["model"] == "motif-test-tiny" and ckpt["video"]["window_size"] == 8
    assert ckpt["text_embeddings"].shape[0] == len(ckpt["concept_names"])
    # the checkpoint alone explains a video it has never seen (decoded and embedded from scratch)
    new_video = tmp_path / "new.mp4"
    coloured_video(new_video, (30, 30, 220), (220, 30, 30), frames=40)
    result, paths = explain_video(run / "best.ckpt", new_video, tmp_path / "report", device="cpu")
    explanation = json.loads(paths["json"].read_text())
    assert abs(explanation["decomposition"]["residual"]) < 1e-4
    assert len(explanation["windows"]) == 5 and (tmp_path / "report" / "report.html").is_file()


def test_stream_mode_gives_the_cached_numbers(video_dataset, tmp_path):
    root, weights = video_dataset
    cached = prepare_sequences(config(root, weights, tmp_path), 1, tmp_path)
    stream = config(root, weights, tmp_path, "cache.mode=stream", f"cache.dir={tmp_path / 'unused'}")
    streamed = prepare_sequences(stream, 1, tmp_path)
    assert not (tmp_path / "unused").exists()  # nothing written in stream mode
    for a, b in zip(cached.train + cached.test, streamed.train + streamed.test):
        assert a.video_id == b.video_id
        torch.testing.assert_close(a.concepts, b.concepts, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(cached.class_text_embeddings, streamed.class_text_embeddings)
