"""Embedding extraction and the cache: numbers, keys, resumability, bad videos, streaming parity."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from helpers_backbone import register_tiny_model, save_tiny_weights
from motif.backbone import load_backbone
from motif.cache import (
    CacheError,
    CacheMissError,
    DamagedCacheFileError,
    EmbeddingCache,
    cache_key,
    cache_key_fields,
    extract_embeddings,
    iter_video_embeddings,
)
from motif.data import SkipReport, VideoRecord
from motif.sequences.prepare import cached_window_embeddings, iter_window_embeddings
from motif.video import VideoWindowSettings, WindowPlan, open_video, write_video

VIDEO = VideoWindowSettings(window_size=4, chunk_windows=3)


def _write_clip(path, num_frames: int, fps: float, seed: int, height: int = 48, width: int = 64):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    frames = []
    for i in range(num_frames):  # smooth content that changes over time (compresses well)
        tile = np.roll(base, i, axis=1).repeat(8, 0).repeat(8, 1)
        frames.append(np.clip(tile.astype(int) + 3 * i, 0, 255).astype(np.uint8))
    return write_video(path, frames, fps, options={"qp": "0"})


@pytest.fixture(scope="module")
def backbone(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cache_backbone")
    name = register_tiny_model(folder / "configs", name="motif-test-cache")
    weights = save_tiny_weights(folder / "w.safetensors", name, seed=0)
    model = load_backbone(name, str(weights), device="cpu", batch_size=64)
    return model


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    specs = [("a", 21, 10.0), ("b", 8, 25.0), ("c", 37, 12.0), ("d", 13, 30.0)]
    return [
        VideoRecord(vid, str(_write_clip(folder / f"{vid}.mp4", n, fps, seed=i)), label=i % 2, split="train")
        for i, (vid, n, fps) in enumerate(specs)
    ]


def _reference_embeddings(record, backbone, settings: VideoWindowSettings):
    """Decode each window's frames at full size, encode them, average their (unnormalised) embeddings."""
    with open_video(record.path) as source:
        meta = source.meta
        plan = settings.plan(meta.num_frames, meta.fps, record.video_id)
        windows = [backbone.encode_frames(source.read_frames(window)).mean(dim=0) for window in plan.frame_indices]
    return torch.stack(windows), plan


# --- numbers -------------------------------------------------------------------------------------------


