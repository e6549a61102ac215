"""The frozen vision-language backbone: one loader over open_clip, batched frame and text encoders."""

from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import Tensor

from motif.backbone.errors import BackboneError
from motif.backbone.open_clip_models import import_open_clip
from motif.backbone.preprocess import FramePreprocessor
from motif.backbone.weights import LOCAL_WEIGHTS_HINT, ResolvedWeights, file_sha256, resolve_weights

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> the current CUDA device when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    return torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> bf16 autocast on CUDA (fp16 where bf16 is unsupported), fp32 on CPU."""
    if precision not in PRECISIONS:
        raise BackboneError(f"backbone.precision '{precision}' is not one of {', '.join(PRECISIONS)}",
                            where="backbone.precision")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "fp32"


class Backbone:
    """A frozen open_clip model in eval mode with batched frame and text encoders.

    Deliberately not an ``nn.Module``: a LightningModule holding it must not save, move or train
    its weights. Embeddings are returned as float32 and NOT L2-normalised.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        preprocessor: FramePreprocessor,
        identity: dict[str, Any],
        device: torch.device,
        precision: str,
        batch_size: int = 64,
        text_batch_size: int = 256,
    ) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.preprocessor = preprocessor
        self.identity = identity
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.text_batch_size = text_batch_size
        self.embed_dim = int(self.encode_text(["a"]).shape[1])

    @property
    def image_size(self) -> int:
        """Input side length (the height where the input is not square)."""
        return self.preprocessor.image_size[0]

    @property
    def cache_identity(self) -> dict[str, Any]:
        """The identity fields that determine the embeddings, without local paths.

        A weights file is identified by its sha256, so moving it does not invalidate a cache.
        """
        keep = ("model", "source", "weights_sha256", "quick_gelu", "image_size", "preprocess", "precision")
        fields = {k: self.identity[k] for k in keep}
        if self.identity["source"] == "tag":
            fields["pretrained"] = self.identity["pretrained"]
        return fields

    def to(self, device: str | torch.device) -> "Backbone":
        """Move the model to ``device`` (in place); returns self."""
        self.device = resolve_device(device)
        self.model.to(self.device)
        return self

    def _autocast(self) -> contextlib.AbstractContextManager:
        dtype = _AMP_DTYPES[self.precision]
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def _batches(self, n: int, size: int) -> Iterator[slice]:
        for start in range(0, n, size):
            yield slice(start, min(start + size, n))

    def prepare_frames(self, frames: Tensor) -> Tensor:
        """Resize and crop: uint8 [N, H, W, 3] -> uint8 [N, 3, S, S] (S = image size).

        Cheap when frames were decoded at ``decode_size`` already (then only the crop remains).
        """
        return self.preprocessor.resize_and_crop(frames)

    def decode_size(self, height: int, width: int) -> tuple[int, int]:
        """(height, width) to decode a video of this frame size at, so that resizing happens in
        the decoder and only the crop is left to ``prepare_frames``. Never upsamples."""
        target = self.preprocessor.resize_target(height, width)
        if target[0] >= height or target[1] >= width:
            return height, width
        return target

    @torch.inference_mode()
    def encode_prepared(self, pixels: Tensor) -> Tensor:
        """uint8 [N, 3, S, S] from ``prepare_frames`` -> float32 [N, D], in batches of ``batch_size``."""
        out = torch.empty(len(pixels), self.embed_dim, dtype=torch.float32)
        for part in self._batches(len(pixels), self.batch_size):
            x = pixels[part].to(self.device, non_blocking=True)
            x = self.preprocessor.normalize(x)
            with self._autocast():
                emb = self.model.encode_image(x)
            out[part] = emb.float().cpu()
        return out

    def encode_frames(self, frames: Tensor) -> Tensor:
        """uint8 [N, H, W, 3] RGB frames of any size -> float32 [N, D] image embeddings."""
        return self.encode_prepared(self.prepare_frames(frames))

    @torch.inference_mode()
    def encode_text(self, texts: list[str]) -> Tensor:
        """list of M strings -> float32 [M, D] text embeddings, in batches of ``text_batch_size``."""
        if isinstance(texts, str):
            raise TypeError("encode_text expects a list of strings, not one string")
        parts = []
        for part in self._batches(len(texts), self.text_batch_size):
            tokens = self.tokenizer(list(texts[part])).to(self.device)
            with self._autocast():
                parts.append(self.model.encode_text(tokens).float().cpu())
        return torch.cat(parts) if parts else torch.empty(0, self.embed_dim)


