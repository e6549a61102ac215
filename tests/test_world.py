"""The synthetic world: determinism, time-mirrored classes, ground truth that matches the pixels,
files that decord and the list format read, and the shipped world backbone."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from motif.stats import roc_auc_per_column
from motif.video import open_video
from motif.world.config import WorldConfig
from motif.world.errors import WorldError
from motif.world.generate import generate_world, render_labelled_frames, video_rng, write_world_video
from motif.world.render import render_video
from motif.world.scripts import ObjectTrack, VideoScript, sample_class_script
from motif.world.truth import WorldGroundTruth, intervals_to_mask, mask_to_intervals
from motif.world.vocabulary import CLASS_NAMES, RIGHT_EDGE, SMALL_RADIUS, WORLD_CLASSES, WORLD_CONCEPTS

SMALL = WorldConfig(num_videos=16, seed=3, size=64, min_seconds=2, max_seconds=3)
REPO_ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = REPO_ROOT / "data" / "backbones" / "motif-world-vit.safetensors"


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    generate_world(out, SMALL)
    return out


def test_world_is_deterministic_for_a_seed(small_world, tmp_path):
    generate_world(tmp_path / "again", SMALL, workers=2)
    assert _digest(tmp_path / "again") == _digest(small_world)
    generate_world(tmp_path / "other", WorldConfig(**{**SMALL.__dict__, "seed": 4}))
    other = _digest(tmp_path / "other")
    videos = [k for k in other if k.endswith(".mp4")]
    assert all(other[k] != _digest(small_world)[k] for k in videos)


def test_at_least_eight_classes_all_in_time_mirrored_pairs():
    assert len(WORLD_CLASSES) >= 8
    by_name = {c.name: c for c in WORLD_CLASSES}
    for c in WORLD_CLASSES:
        mirror = by_name[c.mirror]
        assert mirror.mirror == c.name and mirror.pattern == c.pattern and mirror.reverse != c.reverse
        assert set(mirror.concepts) == set(c.concepts)
        assert set(c.evidence_concepts) <= set(c.concepts) <= set(WORLD_CONCEPTS)


@pytest.mark.parametrize("label", [i for i, c in enumerate(WORLD_CLASSES) if not c.reverse])
def test_mirrored_class_is_the_time_reverse(label):
    mirror = CLASS_NAMES.index(WORLD_CLASSES[label].mirror)
    config = WorldConfig(size=64)
    forward = sample_class_script(label, np.random.default_rng(11), config)
    backward = sample_class_script(mirror, np.random.default_rng(11), config)
    columns = [WORLD_CONCEPTS.index(c) for c in WORLD_CLASSES[label].concepts]
    forward_timeline = render_video(forward, 64)[1][:, columns]
    backward_timeline = render_video(backward, 64)[1][:, columns]
    # same things (same concept multiset over time), opposite order
    np.testing.assert_array_equal(backward_timeline, forward_timeline[::-1])
    np.testing.assert_array_equal(backward_timeline.sum(0), forward_timeline.sum(0))
    assert not np.array_equal(backward_timeline, forward_timeline)
    evidence = [WORLD_CONCEPTS.index(c) for c in WORLD_CLASSES[label].evidence_concepts]
    first_seen = lambda tl, c: int(np.flatnonzero(tl[:, WORLD_CONCEPTS.index(c)])[0])  # noqa: E731
    full_f, full_b = render_video(forward, 64)[1], render_video(backward, 64)[1]
    assert full_f[:, evidence].any() and full_b[:, evidence].any()
    if len(evidence) == 2:  # the two evidence concepts swap their order
        a, b = WORLD_CLASSES[label].evidence_concepts
        assert (first_seen(full_f, a) < first_seen(full_f, b)) == (first_seen(full_b, b) < first_seen(full_b, a))


def _reddish(frames: np.ndarray) -> np.ndarray:
    """[N, H, W] bool: pixels of the red circle's colour (also after codec blur)."""
    f = frames.astype(np.int32)
    return (f[..., 0] > 150) & (f[..., 1] < 100) & (f[..., 2] < 100)


