"""The synthetic order task of spec section 8: window features with ordered patterns, no files.

Every video is a sequence of T ∈ [min_windows, max_windows] window features of dimension D drawn
from U(−1, 1). The first 30 % of the dimensions carry the class pattern: pattern(s_t)·a_j +
0.1·N(0, 1), with s_t = t / (T − 1) the relative time and a_j ∈ {0.5, 0.67, 0.83} a fixed amplitude
per dimension; N(0, 0.1²) noise is added everywhere. Concepts are artificial unit vectors over the
feature dimensions (constants, ramps, bumps, sines, then random directions); their activations are
clamp(cos, 0), standardised with statistics of the training windows only.

Variants:
- "five": ascending, descending, U-shaped, inverted U, sine wave. Only ascending and descending are
  time mirrors with the same values, so order-blind models reach about 80 %.
- "pairs": every class has a time-mirrored partner (ascending / descending, early / late peak,
  sine / reversed sine) with the same multiset of values, so order-blind models sit near 50 %.
- "relative": "A then B" vs "B then A". A burst of event A (2-3 windows) and a burst of event B
  (2-3 windows) sit close together (gap 0-2 windows) at a uniformly random place, among 1-3
  distractor bursts of events C and D anywhere. During a burst the window feature gets
  amplitude·(event direction) added, amplitude ~ U(4, 8). Only the relative order of A and B tells
  the classes apart: the position of one event alone is a weak cue (``position_rule_accuracy``),
  the order of the two is a perfect one (``order_oracle_accuracy``). The concepts are the four event
  directions ("event A" .. "event D") and random directions.

Everything is deterministic for a seed; video i depends only on (seed, i).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from motif.concepts import ConceptStandardizer, concept_activations
from motif.errors import ConfigError

SIGNAL_FRACTION = 0.3
AMPLITUDES = (0.5, 0.67, 0.83)
SIGNAL_NOISE_STD = 0.1
FEATURE_NOISE_STD = 0.1


def _peak(centre: float, width: float = 0.12) -> Callable[[np.ndarray], np.ndarray]:
    return lambda s: np.exp(-0.5 * ((s - centre) / width) ** 2)


PATTERNS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "ascending": lambda s: s,
    "descending": lambda s: 1.0 - s,
    "U-shaped": lambda s: (2.0 * s - 1.0) ** 2,
    "inverted U": lambda s: 1.0 - (2.0 * s - 1.0) ** 2,
    "sine wave": lambda s: np.sin(2.0 * np.pi * s),
    "early peak": _peak(0.25),
    "late peak": _peak(0.75),
    "reversed sine wave": lambda s: np.sin(2.0 * np.pi * (1.0 - s)),
}
VARIANT_CLASSES: dict[str, tuple[str, ...]] = {
    "five": ("ascending", "descending", "U-shaped", "inverted U", "sine wave"),
    "pairs": ("ascending", "descending", "early peak", "late peak", "sine wave", "reversed sine wave"),
    "relative": ("A then B", "B then A"),
}
EVENTS = ("event A", "event B", "event C", "event D")
BURST_LENGTH = (2, 3)      # windows per burst, inclusive range
PAIR_GAP = (0, 2)          # windows between the end of the first and the start of the second burst
DISTRACTOR_BURSTS = (1, 3)
BURST_AMPLITUDE = (4.0, 8.0)

# Concept curves over the relative feature index u ∈ [0, 1] (the signal lives in u < 0.3).
CONCEPT_CURVES: tuple[tuple[str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("constant", lambda u: np.ones_like(u)),
    ("negative constant", lambda u: -np.ones_like(u)),
    ("ramp up", lambda u: u),
    ("ramp down", lambda u: 1.0 - u),
    ("bump early", _peak(0.15, 0.05)),
    ("negative bump early", lambda u: -_peak(0.15, 0.05)(u)),
    ("bump middle", _peak(0.5, 0.05)),
    ("bump late", _peak(0.85, 0.05)),
    ("sine", lambda u: np.sin(2.0 * np.pi * u)),
    ("cosine", lambda u: np.cos(2.0 * np.pi * u)),
    ("negative ramp down", lambda u: u - 1.0),
    ("fast sine", lambda u: np.sin(8.0 * np.pi * u)),
)


@dataclass
class OrderTask:
    """A generated order task. features[i] [T_i, D]; labels [N] long; splits[i] "train" | "test";
    concept_vectors [C, D] unit rows with readable concept_names; for variant "relative",
    bursts[i] maps "event A" / "event B" to the video's [first, last) windows of that burst."""

    variant: str
    features: list[Tensor]
    labels: Tensor
    splits: list[str]
    class_names: list[str]
    concept_vectors: Tensor
    concept_names: list[str]
    bursts: list[dict[str, tuple[int, int]]] | None = None

    def indices(self, split: str) -> list[int]:
        """Indices of the videos of one split ("train" or "test")."""
        return [i for i, s in enumerate(self.splits) if s == split]

    def activations(self) -> list[Tensor]:
        """clamp(cos(window feature, concept), 0) per video, [T_i, C]."""
        return [concept_activations(f, self.concept_vectors) for f in self.features]

    def standardised_activations(self, train_indices: Sequence[int] | None = None
                                 ) -> tuple[list[Tensor], Tensor, Tensor]:
        """Model inputs X = (a − μ) / σ per video, [T_i, C], with μ, σ [C] from the training windows only.

        train_indices defaults to the "train" split (pass a subset when a validation split is carved).
        """
        activations = self.activations()
        indices = self.indices("train") if train_indices is None else list(train_indices)
        if not indices:
            raise ValueError("standardised_activations: no training videos to compute concept statistics from")
        standardizer = ConceptStandardizer(len(self.concept_names)).fit(activations[i] for i in indices)
        return [standardizer(a) for a in activations], standardizer.mean, standardizer.std


