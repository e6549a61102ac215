"""Window plans, the streaming readers (decord and PyAV), probing and bad-input errors."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import av
import decord
import numpy as np
import pytest
import torch

from helpers_video import decode_index, make_index_video, strip_mp4_timing, truncate
from motif.registry import UnknownChoiceError
from motif.video import (
    VIDEO_BACKENDS,
    CorruptVideoError,
    EmptyVideoError,
    InvalidFpsError,
    TooFewFramesError,
    VideoError,
    VideoNotFoundError,
    VideoWindowSettings,
    WindowChunk,
    WindowPlan,
    backends,
    open_video,
    output_size,
)
from motif.video import reader as reader_module
from motif.video.backends import PyAVFrames
from motif.video.plan import _splitmix64

BACKENDS = [name for name in VIDEO_BACKENDS if name != "auto"]   # the decoders themselves
SAMPLE_CLIPS = {  # name: (frames, fps, height, width), as documented for the shared sample clips
    "hmdb51_eat.mp4": (63, 30.0, 480, 704),
    "something2_tear.mp4": (64, 12.0, 480, 720),
    "ucf101_kayak.mp4": (185, 25.0, 480, 640),
}


def reader_meta(path, backend="auto", **options):
    """The metadata a reader reports for ``path`` (opening checks the file; no frame is decoded)."""
    with open_video(path, backend=backend, **options) as source:
        return source.meta


@pytest.fixture(scope="module")
def index_videos(tmp_path_factory) -> dict[str, Path]:
    """Small videos whose frames spell their own index: H.264 (lossless; and with B-frames), MPEG-4 Part 2."""
    folder = tmp_path_factory.mktemp("index_videos")
    return {
        "h264": make_index_video(folder / "h264.mp4", 50, fps=25),
        "h264_bframes": make_index_video(folder / "h264_b.mp4", 120, fps=30,  # lossless x264 has no B-frames
                                         options={"crf": "10", "g": "6", "bf": "2"}),
        "mpeg4": make_index_video(folder / "mpeg4.mp4", 120, fps=12, codec="mpeg4",
                                  options={"flags": "+qscale", "global_quality": "236", "g": "5"}),
        "faststart": make_index_video(folder / "faststart.mp4", 50, container_options={"movflags": "faststart"}),
        "one_frame": make_index_video(folder / "one.mp4", 1),
    }


def chunk_indices(chunk: WindowChunk) -> list[int]:
    return [decode_index(frame) for frame in chunk.frames.numpy()]


# ------------------------------------------------------------------------------------------------
# WindowPlan


@pytest.mark.parametrize("num_frames,window,stride", [(50, 8, None), (48, 8, None), (7, 8, None), (1, 8, None),
                                                      (50, 8, 4), (50, 8, 3), (50, 4, 10), (185, 32, 16)])
def test_plan_windows_tile_the_video(num_frames, window, stride):
    plan = WindowPlan.build(num_frames, 25.0, window_size=window, stride=stride)
    step = window if stride is None else stride
    assert plan.stride == step
    assert plan.starts == tuple(range(0, step * plan.num_windows, step))
    assert plan.ends == tuple(min(start + window, num_frames) for start in plan.starts)
    # the plan goes on until a window reaches the end, or (with gaps) the next one would start past it
    assert plan.ends[-1] == num_frames or (step > window and plan.starts[-1] + step >= num_frames)
    assert all(end < num_frames for end in plan.ends[:-1])  # only the last window reaches the end
    if step <= window:  # windows leave no frame out
        covered = {frame for start, end in zip(plan.starts, plan.ends) for frame in range(start, end)}
        assert covered == set(range(num_frames))


def test_plan_keeps_the_last_short_window():
    plan = WindowPlan.build(50, 25.0, window_size=8)
    assert plan.num_windows == 7
    assert (plan.starts[-1], plan.ends[-1]) == (48, 50)


@pytest.mark.parametrize("fps", [12.0, 25.0, 30.0, 30000 / 1001])
def test_plan_spans_are_frames_over_fps(fps):
    plan = WindowPlan.build(185, fps, window_size=8)
    spans = plan.spans
    assert spans.shape == (plan.num_windows, 2) and spans.dtype == torch.float32
    expected = torch.tensor([[s / fps, e / fps] for s, e in zip(plan.starts, plan.ends)], dtype=torch.float32)
    assert torch.equal(spans, expected)
    assert plan.span(plan.num_windows - 1)[1] == pytest.approx(185 / fps)
    assert plan.span(1) == (8 / fps, 16 / fps)


def test_plan_center_and_uniform_frames():
    plan = WindowPlan.build(20, 10.0, window_size=8, sampling="center")
    assert plan.frame_indices == ((4,), (12,), (18,))  # start + length // 2; last window [16, 20)
    uniform = WindowPlan.build(20, 10.0, window_size=8, frames_per_window=3, sampling="uniform")
    assert uniform.frame_indices[0] == (0, 4, 7)  # first and last frame of the window included
    assert uniform.frame_indices[2] == (16, 18, 19)
    center3 = WindowPlan.build(24, 10.0, window_size=12, frames_per_window=3, sampling="center")
    assert center3.frame_indices[0] == (2, 6, 10)  # centres of three 4-frame segments


@pytest.mark.parametrize("sampling", ["center", "uniform", "random"])
def test_plan_every_window_gets_k_frames_inside_it(sampling):
    plan = WindowPlan.build(45, 30.0, window_size=8, frames_per_window=3, sampling=sampling, video_id="v")
    for start, end, frames in zip(plan.starts, plan.ends, plan.frame_indices):
        assert len(frames) == 3 and list(frames) == sorted(frames)
        assert all(start <= frame < end for frame in frames)
        if end - start >= 3 and sampling == "random":
            assert len(set(frames)) == 3


def test_plan_all_frames():
    plan = WindowPlan.build(21, 10.0, window_size=8, stride=4, sampling="all", frames_per_window=5)
    for start, end, frames in zip(plan.starts, plan.ends, plan.frame_indices):
        assert frames == tuple(range(start, end))
    assert plan.needed_frames() == list(range(21))
    gaps = WindowPlan.build(30, 10.0, window_size=4, stride=10, sampling="all")
    assert gaps.needed_frames() == [0, 1, 2, 3, 10, 11, 12, 13, 20, 21, 22, 23]


def test_random_sampling_is_seeded_per_video_and_window():
    def frames(seed, video_id, num_frames=400):
        return WindowPlan.build(num_frames, 30.0, window_size=16, frames_per_window=2, sampling="random",
                                seed=seed, video_id=video_id).frame_indices

    assert frames(0, "a") == frames(0, "a")
    assert frames(0, "a") != frames(1, "a")
    assert frames(0, "a") != frames(0, "b")
    # a window's draw depends on (seed, video, window) only, not on the video's length
    assert frames(0, "a", 400)[:20] == frames(0, "a", 330)[:20]
    # draws are spread over the window (not a fixed offset)
    offsets = {frame - start for start, pair in zip(range(0, 400, 16), frames(0, "a")) for frame in pair}
    assert len(offsets) >= 12


def test_splitmix64_matches_the_reference_sequence():
    # Reference outputs of SplitMix64 (Steele, Lea & Flood 2014) for seed 0.
    state, first = _splitmix64(0)
    _, second = _splitmix64(state)
    assert (first, second) == (0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4)


@pytest.mark.parametrize("kwargs", [dict(num_frames=0, fps=25.0), dict(num_frames=10, fps=0.0),
                                    dict(num_frames=10, fps=float("nan")), dict(num_frames=10, fps=25.0, window_size=0),
                                    dict(num_frames=10, fps=25.0, stride=0),
                                    dict(num_frames=10, fps=25.0, frames_per_window=0)])
def test_plan_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match="WindowPlan"):
        WindowPlan.build(**kwargs)


def test_plan_names_the_frame_sampling_modes():
    with pytest.raises(UnknownChoiceError, match=r"frame sampling mode 'centre'.*center, uniform, random, all\. "
                                                 r"Did you mean 'center'\?"):
        WindowPlan.build(10, 25.0, sampling="centre")


# ------------------------------------------------------------------------------------------------
# Reading windows


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sampling,frames_per_window,stride", [("center", 1, None), ("uniform", 3, None),
                                                               ("random", 2, None), ("all", 1, 4)])
def test_windows_get_their_own_frames(index_videos, backend, sampling, frames_per_window, stride):
    source = open_video(index_videos["h264"], backend=backend)
    meta = source.meta
    assert (meta.num_frames, meta.fps, meta.height, meta.width, meta.backend) == (50, 25.0, 64, 96, backend)
    plan = WindowPlan.build(meta.num_frames, meta.fps, window_size=8, stride=stride,
                            frames_per_window=frames_per_window, sampling=sampling, video_id="h264")
    chunks = list(source.iter_windows(plan, chunk_windows=3))
    assert [chunk.window_ids.tolist() for chunk in chunks] == [
        list(range(low, min(low + 3, plan.num_windows))) for low in range(0, plan.num_windows, 3)]
    for chunk in chunks:
        expected = [frame for window in chunk.window_ids.tolist() for frame in plan.frame_indices[window]]
        owners = [window for window in chunk.window_ids.tolist() for _ in plan.frame_indices[window]]
        assert chunk.frames.dtype == torch.uint8 and chunk.frames.shape[1:] == (64, 96, 3)
        assert chunk_indices(chunk) == expected  # the pixels say which frame they are
        assert chunk.frame_indices.tolist() == expected
        assert chunk.frame_window.tolist() == owners


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("video", ["h264_bframes", "mpeg4"])
@pytest.mark.parametrize("window_size,sampling", [(32, "center"), (40, "random"), (8, "uniform")])
def test_sparse_and_seeking_reads_are_exact(index_videos, backend, video, window_size, sampling):
    """Far-apart frames make both backends seek to keyframes; the frames must still be the right ones."""
    source = open_video(index_videos[video], backend=backend)
    meta = source.meta
    plan = WindowPlan.build(meta.num_frames, meta.fps, window_size=window_size, frames_per_window=2,
                            sampling=sampling, seed=3, video_id=video)
    decoded = [index for chunk in source.iter_windows(plan, chunk_windows=2) for index in chunk_indices(chunk)]
    assert decoded == [frame for frames in plan.frame_indices for frame in frames]


def test_pyav_seeks_when_frames_are_far_apart(index_videos, monkeypatch):
    decoded_frames = []
    original = PyAVFrames._next

    def counting_next(self, decoded, position):
        decoded_frames.append(position)
        return original(self, decoded, position)

    monkeypatch.setattr(PyAVFrames, "_next", counting_next)
    source = open_video(index_videos["mpeg4"], backend="pyav")  # a keyframe every 5 frames
    plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, window_size=40)
    decoded = [index for chunk in source.iter_windows(plan) for index in chunk_indices(chunk)]
    assert decoded == [20, 60, 100]
    assert len(decoded_frames) < 20  # sequential decoding would decode 101 frames


def test_decord_seeks_when_frames_are_far_apart(index_videos, monkeypatch):
    monkeypatch.setattr(backends, "DECORD_SEEK_MIN_SAVINGS", 16)  # this video is short
    seeks = []
    original = decord.VideoReader.seek_accurate
    monkeypatch.setattr(decord.VideoReader, "seek_accurate",
                        lambda self, position: (seeks.append(position), original(self, position))[1])
    source = open_video(index_videos["mpeg4"], backend="decord")
    plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, window_size=40)
    decoded = [index for chunk in source.iter_windows(plan) for index in chunk_indices(chunk)]
    assert decoded == [20, 60, 100] and seeks == [20, 60, 100]


@pytest.mark.parametrize("backend", BACKENDS)
def test_reader_streams_instead_of_decoding_everything(index_videos, backend):
    """The first chunk is delivered after decoding only the frames it needs."""
    source = open_video(index_videos["h264_bframes"], backend=backend)
    plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, window_size=4)  # 30 windows
    pulled = []
    backend_frames = source._frames
    original = backend_frames.iter_frames

    def counting(indices):
        for item in original(indices):
            pulled.append(item[0])
            yield item

    backend_frames.iter_frames = counting
    chunks = source.iter_windows(plan, chunk_windows=5)
    first = next(chunks)
    assert first.window_ids.tolist() == [0, 1, 2, 3, 4] and pulled == [2, 6, 10, 14, 18]
    assert sum(chunk.frames.shape[0] for chunk in chunks) == 25


@pytest.mark.parametrize("backend", BACKENDS)
def test_overlapping_windows_share_decoded_frames(index_videos, backend):
    source = open_video(index_videos["h264"], backend=backend)
    plan = WindowPlan.build(50, 25.0, window_size=8, stride=2, sampling="all")
    chunks = list(source.iter_windows(plan, chunk_windows=4))
    for chunk in chunks:
        assert chunk_indices(chunk) == chunk.frame_indices.tolist()
    assert sum(len(chunk.window_ids) for chunk in chunks) == plan.num_windows


def test_sample_clips_metadata_and_spans(sample_videos):
    for name, (frames, fps, height, width) in SAMPLE_CLIPS.items():
        for backend in BACKENDS:
            meta = reader_meta(sample_videos / name, backend=backend)
            assert (meta.num_frames, meta.fps, meta.height, meta.width) == (frames, fps, height, width)
            assert meta.duration == pytest.approx(frames / fps)
        plan = WindowPlan.build(frames, fps, window_size=8)
        assert plan.spans[1].tolist() == pytest.approx([8 / fps, 16 / fps])
        assert plan.spans[-1, 1].item() == pytest.approx(frames / fps)


def test_decord_and_pyav_return_the_same_frames(sample_videos):
    """Both decode with FFmpeg and convert with swscale: identical pixels without resizing. With
    resizing both scale bilinearly, but their FFmpeg versions round differently (decord bundles an
    older one): a small tolerance."""
    for name, (frames, fps, _, _) in SAMPLE_CLIPS.items():
        plan = WindowPlan.build(frames, fps, window_size=8, frames_per_window=2, sampling="uniform")
        outputs = {}
        for backend in BACKENDS:
            for resize in (None, 224):
                with open_video(sample_videos / name, backend=backend, resize=resize) as source:
                    outputs[backend, resize] = torch.cat([chunk.frames for chunk in source.iter_windows(plan)])
        assert torch.equal(outputs["decord", None], outputs["pyav", None]), name
        difference = (outputs["decord", 224].int() - outputs["pyav", 224].int()).abs().float()
        assert outputs["decord", 224].shape == outputs["pyav", 224].shape
        assert difference.mean() < 0.5 and torch.quantile(difference.flatten()[::7], 0.999) <= 4, name


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_at_decode_time(index_videos, backend):
    plan = WindowPlan.build(50, 25.0, window_size=10)
    with open_video(index_videos["h264"], backend=backend, resize=(32, 40)) as source:
        chunk = next(source.iter_windows(plan))
        assert chunk.frames.shape == (5, 32, 40, 3)
        assert chunk_indices(chunk) == [5, 15, 25, 35, 45]
    with open_video(index_videos["h264"], backend=backend, resize=40) as source:
        assert next(source.iter_windows(plan)).frames.shape == (5, 40, 60, 3)  # shorter side 40, aspect 96:64 kept


def test_decord_malformed_resize_falls_back_to_pyav(index_videos):
    """decord returns 4-channel frames at some output widths (72 here): refused, and auto reads with PyAV."""
    with pytest.raises(CorruptVideoError, match="malformed frames"):
        with open_video(index_videos["h264"], backend="decord", resize=(48, 72)) as source:
            source.meta
    with open_video(index_videos["h264"], backend="auto", resize=(48, 72)) as source:
        chunk = next(source.iter_windows(WindowPlan.build(50, 25.0, window_size=10)))
        assert source.meta.backend == "pyav" and chunk.frames.shape == (5, 48, 72, 3)


def test_output_size_rules():
    assert output_size(None, 480, 640) == (480, 640)
    assert output_size(224, 480, 640) == (224, 299)
    assert output_size(224, 720, 480) == (336, 224)
    with pytest.raises(ValueError, match="resize"):
        output_size((0, 5), 10, 10)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_source_can_be_read_again(index_videos, backend):
    with open_video(index_videos["h264_bframes"], backend=backend) as source:
        plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, window_size=16, sampling="random")
        expected = [frame for frames in plan.frame_indices for frame in frames]
        for _ in range(2):
            assert [i for chunk in source.iter_windows(plan) for i in chunk_indices(chunk)] == expected
        assert [decode_index(frame) for frame in source.read_frames([3, 1]).numpy()] == [3, 1]
        partial = source.iter_windows(plan, chunk_windows=1)
        next(partial)  # abandoned half-way
        assert [i for chunk in source.iter_windows(plan) for i in chunk_indices(chunk)] == expected


def test_read_frames_in_any_order(index_videos):
    with open_video(index_videos["mpeg4"], backend="pyav") as source:
        frames = source.read_frames([70, 3, 70, 0])
        assert [decode_index(frame) for frame in frames.numpy()] == [70, 3, 70, 0]
        with pytest.raises(IndexError):
            source.read_frames([120])


def test_auto_backend_reads_large_files_with_pyav(index_videos, monkeypatch):
    assert reader_meta(index_videos["h264"], backend="auto").backend == "decord"
    monkeypatch.setattr(reader_module, "DECORD_MAX_FILE_BYTES", 1000)  # decord buffers the whole file
    assert reader_meta(index_videos["h264"], backend="auto").backend == "pyav"
    assert reader_meta(index_videos["h264"], backend="decord").backend == "decord"


def test_open_is_lazy_and_sources_pickle(index_videos):
    source = open_video(index_videos["h264"], backend="decord")
    assert source._frames is None  # no decoder until the first read
    assert source.meta.num_frames == 50 and source._frames is not None
    clone = pickle.loads(pickle.dumps(source))
    assert clone._frames is None and clone.meta.num_frames == 50


def test_plan_from_another_video_is_rejected(index_videos):
    source = open_video(index_videos["h264"], backend="pyav")
    with pytest.raises(ValueError, match="build the plan"):
        next(source.iter_windows(WindowPlan.build(80, 25.0)))


# ------------------------------------------------------------------------------------------------
# Bad input: each a typed error that names the file and the reason


def assert_names_file(error: VideoError, path: Path) -> None:
    assert error.path == str(path) and str(path) in str(error) and error.reason in str(error)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS.names())
def test_missing_file(tmp_path, backend):
    path = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match="does not exist") as info:
        open_video(path, backend=backend)
    assert_names_file(info.value, path)
    with pytest.raises(VideoNotFoundError, match="not a regular file"):
        open_video(tmp_path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(EmptyVideoError, match="0 bytes") as info:
        reader_meta(path)
    assert_names_file(info.value, path)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS.names())
def test_text_file_named_mp4(tmp_path, backend):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    with pytest.raises(CorruptVideoError, match="not a readable video container") as info:
        reader_meta(path, backend=backend)
    assert_names_file(info.value, path)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS.names())
def test_truncated_file_without_index(index_videos, tmp_path, backend):
    """Cut in half, an mp4 with its index at the end has no index left."""
    path = truncate(index_videos["h264"], tmp_path / "cut.mp4")
    with pytest.raises(CorruptVideoError) as info:
        reader_meta(path, backend=backend)
    assert_names_file(info.value, path)


def test_truncated_file_with_index(index_videos, tmp_path, caplog):
    """Cut in half, a 'faststart' mp4 still has its index but half of its frames are missing."""
    path = truncate(index_videos["faststart"], tmp_path / "cut_faststart.mp4")
    with pytest.raises(CorruptVideoError, match="decord cannot open it"):
        reader_meta(path, backend="decord")
    source = open_video(path, backend="pyav")
    assert source.meta.num_frames == 50  # the header still claims every frame
    plan = WindowPlan.build(50, source.meta.fps)
    with pytest.raises(CorruptVideoError, match="decoding failed|stream ended") as info:
        list(source.iter_windows(plan))
    assert_names_file(info.value, path)
    # "auto" falls back to PyAV for a file decord cannot open, warning once per process
    reader_module._fallback_warned = False
    with caplog.at_level(logging.WARNING, logger="motif.video.reader"):
        for _ in range(2):
            assert open_video(path, backend="auto").meta.backend == "pyav"
    assert sum("reading it with PyAV" in record.message for record in caplog.records) == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_frame_video(index_videos, backend):
    path = index_videos["one_frame"]
    with pytest.raises(TooFewFramesError, match="1 frame") as info:
        reader_meta(path, backend=backend)
    assert_names_file(info.value, path)
    with open_video(path, backend=backend, min_frames=1) as source:
        plan = WindowPlan.build(source.meta.num_frames, source.meta.fps)
        (chunk,) = source.iter_windows(plan)
        assert chunk_indices(chunk) == [0]


def test_too_few_frames_is_configurable(index_videos):
    with pytest.raises(TooFewFramesError, match="min_frames=60"):
        reader_meta(index_videos["h264"], min_frames=60)


@pytest.mark.parametrize("backend", VIDEO_BACKENDS.names())
def test_missing_fps(index_videos, tmp_path, backend):
    path = strip_mp4_timing(index_videos["mpeg4"], tmp_path / "no_fps.mp4")
    with pytest.raises(InvalidFpsError, match="frame rate") as info:
        reader_meta(path, backend=backend)
    assert_names_file(info.value, path)
    assert "fps_override" in str(info.value)
    if backend == "decord":  # without timestamps decord would return wrong frames: refused
        with pytest.raises(CorruptVideoError, match="timestamps"):
            reader_meta(path, backend=backend, fps_override=10.0)
        return
    with open_video(path, backend=backend, fps_override=10.0) as source:
        assert source.meta.fps == 10.0 and source.meta.duration == 12.0 and source.meta.backend == "pyav"
        plan = WindowPlan.build(source.meta.num_frames, source.meta.fps, window_size=8)
        assert plan.spans[1].tolist() == pytest.approx([0.8, 1.6])
        assert chunk_indices(next(source.iter_windows(plan))) == list(range(4, 120, 8))


def test_file_without_video_stream(tmp_path):
    path = tmp_path / "sound.wav"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate = 8000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(CorruptVideoError, match="no video stream"):
        reader_meta(path)


def test_errors_pickle_with_their_message(tmp_path):
    error = InvalidFpsError(tmp_path / "a.mp4", "no frame rate")
    clone = pickle.loads(pickle.dumps(error))
    assert type(clone) is InvalidFpsError and str(clone) == str(error) and clone.path == error.path


def test_bad_reader_arguments(index_videos):
    with pytest.raises(ValueError, match="backend"):
        open_video(index_videos["h264"], backend="ffmpeg")
    with pytest.raises(ValueError, match="chunk_windows"):
        next(open_video(index_videos["h264"]).iter_windows(WindowPlan.build(50, 25.0), chunk_windows=0))


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
