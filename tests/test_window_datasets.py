"""Window-streaming datasets: chunks per video, worker and rank sharding, bad videos skipped and reported."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from helpers_video import decode_index, make_index_video, truncate
from motif.data import (SkippedVideo, SkipReport, VideoChunk, VideoRecord, VideoWindowDataset, VideoWindows,
                        VideoWindowSettings, VideoWindowStream, record_skips)
from motif.video import WindowPlan


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[VideoRecord]:
    """Three good videos (37, 50, 20 frames) and four bad ones, interleaved."""
    folder = tmp_path_factory.mktemp("window_datasets")
    good = [make_index_video(folder / f"good{index}.mp4", frames, fps=fps)
            for index, (frames, fps) in enumerate([(37, 25), (50, 30), (20, 12)])]
    (folder / "empty.mp4").touch()
    (folder / "text.mp4").write_text("not a video")
    truncate(good[1], folder / "cut.mp4")
    make_index_video(folder / "one.mp4", 1)
    paths = [good[0], folder / "missing.mp4", good[1], folder / "empty.mp4", folder / "text.mp4", good[2],
             folder / "cut.mp4", folder / "one.mp4"]
    return [VideoRecord(path.stem, str(path), index % 3, "train") for index, path in enumerate(paths)]


GOOD = {"good0": 37, "good1": 50, "good2": 20}
BAD = {"missing": "VideoNotFoundError", "empty": "EmptyVideoError", "text": "CorruptVideoError",
       "cut": "CorruptVideoError", "one": "TooFewFramesError"}
SETTINGS = VideoWindowSettings(window_size=8, frames_per_window=2, frame_sampling="uniform", chunk_windows=2)


def check_chunks(items: list) -> dict[str, list[VideoChunk]]:
    """Group chunks by video and check each against its plan, frame by frame."""
    by_video: dict[str, list[VideoChunk]] = {}
    for item in items:
        if isinstance(item, VideoChunk):
            by_video.setdefault(item.video_id, []).append(item)
    assert set(by_video) == set(GOOD)
    for video_id, chunks in by_video.items():
        meta = chunks[0].meta
        plan = SETTINGS.plan(meta.num_frames, meta.fps, video_id)
        assert meta.num_frames == GOOD[video_id]
        assert [chunk.is_last for chunk in chunks] == [False] * (len(chunks) - 1) + [True]
        window_ids = torch.cat([chunk.chunk.window_ids for chunk in chunks])
        assert window_ids.tolist() == list(range(plan.num_windows))
        assert torch.equal(torch.cat([chunk.spans for chunk in chunks]), plan.spans)
        frames = torch.cat([chunk.chunk.frames for chunk in chunks])
        assert [decode_index(frame) for frame in frames.numpy()] == [i for f in plan.frame_indices for i in f]
    return by_video


def test_stream_skips_bad_videos_and_reports_them(records, tmp_path, caplog):
    stream = VideoWindowStream(records, SETTINGS)
    report = SkipReport()
    with caplog.at_level(logging.WARNING, logger="motif.data.skips"):
        items = list(record_skips(stream, report))
    check_chunks(items)
    assert {entry.video_id: entry.error for entry in report} == BAD
    warnings = [record.message for record in caplog.records if "skipped" in record.message]
    assert len(warnings) == 1 and "skipped 5 bad video(s)" in warnings[0]
    assert report.warn_once_summary() is False  # once only
    saved = json.loads(report.save(tmp_path / "skipped.json").read_text())
    assert saved["count"] == 5
    for entry in saved["videos"]:
        assert entry["path"].endswith(f"{entry['video_id']}.mp4") and entry["reason"]
    assert len(SkipReport.load(tmp_path / "skipped.json")) == 5


def test_stream_with_worker_processes(records):
    loader = DataLoader(VideoWindowStream(records, SETTINGS), batch_size=None, num_workers=2)
    items = list(loader)
    check_chunks(items)
    skipped = sorted(item.video_id for item in items if isinstance(item, SkippedVideo))
    assert skipped == sorted(BAD)


def test_stream_shards_over_ranks(records):
    seen = []
    for rank in range(3):
        stream = VideoWindowStream(records, SETTINGS, rank=rank, world_size=3)
        assert list(stream.shard_indices()) == list(range(rank, len(records), 3))
        seen.extend({item.video_id for item in stream})
    assert sorted(seen) == sorted(record.video_id for record in records)  # every video exactly once
    with pytest.raises(ValueError, match="both rank and world_size"):
        VideoWindowStream(records, rank=1)


def test_map_style_dataset(records):
    dataset = VideoWindowDataset(records, SETTINGS)
    assert len(dataset) == len(records)
    item = dataset[2]
    assert isinstance(item, VideoWindows) and item.video_id == "good1"
    plan = WindowPlan.build(50, 30.0, window_size=8, frames_per_window=2, sampling="uniform")
    assert item.num_windows == plan.num_windows and torch.equal(item.spans, plan.spans)
    assert [decode_index(frame) for frame in item.frames.numpy()] == [i for f in plan.frame_indices for i in f]
    features = item.frames.float().mean(dim=(1, 2))  # [N, 3]
    pooled = item.mean_per_window(features)
    assert pooled.shape == (plan.num_windows, 3)
    torch.testing.assert_close(pooled[0], features[item.frame_window == 0].mean(0))
    skipped = dataset[1]
    assert isinstance(skipped, SkippedVideo) and skipped.error == "VideoNotFoundError"
    loader = DataLoader(dataset, batch_size=3, collate_fn=list, num_workers=0)
    assert [len(batch) for batch in loader] == [3, 3, 2]


def test_settings_follow_the_video_config_names():
    settings = VideoWindowSettings(**{"backend": "pyav", "window_size": 16, "stride": None, "frames_per_window": 1,
                                      "frame_sampling": "random", "seed": 3, "num_threads": 1, "min_frames": 2,
                                      "fps_override": None, "chunk_windows": 8})
    assert settings.plan(64, 30.0, "x") == WindowPlan.build(64, 30.0, 16, sampling="random", seed=3, video_id="x")
    assert settings.content_key()["seed"] == 3 and VideoWindowSettings().content_key()["seed"] is None
    with pytest.raises(ValueError, match="sampling"):
        VideoWindowSettings(frame_sampling="middle")
    with pytest.raises(ValueError, match="chunk_windows"):
        VideoWindowSettings(chunk_windows=0)


def test_skip_report_from_plain_exception(tmp_path: Path):
    entry = SkippedVideo.from_error(RuntimeError("boom"), tmp_path / "x.mp4", "x")
    assert (entry.path, entry.reason, entry.error) == (str(tmp_path / "x.mp4"), "boom", "RuntimeError")