def position_rule_accuracy(task: OrderTask, event: str = "event A") -> float:
    """Test accuracy of the best rule "class 0 iff the centre of ``event``'s burst, as a fraction of the
    video, is below a threshold" (or above it), with the threshold fitted on the training videos."""
    if task.bursts is None:
        raise ValueError("position_rule_accuracy needs a task with bursts (variant 'relative')")
    position = np.array([(sum(b[event]) / 2.0) / f.shape[0] for b, f in zip(task.bursts, task.features)])
    labels = task.labels.numpy()
    train, test = np.array(task.indices("train")), np.array(task.indices("test"))
    best = (-1.0, 0.0, 1)
    for threshold in np.unique(position[train]):
        for sign in (1, -1):
            predicted = np.where(sign * (position[train] - threshold) <= 0, 0, 1)
            best = max(best, (float((predicted == labels[train]).mean()), float(threshold), sign))
    _, threshold, sign = best
    predicted = np.where(sign * (position[test] - threshold) <= 0, 0, 1)
    return float((predicted == labels[test]).mean())


def order_oracle_accuracy(task: OrderTask) -> float:
    """Test accuracy of "class 0 iff the burst of A starts before the burst of B"."""
    if task.bursts is None:
        raise ValueError("order_oracle_accuracy needs a task with bursts (variant 'relative')")
    test = task.indices("test")
    predicted = [0 if task.bursts[i]["event A"][0] < task.bursts[i]["event B"][0] else 1 for i in test]
    return float((torch.tensor(predicted) == task.labels[test]).double().mean())


def _relative_order_video(rng: np.random.Generator, label: int, num_windows: int, feature_dim: int,
                          vectors: np.ndarray) -> tuple[np.ndarray, dict[str, tuple[int, int]]]:
    """One video of variant "relative": features [T, D] and the windows of the A and B bursts."""
    video = rng.uniform(-1.0, 1.0, size=(num_windows, feature_dim))
    lengths = rng.integers(BURST_LENGTH[0], BURST_LENGTH[1] + 1, size=2)
    gap = int(rng.integers(PAIR_GAP[0], PAIR_GAP[1] + 1))
    start = int(rng.integers(0, num_windows - int(lengths.sum()) - gap + 1))
    first = (start, start + int(lengths[0]))
    second = (first[1] + gap, first[1] + gap + int(lengths[1]))
    order = ("event A", "event B") if label == 0 else ("event B", "event A")
    bursts = {order[0]: first, order[1]: second}
    placed = [(EVENTS.index(name), span) for name, span in bursts.items()]
    for _ in range(int(rng.integers(DISTRACTOR_BURSTS[0], DISTRACTOR_BURSTS[1] + 1))):
        length = int(rng.integers(BURST_LENGTH[0], BURST_LENGTH[1] + 1))
        begin = int(rng.integers(0, num_windows - length + 1))
        placed.append((int(rng.integers(2, len(EVENTS))), (begin, begin + length)))
    for event, (begin, end) in placed:
        amplitude = rng.uniform(*BURST_AMPLITUDE, size=(end - begin, 1))
        video[begin:end] += amplitude * vectors[event]
    video += FEATURE_NOISE_STD * rng.standard_normal(video.shape)
    return video, bursts


def make_concept_vectors(feature_dim: int, num_concepts: int, seed: int = 0) -> tuple[Tensor, list[str]]:
    """Unit concept vectors [C, D] and their names: the curves of ``CONCEPT_CURVES`` first, then
    random directions named "random direction N"."""
    u = np.linspace(0.0, 1.0, feature_dim)
    curves = [(name, curve(u)) for name, curve in CONCEPT_CURVES[:num_concepts]]
    rng = np.random.default_rng([seed, 2])
    curves += [(f"random direction {i + 1}", rng.standard_normal(feature_dim))
               for i in range(num_concepts - len(curves))]
    vectors = torch.tensor(np.stack([c for _, c in curves]), dtype=torch.float32)
    return F.normalize(vectors, dim=-1), [name for name, _ in curves]