def test_timeline_follows_the_pixels_in_a_hand_made_scene():
    n = 10
    on_first_half = np.arange(n) < 5
    red = ObjectTrack("red circle", "class", (225, 40, 40), on_first_half,
                      np.full(n, 0.2), np.full(n, 0.5), np.full(n, 0.12))
    cross = ObjectTrack("white cross", "distractor", (235, 235, 235), np.ones(n, bool),
                        np.full(n, 0.6), np.full(n, 0.5), np.full(n, 0.1))
    star = ObjectTrack("yellow star", "class", (245, 220, 40), np.arange(n) >= 7,
                       np.full(n, 0.6), np.full(n, 0.5), np.full(n, 0.3))
    square = ObjectTrack("blue square", "class", (50, 90, 240), np.ones(n, bool),
                         np.linspace(0.5, 0.85, n), np.full(n, 0.15), np.linspace(0.05, 0.1, n))
    frames, timeline = render_video(VideoScript(n, 8.0, (20, 20, 20), [cross, red, star, square]), 96)
    col = {c: timeline[:, WORLD_CONCEPTS.index(c)] for c in WORLD_CONCEPTS}
    np.testing.assert_array_equal(col["red circle"], on_first_half)
    np.testing.assert_array_equal(col["on the left side"], on_first_half)
    red_pixels = _reddish(frames)
    assert red_pixels[:5, 48, 19].all()                  # the circle's centre is red while visible
    assert not red_pixels[5:].any()                      # and no red pixel anywhere once it is gone
    np.testing.assert_array_equal(col["white cross"], np.arange(n) < 7)  # hidden behind the big star
    np.testing.assert_array_equal(col["large shape"], np.arange(n) >= 7)
    np.testing.assert_array_equal(col["small shape"], np.linspace(0.05, 0.1, n) <= SMALL_RADIUS)
    np.testing.assert_array_equal(col["on the right side"], np.linspace(0.5, 0.85, n) > RIGHT_EDGE)


def test_ground_truth_file_matches_rendering_and_decord(small_world):
    pytest.importorskip("decord")
    truth = WorldGroundTruth(small_world)
    assert truth.concepts == list(WORLD_CONCEPTS) and truth.class_names == list(CLASS_NAMES)
    red = WORLD_CONCEPTS.index("red circle")
    checked = 0
    for video in sorted(truth.videos.values(), key=lambda v: v.path):
        with open_video(small_world / video.path, backend="decord") as source:
            assert source.meta.num_frames == video.num_frames and source.meta.fps == pytest.approx(SMALL.fps)
            frames = source.read_frames(range(video.num_frames)).numpy()
        assert frames.shape[1:] == (SMALL.size, SMALL.size, 3)
        timeline = truth.timeline(video.video_id)
        # stored intervals equal a fresh rendering of the same script
        script = sample_class_script(video.label, video_rng(SMALL.seed, int(video.video_id[-4:])), SMALL)
        np.testing.assert_array_equal(render_video(script, SMALL.size)[1], timeline)
        if timeline[:, red].any():
            counts = _reddish(frames).sum(axis=(1, 2))
            assert (counts[timeline[:, red]] >= 20).all() and (counts[~timeline[:, red]] < 5).all()
            checked += 1
        evidence = [WORLD_CONCEPTS.index(c) for c in WORLD_CLASSES[video.label].evidence_concepts]
        np.testing.assert_array_equal(truth.evidence(video.video_id), timeline[:, evidence].any(axis=1))
    assert checked >= 2


def test_split_files_and_classes_parse(small_world):
    classes = (small_world / "classes.txt").read_text().splitlines()
    assert classes == list(CLASS_NAMES)
    seen: dict[str, str] = {}
    for split in ("train", "val", "test"):
        for line in (small_world / f"{split}.txt").read_text().splitlines():
            path, label = line.split()
            assert (small_world / path).is_file() and 0 <= int(label) < len(classes)
            assert path not in seen
            seen[path] = split
            assert WorldGroundTruth(small_world).video(path).label == int(label)
    assert len(seen) == SMALL.num_videos
    for label in range(len(classes)):  # stratified: every class in train and test
        splits = {s for p, s in seen.items() if WorldGroundTruth(small_world).video(p).label == label}
        assert {"train", "test"} <= splits
    description = json.loads((small_world / "world.json").read_text())
    assert description["counts"] == {s: list(seen.values()).count(s) for s in ("train", "val", "test")}
    assert (small_world / "concepts.txt").read_text().splitlines() == list(WORLD_CONCEPTS)


def test_generic_list_reader_reads_the_world(small_world):
    from motif.data import load_list_dataset

    splits = load_list_dataset(small_world, train_list="train.txt", val_list="val.txt", test_list="test.txt",
                               class_names=small_world / "classes.txt")
    truth = WorldGroundTruth(small_world)
    assert splits.class_names == list(CLASS_NAMES)
    records = splits.train + splits.val + splits.test
    assert len(records) == SMALL.num_videos
    for record in records:
        video = truth.video(record.video_id)
        assert (video.label, video.split) == (record.label, record.split)


