"""Fault injection through the real tools (subprocesses): kill -9 during extraction and training, damaged
cache files, a full disk, a read-only run folder, an interrupted checkpoint write, a diverging loss and a
bank of duplicates. Each ends in a clear error (one ``error:`` paragraph, exit status 2, no traceback) or
an exact recovery, and no finished work is lost."""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motif.cache import EmbeddingCache
from motif.video import write_video

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
SYNTHETIC = ["--config", str(REPO / "configs" / "synthetic_order.yaml"), "data.synthetic.num_videos=90",
             "data.synthetic.feature_dim=64", "data.synthetic.num_concepts=12", "data.synthetic.min_windows=8",
             "data.synthetic.max_windows=16", "optim.batch_size=16", "model.head_dim=1", "optim.max_epochs=4",
             "baselines.full_attention=false", "trainer.progress_bar=false"]


def _env(wandb: str = "disabled") -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "WANDB_MODE": wandb, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "Agg", "WANDB_SILENT": "true"}


def _tool(name: str) -> list[str]:
    return [PYTHON, str(REPO / "tools" / name)]


def run(cmd: list[str], wandb: str = "disabled", **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=_env(wandb), capture_output=True, text=True, timeout=600, **kwargs)


def _without_timings(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "seconds"}


def _same_best_checkpoint(a: Path, b: Path) -> bool:
    first, second = (torch.load(p, weights_only=True) for p in (a, b))
    same_weights = all(torch.equal(first["state_dict"][k], second["state_dict"][k]) for k in first["state_dict"])
    return same_weights and _without_timings(first["metrics"]) == _without_timings(second["metrics"])


def _csv_epochs(path: Path) -> dict[int, str]:
    """{epoch: val/acc} of a Lightning CSV log; fails if an epoch's validation row appears twice."""
    rows = [r for r in csv.DictReader(path.open()) if r.get("val/acc")]
    epochs = [int(float(r["epoch"])) for r in rows]
    assert len(epochs) == len(set(epochs)), f"duplicate validation rows in {path}: {epochs}"
    return {e: r["val/acc"] for e, r in zip(epochs, rows)}


def _kill_when(proc: subprocess.Popen, ready, extra_delay: float) -> bool:
    """SIGKILL the process group of ``proc`` (started with ``start_new_session=True``: the tool and helpers such
    as its wandb service, like a job killed by a scheduler) ``extra_delay`` s after ``ready()`` first holds;
    False if it finished first."""
    while proc.poll() is None:
        try:
            hit = ready()
        except Exception:  # noqa: BLE001 - a file being written while polled
            hit = False
        if hit:
            time.sleep(extra_delay)
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                return True
            return False
        time.sleep(0.02)
    return False