def make_event_vectors(feature_dim: int, num_concepts: int, seed: int = 0) -> tuple[Tensor, list[str]]:
    """Unit concept vectors [C, D] of variant "relative": the event directions "event A" .. "event D",
    then "random direction N" (all random Gaussian directions)."""
    rng = np.random.default_rng([seed, 3])
    vectors = torch.tensor(rng.standard_normal((num_concepts, feature_dim)), dtype=torch.float32)
    names = list(EVENTS) + [f"random direction {i + 1}" for i in range(num_concepts - len(EVENTS))]
    return F.normalize(vectors, dim=-1), names


def make_order_task(variant: str = "five", num_videos: int = 600, feature_dim: int = 1024, num_concepts: int = 64,
                    min_windows: int = 16, max_windows: int = 64, test_fraction: float = 0.333,
                    seed: int = 0) -> OrderTask:
    """Generate the task: balanced classes, a stratified seeded train/test split (carve validation
    from "train" yourself), features per video and the concept bank."""
    if variant not in VARIANT_CLASSES:
        raise ConfigError(f"data.synthetic.variant must be one of {tuple(VARIANT_CLASSES)}, got {variant!r}",
                          where="data.synthetic.variant")
    class_names = list(VARIANT_CLASSES[variant])
    if num_videos < 2 * len(class_names):
        raise ConfigError(f"data.synthetic.num_videos must be >= {2 * len(class_names)} (two videos per class of "
                          f"variant {variant!r}), got {num_videos}", where="data.synthetic.num_videos")
    if not 2 <= min_windows <= max_windows:
        raise ConfigError(f"data.synthetic: need 2 <= min_windows <= max_windows, got {min_windows}, {max_windows}",
                          where="data.synthetic.min_windows")
    if not 0.0 < test_fraction < 1.0 or feature_dim < 4 or num_concepts < 1:
        raise ConfigError(f"data.synthetic: need 0 < test_fraction < 1, feature_dim >= 4, num_concepts >= 1; got "
                          f"{test_fraction}, {feature_dim}, {num_concepts}", where="data.synthetic")
    if variant == "relative" and (num_concepts < len(EVENTS) or min_windows < 2 * BURST_LENGTH[1] + PAIR_GAP[1]):
        raise ConfigError(f"data.synthetic: variant 'relative' needs num_concepts >= {len(EVENTS)} and min_windows "
                          f">= {2 * BURST_LENGTH[1] + PAIR_GAP[1]}; got {num_concepts}, {min_windows}",
                          where="data.synthetic")
    task_rng = np.random.default_rng([seed, 0])
    signal_dims = max(1, round(SIGNAL_FRACTION * feature_dim))
    amplitudes = task_rng.choice(AMPLITUDES, size=signal_dims)
    labels = np.arange(num_videos) % len(class_names)
    splits = ["train"] * num_videos
    for k in range(len(class_names)):
        members = task_rng.permutation(np.flatnonzero(labels == k))
        for i in members[:max(1, math.floor(len(members) * test_fraction))]:
            splits[i] = "test"
    if variant == "relative":
        vectors, names = make_event_vectors(feature_dim, num_concepts, seed)
    else:
        vectors, names = make_concept_vectors(feature_dim, num_concepts, seed)
    features, bursts = [], []
    for i, label in enumerate(labels):
        rng = np.random.default_rng([seed, 1, i])
        num_windows = int(rng.integers(min_windows, max_windows + 1))
        if variant == "relative":
            video, spans = _relative_order_video(rng, int(label), num_windows, feature_dim, vectors.numpy())
            features.append(torch.tensor(video, dtype=torch.float32))
            bursts.append(spans)
            continue
        video = rng.uniform(-1.0, 1.0, size=(num_windows, feature_dim))
        pattern = PATTERNS[class_names[label]](np.arange(num_windows) / (num_windows - 1))
        video[:, :signal_dims] = (pattern[:, None] * amplitudes[None, :]
                                  + SIGNAL_NOISE_STD * rng.standard_normal((num_windows, signal_dims)))
        video += FEATURE_NOISE_STD * rng.standard_normal(video.shape)
        features.append(torch.tensor(video, dtype=torch.float32))
    return OrderTask(variant=variant, features=features, labels=torch.tensor(labels, dtype=torch.long), splits=splits,
                     class_names=class_names, concept_vectors=vectors, concept_names=names,
                     bursts=bursts if variant == "relative" else None)
