"""Concept discovery: phrase normalisation and merging, the selection scores and their ground truth on
the shape world, and the proposal client against a chat-completions server process."""

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from motif.concepts import ConceptBank
from motif.config import ConfigError, load_config
from motif.data import load_configured_dataset
from motif.discovery.frames import choose_frames, representative_frames
from motif.discovery.phrases import collect_candidates, merge_near_duplicates, normalize_phrase
from motif.discovery.pipeline import DiscoveryError, discover
from motif.discovery.proposer import AnswerError, parse_concepts, propose_for_dataset, sample_videos
from motif.discovery.selection import activation_correlation, class_contrast, detection_scores, select_concepts
from motif.video import write_video
from motif.world.config import WorldConfig
from motif.world.generate import generate_world
from motif.world.vocabulary import WORLD_CLASSES, WORLD_CONCEPTS

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "tests" / "helpers_vlm_server.py"
TOOL = REPO / "tools" / "discover_concepts.py"
MODEL = "stand-in-vlm"


# ----------------------------------------------------------------------------- phrases


@pytest.mark.parametrize("text, expected", [
    ("The red circles.", "red circle"), ("  a Blue   Square ", "blue square"), ("- an apple", "apple"),
    ("1. boxes", "box"), ("berries", "berry"), ('"glass"', "glass"), ("on the left side", "on the left side"),
    ("the", ""), ("***", ""),
])
def test_normalize_phrase(text, expected):
    assert normalize_phrase(text) == expected


def test_candidates_merge_forms_and_keep_provenance():
    proposals = [{"class": "a", "video_id": "v1", "concepts": ["Red circles", "a hand"]},
                 {"class": "a", "video_id": "v2", "concepts": ["red circle", "red circle"]},
                 {"class": "b", "video_id": "v3", "concepts": ["the red circle"]}]
    candidates = collect_candidates(proposals, ["hand", "tree"])
    assert [c.phrase for c in candidates] == ["red circle", "hand", "tree"]  # most proposals first
    red = candidates[0]
    assert red.classes == {"a": 2, "b": 1} and red.videos == ["v1", "v2", "v3"] and red.proposals == 3
    assert not red.in_vocabulary and candidates[1].in_vocabulary and candidates[2].proposals == 0
    assert sum(red.forms.values()) == 4  # every written form is counted, "red circle" twice in one answer


def test_near_duplicate_merges_are_logged_and_recorded(caplog):
    candidates = collect_candidates([{"class": "a", "video_id": "v1", "concepts": ["cup", "mug", "tree"]},
                                     {"class": "b", "video_id": "v2", "concepts": ["mug"]}])
    assert [c.phrase for c in candidates] == ["mug", "cup", "tree"]
    text = torch.tensor([[1.0, 0.0], [0.95, 0.3122], [0.0, 1.0]])  # cup ~ mug (cosine 0.95)
    with caplog.at_level(logging.INFO, logger="motif.discovery"):
        kept, keep, merges = merge_near_duplicates(candidates, text, 0.9)
    assert [c.phrase for c in kept] == ["mug", "tree"] and keep == [0, 2]
    assert merges == [{"phrase": "cup", "merged_into": "mug", "cosine": pytest.approx(0.95, abs=1e-3)}]
    assert kept[0].classes == {"a": 2, "b": 1} and kept[0].merged[0]["phrase"] == "cup"
    assert "Merged 'cup' into 'mug'" in caplog.text


# ----------------------------------------------------------------------------- scores


def test_detection_prefers_a_bimodal_concept_and_ignores_affine_scale():
    gen = torch.Generator().manual_seed(0)
    present = torch.rand(2000, generator=gen) < 0.3
    bimodal = present.float() * 0.5 + 0.05 * torch.randn(2000, generator=gen)
    blur = 0.15 + 0.2 * torch.randn(2000, generator=gen)
    d = detection_scores(torch.stack([bimodal, blur, 3 * bimodal + 1], dim=1))
    assert d[0] > 3 * d[1] and 2.5 < d[1] < 3.0  # a normal distribution scores about 2.7
    assert d[2] == pytest.approx(float(d[0]), rel=1e-6)
    # the criterion by brute force at every split point of a small column
    x = torch.tensor([0.1, 0.2, 0.15, 0.9, 1.0, 0.12, 0.95, 0.3])
    s = x.double().sort().values
    best = max(float((s[k:].mean() - s[:k].mean()) /
                     ((k * s[:k].var(unbiased=False) + (8 - k) * s[k:].var(unbiased=False)) / 8).sqrt())
               for k in range(1, 8))
    assert float(detection_scores(x[:, None])[0]) == pytest.approx(best)