def _state_dict_sha256(model: torch.nn.Module) -> str:
    """sha256 over the parameter and buffer bytes (identifies randomly initialised weights)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _model_config(resolved: ResolvedWeights) -> dict[str, Any]:
    try:
        return import_open_clip().get_model_config(resolved.create_name) or {}
    except (OSError, ValueError):
        return {}


def _create(resolved: ResolvedWeights, quick_gelu: bool, cache_dir: str | None) -> torch.nn.Module:
    try:
        return import_open_clip().create_model(
            resolved.create_name,
            pretrained=resolved.create_pretrained,
            precision="fp32",
            device="cpu",
            cache_dir=cache_dir,
            force_preprocess_cfg=resolved.preprocess or None,
            quick_gelu=quick_gelu,
        )
    except RuntimeError as exc:
        if resolved.checkpoint_path is None:
            raise BackboneError(f"open_clip could not build '{resolved.model}' ({resolved.pretrained}): {exc}") from exc
        reason = str(exc).splitlines()[0][:500]
        raise BackboneError(
            f"The weights file {resolved.checkpoint_path} does not fit model '{resolved.model}': {reason}. Check that "
            "backbone.model names the architecture these weights were trained with.",
            where=resolved.checkpoint_path, hint=LOCAL_WEIGHTS_HINT) from exc


def load_backbone(
    model: str,
    pretrained: str | None,
    device: str | torch.device = "auto",
    precision: str = "auto",
    cache_dir: str | None = None,
    *,
    quick_gelu: bool | None = None,
    batch_size: int = 64,
) -> Backbone:
    """Build a frozen open_clip backbone.

    model: an open_clip model name (``ViT-B-32``, ``PE-Core-L-14-336``, a registered custom config),
      or ``hf-hub:org/repo`` / ``local-dir:/path``.
    pretrained: a pretrained tag (``openai``, ``meta``, ``laion2b_s34b_b79k``), a weights file,
      ``hf-hub:org/repo``, ``local-dir:/path``, or None for random weights.
    quick_gelu: None = as the weights require (OpenAI weights were trained with QuickGELU, and
      loading them into a GELU model silently degrades every embedding); True/False to force.
    Missing weights fail fast with WeightsUnavailableError when offline.
    """
    open_clip = import_open_clip()
    resolved = resolve_weights(model, pretrained, cache_dir)
    config_quick_gelu = bool(_model_config(resolved).get("quick_gelu", False))
    if quick_gelu is None:
        quick_gelu = config_quick_gelu or bool(resolved.quick_gelu)
        if resolved.quick_gelu and not config_quick_gelu:
            log.info("Using QuickGELU for '%s' with pretrained '%s' (the weights were trained with it)",
                     model, pretrained)
    if resolved.source == "file" and not quick_gelu and "openai" in Path(resolved.checkpoint_path or "").name.lower():
        log.warning(
            "Weights file %s looks like OpenAI weights, which need QuickGELU; use model '%s-quickgelu' "
            "or quick_gelu=True if so",
            resolved.checkpoint_path,
            resolved.model,
        )
    torch_device = resolve_device(device)
    resolved_precision = resolve_precision(precision, torch_device)
    clip_model = _create(resolved, quick_gelu, cache_dir)

    checkpoint = resolved.checkpoint_path
    if resolved.source in ("tag", "hf-hub") and checkpoint is None:
        resolved = resolve_weights(model, pretrained, cache_dir)  # downloaded now: find the local file
        checkpoint = resolved.checkpoint_path
    sha = file_sha256(checkpoint) if checkpoint else _state_dict_sha256(clip_model)

    cfg = open_clip.get_model_preprocess_cfg(clip_model)
    size = cfg.get("size", 224)
    image_size = (size, size) if isinstance(size, int) else tuple(size[-2:])
    preprocessor = FramePreprocessor(
        image_size=image_size,
        mean=tuple(float(v) for v in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(float(v) for v in cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        interpolation=cfg.get("interpolation", "bicubic"),
        resize_mode=cfg.get("resize_mode", "shortest"),
        fill_color=int(cfg.get("fill_color", 0)),
    )
    identity = {
        "model": model,
        "pretrained": pretrained,
        "source": resolved.source,
        "weights_sha256": sha,
        "quick_gelu": quick_gelu,
        "image_size": list(image_size),
        "preprocess": {
            "mean": list(preprocessor.mean),
            "std": list(preprocessor.std),
            "interpolation": preprocessor.interpolation,
            "resize_mode": preprocessor.resize_mode,
        },
        "precision": resolved_precision,
    }
    tokenizer = open_clip.get_tokenizer(resolved.create_name, cache_dir=cache_dir)
    clip_model.to(torch_device)
    log.info("Loaded backbone %s (%s, sha256 %s) on %s, %s", model, resolved.source, sha[:12], torch_device,
             resolved_precision)
    return Backbone(clip_model, tokenizer, preprocessor, identity, torch_device, resolved_precision, batch_size)


def load_backbone_from_identity(identity: dict[str, Any], device: str | torch.device = "auto") -> Backbone:
    """Rebuild the backbone an identity dict describes (e.g. from a checkpoint) and check that the
    weights are the same (sha256); raises BackboneError when they differ."""
    backbone = load_backbone(
        identity["model"],
        identity["pretrained"],
        device=device,
        precision=identity.get("precision", "auto"),
        quick_gelu=identity.get("quick_gelu"),
    )
    if backbone.identity["weights_sha256"] != identity["weights_sha256"]:
        raise BackboneError(
            f"The weights found for backbone '{identity['model']}' (pretrained={identity['pretrained']}) have sha256 "
            f"{backbone.identity['weights_sha256'][:16]}..., but the checkpoint was made with "
            f"{identity['weights_sha256'][:16]}...", where="backbone.pretrained",
            hint="Point backbone.pretrained at the original weights file.")
    return backbone
