"""Resolve where a backbone's weights come from, before open_clip is asked to build anything.

open_clip downloads missing weights on its own, and without a network that ends in long retry
loops. Resolving the source here first lets a missing file or tag fail at once, with a message
that says what was missing and how to provide it locally.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from motif.backbone.errors import UnknownModelError, WeightsUnavailableError
from motif.backbone.open_clip_models import import_open_clip

log = logging.getLogger(__name__)

HF_HUB_PREFIX = "hf-hub:"
LOCAL_DIR_PREFIX = "local-dir:"
RANDOM_INIT = ("", "none", "random")

# The file names of an open_clip model on the Hugging Face hub, as in open_clip.constants (repeated here
# so that resolving a local folder or a hub entry does not import open_clip; a test keeps them equal).
HF_CONFIG_NAME = "open_clip_config.json"
HF_WEIGHTS_NAME = "open_clip_pytorch_model.bin"
HF_SAFE_WEIGHTS_NAME = "open_clip_model.safetensors"

# Weights file names looked for in a local folder, most preferred first (open_clip's own order).
_FOLDER_WEIGHTS = (
    "open_clip_model.safetensors",
    "open_clip_pytorch_model.safetensors",
    "open_clip_pytorch_model.bin",
    "open_clip_pytorch_model.pth",
    "model.safetensors",
    "pytorch_model.bin",
    "pytorch_model.pth",
    "model.pth",
)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".npz")

LOCAL_WEIGHTS_HINT = (
    "To use weights stored on this machine, set backbone.pretrained=/path/to/weights.bin "
    "(an open_clip state dict, .pt/.bin/.pth or .safetensors, for this model) or "
    "backbone.pretrained=local-dir:/path/to/folder (a folder holding open_clip_config.json and the "
    "weights file). To download them instead, run once with network access and HF_HUB_OFFLINE unset."
)


@dataclass(frozen=True)
class ResolvedWeights:
    """Where the weights of one backbone come from.

    ``create_name`` / ``create_pretrained`` are what open_clip.create_model receives;
    ``checkpoint_path`` is the local weights file (None for random weights, or before an online
    download); ``preprocess`` holds the image preprocessing a pretrained tag prescribes.
    """

    source: str  # "tag" | "file" | "hf-hub" | "local-dir" | "random"
    model: str
    pretrained: str | None
    create_name: str
    create_pretrained: str | None
    checkpoint_path: str | None
    quick_gelu: bool | None = None
    preprocess: dict[str, Any] = field(default_factory=dict)


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted (HF_HUB_OFFLINE)."""
    value = os.environ.get("HF_HUB_OFFLINE", "")
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except ImportError:
        return False


