"""Backbone loading (all weight sources, offline failures, QuickGELU), fast preprocessing and encoding."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from PIL import Image

from helpers_backbone import make_local_dir, register_tiny_model, save_tiny_weights
from motif.backbone import (
    BackboneError,
    FramePreprocessor,
    UnknownModelError,
    WeightsUnavailableError,
    file_sha256,
    load_backbone,
    load_backbone_from_identity,
)
from motif.backbone import weights as weights_module


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(model name, weights file .pt, weights file .safetensors, weights of another seed)."""
    folder = tmp_path_factory.mktemp("tiny_backbone")
    name = register_tiny_model(folder / "configs")
    return {
        "name": name,
        "pt": save_tiny_weights(folder / "tiny.pt", name, seed=0),
        "st": save_tiny_weights(folder / "tiny.safetensors", name, seed=0),
        "other": save_tiny_weights(folder / "tiny_seed1.bin", name, seed=1),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def backbone(tiny):
    return load_backbone(tiny["name"], str(tiny["pt"]), device="cpu")


def _reference_model(name: str, weights, quick_gelu: bool = False) -> torch.nn.Module:
    model = open_clip.create_model(name, pretrained=None, quick_gelu=quick_gelu)
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model.eval()


def _frames(n: int = 5, height: int = 48, width: int = 64, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, height, width, 3), generator=g, dtype=torch.uint8)


# --- loading -------------------------------------------------------------------------------------


def test_file_weights_load_frozen_in_eval_with_file_identity(tiny, backbone):
    assert not backbone.model.training
    assert all(not p.requires_grad for p in backbone.model.parameters())
    assert backbone.identity["weights_sha256"] == file_sha256(tiny["pt"])
    assert backbone.identity["source"] == "file"
    assert backbone.identity["precision"] == "fp32"  # CPU default
    assert backbone.embed_dim == 16 and backbone.image_size == 32
    reference = _reference_model(tiny["name"], tiny["pt"])
    frames = _frames()
    pixels = backbone.preprocessor(frames)
    with torch.no_grad():
        expected = reference.encode_image(pixels)
    torch.testing.assert_close(backbone.encode_frames(frames), expected, rtol=1e-5, atol=1e-5)


def test_safetensors_weights_give_the_same_model(tiny, backbone):
    other = load_backbone(tiny["name"], str(tiny["st"]), device="cpu")
    frames = _frames()
    torch.testing.assert_close(other.encode_frames(frames), backbone.encode_frames(frames))
    assert other.cache_identity["weights_sha256"] != backbone.cache_identity["weights_sha256"]  # other file bytes


def test_different_weights_change_identity_and_embeddings(tiny, backbone):
    other = load_backbone(tiny["name"], str(tiny["other"]), device="cpu")
    assert other.identity["weights_sha256"] != backbone.identity["weights_sha256"]
    assert not torch.allclose(other.encode_frames(_frames()), backbone.encode_frames(_frames()))


def test_cache_identity_holds_no_local_path(tiny, backbone):
    text = repr(backbone.cache_identity)
    assert str(tiny["folder"]) not in text and "tiny.pt" not in text
    assert backbone.cache_identity["weights_sha256"] == backbone.identity["weights_sha256"]


def test_local_dir_uses_folder_config_and_preprocessing(tiny, tmp_path, backbone):
    folder = make_local_dir(tmp_path / "local", tiny["name"], seed=0)
    local = load_backbone("ignored-name", f"local-dir:{folder}", device="cpu")
    assert local.identity["source"] == "local-dir"
    assert local.preprocessor.mean == (0.5, 0.5, 0.5) and local.preprocessor.std == (0.5, 0.5, 0.5)
    # same weights as the seed-0 file: text embeddings do not depend on image preprocessing
    torch.testing.assert_close(local.encode_text(["a red ball"]), backbone.encode_text(["a red ball"]))


