"""Shared fixtures. Tests never touch the network: hub look-ups and wandb run offline."""

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_videos() -> Path:
    """The real sample clips (UCF101, HMDB51, SSv2) that lie in ../shared/videos beside the repo."""
    folder = Path(os.environ.get("MOTIF_SAMPLE_VIDEOS", REPO_ROOT.parent / "shared" / "videos"))
    if not (folder / "ucf101_kayak.mp4").is_file():
        pytest.skip(f"sample videos not found in {folder} (set MOTIF_SAMPLE_VIDEOS)")
    return folder


@pytest.fixture
def single_thread():
    """Small tensors run faster on one thread, and timings do not depend on the machine's load."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