def host_reachable(url_or_host: str, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to the host (port 443) opens within ``timeout`` seconds.

    Runs in a daemon thread, so a hanging DNS look-up cannot block longer than the timeout.
    """
    host = urlparse(url_or_host).hostname or url_or_host
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, 443), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _hub_endpoint() -> str:
    try:
        from huggingface_hub import constants

        return constants.ENDPOINT
    except ImportError:
        return "https://huggingface.co"


def _hub_cache(cache_dir: str | None) -> str:
    if cache_dir:
        return cache_dir
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except ImportError:
        return "the Hugging Face cache"


def _cached_hub_file(repo_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> str | None:
    """First of ``filenames`` present in the local Hugging Face cache of ``repo_id``."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in filenames:
        found = try_to_load_from_cache(repo_id, name, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def _hub_weight_names(filename: str) -> tuple[str, ...]:
    """The weights file of a hub entry and its safetensors twin (preferred, as open_clip does)."""
    if filename == HF_WEIGHTS_NAME:
        return (HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME)
    if filename.endswith((".bin", ".pth")):
        return (filename[:-4] + ".safetensors", filename)
    return (filename,)


def find_weights_in_folder(folder: Path) -> Path | None:
    """The weights file open_clip would pick in a local folder (preferred names first)."""
    for name in _FOLDER_WEIGHTS:
        if (folder / name).is_file():
            return folder / name
    candidates = sorted(p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin", ".pth"))
    candidates.sort(key=lambda p: p.suffix != ".safetensors")
    return candidates[0] if candidates else None


def _unavailable(what: str, looked: str, reason: str) -> WeightsUnavailableError:
    return WeightsUnavailableError(f"Backbone weights {what} are not available: {looked}; {reason}.",
                                   where="backbone.pretrained", hint=LOCAL_WEIGHTS_HINT)


def _check_download_possible(what: str, looked: str, url: str) -> None:
    """Raise at once when a download cannot succeed (offline flag set or host unreachable)."""
    if hub_offline():
        raise _unavailable(what, looked, "downloads are disabled (HF_HUB_OFFLINE=1)")
    if not host_reachable(url):
        raise _unavailable(what, looked, f"{urlparse(url).hostname or url} cannot be reached from this machine")


def _resolve_local_dir(model: str, pretrained: str | None, folder: str) -> ResolvedWeights:
    path = Path(folder).expanduser().resolve()
    if not path.is_dir():
        raise _unavailable(f"'{LOCAL_DIR_PREFIX}{folder}'", f"the folder {path} does not exist", "check the path")
    if not (path / HF_CONFIG_NAME).is_file():
        raise _unavailable(
            f"'{LOCAL_DIR_PREFIX}{folder}'", f"{path} has no {HF_CONFIG_NAME}", "the folder needs the model config"
        )
    weights = find_weights_in_folder(path)
    if weights is None:
        raise _unavailable(
            f"'{LOCAL_DIR_PREFIX}{folder}'",
            f"{path} holds no weights file (looked for {', '.join(_FOLDER_WEIGHTS[:3])}, *.safetensors, *.bin)",
            "put the weights next to the config",
        )
    return ResolvedWeights("local-dir", model, pretrained, f"{LOCAL_DIR_PREFIX}{path}", None, str(weights))


def _resolve_hf_hub(model: str, pretrained: str | None, repo_id: str, cache_dir: str | None) -> ResolvedWeights:
    config = _cached_hub_file(repo_id, (HF_CONFIG_NAME,), cache_dir)
    weights = _cached_hub_file(repo_id, _hub_weight_names(HF_WEIGHTS_NAME), cache_dir)
    if config is not None and weights is not None:
        return ResolvedWeights(
            "hf-hub", model, pretrained, f"{LOCAL_DIR_PREFIX}{Path(config).parent}", None, weights
        )
    looked = (
        f"'{HF_CONFIG_NAME}' and '{HF_SAFE_WEIGHTS_NAME}' or '{HF_WEIGHTS_NAME}' of {repo_id} are not in "
        f"the local hub cache {_hub_cache(cache_dir)}"
    )
    _check_download_possible(f"'{HF_HUB_PREFIX}{repo_id}'", looked, _hub_endpoint())
    return ResolvedWeights("hf-hub", model, pretrained, f"{HF_HUB_PREFIX}{repo_id}", None, None)


def _resolve_tag(model: str, tag: str, tag_cfg: dict, cache_dir: str | None) -> ResolvedWeights:
    preprocess = {k: tag_cfg[k] for k in ("mean", "std", "interpolation", "resize_mode") if k in tag_cfg}
    quick_gelu = bool(tag_cfg.get("quick_gelu", False))
    looked_at: list[str] = []
    if tag_cfg.get("file"):
        local = tag_cfg["file"]
        looked_at.append(local)
        if os.path.isfile(local):
            return ResolvedWeights("tag", model, tag, model, local, local, quick_gelu, preprocess)
    hub = tag_cfg.get("hf_hub", "")
    if hub:
        # 'org/repo/' means the default weights file; 'org/repo/file.bin' names the file
        repo_id, filename = (hub[:-1], HF_WEIGHTS_NAME) if hub.endswith("/") else os.path.split(hub)
        found = _cached_hub_file(repo_id, _hub_weight_names(filename), cache_dir)
        if found:
            return ResolvedWeights("tag", model, tag, model, found, found, quick_gelu, preprocess)
        looked_at.append(f"{' or '.join(_hub_weight_names(filename))} of hub repo {repo_id} in {_hub_cache(cache_dir)}")
    url = tag_cfg.get("url", "")
    if url:
        local = os.path.join(cache_dir or os.path.expanduser("~/.cache/clip"), os.path.basename(url))
        if os.path.isfile(local):
            return ResolvedWeights("tag", model, tag, model, local, local, quick_gelu, preprocess)
        looked_at.append(local)
    looked = f"not in the local caches (looked for {'; '.join(looked_at)})"
    what = f"for model '{model}' with pretrained tag '{tag}'"
    _check_download_possible(what, looked, _hub_endpoint() if hub else url)
    return ResolvedWeights("tag", model, tag, model, tag, None, quick_gelu, preprocess)


def resolve_weights(model: str, pretrained: str | None, cache_dir: str | None = None) -> ResolvedWeights:
    """Find the weights for ``model`` / ``pretrained`` on this machine, or fail fast.

    ``pretrained`` is a tag of open_clip's registry (``openai``, ``meta``, ``laion2b_s34b_b79k``),
    a local weights file, ``hf-hub:org/repo``, ``local-dir:/path`` or None (random weights).
    ``model`` may itself carry an ``hf-hub:`` / ``local-dir:`` prefix, as in open_clip.
    Raises WeightsUnavailableError (offline, not cached) or UnknownModelError.
    """
    if pretrained is not None and pretrained.startswith(LOCAL_DIR_PREFIX):
        return _resolve_local_dir(model, pretrained, pretrained[len(LOCAL_DIR_PREFIX):])
    if pretrained is not None and pretrained.startswith(HF_HUB_PREFIX):
        return _resolve_hf_hub(model, pretrained, pretrained[len(HF_HUB_PREFIX):], cache_dir)
    if model.startswith((LOCAL_DIR_PREFIX, HF_HUB_PREFIX)):
        if pretrained and pretrained.lower() not in RANDOM_INIT:
            log.warning("pretrained=%r is ignored: the model name %r names its own weights", pretrained, model)
        if model.startswith(LOCAL_DIR_PREFIX):
            return _resolve_local_dir(model, None, model[len(LOCAL_DIR_PREFIX):])
        return _resolve_hf_hub(model, None, model[len(HF_HUB_PREFIX):], cache_dir)

    open_clip = import_open_clip()
    name = model.replace("/", "-")
    if open_clip.get_model_config(name) is None:
        import difflib

        close = difflib.get_close_matches(name, open_clip.list_models(), n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise UnknownModelError(
            f"Backbone model '{model}' is not an open_clip model config.{hint}", where="backbone.model",
            hint="See open_clip.list_models(), or register a custom JSON config with open_clip.add_model_config.")
    if pretrained is None or pretrained.strip().lower() in RANDOM_INIT:
        return ResolvedWeights("random", name, None, name, None, None)
    tag_cfg = open_clip.get_pretrained_cfg(name, pretrained)
    if tag_cfg:
        return _resolve_tag(name, pretrained, tag_cfg, cache_dir)
    path = Path(pretrained).expanduser()
    if path.is_file():
        return ResolvedWeights("file", name, pretrained, name, str(path.resolve()), str(path.resolve()))
    if path.is_dir():
        raise _unavailable(
            f"'{pretrained}'", f"{path} is a folder, not a weights file", f"use pretrained={LOCAL_DIR_PREFIX}{path}"
        )
    if os.sep in pretrained or path.suffix in _WEIGHT_SUFFIXES:
        raise _unavailable(f"file '{pretrained}'", f"{path.resolve()} does not exist", "check the path")
    tags = open_clip.list_pretrained_tags_by_model(name)
    raise _unavailable(
        f"'{pretrained}' for model '{name}'",
        f"it is neither a file nor a known pretrained tag (known tags: {', '.join(tags) or 'none'})",
        "fix the tag or the path",
    )


@functools.lru_cache(maxsize=32)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 22), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file, memoised on (path, size, mtime) within the process."""
    stat = os.stat(path)
    return _file_sha256(os.path.realpath(path), stat.st_size, stat.st_mtime_ns)
