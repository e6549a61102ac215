"""The synthetic order task generator: determinism, mirrored pairs, splits, standardisation."""

from __future__ import annotations

import pytest
import torch

from motif.concepts import concept_activations
from motif.world.order_task import (
    PATTERNS,
    VARIANT_CLASSES,
    make_order_task,
    order_oracle_accuracy,
    position_rule_accuracy,
)

SMALL = dict(num_videos=60, feature_dim=40, num_concepts=14, min_windows=6, max_windows=12)


def test_same_seed_same_task_and_video_independent_of_count():
    a, b = make_order_task("five", seed=3, **SMALL), make_order_task("five", seed=3, **SMALL)
    assert all(torch.equal(x, y) for x, y in zip(a.features, b.features))
    assert torch.equal(a.labels, b.labels) and a.splits == b.splits
    assert torch.equal(a.concept_vectors, b.concept_vectors)
    more = make_order_task("five", seed=3, **{**SMALL, "num_videos": 80})
    assert torch.equal(more.features[17], a.features[17])          # video i depends only on (seed, i)
    other = make_order_task("five", seed=4, **SMALL)
    assert not torch.equal(other.features[0][:3], a.features[0][:3])


@pytest.mark.parametrize("variant", ["five", "pairs"])
def test_shapes_classes_and_stratified_split(variant):
    task = make_order_task(variant, test_fraction=0.25, **SMALL)
    assert task.class_names == list(VARIANT_CLASSES[variant])
    assert all(6 <= f.shape[0] <= 12 and f.shape[1] == 40 for f in task.features)
    counts = torch.bincount(task.labels)
    assert (counts == counts[0]).all()
    test_labels = task.labels[task.indices("test")]
    assert (torch.bincount(test_labels, minlength=len(task.class_names)) == int(counts[0] * 0.25)).all()
    assert len(task.concept_names) == 14 and task.concept_names[:3] == ["constant", "negative constant", "ramp up"]
    assert task.concept_names[-1] == "random direction 2"
    torch.testing.assert_close(task.concept_vectors.norm(dim=-1), torch.ones(14))


def test_pairs_are_time_mirrors_with_equal_values():
    s = torch.linspace(0, 1, 23).double().numpy()
    pairs = [("ascending", "descending"), ("early peak", "late peak"), ("sine wave", "reversed sine wave")]
    for first, second in pairs:
        assert PATTERNS[first](s) == pytest.approx(PATTERNS[second](s)[::-1])
        assert PATTERNS[first](s) != pytest.approx(PATTERNS[second](s))


def test_signal_lives_in_the_first_30_percent_of_dimensions():
    task = make_order_task("pairs", **{**SMALL, "num_videos": 12})
    ascending = task.features[task.labels.tolist().index(0)]
    signal, noise = ascending[:, :12], ascending[:, 12:]
    time = torch.arange(ascending.shape[0], dtype=torch.float32)
    assert torch.corrcoef(torch.stack([signal.mean(1), time]))[0, 1] > 0.95
    assert torch.corrcoef(torch.stack([noise.mean(1), time]))[0, 1].abs() < 0.8
    assert noise.abs().max() < 1.5


def test_standardisation_uses_training_windows_only():
    task = make_order_task("five", **SMALL)
    inputs, mean, std = task.standardised_activations()
    train = torch.cat([inputs[i] for i in task.indices("train")])
    torch.testing.assert_close(train.mean(0), torch.zeros(14), atol=1e-5, rtol=0)
    activations = task.activations()
    assert (activations[0] >= 0).all()
    torch.testing.assert_close(inputs[0], (activations[0] - mean) / std)
    subset = task.indices("train")[:10]
    _, subset_mean, _ = task.standardised_activations(subset)
    torch.testing.assert_close(subset_mean, torch.cat([activations[i] for i in subset]).mean(0))
    torch.testing.assert_close(concept_activations(task.features[0], task.concept_vectors), activations[0])


def test_bad_parameters_are_named():
    with pytest.raises(ValueError, match="variant"):
        make_order_task("seven", **SMALL)
    with pytest.raises(ValueError, match="min_windows"):
        make_order_task("five", **{**SMALL, "min_windows": 20})
    with pytest.raises(ValueError, match="num_videos"):
        make_order_task("pairs", **{**SMALL, "num_videos": 5})


def test_relative_order_task_orders_two_close_bursts_anywhere():
    """Class 0 has the burst of event A before the burst of B, class 1 the reverse; the bursts are
    close, sit anywhere, and show in the concept activations; one event's position is a weak cue."""
    task = make_order_task("relative", num_videos=300, feature_dim=128, num_concepts=8, min_windows=16,
                           max_windows=40, seed=1)
    assert task.class_names == ["A then B", "B then A"] and task.concept_names[:2] == ["event A", "event B"]
    starts = []
    for bursts, label, activations in zip(task.bursts, task.labels.tolist(), task.activations()):
        a, b = bursts["event A"], bursts["event B"]
        assert (a[0] < b[0]) == (label == 0)
        first, second = sorted([a, b])
        assert 0 <= second[0] - first[1] <= 2
        starts.append(first[0] / activations.shape[0])
        inside = activations[a[0]:a[1], 0].mean()
        assert inside > 3 * activations[:, 0].median()
    assert min(starts) < 0.1 and max(starts) > 0.6
    assert order_oracle_accuracy(task) == 1.0
    assert position_rule_accuracy(task, "event A") < 0.75
    again = make_order_task("relative", num_videos=300, feature_dim=128, num_concepts=8, min_windows=16,
                            max_windows=40, seed=1)
    assert all(torch.equal(x, y) for x, y in zip(task.features, again.features)) and again.bursts == task.bursts
    with pytest.raises(ValueError, match="relative"):
        make_order_task("relative", num_videos=20, num_concepts=3)
