"""Checkpoints: the window settings travel as their type, and checkpoints written before (a plain video
dict, the encoder's parameters on the bottleneck itself) still load and give the same outputs."""

from __future__ import annotations

import pytest
import torch

from motif.checkpoint import CHECKPOINT_FORMAT, load_motif_checkpoint, save_motif_checkpoint
from motif.concepts import ConceptStandardizer
from motif.model import TemporalConceptBottleneck
from motif.model.variants import MODEL_VARIANTS
from motif.video import VideoWindowSettings

C, K = 5, 3
SETTINGS = VideoWindowSettings(window_size=4, stride=2, frames_per_window=2, frame_sampling="uniform", min_frames=3)


def _save(path, model, kwargs, video):
    standardizer = ConceptStandardizer(C).fit([torch.rand(20, C, generator=torch.Generator().manual_seed(1))])
    return save_motif_checkpoint(path, model=model, model_kwargs=kwargs, class_names=list("abc"),
                                 concept_names=list("vwxyz"), text_embeddings=None, standardizer=standardizer,
                                 video=video, backbone={"model": "none"}, config={})


def _model(variant: str) -> tuple[TemporalConceptBottleneck, dict]:
    torch.manual_seed(0)
    kwargs = {"num_concepts": C, "num_classes": K, "variant": variant, "num_layers": 1}
    return TemporalConceptBottleneck(**kwargs).eval(), kwargs


def test_window_settings_are_read_back_as_their_type(tmp_path):
    model, kwargs = _model("motif")
    checkpoint = load_motif_checkpoint(_save(tmp_path / "a.ckpt", model, kwargs, SETTINGS))
    assert checkpoint.video == SETTINGS and isinstance(checkpoint.video, VideoWindowSettings)
    assert load_motif_checkpoint(_save(tmp_path / "b.ckpt", model, kwargs, None)).video is None


def _rewrite_as_before(path, video) -> None:
    """The payload as earlier versions wrote it: the video settings as a dict, the encoder's parameters
    on the bottleneck (layers.*, final_norm.*, concept_head.*, evidence.*)."""
    payload = torch.load(path, weights_only=True)
    old_names = {"encoder.layers.": "layers.", "encoder.final_norm.": "final_norm.",
                 "encoder.concept_head.": "concept_head."}
    state = {}
    for key, value in payload["state_dict"].items():
        prefix = next((p for p in old_names if key.startswith(p)), None)
        if prefix is not None:
            key = old_names[prefix] + key[len(prefix):]
        elif key.startswith("encoder."):
            key = "evidence." + key[len("encoder."):]
        state[key] = value
    payload.update(state_dict=state, video=video)
    assert payload["format"] == CHECKPOINT_FORMAT
    torch.save(payload, path)


@pytest.mark.parametrize("variant", MODEL_VARIANTS.names())
def test_checkpoints_written_before_still_load(variant, tmp_path):
    model, kwargs = _model(variant)
    path = _save(tmp_path / "old.ckpt", model, kwargs, SETTINGS)
    old_video = {**SETTINGS.as_dict(), "a_key_of_an_older_version": 1}
    _rewrite_as_before(path, old_video)
    assert not any(key.startswith("encoder.") for key in torch.load(path, weights_only=True)["state_dict"])
    checkpoint = load_motif_checkpoint(path)
    assert checkpoint.video == SETTINGS
    x = torch.randn(2, 7, C, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(checkpoint.model(x).logits, model(x).logits, rtol=0, atol=0)


def test_a_task_without_videos_written_before_has_no_window_settings(tmp_path):
    model, kwargs = _model("motif")
    path = _save(tmp_path / "old.ckpt", model, kwargs, None)
    _rewrite_as_before(path, {"unit": "window"})
    assert load_motif_checkpoint(path).video is None
