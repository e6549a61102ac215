"""Every benchmark script still imports and parses its arguments (they run outside the suite, so an API
change would otherwise break them silently), and the ground-truth evidence of bench_concept_ceiling is the
world's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("bench_*.py"))


def test_the_benchmarks_are_found():
    assert {"bench_model.py", "bench_gpu.py", "bench_evaluate.py"} <= set(SCRIPTS)


@pytest.mark.parametrize("script", SCRIPTS)
def test_benchmark_imports_and_prints_its_help(script):
    result = subprocess.run([sys.executable, str(BENCHMARKS / script), "--help"], capture_output=True, text=True,
                            timeout=300, cwd=BENCHMARKS.parent)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith("usage:")


def test_concept_ceiling_reads_the_ground_truth_of_the_embedded_frame_and_restandardises(tmp_path):
    """bench_concept_ceiling's evidence: the centre-frame truth of each window is the world's timeline at that
    frame and never exceeds the whole-window truth; re-standardising to other statistics equals standardising
    the raw scores with them."""
    import numpy as np
    import torch

    from motif.concepts.activations import ConceptStandardizer
    from motif.sequences.sequence import ConceptSequence
    from motif.world.config import WorldConfig
    from motif.world.generate import generate_world
    from motif.world.truth import WorldGroundTruth

    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_concept_ceiling as ceiling
    finally:
        sys.path.remove(str(BENCHMARKS))
    world = tmp_path / "world"
    generate_world(world, WorldConfig(num_videos=8, seed=3, size=64, min_seconds=2, max_seconds=3))
    truth = WorldGroundTruth(world)
    names = ["purple diamond", "small shape", "red circle"]
    videos = []
    for label, video_id in enumerate(sorted(truth.videos)[:4]):
        frames = truth.video(video_id).num_frames
        starts = torch.arange(0, frames, 8, dtype=torch.float64)
        spans = torch.stack([starts, torch.clamp(starts + 8, max=frames)], dim=1) / truth.video(video_id).fps
        videos.append(ConceptSequence(video_id, torch.zeros(len(starts), 3), label, spans.float()))
    frame = ceiling.truth_evidence(videos, world, names, "truth-frame")
    window = ceiling.truth_evidence(videos, world, names, "truth-window")
    columns = [truth.concepts.index(name) for name in names]
    for video, at_frame, in_window in zip(videos, frame, window):
        timeline, fps = truth.timeline(video.video_id)[:, columns], truth.video(video.video_id).fps
        centres = [round(a * fps) + (round(b * fps) - round(a * fps)) // 2 for a, b in video.spans.tolist()]
        np.testing.assert_array_equal(at_frame.concepts.numpy(), timeline[centres].astype(np.float32))
        assert bool((at_frame.concepts <= in_window.concepts).all())
    assert any(bool((f.concepts < w.concepts).any()) for f, w in zip(frame, window)), "no window tells them apart"

    raw = [torch.rand(5, 3) * 4 for _ in range(3)]
    first, second = (ConceptStandardizer(3).fit([r + shift for r in raw]) for shift in (0.0, 1.5))
    as_first = [ConceptSequence(f"v{i}", (r - first.mean) / first.std, 0, torch.zeros(5, 2)) for i, r in enumerate(raw)]
    for moved, r in zip(ceiling.restandardised(as_first, first, second), raw):
        torch.testing.assert_close(moved.concepts, (r - second.mean) / second.std)