def test_class_contrast_and_correlation_identities():
    peaks = torch.tensor([[1.0, 0.2], [0.8, 0.1], [0.1, 0.3], [0.0, 0.2]])
    labels = torch.tensor([0, 0, 1, 1])
    s = class_contrast(peaks, labels, 2)
    std = peaks[:, 0].std(unbiased=False)
    assert s[0, 0] == pytest.approx(float((0.9 - 0.05) / std))
    assert s[0, 1] == pytest.approx(-float(s[0, 0]))
    x = torch.randn(50, 4, generator=torch.Generator().manual_seed(1))
    assert np.allclose(activation_correlation(x).numpy(), np.corrcoef(x.numpy().T), atol=1e-6)


def test_selection_drops_undetected_redundant_and_over_budget():
    detection = torch.tensor([9.0, 8.0, 7.0, 1.0, 6.0, 5.0])
    contrast = torch.tensor([[2.0, -2.0], [1.9, -1.9], [-2.0, 2.0], [3.0, 3.0], [0.1, 0.1], [0.0, 0.2]])
    correlation = torch.eye(6, dtype=torch.float64)
    correlation[0, 1] = correlation[1, 0] = 0.97
    selection = select_concepts(detection, contrast, correlation, per_class=2, budget=3, min_detection=2.0,
                                min_contrast=0.5, redundancy=0.9)
    reasons = [d.reason for d in selection.decisions]
    assert reasons == ["separates classes", "redundant", "separates classes", "not detected", "detected",
                       "over budget"]
    assert selection.kept == [0, 2, 4] and selection.decisions[1].partner == 0
    assert selection.decisions[0].classes == [0] and selection.decisions[2].classes == [1]


# ----------------------------------------------------------------------------- answers


@pytest.mark.parametrize("text", [
    '{"concepts": ["red circle", "hand"]}', 'Sure:\n```json\n{"concepts": ["red circle", "hand"]}\n```',
    '["red circle", "hand"]', '{"concepts": [{"name": "red circle"}, {"name": "hand"}]}',
    '{"phrases": ["red circle", " hand "]}',
])
def test_tolerant_parsing(text):
    assert parse_concepts(text) == ["red circle", "hand"]


@pytest.mark.parametrize("text, finish, message", [
    ('{"concepts": ["red", "blue",, ]', "stop", "not JSON"), ('{"concepts": ["red', "length", "max_tokens"),
    ("Some concepts: red things.", "stop", "not JSON"), ('{"answer": "none"}', "stop", "no list"), ("", "stop", "empty"),
])
def test_unusable_answers_say_why(text, finish, message):
    with pytest.raises(AnswerError, match=message):
        parse_concepts(text, finish)


# ----------------------------------------------------------------------------- the server


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(root, WorldConfig(num_videos=16, seed=3, size=64, min_seconds=2, max_seconds=3))
    return root


@pytest.fixture(scope="module")
def server():
    process = subprocess.Popen([sys.executable, str(SERVER), "--model", MODEL], stdout=subprocess.PIPE, text=True)
    port = int(process.stdout.readline().split()[1])
    yield f"http://127.0.0.1:{port}"
    process.kill()
    process.wait()


def control(server: str, queue=(), default="ok") -> None:
    body = json.dumps({"queue": list(queue), "default": default, "reset": True}).encode()
    urllib.request.urlopen(urllib.request.Request(f"{server}/control", body, method="POST"), timeout=5).read()


def stats(server: str, key: str = "requests"):
    return json.loads(urllib.request.urlopen(f"{server}/stats", timeout=5).read())[key]


def overrides(world: Path, answers: Path, endpoint: str, *extra: str) -> list[str]:
    return [f"data.root={world}", f"cache.dir={answers.parent / 'embeddings'}", "discovery.mode=propose",
            f"discovery.endpoint={endpoint}/v1", f"discovery.model={MODEL}", f"discovery.cache_dir={answers}",
            "discovery.videos_per_class=1", "discovery.concurrency=1", "discovery.timeout=10", *extra]


def propose(world, answers, endpoint, *extra):
    cfg = load_config(REPO / "configs" / "synthetic.yaml", overrides(world, answers, endpoint, *extra))
    splits = load_configured_dataset(cfg.data, 1)
    return propose_for_dataset(cfg, splits.train, splits.class_names)


