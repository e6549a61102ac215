"""Training the world backbone: a short run writes weights that open_clip loads strictly, and a report
whose scores are those of the written weights; fine-tuning records the weights it started from."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from motif.world.config import BackboneTrainingConfig
from motif.world.errors import WorldError
from motif.world.vocabulary import WORLD_CONCEPTS

open_clip = pytest.importorskip("open_clip")
from motif.world.backbone_training import (  # noqa: E402
    MODEL_NAME,
    concept_auc,
    pair_loss,
    sample_rows,
    small_only_pools,
    train_world_backbone,
    triangle_side_auc,
)
from motif.world.generate import render_labelled_frames  # noqa: E402

TINY = BackboneTrainingConfig(steps=3, batch_size=16, captions=4, warmup=1, train_videos=6, eval_videos=4,
                              eval_every=2, workers=1, side_oversample=0.5, side_captions=4, side_pair_weight=1.0,
                              size_oversample=0.25, size_pair_weight=1.0)


def test_short_run_writes_loadable_weights_and_their_report(tmp_path, single_thread):
    out = tmp_path / "base.safetensors"
    report = train_world_backbone(out, TINY)
    assert out.with_suffix(".json").read_text() == json.dumps(report, indent=2) + "\n"
    assert [entry["step"] for entry in report["history"]] == [2, 3]
    assert list(report["concept_auc"]) == list(WORLD_CONCEPTS) and report["init"] is None
    model, _, _ = open_clip.create_model_and_transforms(MODEL_NAME, pretrained=str(out))  # strict load
    frames, labels = render_labelled_frames(TINY.seed + 1, TINY.eval_videos, 0.0, frame_stride=TINY.frame_stride)
    assert len(frames) == report["eval_frames"]
    auc, scores = concept_auc(model, open_clip.get_tokenizer(MODEL_NAME), frames, labels)
    # the report scored the fp32 model, the file holds fp16 weights
    np.testing.assert_allclose(auc, [report["concept_auc"][c] for c in WORLD_CONCEPTS], atol=0.02)
    assert triangle_side_auc(scores, labels).keys() == {"on the left side", "on the right side"}

    tuned = train_world_backbone(tmp_path / "tuned.safetensors",
                                 BackboneTrainingConfig(**{**TINY.__dict__, "steps": 1, "init": str(out)}))
    assert tuned["init"] == "base.safetensors"
    assert tuned["init_sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert tuned["init_report"]["steps"] == 3
    assert json.dumps(tuned["init_report"]["concept_auc"]) == json.dumps(report["concept_auc"])  # NaN-safe


def test_side_auc_is_measured_on_triangle_frames_only():
    labels = np.zeros((6, len(WORLD_CONCEPTS)), dtype=bool)
    triangle, left, right = (WORLD_CONCEPTS.index(c) for c in ("green triangle", "on the left side",
                                                                "on the right side"))
    labels[:4, triangle] = True
    labels[[0, 1], left] = labels[[2, 3], right] = True
    labels[4, left] = labels[5, right] = True  # frames without the triangle: misleading scores below
    scores = np.zeros(labels.shape, dtype=np.float32)
    scores[[0, 1, 5], left] = 1.0
    scores[[2, 4], right] = 1.0
    # triangle frames: left perfect (1.0); right: positive 2 scored 1, positive 3 tied with the negatives
    assert triangle_side_auc(scores, labels) == {"on the left side": 1.0, "on the right side": 0.75}


def test_oversampled_rows_come_from_their_pools_in_the_asked_fractions():
    labels = np.zeros((40, len(WORLD_CONCEPTS)), dtype=bool)
    small, large, diamond = (WORLD_CONCEPTS.index(c) for c in ("small shape", "large shape", "purple diamond"))
    labels[:10, small] = True
    labels[5:10, diamond] = True
    labels[8:10, large] = True             # small and large together: not a small-only frame
    pools = small_only_pools(labels)
    assert [pool.tolist() for pool in pools] == [list(range(8)), [5, 6, 7]]
    side_pool = [np.array([30, 31])]
    rows = sample_rows(labels, np.random.default_rng(0), 20, [(0.25, side_pool), (0.5, pools)])
    assert len(rows) == 20
    assert set(rows[5:10].tolist()) <= {30, 31}                           # the side part: 5 rows
    assert set(rows[10:].tolist()) <= set(range(8))                       # the size part: 10 rows, ...
    assert set(rows[11:20:2].tolist()) <= {5, 6, 7}                       # ... every other from the diamond pool


def test_pair_loss_is_the_two_way_softmax_on_frames_with_exactly_one_phrase():
    import torch

    logits = torch.tensor([[2.0, 0.0, 5.0], [0.0, 1.0, 5.0], [3.0, 3.0, 5.0], [0.0, 0.0, 5.0]])
    labels = torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    expected = torch.nn.functional.cross_entropy(logits[:2, :2], torch.tensor([0, 1]))
    torch.testing.assert_close(pair_loss(logits, labels, 0, 1), expected)
    assert pair_loss(logits[2:], labels[2:], 0, 1).item() == 0.0           # both or neither: no frame counts


@pytest.mark.parametrize("field,value", [("steps", 0), ("warmup", 0), ("random_scene_fraction", 1.5),
                                         ("captions", -1), ("init", "missing.safetensors"),
                                         ("size_oversample", -0.1), ("size_pair_weight", -1.0)])
def test_bad_training_settings_name_the_setting(field, value):
    with pytest.raises(WorldError, match=f"{field}="):
        train_world_backbone("unused.safetensors", BackboneTrainingConfig(**{field: value}))
    with pytest.raises(WorldError, match="side_oversample \\+ size_oversample = 1.2"):
        BackboneTrainingConfig(side_oversample=0.6, size_oversample=0.6).validate()