def test_extracted_embeddings_equal_direct_encoding_of_the_plan_frames(backbone, clips, tmp_path):
    settings = VideoWindowSettings(window_size=4, frames_per_window=3, frame_sampling="uniform", chunk_windows=2)
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, settings, resize_at_decode=False)
    report = extract_embeddings(clips, backbone, settings, cache, resize_at_decode=False, progress=False)
    assert report.embedded == 4 and report.windows == 6 + 2 + 10 + 4
    for record in clips:
        expected, plan = _reference_embeddings(record, backbone, settings)
        stored = cache.load(record.video_id)
        torch.testing.assert_close(stored["embeddings"], expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(stored["spans"].float(), plan.spans)
        assert cache.num_windows(record.video_id) == plan.num_windows


def test_resizing_in_the_decoder_stays_close_to_full_size_preprocessing(backbone, clips, tmp_path):
    full = {v.video_id: v.embeddings for v in iter_video_embeddings(clips, backbone, VIDEO, resize_at_decode=False)}
    fast = {v.video_id: v.embeddings for v in iter_video_embeddings(clips, backbone, VIDEO, resize_at_decode=True)}
    for video_id, embeddings in full.items():
        assert torch.nn.functional.cosine_similarity(fast[video_id], embeddings).min() > 0.99


def test_batches_and_decoding_threads_do_not_change_the_numbers_or_order(backbone, clips):
    big = [v.embeddings for v in iter_video_embeddings(clips, backbone, VIDEO)]
    backbone.batch_size = 3
    try:
        small = list(iter_video_embeddings(clips * 2, backbone, VIDEO, decode_threads=3))
    finally:
        backbone.batch_size = 64
    assert [v.video_id for v in small] == [r.video_id for r in clips * 2]
    for a, b in zip(big * 2, small):
        torch.testing.assert_close(a, b.embeddings, rtol=1e-5, atol=1e-5)
    threaded = [v.embeddings for v in iter_video_embeddings(clips, backbone, VIDEO, decode_threads=1)]
    for a, b in zip(big, threaded):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


# --- keys ----------------------------------------------------------------------------------------------


def test_every_setting_that_changes_embeddings_changes_the_key(backbone):
    base = cache_key(cache_key_fields(backbone.cache_identity, VIDEO))
    changed = [
        cache_key_fields(backbone.cache_identity, VideoWindowSettings(window_size=8)),
        cache_key_fields(backbone.cache_identity, VideoWindowSettings(window_size=4, stride=2)),
        cache_key_fields(backbone.cache_identity, VideoWindowSettings(window_size=4, frames_per_window=2)),
        cache_key_fields(backbone.cache_identity, VideoWindowSettings(window_size=4, frame_sampling="random")),
        cache_key_fields(backbone.cache_identity, VideoWindowSettings(window_size=4, fps_override=24.0)),
        cache_key_fields(backbone.cache_identity, VIDEO, resize_at_decode=False),
        cache_key_fields(backbone.cache_identity, VIDEO, dtype="float16"),
        cache_key_fields({**backbone.cache_identity, "weights_sha256": "0" * 64}, VIDEO),
        cache_key_fields({**backbone.cache_identity, "precision": "bf16"}, VIDEO),
        cache_key_fields({**backbone.cache_identity, "image_size": [64, 64]}, VIDEO),
        {**cache_key_fields(backbone.cache_identity, VIDEO), "format_version": -1},
    ]
    keys = [cache_key(fields) for fields in changed]
    assert base not in keys and len(set(keys)) == len(keys)
    random_a = VideoWindowSettings(window_size=4, frame_sampling="random", seed=1)
    random_b = VideoWindowSettings(window_size=4, frame_sampling="random", seed=2)
    assert cache_key(cache_key_fields(backbone.cache_identity, random_a)) != cache_key(
        cache_key_fields(backbone.cache_identity, random_b)
    )


def test_settings_that_do_not_change_frames_keep_the_key(backbone):
    base = cache_key(cache_key_fields(backbone.cache_identity, VIDEO))
    same = [
        VideoWindowSettings(window_size=4, chunk_windows=7, backend="pyav", num_threads=3, min_frames=5),
        VideoWindowSettings(window_size=4, seed=123),  # the seed is irrelevant for centre frames
        VideoWindowSettings.from_dict({"window_size": 4, "stride": 4, "a_key_of_an_older_version": 1}),
    ]
    assert all(cache_key(cache_key_fields(backbone.cache_identity, s)) == base for s in same)


def test_changed_settings_never_reuse_old_embeddings(backbone, clips, tmp_path):
    first = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    extract_embeddings(clips, backbone, VIDEO, first, progress=False)
    other_settings = VideoWindowSettings(window_size=2)
    second = EmbeddingCache.for_backbone(tmp_path, backbone, other_settings)
    assert second.dir != first.dir and not any(second.has(r.video_id) for r in clips)
    report = extract_embeddings(clips, backbone, other_settings, second, progress=False)
    assert report.embedded == len(clips) and report.already_cached == 0
    assert second.load("a")["embeddings"].shape[0] == 11 != first.load("a")["embeddings"].shape[0]


def test_a_key_file_that_does_not_match_its_folder_is_an_error(backbone, tmp_path):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    (cache.dir / "key.json").write_text(json.dumps({"something": "else"}))
    with pytest.raises(CacheError, match="does not match"):
        EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)


# --- resumability -------------------------------------------------------------------------------------


def test_killed_run_resumes_with_only_unfinished_videos(backbone, clips, tmp_path, monkeypatch):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    original_save = EmbeddingCache.save
    calls = {"n": 0}

    def dying_save(self, *args, **kwargs):  # the process is killed while writing the third video
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original_save(self, *args, **kwargs)

    monkeypatch.setattr(EmbeddingCache, "save", dying_save)
    with pytest.raises(KeyboardInterrupt):
        extract_embeddings(clips, backbone, VIDEO, cache, progress=False)
    monkeypatch.setattr(EmbeddingCache, "save", original_save)
    done_before = {r.video_id: cache.path_for(r.video_id).stat().st_mtime_ns for r in clips[:2]}
    assert not cache.has("c") and not cache.has("d")

    # leftovers of a kill: a partial temporary file of a dead writer process, a truncated manifest part
    stray = cache.videos_dir / f".{cache.path_for('c').name}.main.999999999.tmp"
    stray.write_bytes(b"\x00partial")
    (cache.dir / "manifest.main.json").write_text('{"videos": {"c": {"file": "vid')
    resumed = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    assert not stray.exists() and not resumed.has("c")
    with pytest.raises(CacheMissError, match="'c' is not in the embedding cache"):
        resumed.load("c")
    report = extract_embeddings(clips, backbone, VIDEO, resumed, progress=False)
    assert (report.embedded, report.already_cached) == (2, 2)
    assert {r.video_id: resumed.path_for(r.video_id).stat().st_mtime_ns for r in clips[:2]} == done_before
    manifest = resumed.consolidate()
    assert sorted(manifest["videos"]) == ["a", "b", "c", "d"]
    assert manifest["videos"]["c"]["num_windows"] == 10


