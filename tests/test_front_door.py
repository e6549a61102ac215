"""The Python front door: ``motif.load(checkpoint).predict / .explain`` on a video file or on frames in
memory, through the one-video pipeline of ``motif.explain.video`` (and the video layer's FrameArray)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import motif
from helpers_explain import CLASS_NAMES, marked_task, save_video_checkpoint
from motif.checkpoint import CheckpointError, save_motif_checkpoint
from motif.concepts import ConceptStandardizer
from motif.explain import ExplanationError
from motif.video import (
    EmptyVideoError,
    FrameArray,
    InvalidFpsError,
    VideoError,
    VideoNotFoundError,
    WindowPlan,
    open_video,
    write_video,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The marked model over a tiny open_clip backbone, loaded through the front door; a clip of 40 x 56
    frames (resized while decoding, to 32 x 44) and one of 32 x 40 frames (the model's input size on
    the shorter side: decoded as they are)."""
    saved = save_video_checkpoint(tmp_path_factory.mktemp("front_door"), marked_task()["model"])
    rng = np.random.default_rng(1)
    small = write_video(saved["folder"] / "small.mp4",
                        [rng.integers(0, 256, (32, 40, 3), dtype=np.uint8) for _ in range(22)], fps=8.0)
    return {**saved, "small": small, "model": motif.load(saved["ckpt"], device="cpu")}


def _decoded(path) -> torch.Tensor:
    """Every frame of a file at its own size, uint8 [N, H, W, 3]."""
    with open_video(path) as source:
        return source.read_frames(range(source.meta.num_frames))


# --- predict -------------------------------------------------------------------------------------------


def test_predict_on_a_file_equals_predict_on_its_decoded_frames(trained):
    model = trained["model"]
    from_file = model.predict(trained["small"])
    frames = _decoded(trained["small"])
    for video, fps in ((frames, 8.0), (frames.numpy(), 8), (FrameArray(frames, 8.0, name="small"), None)):
        torch.testing.assert_close(model.predict(video, fps=fps).logits, from_file.logits, rtol=0, atol=0)


def test_large_frames_are_resized_as_the_decoder_resizes_them(trained):
    """40 x 56 frames are decoded at 32 x 44 (FFmpeg's bilinear scaler, from YUV); a frame array is resized
    to the same size bilinearly from RGB, so the scores agree closely but not to the last bit."""
    model = trained["model"]
    from_file = model.predict(trained["video"])
    from_frames = model.predict(_decoded(trained["video"]), fps=8.0)
    assert from_frames.class_index == from_file.class_index
    torch.testing.assert_close(from_frames.logits, from_file.logits, rtol=0, atol=0.1)
    torch.testing.assert_close(from_frames.probabilities, from_file.probabilities, rtol=0, atol=5e-3)


def test_prediction_ranks_the_classes(trained):
    prediction = trained["model"].predict(trained["video"])
    assert prediction.class_names == CLASS_NAMES
    assert float(prediction.probabilities.sum()) == pytest.approx(1.0, abs=1e-6)
    top = prediction.top(2)
    assert len(top) == 2 and top[0][1] >= top[1][1]
    assert top[0] == (prediction.class_name, pytest.approx(float(prediction.probabilities.max())))
    assert [name for name, _ in prediction.top(10)] == [CLASS_NAMES[i] for i in
                                                       prediction.logits.argsort(descending=True).tolist()]


# --- explain -------------------------------------------------------------------------------------------


def test_explain_gives_the_logits_of_predict_and_the_tool_s_decomposition(trained):
    model = trained["model"]
    for video in (trained["video"], trained["small"]):
        result = model.explain(video)
        prediction = model.predict(video)
        torch.testing.assert_close(result.output.logits, prediction.logits)
        assert result.predicted == prediction.class_index
        assert abs(float(result.explanation.residual)) < 1e-4
    chosen = model.explain(trained["video"], class_name="blue square shown")
    assert chosen.class_names[chosen.target] == "blue square shown"