def test_shipped_concept_bank_is_the_world_bank():
    bank = (REPO_ROOT / "data" / "concepts" / "synthetic_world.txt").read_text().splitlines()
    assert bank == list(WORLD_CONCEPTS)


@pytest.mark.parametrize("field,value", [("num_videos", 3), ("size", 33), ("min_seconds", 0),
                                         ("max_distractors", 9), ("test_fraction", 0.0), ("fps", 0.0)])
def test_bad_world_settings_name_the_setting(field, value, tmp_path):
    with pytest.raises(WorldError, match=field):
        generate_world(tmp_path, WorldConfig(**{**SMALL.__dict__, field: value}))


def test_missing_world_files_are_named(tmp_path):
    with pytest.raises(WorldError, match="world.json"):
        WorldGroundTruth(tmp_path)


def test_interval_encoding_roundtrip():
    mask = np.array([1, 1, 0, 0, 1, 0, 1, 1, 1], dtype=bool)
    assert mask_to_intervals(mask) == [[0, 2], [4, 5], [6, 9]]
    np.testing.assert_array_equal(intervals_to_mask(mask_to_intervals(mask), 9), mask)


@pytest.mark.slow
@pytest.mark.skipif(not WEIGHTS.is_file(), reason="world backbone weights not shipped")
def test_shipped_world_backbone_detects_concepts():
    open_clip = pytest.importorskip("open_clip")
    import torch
    import torch.nn.functional as F

    from motif.backbone import MODEL_CONFIG_DIR, load_backbone

    open_clip.add_model_config(MODEL_CONFIG_DIR)
    model, _, _ = open_clip.create_model_and_transforms("motif-world-vit", pretrained=str(WEIGHTS))  # strict load
    backbone = load_backbone("motif-world-vit", str(WEIGHTS), device="cpu", precision="fp32")
    frames, labels = render_labelled_frames(seed=20_000, num_videos=24, random_scene_fraction=0.0, frame_stride=4)
    image = F.normalize(backbone.encode_frames(torch.from_numpy(frames)), dim=-1)
    text = F.normalize(backbone.encode_text(list(WORLD_CONCEPTS)), dim=-1)
    auc = roc_auc_per_column(image @ text.T, torch.from_numpy(labels)).numpy()
    assert np.nanmean(auc) >= 0.9, dict(zip(WORLD_CONCEPTS, auc.round(3)))
    # the framework's loader and plain open_clip give the same text embeddings
    with torch.no_grad():
        direct = model.encode_text(open_clip.get_tokenizer("motif-world-vit")(list(WORLD_CONCEPTS)))
    torch.testing.assert_close(F.normalize(direct, dim=-1), text, atol=1e-5, rtol=1e-5)
    # concept phrases stay apart: near-duplicate filtering (cosine >= 0.9) keeps all of them
    similarity = text @ text.T
    assert similarity[~torch.eye(len(WORLD_CONCEPTS), dtype=torch.bool)].max() < 0.9
    metadata = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert metadata["model"] == "motif-world-vit" and metadata["mean_concept_auc"] >= 0.9


def _first_event_position(label: int, placement: str, seed: int) -> float:
    """Where the first class event of a script starts, as a fraction of the video."""
    script = sample_class_script(label, np.random.default_rng(seed), WorldConfig(placement=placement))
    starts = [np.flatnonzero(t.visible)[0] for t in script.tracks if t.role == "class" and not t.visible.all()]
    return min(starts) / script.num_frames


def test_random_placement_puts_events_anywhere_so_absolute_time_does_not_tell_mirrors_apart():
    """With placement "fixed" the red circle of "red circle then blue square" always starts in the first
    10 % of the video; with "random" the events start anywhere, and the start time of the first event
    no longer separates a class from its mirror."""
    fixed = [_first_event_position(0, "fixed", seed) for seed in range(40)]
    assert max(fixed) < 0.1
    for label, mirror in ((0, 1), (2, 3), (4, 5), (6, 7)):
        forward = [_first_event_position(label, "random", seed) for seed in range(40)]
        backward = [_first_event_position(mirror, "random", seed + 1000) for seed in range(40)]
        assert max(forward) > 0.3 and max(backward) > 0.3
        assert abs(np.mean(forward) - np.mean(backward)) < 0.15, (label, np.mean(forward), np.mean(backward))