def test_second_run_over_a_complete_cache_does_no_work(backbone, clips, tmp_path, monkeypatch):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    extract_embeddings(clips, backbone, VIDEO, cache, progress=False)
    monkeypatch.setattr(backbone, "encode_prepared", lambda *a: pytest.fail("encoder ran on a cached video"))
    report = extract_embeddings(clips, backbone, VIDEO, EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO),
                                progress=False)
    assert (report.embedded, report.already_cached) == (0, 4)


def test_manifest_is_rebuilt_from_the_files(backbone, clips, tmp_path):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    extract_embeddings(clips, backbone, VIDEO, cache, progress=False)
    cache.consolidate()
    (cache.dir / "manifest.json").unlink()
    rebuilt = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO).consolidate()
    assert {vid: e["num_windows"] for vid, e in rebuilt["videos"].items()} == {"a": 6, "b": 2, "c": 10, "d": 4}
    assert rebuilt["videos"]["c"]["fps"] == "12.0"


def test_file_of_another_video_is_not_returned(backbone, clips, tmp_path):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    extract_embeddings(clips[:2], backbone, VIDEO, cache, progress=False)
    os.replace(cache.path_for("a"), cache.path_for("zzz"))
    with pytest.raises(CacheError, match="holds video 'a'"):
        cache.load("zzz")


# --- bad videos --------------------------------------------------------------------------------------


def test_bad_videos_are_skipped_with_reasons(backbone, clips, tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "garbage.mp4").write_bytes(os.urandom(4096))
    _write_clip(tmp_path / "one.mp4", 1, 10.0, seed=9)
    bad = [
        VideoRecord("missing", str(tmp_path / "missing.mp4"), 0, "train"),
        VideoRecord("empty", str(tmp_path / "empty.mp4"), 0, "train"),
        VideoRecord("garbage", str(tmp_path / "garbage.mp4"), 0, "train"),
        VideoRecord("one", str(tmp_path / "one.mp4"), 0, "train"),
    ]
    records = [clips[0], bad[0], bad[1], clips[1], bad[2], bad[3]]
    cache = EmbeddingCache.for_backbone(tmp_path / "cache", backbone, VIDEO)
    skips = SkipReport()
    report = extract_embeddings(records, backbone, VIDEO, cache, skip_report=skips, progress=False)
    assert report.embedded == 2 and cache.has("a") and cache.has("b")
    reasons = {s["video_id"]: s["reason"] for s in report.skipped}
    assert set(reasons) == {"missing", "empty", "garbage", "one"}
    assert "does not exist" in reasons["missing"] and "empty" in reasons["empty"]
    assert "min_frames" in reasons["one"]
    assert len(skips) == 4 and {e.path for e in skips} == {r.path for r in bad}
    assert set(cache.consolidate()["skipped"]) == {"missing", "empty", "garbage", "one"}


# --- streaming and cached concept sequences ---------------------------------------------------------


def test_streaming_windows_equal_the_cached_path(backbone, clips, tmp_path):
    """cache.mode=stream and the cache give the same window embeddings, spans and order."""
    cfg = OmegaConf.create({"video": VIDEO.as_dict(), "cache": {"num_workers": 0}})
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    cached = list(cached_window_embeddings(clips, backbone, cache, cfg, SkipReport()))
    streamed = list(iter_window_embeddings(clips, backbone, VIDEO, SkipReport()))
    assert [c[0] for c in cached] == [s[0] for s in streamed] == ["a", "b", "c", "d"]
    for (_, cached_emb, cached_spans), (_, streamed_emb, streamed_spans) in zip(cached, streamed):
        torch.testing.assert_close(streamed_emb, cached_emb, rtol=0, atol=1e-5)
        torch.testing.assert_close(streamed_spans.float(), cached_spans.float())


