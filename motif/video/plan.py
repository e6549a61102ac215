"""Window plans: which frames of a video form each temporal window, and which of them are decoded.

A video of ``N`` frames at ``fps`` is cut into windows of ``window_size`` consecutive frames that
start every ``stride`` frames (default ``stride = window_size``: non-overlapping). The last, shorter
window is kept; a window that would lie entirely inside the previous one's tail is not created, so
with overlapping windows the plan stops at the first window that reaches the end of the video.
Window ``k`` covers frames ``[starts[k], ends[k])`` and spans
``(starts[k] / fps, ends[k] / fps)`` seconds.

Frames used per window (``frames_per_window = k``, window length ``L``):

- ``"center"``: the centres of ``k`` equal sub-segments, ``start + floor((2i + 1) L / 2k)``;
  ``k = 1`` gives the middle frame ``start + L // 2``.
- ``"uniform"``: ``k`` frames evenly spaced from the first to the last frame of the window,
  both included (``k = 1``: the middle frame, as ``"center"``).
- ``"random"``: ``k`` distinct frames drawn from the window, sorted. The draw depends only on
  ``(seed, video_id, window index)`` through a stable hash (BLAKE2b) and a SplitMix64 generator,
  so it is the same on every machine, Python / NumPy version and processing order.
- ``"all"``: every frame of the window (``frames_per_window`` is ignored).

When a window is shorter than ``k`` (the last window), ``"center"`` and ``"uniform"`` repeat frames
and ``"random"`` draws with replacement, so every window still yields exactly ``k`` frames.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from motif.registry import Registry

if TYPE_CHECKING:
    import torch

_MASK64 = (1 << 64) - 1


def _window_rng_state(seed: int, video_id: str, window: int) -> int:
    """A 64-bit state that depends only on (seed, video_id, window)."""
    key = f"{seed}\x1f{video_id}\x1f{window}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")


def _splitmix64(state: int) -> tuple[int, int]:
    """One SplitMix64 step: returns (next state, 64-bit output)."""
    state = (state + 0x9E3779B97F4A7C15) & _MASK64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return state, z ^ (z >> 31)


def _random_offsets(length: int, k: int, state: int) -> list[int]:
    """``k`` sorted offsets in ``[0, length)``: distinct if ``k <= length``, else with replacement."""
    if k > length:
        draws = []
        for _ in range(k):
            state, value = _splitmix64(state)
            draws.append(value % length)
        return sorted(draws)
    pool = list(range(length))
    for i in range(k):  # partial Fisher-Yates shuffle
        state, value = _splitmix64(state)
        j = i + value % (length - i)
        pool[i], pool[j] = pool[j], pool[i]
    return sorted(pool[:k])


def _center_offsets(length: int, k: int, state: int) -> list[int]:
    """The centres of k equal sub-segments of the window."""
    return [((2 * i + 1) * length) // (2 * k) for i in range(k)]


def _uniform_offsets(length: int, k: int, state: int) -> list[int]:
    """k offsets evenly spaced from the first to the last frame (k = 1: the centre)."""
    if k == 1:
        return _center_offsets(length, k, state)
    # round(i * (length - 1) / (k - 1)), half up, in integer arithmetic
    return [(2 * i * (length - 1) + (k - 1)) // (2 * (k - 1)) for i in range(k)]


def _every_offset(length: int, k: int, state: int) -> list[int]:
    return list(range(length))


@dataclass(frozen=True)
class FrameSampling:
    """A way of choosing the frames of a window (a value of ``video.frame_sampling``).

    offsets(length, k, state): the sorted offsets in [0, length) of the frames used from a window of
    ``length`` frames, k = frames_per_window; ``state`` is the window's 64-bit random state, derived
    from (seed, video_id, window) and computed only for modes with ``uses_seed``.
    every_frame: the mode uses every frame of the window (frames_per_window does not apply).
    """

    offsets: Callable[[int, int, int], list[int]]
    description: str
    uses_seed: bool = False
    every_frame: bool = False


FRAME_SAMPLING: Registry[FrameSampling] = Registry("frame sampling mode", key="video.frame_sampling", entries={
    "center": FrameSampling(_center_offsets, "the centres of k equal sub-segments"),
    "uniform": FrameSampling(_uniform_offsets, "k frames evenly spaced, first and last included"),
    "random": FrameSampling(_random_offsets, "k distinct frames drawn with a stable seed", uses_seed=True),
    "all": FrameSampling(_every_offset, "every frame of the window", every_frame=True),
})


@dataclass(frozen=True)
class WindowPlan:
    """The windows of one video and the frames decoded for each (see the module docstring).

    ``starts`` / ``ends`` (exclusive) are frame indices, one per window; ``frame_indices[k]`` lists
    the sorted frames used by window ``k``. Sequences are tuples so that a plan is immutable and
    hashable.
    """

    num_frames: int
    fps: float
    window_size: int
    stride: int
    frames_per_window: int
    sampling: str
    seed: int
    video_id: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]
    frame_indices: tuple[tuple[int, ...], ...]

    @classmethod
    def build(
        cls,
        num_frames: int,
        fps: float,
        window_size: int = 8,
        stride: int | None = None,
        frames_per_window: int = 1,
        sampling: str = "center",
        seed: int = 0,
        video_id: str = "",
    ) -> "WindowPlan":
        """Plan the windows of a video of ``num_frames`` frames at ``fps`` frames per second."""
        stride = window_size if stride is None else stride
        for name, value in (("num_frames", num_frames), ("window_size", window_size),
                            ("stride", stride), ("frames_per_window", frames_per_window)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"WindowPlan: {name} must be a positive integer, got {value!r}")
        if not fps > 0 or fps == float("inf"):
            raise ValueError(f"WindowPlan: fps must be a positive finite number, got {fps!r}")
        mode = FRAME_SAMPLING[sampling]

        starts: list[int] = []
        ends: list[int] = []
        start = 0
        while start < num_frames:
            end = min(start + window_size, num_frames)
            starts.append(start)
            ends.append(end)
            if end == num_frames:
                break
            start += stride

        frame_indices = []
        for window, (start, end) in enumerate(zip(starts, ends)):
            state = _window_rng_state(seed, video_id, window) if mode.uses_seed else 0
            offsets = mode.offsets(end - start, frames_per_window, state)
            frame_indices.append(tuple(start + offset for offset in offsets))

        return cls(num_frames=num_frames, fps=float(fps), window_size=window_size, stride=stride,
                   frames_per_window=frames_per_window, sampling=sampling, seed=seed,
                   video_id=video_id, starts=tuple(starts), ends=tuple(ends),
                   frame_indices=tuple(frame_indices))

    @property
    def num_windows(self) -> int:
        """T, the number of windows."""
        return len(self.starts)

    @property
    def spans(self) -> torch.Tensor:
        """Window spans in seconds, ``[T, 2]`` float32: ``(start_frame / fps, end_frame / fps)``."""
        import torch  # here, so that the plan (and the settings and config that use it) import without torch

        frames = torch.tensor([self.starts, self.ends], dtype=torch.float64).T
        return (frames / self.fps).to(torch.float32)

    def span(self, window: int) -> tuple[float, float]:
        """The span of one window in seconds, as exact Python floats."""
        return self.starts[window] / self.fps, self.ends[window] / self.fps

    def needed_frames(self) -> list[int]:
        """All frames the plan uses, sorted and without repeats (what a reader must decode)."""
        if FRAME_SAMPLING[self.sampling].every_frame and self.stride <= self.window_size:  # windows tile the video
            return list(range(self.starts[0], self.ends[-1]))
        return sorted({index for frames in self.frame_indices for index in frames})

    def settings(self) -> dict[str, int | str]:
        """The settings that define the plan for any video (for cache keys and checkpoints)."""
        return {"window_size": self.window_size, "stride": self.stride,
                "frames_per_window": self.frames_per_window, "sampling": self.sampling,
                "seed": self.seed}