def test_hf_hub_weights_from_the_local_hub_cache(tiny, tmp_path, backbone):
    snapshot = tmp_path / "hub" / "models--motif--tiny" / "snapshots" / "0123abcd"
    make_local_dir(snapshot, tiny["name"], seed=0)
    (tmp_path / "hub" / "models--motif--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--motif--tiny" / "refs" / "main").write_text("0123abcd")
    hub = load_backbone(tiny["name"], "hf-hub:motif/tiny", device="cpu", cache_dir=str(tmp_path / "hub"))
    assert hub.identity["source"] == "hf-hub"
    torch.testing.assert_close(hub.encode_text(["kayak"]), backbone.encode_text(["kayak"]))


def test_pretrained_tag_found_in_the_local_hub_cache(tiny, tmp_path, monkeypatch, backbone):
    """A registry tag (here a fake one) whose weights were downloaded before loads offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    repo = tmp_path / "hub" / "models--motif--tiny-tag"
    save_tiny_weights(repo / "snapshots" / "abc" / "open_clip_pytorch_model.bin", tiny["name"], seed=0)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    tag = {"hf_hub": "motif/tiny-tag/", "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5),
           "interpolation": "bilinear", "resize_mode": "squash"}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny["name"], {"laion_test": tag})
    tagged = load_backbone(tiny["name"], "laion_test", device="cpu", cache_dir=str(tmp_path / "hub"))
    assert tagged.identity["source"] == "tag" and tagged.identity["pretrained"] == "laion_test"
    assert tagged.cache_identity["pretrained"] == "laion_test"
    assert (tagged.preprocessor.resize_mode, tagged.preprocessor.interpolation) == ("squash", "bilinear")
    assert tagged.preprocessor.mean == (0.5, 0.5, 0.5)
    torch.testing.assert_close(tagged.encode_text(["a dog"]), backbone.encode_text(["a dog"]))


def test_random_weights_are_identified_by_their_values(tiny):
    torch.manual_seed(0)
    first = load_backbone(tiny["name"], None, device="cpu")
    torch.manual_seed(0)
    same = load_backbone(tiny["name"], "none", device="cpu")
    torch.manual_seed(1)
    different = load_backbone(tiny["name"], None, device="cpu")
    assert first.identity["source"] == "random"
    assert first.identity["weights_sha256"] == same.identity["weights_sha256"]
    assert first.identity["weights_sha256"] != different.identity["weights_sha256"]


def test_identity_round_trip_checks_the_weights(tiny, backbone, tmp_path):
    again = load_backbone_from_identity(backbone.identity, device="cpu")
    assert again.identity == backbone.identity
    forged = dict(backbone.identity, weights_sha256="0" * 64)
    with pytest.raises(BackboneError, match="sha256"):
        load_backbone_from_identity(forged, device="cpu")


def test_quick_gelu_follows_the_pretrained_tag(tiny, tmp_path, monkeypatch):
    """OpenAI-style weights trained with QuickGELU must be run with QuickGELU, not GELU."""
    weights = save_tiny_weights(tmp_path / "openai_style.bin", tiny["name"], seed=3, quick_gelu=True)
    tag = {"file": str(weights), "quick_gelu": True, "mean": open_clip.OPENAI_DATASET_MEAN,
           "std": open_clip.OPENAI_DATASET_STD, "interpolation": "bicubic", "resize_mode": "shortest"}
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny["name"], {"openai": tag})
    tagged = load_backbone(tiny["name"], "openai", device="cpu")
    assert tagged.identity["quick_gelu"] is True and tagged.identity["source"] == "tag"
    assert any(isinstance(m, QuickGELU) for m in tagged.model.modules())
    reference = _reference_model(tiny["name"], weights, quick_gelu=True)
    frames = _frames()
    with torch.no_grad():
        expected = reference.encode_image(tagged.preprocessor(frames))
    torch.testing.assert_close(tagged.encode_frames(frames), expected, rtol=1e-5, atol=1e-5)
    # the same file loaded as a plain file into a GELU model gives different (wrong) embeddings
    plain = load_backbone(tiny["name"], str(weights), device="cpu")
    assert plain.identity["quick_gelu"] is False
    assert not torch.allclose(plain.encode_frames(frames), expected, atol=1e-3)
    forced = load_backbone(tiny["name"], str(weights), device="cpu", quick_gelu=True)
    torch.testing.assert_close(forced.encode_frames(frames), expected, rtol=1e-5, atol=1e-5)


# --- failures ------------------------------------------------------------------------------------


def test_uncached_pretrained_tag_fails_fast_offline(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setitem(open_clip.pretrained._PRETRAINED, tiny["name"], {"webli": {"hf_hub": "motif-test/not-there/"}})
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError) as err:
        load_backbone(tiny["name"], "webli", device="cpu", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 5.0
    message = str(err.value)
    assert "'webli'" in message and "motif-test/not-there" in message and "HF_HUB_OFFLINE" in message
    assert "backbone.pretrained=/path/to/weights.bin" in message and "local-dir:" in message


def test_unreachable_hub_fails_fast_without_offline_flag(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(weights_module, "hub_offline", lambda: False)
    monkeypatch.setattr(weights_module, "host_reachable", lambda url, timeout=2.0: False)
    start = time.perf_counter()
    with pytest.raises(WeightsUnavailableError, match="cannot be reached"):
        load_backbone(tiny["name"], "hf-hub:motif-test/not-there", device="cpu", cache_dir=str(tmp_path))
    assert time.perf_counter() - start < 5.0


@pytest.mark.parametrize(
    "pretrained, pattern",
    [
        ("/no/such/weights.bin", r"/no/such/weights\.bin does not exist"),
        ("not-a-tag", r"neither a file nor a known pretrained tag"),
        ("local-dir:/no/such/folder", r"/no/such/folder does not exist"),
    ],
)
def test_missing_weights_name_what_is_missing(tiny, pretrained, pattern):
    with pytest.raises(WeightsUnavailableError, match=pattern) as err:
        load_backbone(tiny["name"], pretrained, device="cpu")
    assert "backbone.pretrained=" in str(err.value)


def test_local_dir_without_weights(tmp_path, tiny):
    folder = make_local_dir(tmp_path / "nowts", tiny["name"])
    (folder / "open_clip_pytorch_model.bin").unlink()
    with pytest.raises(WeightsUnavailableError, match="holds no weights file"):
        load_backbone(tiny["name"], f"local-dir:{folder}", device="cpu")


def test_weights_of_another_architecture_are_rejected(tiny, tmp_path):
    name = register_tiny_model(tmp_path / "wide", name="motif-test-wide", embed_dim=24)
    with pytest.raises(BackboneError, match=r"does not fit model 'motif-test-wide'"):
        load_backbone(name, str(tiny["pt"]), device="cpu")


def test_hub_file_names_are_open_clips():
    from open_clip import constants

    assert (weights_module.HF_CONFIG_NAME, weights_module.HF_WEIGHTS_NAME, weights_module.HF_SAFE_WEIGHTS_NAME) == (
        constants.HF_CONFIG_NAME, constants.HF_WEIGHTS_NAME, constants.HF_SAFE_WEIGHTS_NAME)


def test_shipped_model_configs_are_registered_when_open_clip_is_first_used():
    """Importing motif.backbone leaves open_clip unloaded; the first resolution imports it with the
    configs of motif/backbone/model_configs registered, so they load by name."""
    code = ("import sys; from motif.backbone import resolve_weights; assert 'open_clip' not in sys.modules; "
            "print(resolve_weights('motif-world-vit', None).source, 'open_clip' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["random", "True"]


def test_unknown_model_suggests_close_names():
    with pytest.raises(UnknownModelError, match="Did you mean 'ViT-B-32'"):
        load_backbone("ViT-B-23", None, device="cpu")


def test_bad_precision_is_rejected(tiny):
    with pytest.raises(BackboneError, match="precision"):
        load_backbone(tiny["name"], str(tiny["pt"]), device="cpu", precision="int4")


# --- encoding ------------------------------------------------------------------------------------


def test_batching_does_not_change_embeddings(backbone):
    frames = _frames(n=11)
    full = backbone.encode_frames(frames)
    backbone.batch_size, saved = 4, backbone.batch_size
    try:
        torch.testing.assert_close(backbone.encode_frames(frames), full, rtol=1e-5, atol=1e-5)
    finally:
        backbone.batch_size = saved
    texts = [f"concept number {i}" for i in range(7)]
    all_text = backbone.encode_text(texts)
    backbone.text_batch_size = 3
    torch.testing.assert_close(backbone.encode_text(texts), all_text, rtol=1e-5, atol=1e-5)
    assert backbone.encode_text([]).shape == (0, backbone.embed_dim)
    with pytest.raises(TypeError):
        backbone.encode_text("one string")


def test_bf16_autocast_stays_close_to_fp32(tiny, backbone):
    bf16 = load_backbone(tiny["name"], str(tiny["pt"]), device="cpu", precision="bf16")
    frames = _frames()
    a, b = bf16.encode_frames(frames), backbone.encode_frames(frames)
    assert a.dtype == torch.float32 and bf16.identity["precision"] == "bf16"
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.98


# --- preprocessing -------------------------------------------------------------------------------

# Two uint8 levels at the smallest std: the fast path rounds like PIL up to interpolation details.
_LEVEL = 1.0 / 255.0 / min(open_clip.OPENAI_DATASET_STD)


@pytest.mark.parametrize("size", [(224, 224), (32, 32), (40, 56)])
@pytest.mark.parametrize("resize_mode", ["shortest", "squash", "longest"])
@pytest.mark.parametrize("interpolation", ["bicubic", "bilinear"])
def test_fast_preprocessing_matches_open_clip_pil_transform(size, resize_mode, interpolation):
    mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    fast = FramePreprocessor(size, mean, std, interpolation, resize_mode)
    reference = open_clip.image_transform(
        size[0] if size[0] == size[1] else size, is_train=False, resize_mode=resize_mode, interpolation=interpolation
    )
    g = torch.Generator().manual_seed(1)
    noise = torch.randint(0, 256, (2, 97, 131, 3), generator=g, dtype=torch.uint8)
    ramp = torch.linspace(0, 255, 300).round().to(torch.uint8)
    smooth = torch.stack([ramp[None, :200].expand(150, 200), ramp[:150, None].expand(150, 200),
                          ramp[None, 50:250].expand(150, 200)], -1)[None]
    for frames in (noise, smooth):
        out = fast(frames)
        expected = torch.stack([reference(Image.fromarray(f.numpy())) for f in frames])
        assert out.shape == expected.shape
        diff = (out - expected).abs()
        assert diff.max() <= 2 * _LEVEL + 1e-6
        assert diff.mean() < 1e-3


def test_fast_preprocessing_matches_pil_on_real_frames(sample_videos):
    av = pytest.importorskip("av")
    with av.open(str(sample_videos / "hmdb51_eat.mp4")) as container:
        decoded = [f.to_ndarray(format="rgb24") for _, f in zip(range(3), container.decode(video=0))]
    frames = torch.from_numpy(np.stack(decoded))
    fast = FramePreprocessor((224, 224), open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
    reference = open_clip.image_transform(224, is_train=False)
    expected = torch.stack([reference(Image.fromarray(f.numpy())) for f in frames])
    diff = (fast(frames) - expected).abs()
    assert diff.max() <= 2 * _LEVEL + 1e-6 and diff.mean() < 1e-3


def test_decode_size_then_crop_equals_full_preprocessing(backbone):
    height, width = 96, 128
    assert backbone.decode_size(height, width) == (32, 42)
    assert backbone.decode_size(20, 30) == (20, 30)  # never upsampled in the decoder
    frames = _frames(n=2, height=32, width=42)
    assert backbone.prepare_frames(frames).shape == (2, 3, 32, 32)


def test_preprocessing_rejects_non_uint8_frames(backbone):
    with pytest.raises(ValueError, match=r"uint8 \[N, H, W, 3\]"):
        backbone.encode_frames(torch.rand(2, 32, 32, 3))