def test_requests_carry_the_frames_and_the_json_schema(tiny_world, server, tmp_path):
    control(server)
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.frames_per_video=4")
    seen = stats(server)
    assert len(seen) == report["requests"] == report["sent"] == 8 and len(proposals) == 8
    for request in seen:
        assert request["model"] == MODEL and request["num_images"] == 4 and all(request["images_are_jpeg"])
        schema = request["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["concepts"]["type"] == "array" and schema["required"] == ["concepts"]
        assert re.search(r'class "[^"]+"', request["text"])
    assert report["images"] == 32 and report["input_tokens"] > 32 * 9  # 64 x 64 frames: 3 x 3 image tokens
    by_class = {p["class"]: p for p in proposals}
    assert by_class["yellow star growing"]["concepts"] == ["The yellow objects", "growing motion", "a hand"]
    assert len(set(p["video_id"] for p in proposals)) == 8 and all(len(p["frames"]) == 4 for p in proposals)
    # a rerun answers from the cache and sends nothing
    control(server)
    again, report = propose(tiny_world, tmp_path / "answers", server, "discovery.frames_per_video=4")
    assert stats(server) == [] and report["sent"] == 0 and again == proposals


def test_text_mode_sends_one_request_per_class_without_images(tiny_world, server, tmp_path):
    control(server)
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.input=text",
                                "discovery.structured_output=none")
    seen = stats(server)
    assert len(seen) == 8 and all(r["num_images"] == 0 and r["response_format"] is None for r in seen)
    assert all(p["video_id"] is None for p in proposals)


def test_bad_answers_and_server_errors_are_retried(tiny_world, server, tmp_path):
    control(server, ["malformed", "truncated", "nonjson", "429", "500", "fenced"])
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.retries=5")
    seen = stats(server)
    assert [r["behaviour"] for r in seen[:6]] == ["malformed", "truncated", "nonjson", "429", "500", "fenced"]
    assert len({r["fingerprint"] for r in seen[:6]}) == 1  # one request, retried until the fenced answer
    assert len(seen) == 13 and len(proposals) == 8 and report["failed"] == []
    cached = [json.loads(p.read_text()) for p in (tmp_path / "answers").glob("*.json")]
    assert sorted(c["attempts"] for c in cached) == [1] * 7 + [6]


def test_a_request_that_keeps_failing_is_reported_and_retried_on_the_next_run(tiny_world, server, tmp_path):
    control(server, ["nonjson", "nolist"])
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.retries=1")
    assert len(proposals) == 7 and len(report["failed"]) == 1 and "no list" in report["failed"][0]["error"]
    failed = stats(server)[0]["fingerprint"]
    control(server)
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.retries=1")
    assert [r["fingerprint"] for r in stats(server)] == [failed] and len(proposals) == 8


def test_a_timeout_is_retried(tiny_world, server, tmp_path):
    control(server, ["slow:4"])
    started = time.perf_counter()
    proposals, report = propose(tiny_world, tmp_path / "answers", server, "discovery.timeout=1",
                                "discovery.retries=1")
    assert time.perf_counter() - started < 4 + 10
    seen = stats(server)
    assert seen[0]["behaviour"] == "slow:4" and seen[1]["fingerprint"] == seen[0]["fingerprint"]
    assert len(proposals) == 8 and report["failed"] == []