def test_explain_frames_writes_the_report_without_a_clip(trained, tmp_path):
    frames = _decoded(trained["small"])
    result = trained["model"].explain(frames, tmp_path, fps=8.0, interventions=["zero:concept=red circle"])
    data = json.loads((tmp_path / "explanation.json").read_text())
    assert result.video_id == "frames" and data["video"]["id"] == "frames"
    assert abs(data["intervention"]["after"]["residual"]) < 1e-4
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/jpeg") == 6 and "data:video/mp4" not in page  # a thumbnail per window
    assert (tmp_path / "timeline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_readme_python_api_runs(trained, tmp_path, capsys):
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", readme, flags=re.S).group(1)
    assert len(code.strip().splitlines()) <= 10
    for shown, here in (("runs/mine/best.ckpt", trained["ckpt"]), ("some.mp4", trained["small"]),
                        ("report/", tmp_path), ("paddle", "red circle")):
        assert f'"{shown}"' in code or f"={shown}" in code, shown
        code = code.replace(shown, str(here))
    exec(compile(code, "README.md", "exec"), {"frames": _decoded(trained["small"]).numpy()})
    printed = capsys.readouterr().out.splitlines()
    prediction = trained["model"].predict(trained["small"])
    assert printed[0].startswith(prediction.class_name) and printed[1].startswith(f"[('{prediction.class_name}'")
    assert "'residual'" in printed[-1] and (tmp_path / "report.html").is_file()


# --- mistakes ------------------------------------------------------------------------------------------


def test_load_names_a_missing_or_foreign_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match=r"'.*nowhere\.ckpt' does not exist\. Pass the best\.ckpt"):
        motif.load(tmp_path / "nowhere.ckpt", device="cpu")
    text = tmp_path / "notes.ckpt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"notes\.ckpt' could not be read as a motif checkpoint"):
        motif.load(text, device="cpu")
    other = tmp_path / "last.ckpt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match=r"last\.ckpt' is not a motif checkpoint .*best\.ckpt"):
        motif.load(other, device="cpu")


def test_a_checkpoint_without_text_embeddings_is_refused_at_load(tmp_path):
    model = marked_task()["model"]
    path = save_motif_checkpoint(tmp_path / "order.ckpt", model=model, model_kwargs={
        "num_concepts": model.num_concepts, "num_classes": model.num_classes, "dropout": 0.0},
        class_names=CLASS_NAMES, concept_names=[f"c{i}" for i in range(model.num_concepts)], text_embeddings=None,
        standardizer=ConceptStandardizer(model.num_concepts).fit([torch.randn(20, model.num_concepts)]),
        video=None, backbone={}, config={})
    with pytest.raises(ExplanationError, match="no concept text embeddings"):
        motif.load(path, device="cpu")


def test_bad_videos_are_named_with_what_to_do(trained, tmp_path):
    model = trained["model"]
    with pytest.raises(VideoNotFoundError, match=r"missing\.mp4: the video file does not exist"):
        model.predict(tmp_path / "missing.mp4")
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is text, not a video")
    with pytest.raises(VideoError, match=r"notes\.mp4: not a readable video container"):
        model.predict(fake)
    frames = _decoded(trained["small"])
    with pytest.raises(InvalidFpsError, match=r"fps must be a positive number .*got None.*pass fps="):
        model.predict(frames)
    with pytest.raises(VideoError, match=r"frames must be uint8, got torch\.float32 .*uint8 array \[N, H, W, 3\]"):
        model.predict(frames.float(), fps=8)
    with pytest.raises(VideoError, match=r"frames must be \[N, H, W, 3\] RGB, got shape \[22, 32, 40\]"):
        model.explain(frames[..., 0], fps=8)
    with pytest.raises(EmptyVideoError, match="holds no frames"):
        model.predict(frames[:0], fps=8)
    with pytest.raises(ValueError, match=r"fps=8 is for frame arrays; '.*small\.mp4' brings its own frame rate"):
        model.predict(trained["small"], fps=8)


# --- the video seam ------------------------------------------------------------------------------------


def test_a_frame_array_reads_like_its_file(trained):
    """Same meta, same windows and frames as the decoder; resized to the same size within a few levels."""
    frames = _decoded(trained["video"])
    plan = WindowPlan.build(len(frames), 8.0, window_size=4, frames_per_window=2, sampling="uniform")
    bgr = frames.numpy()[..., ::-1].copy()
    array = FrameArray(bgr[..., ::-1], 8.0, name="clip")  # RGB as a negative-stride view
    for resize in (None, (32, 44)):
        with open_video(trained["video"], resize=resize) as file, open_video(array, resize=resize) as memory:
            assert (memory.meta.num_frames, memory.meta.fps) == (file.meta.num_frames, file.meta.fps)
            assert memory.meta.backend == "array" and memory.meta.path == "clip"
            ours = list(memory.iter_windows(plan, chunk_windows=4))
            theirs = list(file.iter_windows(plan, chunk_windows=4))
        assert [c.frame_indices.tolist() for c in ours] == [c.frame_indices.tolist() for c in theirs]
        assert [c.frames.shape for c in ours] == [c.frames.shape for c in theirs]
        difference = (torch.cat([c.frames for c in ours]).int() - torch.cat([c.frames for c in theirs]).int()).abs()
        if resize is None:
            assert int(difference.max()) == 0
        else:
            assert float(difference.float().mean()) < 2.0
    assert open_video(array, fps_override=4.0).meta.duration == pytest.approx(len(frames) / 4.0)