# --- training on the synthetic order task --------------------------------------------------------------


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("faults_reference")
    proc = run([*_tool("train.py"), *SYNTHETIC, f"output_dir={out}", "name=ref"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out / "ref"


@pytest.mark.slow
def test_kill_9_during_training_at_three_epochs_resumes_exactly(reference_run, tmp_path):
    rng = random.Random(15)
    reference = json.loads((reference_run / "metrics.json").read_text())
    for epoch in (0, 1, 2):
        name = f"kill{epoch}"
        cmd = [*_tool("train.py"), *SYNTHETIC, f"output_dir={tmp_path}", f"name={name}"]
        last = tmp_path / name / "lightning" / "motif" / "last.ckpt"
        proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        killed = _kill_when(proc, lambda: torch.load(last, weights_only=True)["epoch"] >= epoch, rng.uniform(0, 0.05))
        assert killed and not (tmp_path / name / "metrics.json").exists()
        resumed = run([*cmd, "--resume"])
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert _without_timings(metrics) == _without_timings(reference), epoch
        assert _same_best_checkpoint(tmp_path / name / "best.ckpt", reference_run / "best.ckpt")
        csv_log = _csv_epochs(tmp_path / name / "csv" / "metrics.csv")
        assert csv_log == _csv_epochs(reference_run / "csv" / "metrics.csv")  # appended, each epoch once


INTERRUPT_THIRD_CHECKPOINT = """
import os, signal, sys
from pathlib import Path
from motif.training import resume
calls = [0]
def save_checkpoint(self, checkpoint, path, storage_options=None):
    calls[0] += 1
    if calls[0] == 3:  # die half-way through writing the third checkpoint
        path = Path(path)
        tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
        tmp.write_bytes(b"PK" + b"0" * 1000)
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, checkpoint, path, storage_options)
original = resume.AtomicCheckpointIO.save_checkpoint
resume.AtomicCheckpointIO.save_checkpoint = save_checkpoint
sys.argv = sys.argv[1:]
exec(compile(open(sys.argv[0]).read(), sys.argv[0], "exec"), {"__name__": "__main__"})
"""


def test_interrupted_checkpoint_write_resumes_exactly(reference_run, tmp_path):
    cmd = [*_tool("train.py"), *SYNTHETIC, f"output_dir={tmp_path}", "name=run"]
    killed = run([PYTHON, "-c", INTERRUPT_THIRD_CHECKPOINT, *cmd[1:]])
    assert killed.returncode == -signal.SIGKILL
    assert torch.load(tmp_path / "run" / "lightning" / "motif" / "last.ckpt", weights_only=True)["epoch"] >= 0
    resumed = run([*cmd, "--resume"])
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert _without_timings(metrics) == _without_timings(json.loads((reference_run / "metrics.json").read_text()))
    assert _same_best_checkpoint(tmp_path / "run" / "best.ckpt", reference_run / "best.ckpt")
    # a checkpoint truncated by something else (a disk fault): a clear error naming it, not a traceback
    last = tmp_path / "run" / "lightning" / "motif" / "last.ckpt"
    last.write_bytes(last.read_bytes()[:2000])
    (tmp_path / "run" / "lightning" / "motif" / "fit.json").unlink()
    broken = run([*cmd, "--resume"])
    assert broken.returncode == 2 and f"error: The resume checkpoint {last} cannot be read" in broken.stderr
    assert "Traceback" not in broken.stderr


def test_diverging_loss_stops_with_a_clear_error(tmp_path):
    proc = run([*_tool("train.py"), *SYNTHETIC, f"output_dir={tmp_path}", "name=run", "optim.lr=1e30"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "error: The training loss became nan at epoch 0" in proc.stderr and "Lower optim.lr" in proc.stderr
    assert not (tmp_path / "run" / "best.ckpt").exists()


def test_out_of_range_config_fails_before_any_work(tmp_path):
    proc = run([*_tool("train.py"), *SYNTHETIC, f"output_dir={tmp_path}", "name=run", "optim.max_epochs=-3"])
    assert proc.returncode == 2 and "Config key 'optim.max_epochs' is -3; it must be >= 1." in proc.stderr
    assert not (tmp_path / "run").exists()


def _read_only_folder(path: Path) -> None:
    """Make ``path`` an existing folder nobody can write: chmod for ordinary users, a read-only tmpfs for root."""
    path.mkdir()
    if os.geteuid() != 0:
        path.chmod(0o555)
        return
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without permission to mount a read-only file system")


def test_read_only_run_folder_fails_before_any_work(tmp_path):
    folder = tmp_path / "readonly"
    _read_only_folder(folder)
    try:
        proc = run([*_tool("train.py"), *SYNTHETIC, f"output_dir={folder}", "name=run"])
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(folder)], check=False)
        else:
            folder.chmod(0o755)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"error: The run folder {folder / 'run'} is not writable" in proc.stderr
    assert "Traceback" not in proc.stderr


# --- videos: extraction and cached training ---------------------------------------------------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """12 clips (red-then-blue / blue-then-red, one long) of a list dataset in a sub-folder, a bank and a config
    for the shipped tiny backbone."""
    root = tmp_path_factory.mktemp("faults_world")
    (root / "clips").mkdir()
    lines: dict[str, list[str]] = {"train": [], "test": []}
    red, blue = (220, 30, 30), (30, 30, 220)
    for i in range(12):
        label, frames = i % 2, (96 if i == 5 else 24)
        video = np.zeros((frames, 48, 48, 3), dtype=np.uint8)
        video[: frames // 2], video[frames // 2:] = (red, blue) if label == 0 else (blue, red)
        write_video(root / "clips" / f"v{i:02d}.mp4", video, fps=8)
        lines["train" if i < 9 else "test"].append(f"clips/v{i:02d}.mp4 {label}")
    for split, rows in lines.items():
        (root / f"{split}.txt").write_text("\n".join(rows) + "\n")
    (root / "classes.txt").write_text("red then blue\nblue then red\n")
    (root / "bank.txt").write_text("red circle\nblue square\ngreen triangle\nyellow star\n")
    config = {
        "base": str(REPO / "configs" / "_base.yaml"),
        "data": {"format": "list", "root": str(root), "train_list": "train.txt", "test_list": "test.txt",
                 "class_names": "classes.txt", "val_fraction": 0.25},
        "video": {"window_size": 4},
        "backbone": {"model": "motif-world-vit", "pretrained": str(REPO / "data/backbones/motif-world-vit.safetensors"),
                     "device": "cpu", "batch_size": 8},
        "concepts": {"bank": str(root / "bank.txt")},
        "optim": {"max_epochs": 3, "batch_size": 4},
        "trainer": {"accelerator": "cpu", "progress_bar": False},
        "baselines": {"full_attention": False},
    }
    (root / "world.yaml").write_text(yaml.safe_dump(config))
    return root


def _video_files(cache_root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in cache_root.glob("*/videos/*.safetensors")}


def _embeddings(cache_root: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return {p.name: load_file(str(p))["embeddings"] for p in cache_root.glob("*/videos/*.safetensors")}


@pytest.mark.slow
def test_kill_9_during_extraction_at_random_points_loses_no_finished_video(world, tmp_path):
    embed = [*_tool("embed.py"), "--config", str(world / "world.yaml"), "--no-progress"]
    start = time.perf_counter()
    assert run([*embed, f"cache.dir={tmp_path / 'reference'}"]).returncode == 0
    duration = time.perf_counter() - start
    reference = _embeddings(tmp_path / "reference")
    assert len(reference) == 12
    rng = random.Random(15)
    for point in range(3):
        cache_dir = tmp_path / f"cache{point}"
        proc = subprocess.Popen([*embed, f"cache.dir={cache_dir}"], env=_env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        # after the first video file, at a random time within the extraction
        _kill_when(proc, lambda: len(_video_files(cache_dir)) > 0, rng.uniform(0, 0.3 * duration))
        finished = _video_files(cache_dir)
        again = run([*embed, f"cache.dir={cache_dir}"])
        assert again.returncode == 0, again.stderr[-3000:]
        report = json.loads(again.stdout)
        assert report["already_cached"] == len(finished) and report["embedded"] == 12 - len(finished)
        after = _video_files(cache_dir)
        assert {name: after[name] for name in finished} == finished  # finished videos were not redone
        for name, embeddings in _embeddings(cache_dir).items():
            torch.testing.assert_close(embeddings, reference[name], rtol=1e-5, atol=1e-5)
        manifest = json.loads(next(cache_dir.glob("*/manifest.json")).read_text())
        assert len(manifest["videos"]) == 12 and not list(cache_dir.glob("*/videos/.*.tmp"))


def _damage_files(cache: EmbeddingCache, video_ids: list[str]) -> None:
    from safetensors.torch import load_file, save_file

    truncated, nan, wrong_shape = (cache.path_for(v) for v in video_ids)
    truncated.write_bytes(truncated.read_bytes()[:300])
    for path, edit in ((nan, "nan"), (wrong_shape, "shape")):
        with open(path, "rb"):
            pass
        meta = cache.metadata(video_ids[1] if edit == "nan" else video_ids[2])
        tensors = {k: v.clone() for k, v in load_file(str(path)).items()}
        if edit == "nan":
            tensors["embeddings"][0, 0] = float("nan")
        else:
            tensors["embeddings"] = tensors["embeddings"][:, :64].contiguous()
        save_file(tensors, str(path), metadata=meta)


def test_damaged_cache_files_are_reported_moved_aside_and_re_embedded(world, tmp_path):
    """Also: tools/explain.py --cache finds list-dataset videos in the clean cache."""
    train = [*_tool("train.py"), "--config", str(world / "world.yaml"), f"cache.dir={tmp_path / 'cache'}",
             f"output_dir={tmp_path}"]
    clean = run([*train, "name=clean"])
    assert clean.returncode == 0, clean.stderr[-3000:]
    # tools/explain.py --cache finds a video of the list dataset (its id is the relative path clips/v10)
    video = world / "clips" / "v10.mp4"
    explained = run([*_tool("explain.py"), "--ckpt", str(tmp_path / "clean" / "best.ckpt"), "--video", str(video),
                     "--out", str(tmp_path / "explained"), "--cache", str(tmp_path / "cache"), "--device", "cpu"])
    assert explained.returncode == 0, explained.stderr[-3000:]
    assert f"Window embeddings of {video} (video id clips/v10) read from the cache" in explained.stderr
    key_dir = next((tmp_path / "cache").glob("*/key.json")).parent
    cache = EmbeddingCache(tmp_path / "cache", json.loads((key_dir / "key.json").read_text()), writer="check")
    damaged = ["clips/v01", "clips/v04", "clips/v10"]
    originals = {v: cache.load(v)["embeddings"] for v in damaged}
    _damage_files(cache, damaged)
    proc = run([*train, "name=damaged"])
    assert proc.returncode == 0, proc.stderr[-3000:]
    for video_id, reason in zip(damaged, ("cannot be read", "1 non-finite value(s)", "shape [6, 64]")):
        assert f"{cache.path_for(video_id)}: cached embeddings of video '{video_id}' are damaged" in proc.stderr
        assert reason in proc.stderr
        torch.testing.assert_close(cache.load(video_id)["embeddings"], originals[video_id], rtol=1e-5, atol=1e-5)
    assert len(list((key_dir / "damaged").iterdir())) == 3
    clean_metrics, metrics = (json.loads((tmp_path / n / "metrics.json").read_text()) for n in ("clean", "damaged"))
    assert metrics["skipped_videos"] == 0
    assert [metrics[k] for k in ("num_train", "num_val", "num_test")] == \
        [clean_metrics[k] for k in ("num_train", "num_val", "num_test")]


FULL_DISK_AFTER_FOUR_VIDEOS = """
import errno, sys
import safetensors.torch
calls = [0]
def save_file(*args, **kwargs):
    calls[0] += 1
    if calls[0] > 4:
        raise OSError(errno.ENOSPC, "No space left on device")
    return original(*args, **kwargs)
original = safetensors.torch.save_file
safetensors.torch.save_file = save_file
import motif.cache.store
motif.cache.store.save_file = save_file
sys.argv = sys.argv[1:]
exec(compile(open(sys.argv[0]).read(), sys.argv[0], "exec"), {"__name__": "__main__"})
"""


def _small_tmpfs(path: Path, size: str) -> bool:
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_full_disk_during_extraction_is_a_clear_error_and_keeps_finished_videos(world, tmp_path):
    """A tmpfs too small for the cache where the machine allows mounting one, else ENOSPC injected into the
    cache's file writes; then space is freed and the same command finishes the job."""
    cache_dir = tmp_path / "cache"
    embed = [*_tool("embed.py"), "--config", str(world / "world.yaml"), f"cache.dir={cache_dir}", "--no-progress"]
    mounted = _small_tmpfs(cache_dir, "40k")
    try:
        full = run(embed if mounted else [PYTHON, "-c", FULL_DISK_AFTER_FOUR_VIDEOS, *embed[1:]])
        assert full.returncode == 2, full.stderr[-3000:]
        assert "No space left on device" in full.stderr and "run the same command again" in full.stderr
        assert "Traceback" not in full.stderr
        finished = _video_files(cache_dir)
        assert 0 < len(finished) < 12 and not list(cache_dir.glob("*/videos/.*.tmp"))
        if mounted:
            subprocess.run(["mount", "-o", "remount,size=4m", str(cache_dir)], check=True)
        again = run(embed)
        assert again.returncode == 0, again.stderr[-3000:]
        after = _video_files(cache_dir)
        assert len(after) == 12 and {name: after[name] for name in finished} == finished
    finally:
        if mounted:
            subprocess.run(["umount", str(cache_dir)], check=False)


def test_a_bank_of_duplicates_is_an_error_naming_the_file(world, tmp_path):
    bank = tmp_path / "same.txt"
    bank.write_text("red circle\nRed Circle\nred  circle\n")
    proc = run([*_tool("train.py"), "--config", str(world / "world.yaml"), f"cache.dir={tmp_path / 'cache'}",
                f"output_dir={tmp_path}", "name=run", f"concepts.bank={bank}"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"Concept bank '{bank}' keeps 1 concept(s)" in proc.stderr and "fewer than the 2 classes" in proc.stderr
    assert "dropping 'Red Circle', a duplicate of 'red circle'" in proc.stderr