def test_defining_concepts_are_never_always_visible():
    """No class lists an object that is on screen in every frame of its videos as defining."""
    for label, world_class in enumerate(WORLD_CLASSES):
        for seed in range(5):
            script = sample_class_script(label, np.random.default_rng(seed), WorldConfig(size=64))
            _, timeline = render_video(script, 64)
            always = {WORLD_CONCEPTS[c] for c in np.flatnonzero(timeline.all(axis=0))}
            assert not always & set(world_class.concepts), (world_class.name, always)


def test_placement_setting_is_checked(tmp_path):
    with pytest.raises(WorldError, match="placement"):
        generate_world(tmp_path, WorldConfig(placement="middle"))


def test_labelled_frames_are_the_decoded_frames_of_freshly_drawn_videos():
    stride, size = 3, 64
    frames, labels = render_labelled_frames(seed=5, num_videos=2, random_scene_fraction=0.0, size=size,
                                            frame_stride=stride)
    expected_frames, expected_labels = [], []
    for index in range(2):
        rng = video_rng(5, index)
        rng.random()  # the draw between a class video and a random scene
        script = sample_class_script(int(rng.integers(len(WORLD_CLASSES))), rng, WorldConfig(size=size))
        rendered, timeline = render_video(script, size)
        expected_frames.append(rendered[::stride])
        expected_labels.append(timeline[::stride])
    np.testing.assert_array_equal(labels, np.concatenate(expected_labels))
    difference = np.abs(frames.astype(np.int32) - np.concatenate(expected_frames)).mean(axis=(1, 2, 3))
    assert frames.shape == (len(labels), size, size, 3) and difference.max() < 4.0, difference.max()


def test_world_videos_decode_alike_with_both_readers(tmp_path):
    pytest.importorskip("decord")
    script = sample_class_script(2, np.random.default_rng(0), WorldConfig(size=64))
    path = write_world_video(tmp_path / "video.mp4", render_video(script, 64)[0], 8.0)
    decoded = {}
    for backend in ("pyav", "decord"):
        with open_video(path, backend=backend) as source:
            decoded[backend] = source.read_frames(range(source.meta.num_frames)).numpy()
    assert decoded["pyav"].shape[0] == script.num_frames
    np.testing.assert_array_equal(decoded["pyav"], decoded["decord"])


def test_bad_codec_is_named(tmp_path):
    with pytest.raises(WorldError, match="codec='vp9'"):
        render_labelled_frames(seed=0, num_videos=1, codec="vp9")


LIGHT_MODULES = ["motif.world", "motif.world.config", "motif.world.errors", "motif.world.vocabulary"]
WORLD_MODULES = LIGHT_MODULES + [f"motif.world.{name}" for name in
                                 ("scripts", "render", "truth", "generate", "order_task")]
HEAVY = ("torch", "open_clip", "lightning", "pytorch_lightning")


def _loaded_after_import(modules: list[str]) -> list[str]:
    """Which of HEAVY a fresh interpreter has loaded after importing ``modules``."""
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    return [m for m in result.stdout.strip().split(",") if m]


def test_importing_the_world_loads_neither_open_clip_nor_lightning():
    assert _loaded_after_import(LIGHT_MODULES) == []  # what the tools need to parse their arguments
    assert _loaded_after_import(WORLD_MODULES) == ["torch"]


@pytest.mark.parametrize("tool,bad_option,message", [
    ("make_synthetic.py", ["--out", "unused", "--size", "33"], "error: size=33"),
    ("train_world_backbone.py", ["--steps", "0"], "error: steps=0: must be at least 1"),
])
def test_world_tools_parse_and_check_arguments_before_importing_torch(tool, bad_option, message):
    code = ("import runpy, sys\n"
            f"try:\n    runpy.run_path({str(REPO_ROOT / 'tools' / tool)!r}, run_name='__main__')\n"
            "except SystemExit as stop:\n    print('exit', stop.code)\n"
            "print('torch' in sys.modules)")
    for argv, status, error in ((["--help"], 0, ""), (bad_option, 2, message)):
        result = subprocess.run([sys.executable, "-c", code, *argv], cwd=REPO_ROOT, capture_output=True, text=True,
                                check=True)
        assert f"exit {status}" in result.stdout and result.stdout.strip().endswith("False"), result.stdout
        assert error in result.stderr