def test_an_unreachable_endpoint_fails_within_seconds_naming_the_url(tiny_world, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with pytest.raises(DiscoveryError, match=re.escape(url + "/v1") + r".*discovery.endpoint"):
        propose(tiny_world, tmp_path / "answers", url)
    assert time.perf_counter() - started < 10


@pytest.mark.slow
def test_the_tool_names_an_unreachable_endpoint(tiny_world, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = subprocess.run([sys.executable, str(TOOL), "--config", str(REPO / "configs" / "synthetic.yaml"),
                             *overrides(tiny_world, tmp_path / "answers", url), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2 and url in result.stderr and not (tmp_path / "out" / "bank.yaml").exists()


@pytest.mark.slow
def test_kill_during_proposal_then_resume_sends_each_request_once(tiny_world, server, tmp_path):
    control(server, ["ok", "ok", "ok", "hang"])
    argv = [sys.executable, str(TOOL), "--config", str(REPO / "configs" / "synthetic.yaml"),
            *overrides(tiny_world, tmp_path / "answers", server), "--out", str(tmp_path / "out")]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(stats(server)) < 4 and time.time() < deadline:
        time.sleep(0.2)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    before = stats(server)
    assert [r["answered"] for r in before] == [True, True, True, False]
    assert len(list((tmp_path / "answers").glob("*.json"))) == 3
    control(server)
    result = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    after = stats(server)
    answered = [r["fingerprint"] for r in before + after if r["answered"]]
    assert len(answered) == len(set(answered)) == 8  # every request answered exactly once over both runs
    assert len(after) == 5 and after[0]["fingerprint"] == before[3]["fingerprint"]
    bank = ConceptBank.from_file(tmp_path / "out" / "bank.yaml")
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["proposal_requests"]["sent"] == 5 and provenance["proposal_requests"]["cached"] == 3
    assert "hand" in bank.names and provenance["concepts"]["hand"]["proposals"] == 8


def test_videos_are_sampled_per_class_with_the_seed(tiny_world):
    cfg = load_config(REPO / "configs" / "synthetic.yaml", [f"data.root={tiny_world}"])
    splits = load_configured_dataset(cfg.data, 1)
    a = sample_videos(list(splits.train), splits.class_names, 1, seed=0)
    assert a == sample_videos(list(reversed(splits.train)), splits.class_names, 1, seed=0)
    assert all(len(v) == 1 and v[0].label == splits.class_names.index(k) for k, v in a.items())


def test_discovery_settings_are_checked():
    with pytest.raises(ConfigError, match="discovery.mode"):
        load_config(REPO / "configs" / "synthetic.yaml", ["discovery.mode=guess"])
    with pytest.raises(ConfigError, match="discovery.endpont"):
        load_config(REPO / "configs" / "synthetic.yaml", ["discovery.endpont=x"])


# ----------------------------------------------------------------------------- selection on the world


@pytest.mark.slow
def test_selection_on_the_shape_world_keeps_its_concepts(tmp_path):
    """Ground truth: the world is drawn from 12 concepts; the shipped vocabulary hides them among 120
    phrases that describe nothing in it. Selection must find the world's concepts, and the 9 concepts
    that define classes must be selected for exactly the classes they define."""
    generate_world(tmp_path / "world", WorldConfig(num_videos=48, seed=5, size=64, min_seconds=4, max_seconds=6))
    cfg = load_config(REPO / "configs" / "synthetic.yaml", [
        f"data.root={tmp_path / 'world'}", f"cache.dir={tmp_path / 'cache'}", "discovery.mode=select",
        "backbone.device=cpu"])
    provenance = discover(cfg, tmp_path / "out")
    kept = provenance["kept"]
    # 48 short videos with random event placement show the world's distractor objects in few windows: 9 of
    # the 12 concepts at least (the 320-video demo world keeps 11); distractor phrases are never preferred.
    assert len(kept) <= 20 and sum(c in kept for c in WORLD_CONCEPTS) >= 9
    bank = yaml.safe_load((tmp_path / "out" / "bank.yaml").read_text())
    assert ConceptBank.from_file(tmp_path / "out" / "bank.yaml").names == list(dict.fromkeys(
        p for phrases in bank.values() for p in phrases))
    concepts = provenance["concepts"]
    for world_class in WORLD_CLASSES:
        # some defining concept of a class separates it and its time-mirrored twin from the rest
        pair = {world_class.name, world_class.mirror}
        assert any(pair & set(concepts[c]["selected_for"]) for c in world_class.concepts), world_class.name
    distractors = [v["scores"]["detection"] for k, v in concepts.items() if k not in WORLD_CONCEPTS]
    assert min(concepts[c]["scores"]["detection"] for c in WORLD_CONCEPTS) > float(np.median(distractors))


def test_readme_shows_the_discovery_commands():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^python tools/discover_concepts\.py (.+)$", readme, flags=re.M)
    assert "--config configs/synthetic.yaml discovery.mode=select --out runs/discovery_world" in commands
    for command in commands:
        argv = command.split()
        if argv[1] == "configs/synthetic.yaml":
            cfg = load_config(REPO / argv[1], [a for a in argv if "=" in a and not a.startswith("-")])
            assert cfg.discovery.mode == "select" and Path(cfg.discovery.vocabulary).name in readme


def test_an_unreadable_video_is_skipped_and_reported(tiny_world, server, tmp_path):
    import shutil

    world = tmp_path / "world"
    shutil.copytree(tiny_world, world)
    broken = sorted((world / "videos").glob("*.mp4"))[0]
    broken.write_bytes(b"not a video")
    control(server)
    proposals, report = propose(world, tmp_path / "answers", server, "discovery.videos_per_class=2")
    assert [s["path"] for s in report["skipped_videos"]] == [str(broken)]
    assert len(proposals) == report["sent"] == len(stats(server)) == 7


def test_propose_then_select_uses_the_proposals_and_the_vocabulary(tiny_world, server, tmp_path):
    control(server)
    argv = overrides(tiny_world, tmp_path / "answers", server, "backbone.device=cpu")
    discover(load_config(REPO / "configs" / "synthetic.yaml", argv), tmp_path / "out")
    proposed = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert proposed["mode"] == "propose" and proposed["concepts"]["hand"]["proposals"] == 8
    assert len(stats(server)) == 8
    selected = discover(load_config(REPO / "configs" / "synthetic.yaml", argv + ["discovery.mode=select"]),
                        tmp_path / "out")
    assert len(stats(server)) == 8  # selection sends nothing
    concepts = selected["concepts"]
    # "a hand" is in the vocabulary too: one candidate with both sources
    assert concepts["hand"]["proposals"] == 8 and concepts["hand"]["in_vocabulary"]
    merged_into = {m["phrase"]: m["merged_into"] for m in selected["merges"]}
    growing = concepts[merged_into.get("growing motion", "growing motion")]  # itself, or what it joined
    assert growing["classes"]["yellow star growing"] == 1 and "growing motion" in growing["written_as"]
    assert concepts[merged_into.get("red circle", "red circle")]["in_vocabulary"]
    assert all(c["reason"] in ("separates classes", "detected", "not detected", "redundant", "over budget")
               for c in concepts.values())
    assert len(selected["kept"]) <= 20 and set(selected["kept"]) <= set(concepts)
    assert set(ConceptBank.from_file(tmp_path / "out" / "bank.yaml").names) == set(selected["kept"])
    for merge in selected["merges"]:
        assert merge["phrase"] not in concepts and merge["merged_into"] in concepts


def test_concurrency_is_limited(tiny_world, server, tmp_path):
    control(server, default="slow:0.5")
    propose(tiny_world, tmp_path / "answers", server, "discovery.concurrency=3")
    assert len(stats(server)) == 8 and stats(server, "max_in_flight") == 3


# ----------------------------------------------------------------------------- frames


def test_frames_are_spread_plus_the_largest_motion():
    probes = [4 * j + 2 for j in range(16)]  # probe frame indices in a 64-frame video
    motion = torch.zeros(16)
    motion[8], motion[9], motion[11] = 5.0, 4.0, 3.0  # probes at frames 34, 38 and 46
    # spread: 16 and 48; then frame 34; 38 is closer than 64 / (2 * 4) = 8 to 34, and 46 to 48; then frame 2
    assert choose_frames(64, 4, probes, motion) == [2, 16, 34, 48]
    assert choose_frames(64, 3, probes, motion) == [16, 34, 48]
    assert choose_frames(3, 6, [0, 1, 2], torch.zeros(3)) == [0, 1, 2]  # short video: every frame


def test_representative_frames_find_the_motion_in_a_video(tmp_path):
    frames = np.full((80, 64, 64, 3), 90, dtype=np.uint8)
    for t in range(36, 42):  # a white square crosses the frame in frames 36-41 only
        frames[t, 20:44, 8 * (t - 36):8 * (t - 36) + 24] = 255
    path = write_video(tmp_path / "burst.mp4", frames, fps=10, options={"qp": "0"})
    chosen = representative_frames(str(path), 4, 32)
    assert 20 in chosen.indices and 60 in chosen.indices  # the spread frames of 2 segments
    assert any(36 <= i <= 42 for i in chosen.indices)  # a probe next to the motion
    assert all(size == (32, 32) for size in chosen.sizes) and all(j[:2] == b"\xff\xd8" for j in chosen.jpegs)


@pytest.mark.slow
def test_selection_says_when_nothing_is_detected(tiny_world, tmp_path):
    cfg = load_config(REPO / "configs" / "synthetic.yaml", [
        f"data.root={tiny_world}", f"cache.dir={tmp_path / 'cache'}", "discovery.mode=select",
        "backbone.device=cpu", "discovery.min_detection=1e7"])  # d <= 1 / 1e-6 (activations in [0, 1])
    with pytest.raises(DiscoveryError, match="discovery.min_detection"):
        discover(cfg, tmp_path / "out")
    assert not (tmp_path / "out" / "bank.yaml").exists()