def test_text_embeddings_are_cached(backbone, tmp_path, monkeypatch):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    first = cache.text_embeddings(["paddle", "river"], backbone)
    monkeypatch.setattr(backbone, "encode_text", lambda texts: pytest.fail("text encoder ran again"))
    torch.testing.assert_close(cache.text_embeddings(["paddle", "river"], backbone), first)
    with pytest.raises(CacheMissError, match="pass the backbone"):
        cache.text_embeddings(["river", "paddle"])


def test_extraction_of_real_clips(sample_videos, tmp_path):
    vision = {"image_size": 40, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8}
    name = register_tiny_model(tmp_path / "configs", name="motif-test-cache40", vision_cfg=vision)
    backbone = load_backbone(name, str(save_tiny_weights(tmp_path / "w40.bin", name)), device="cpu")
    records = [VideoRecord(p.stem, str(p), 0, "test") for p in sorted(sample_videos.glob("*.mp4"))]
    settings = VideoWindowSettings()
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, settings)
    start = time.perf_counter()
    report = extract_embeddings(records, backbone, settings, cache, progress=False)
    assert report.embedded == 3 and not report.skipped, report.skipped
    with open_video(records[0].path) as source:
        plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, 8)
    torch.testing.assert_close(cache.load(records[0].video_id)["spans"].float(), plan.spans)
    assert time.perf_counter() - start < 30


# --- damaged files -----------------------------------------------------------------------------------


def _damage(cache: EmbeddingCache, video_id: str, how: str) -> None:
    """Truncate a cached file, put a NaN into it, or give it the wrong shape or dtype (a valid safetensors file)."""
    from safetensors.torch import load_file, save_file

    path = cache.path_for(video_id)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
        return
    meta = cache.metadata(video_id)
    tensors = load_file(str(path))
    if how == "nan":
        tensors["embeddings"][1, 3] = float("nan")
    elif how == "wrong_shape":
        tensors["embeddings"] = tensors["embeddings"][:, :-2].contiguous()
    elif how == "wrong_dtype":
        tensors["embeddings"] = tensors["embeddings"].half()
    elif how == "short":
        tensors = {k: v[:-1].contiguous() for k, v in tensors.items()}
    save_file(tensors, str(path), metadata=meta)


@pytest.mark.parametrize("how, reason", [
    ("truncated", "cannot be read"), ("nan", "1 non-finite value"),
    ("wrong_shape", r"shape \[6, 14\], expected \[T, 16\]"),
    ("wrong_dtype", "dtypes torch.float16"), ("short", "5 windows of embeddings, the header says '6'"),
])
def test_damaged_cache_files_are_named_and_moved_aside(backbone, clips, tmp_path, how, reason):
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    extract_embeddings(clips, backbone, VIDEO, cache, progress=False)
    reference = cache.load("a")["embeddings"]
    _damage(cache, "a", how)
    with pytest.raises(DamagedCacheFileError, match=rf"{cache.path_for('a')}: .*video 'a' are damaged: .*{reason}"):
        cache.load("a")
    moved = cache.move_aside("a")
    assert moved.parent == cache.dir / "damaged" and not cache.has("a")
    report = extract_embeddings(clips, backbone, VIDEO, cache, progress=False)
    assert (report.embedded, report.already_cached) == (1, 3)
    torch.testing.assert_close(cache.load("a")["embeddings"], reference, rtol=1e-5, atol=1e-5)  # other batches


def test_non_finite_embeddings_are_skipped_not_stored(backbone, clips, tmp_path, monkeypatch):
    encode = backbone.encode_prepared

    def encode_with_nan(pixels):  # the encoder overflows on the first 6 frames: clip "a"'s 6 windows
        out = encode(pixels).clone()
        out[:6, 2] = float("nan")
        return out

    monkeypatch.setattr(backbone, "encode_prepared", encode_with_nan)
    skips = SkipReport()
    cache = EmbeddingCache.for_backbone(tmp_path, backbone, VIDEO)
    report = extract_embeddings(clips, backbone, VIDEO, cache, skip_report=skips, progress=False, decode_threads=0)
    assert report.embedded == 3 and not cache.has("a") and all(cache.has(v) for v in "bcd")
    assert [s["video_id"] for s in report.skipped] == ["a"]
    assert report.skipped[0]["reason"] == "6 non-finite value(s) in the window embeddings"
    assert [e.error for e in skips] == ["NonFiniteEmbeddingsError"]
