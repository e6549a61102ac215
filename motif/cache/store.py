"""The embedding cache: one safetensors file per video under a directory named by a settings hash.

Layout of ``<root>/<key>/``:
  key.json                 every setting the embeddings depend on (the key is a hash of it)
  videos/<name>.safetensors  embeddings [T, D], spans [T, 2] and metadata of one video
  manifest.json            per-video T and status, skipped videos with reasons
  manifest.<writer>.json   a writer's (process's) part of the manifest until ``consolidate``

A video file appears only complete: it is written to a temporary file and renamed. A file on disk
is therefore the proof that a video is done; the manifest is an index that is rebuilt from the
files where it lags behind (e.g. after the process was killed). Every read is validated (the file
parses completely, holds the video and key it should, [T, D] embeddings of the storage dtype and
finite [T, 2] spans); a damaged file raises ``DamagedCacheFileError`` naming it, and
``move_aside`` puts it into ``damaged/`` so that the video is embedded again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from motif.errors import MotifError
from motif.files import atomic_write, atomic_write_text
from motif.video.settings import VideoWindowSettings

log = logging.getLogger(__name__)

# Bump when a code change alters the numbers written for the same settings.
CACHE_FORMAT_VERSION = 1
RUN_AGAIN = "Free space and run the same command again; the videos embedded before are kept."
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class CacheError(MotifError, RuntimeError):
    """The cache directory is inconsistent or an entry is missing; the message names the file."""


class DamagedCacheFileError(CacheError):
    """A cached video file cannot be used (truncated, unreadable, wrong shape or dtype, not finite)."""

    def __init__(self, path: Path, video_id: str, reason: str) -> None:
        self.path, self.video_id, self.reason = Path(path), video_id, reason
        super().__init__(f"cached embeddings of video '{video_id}' are damaged: {reason}", where=path)


class CacheWriteError(CacheError):
    """A cache file cannot be written (e.g. the disk is full)."""


class CacheMissError(CacheError, KeyError):
    """A video is not in the cache."""


def cache_key_fields(
    backbone_identity: dict[str, Any], settings: VideoWindowSettings, *, resize_at_decode: bool = True,
    dtype: str = "float32"
) -> dict[str, Any]:
    """Everything the cached embeddings depend on: backbone (weights hash, preprocessing, input
    size, precision), window plan and frame choice (``VideoWindowSettings.content_key``: the seed
    counts only for random frames; backend, threads and chunking do not change the frames),
    decoding resolution, storage dtype and the cache format version."""
    if dtype not in STORAGE_DTYPES:
        raise CacheError(f"cache dtype '{dtype}' is not one of {', '.join(STORAGE_DTYPES)}")
    return {
        "format_version": CACHE_FORMAT_VERSION,
        "backbone": backbone_identity,
        "windows": settings.content_key(),
        "decode": {"resize_at_decode": bool(resize_at_decode)},
        "dtype": dtype,
    }


def cache_key(fields: dict[str, Any]) -> str:
    """16 hex digits of the sha256 of the canonical JSON of ``fields``."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def _file_name(video_id: str) -> str:
    """A safe, unique file name for a video id (ids may contain '/' or other odd characters)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._")[:80] or "video"
    return f"{safe}-{hashlib.sha1(video_id.encode()).hexdigest()[:10]}.safetensors"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class EmbeddingCache:
    """Per-video window embeddings [T, D] and spans [T, 2] for one set of key fields.

    root: the cache root (``cache.dir``); key_fields: from ``cache_key_fields``; writer: a name
    unique among processes writing at the same time (e.g. ``rank3``), used for its manifest part
    and temporary files; embed_dim: the D every file must have (None: not checked). A different key
    (any changed setting) is a different directory: old embeddings are never reused for new settings.
    """

    def __init__(self, root: str | Path, key_fields: dict[str, Any], *, writer: str = "main",
                 embed_dim: int | None = None) -> None:
        self.root = Path(root)
        self.embed_dim = embed_dim
        self.key_fields = key_fields
        self.key = cache_key(key_fields)
        self.dir = self.root / self.key
        self.videos_dir = self.dir / "videos"
        self.writer = re.sub(r"[^A-Za-z0-9_-]+", "_", writer)
        self.dtype = STORAGE_DTYPES[key_fields.get("dtype", "float32")]
        self.videos_dir.mkdir(parents=True, exist_ok=True)
        self._check_key_file()
        self._remove_stale_temporaries()
        self._entries: dict[str, dict[str, Any]] = {}
        self._skipped: dict[str, dict[str, str]] = {}
        self._load_manifests()

    @classmethod
    def for_backbone(
        cls,
        root: str | Path,
        backbone: Any,
        settings: VideoWindowSettings,
        *,
        resize_at_decode: bool = True,
        dtype: str = "float32",
        writer: str = "main",
    ) -> "EmbeddingCache":
        """The cache of this backbone (its ``cache_identity``) and these video settings."""
        fields = cache_key_fields(backbone.cache_identity, settings, resize_at_decode=resize_at_decode, dtype=dtype)
        return cls(root, fields, writer=writer, embed_dim=int(backbone.embed_dim))

    # --- files -----------------------------------------------------------------------------------

    def _check_key_file(self) -> None:
        key_file = self.dir / "key.json"
        text = json.dumps(self.key_fields, sort_keys=True, indent=2, default=str)
        if not key_file.exists():
            self._write_index(key_file, text)
            return
        try:
            stored = json.loads(key_file.read_text())
        except json.JSONDecodeError as exc:
            raise CacheError(f"{key_file} is not valid JSON ({exc})", where=key_file,
                             hint=f"delete the folder {self.dir} to rebuild it") from exc
        if cache_key(stored) != self.key:
            raise CacheError(f"{key_file} does not match the folder's key {self.key}", where=key_file,
                             hint=f"delete {self.dir} to rebuild it")

    def _write_index(self, path: Path, text: str) -> None:
        """Write a key or manifest file atomically; a full or read-only disk is a CacheWriteError naming it."""
        try:
            atomic_write_text(path, text)
        except OSError as exc:
            raise CacheWriteError(f"{path} cannot be written ({exc.strerror or exc})", where=path,
                                  hint=RUN_AGAIN) from exc

    def _remove_stale_temporaries(self) -> None:
        """Remove temporary files this writer left behind when a run was killed."""
        own = [*self.videos_dir.glob(f".*.{self.writer}.*.tmp"), *self.dir.glob(f".manifest.{self.writer}.json.*.tmp")]
        for tmp in own:
            pid = tmp.name.rsplit(".", 2)[-2]
            if not pid.isdigit() or not _pid_alive(int(pid)) or int(pid) == os.getpid():
                tmp.unlink(missing_ok=True)

    def path_for(self, video_id: str) -> Path:
        return self.videos_dir / _file_name(video_id)

    def has(self, video_id: str) -> bool:
        """True when the video's file is complete on disk."""
        return self.path_for(video_id).is_file()

    def save(self, video_id: str, embeddings: Tensor, spans: Tensor, **meta: Any) -> None:
        """Store embeddings [T, D] and spans [T, 2] (seconds) atomically; meta: e.g. num_frames, fps, path."""
        if embeddings.ndim != 2 or spans.shape != (embeddings.shape[0], 2):
            raise CacheError(
                f"video '{video_id}': embeddings must be [T, D] and spans [T, 2], "
                f"got {list(embeddings.shape)} and {list(spans.shape)}"
            )
        final = self.path_for(video_id)
        metadata = {"video_id": video_id, "key": self.key, "num_windows": str(embeddings.shape[0]),
                    "embed_dim": str(embeddings.shape[1])}
        metadata.update({k: str(v) for k, v in meta.items()})
        tensors = {
            "embeddings": embeddings.detach().to("cpu", self.dtype).contiguous(),
            "spans": spans.detach().to("cpu", torch.float64).contiguous(),
        }
        try:
            with atomic_write(final, tag=self.writer) as temporary:
                save_file(tensors, str(temporary), metadata=metadata)
        except Exception as exc:  # noqa: BLE001 - safetensors reports a full disk as its own error type
            raise CacheWriteError(f"the embeddings of video '{video_id}' cannot be written ({exc})", where=final,
                                  hint=RUN_AGAIN) from exc
        self._entries[video_id] = {"file": f"videos/{final.name}", "num_windows": int(embeddings.shape[0]), **meta}
        self._skipped.pop(video_id, None)

    def load(self, video_id: str) -> dict[str, Tensor]:
        """{"embeddings": [T, D] float32, "spans": [T, 2] float64}, validated; raises CacheMissError,
        DamagedCacheFileError (the file is unusable) or CacheError (the file belongs to another video)."""
        path = self.path_for(video_id)
        if not path.is_file():
            raise CacheMissError(f"video '{video_id}' is not in the embedding cache {self.dir}", where=self.dir,
                                 hint="run tools/embed.py with the same settings")
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for bad files
            raise DamagedCacheFileError(path, video_id, f"the file cannot be read ({exc})") from exc
        if metadata.get("video_id") != video_id or metadata.get("key") != self.key:
            raise CacheError(f"{path} holds video '{metadata.get('video_id')}' of key {metadata.get('key')}, "
                             f"not '{video_id}'", where=path)
        self._check_tensors(path, video_id, tensors, metadata)
        # copies: the loaded tensors may share memory with the file, which must not change them later
        return {"embeddings": tensors["embeddings"].to(torch.float32, copy=True), "spans": tensors["spans"].clone()}

    def _check_tensors(self, path: Path, video_id: str, tensors: dict[str, Tensor], metadata: dict[str, str]) -> None:
        """Raise DamagedCacheFileError unless embeddings [T, D] (storage dtype, D = embed_dim) and spans [T, 2]
        (float64) are finite and T is the file's ``num_windows``."""
        def damaged(reason: str) -> DamagedCacheFileError:
            return DamagedCacheFileError(path, video_id, reason)

        if set(tensors) != {"embeddings", "spans"}:
            raise damaged(f"it holds the tensors {sorted(tensors)}, not embeddings and spans")
        embeddings, spans = tensors["embeddings"], tensors["spans"]
        expected_dim = self.embed_dim or int(metadata.get("embed_dim", embeddings.shape[-1]))
        num_windows = metadata.get("num_windows", "")
        if embeddings.ndim != 2 or embeddings.shape[1] != expected_dim or embeddings.shape[0] < 1:
            raise damaged(f"embeddings have shape {list(embeddings.shape)}, expected [T, {expected_dim}] with T >= 1")
        if not num_windows.isdigit() or embeddings.shape[0] != int(num_windows):
            raise damaged(f"{embeddings.shape[0]} windows of embeddings, the header says {num_windows!r}")
        if spans.shape != (embeddings.shape[0], 2):
            raise damaged(f"spans have shape {list(spans.shape)}, expected [{embeddings.shape[0]}, 2]")
        if embeddings.dtype != self.dtype or spans.dtype != torch.float64:
            raise damaged(f"dtypes {embeddings.dtype} / {spans.dtype}, expected {self.dtype} / torch.float64")
        for name, tensor in (("embeddings", embeddings), ("spans", spans)):
            bad = int((~torch.isfinite(tensor)).sum())
            if bad:
                raise damaged(f"{bad} non-finite value(s) (NaN or inf) in the {name}")

    def move_aside(self, video_id: str) -> Path:
        """Move a video's (damaged) file into ``damaged/`` so that the video counts as not embedded;
        returns where it went."""
        path = self.path_for(video_id)
        target_dir = self.dir / "damaged"
        target_dir.mkdir(exist_ok=True)
        target = target_dir / f"{path.name}.{time.strftime('%Y%m%d-%H%M%S')}.{os.getpid()}"
        os.replace(path, target)
        self._entries.pop(video_id, None)
        return target

    def metadata(self, video_id: str) -> dict[str, str]:
        """The metadata stored in a video's file header (cheap: the tensors are not read)."""
        with safe_open(str(self.path_for(video_id)), framework="pt") as handle:
            return dict(handle.metadata() or {})

    # --- text embeddings -------------------------------------------------------------------------

    def text_path(self, texts: list[str]) -> Path:
        digest = hashlib.sha256("\x1f".join(texts).encode()).hexdigest()[:16]
        return self.dir / "text" / f"{digest}.safetensors"

    def load_text(self, texts: list[str]) -> Tensor | None:
        """Text embeddings [M, D] of exactly these strings, or None when not cached."""
        path = self.text_path(texts)
        if not path.is_file():
            return None
        with safe_open(str(path), framework="pt") as handle:
            stored = json.loads((handle.metadata() or {}).get("texts", "[]"))
        return load_file(str(path))["embeddings"] if stored == list(texts) else None

    def save_text(self, texts: list[str], embeddings: Tensor) -> None:
        """Store text embeddings [M, D] of ``texts`` (e.g. concept phrases, zero-shot prompts)."""
        path = self.text_path(texts)
        path.parent.mkdir(exist_ok=True)
        with atomic_write(path, tag=self.writer) as temporary:
            save_file({"embeddings": embeddings.detach().float().cpu().contiguous()}, str(temporary),
                      metadata={"texts": json.dumps(list(texts))})

    def text_embeddings(self, texts: list[str], backbone: Any | None = None) -> Tensor:
        """Cached text embeddings [M, D]; computed with ``backbone.encode_text`` and stored when missing."""
        cached = self.load_text(texts)
        if cached is not None:
            return cached
        if backbone is None:
            raise CacheMissError(
                f"text embeddings of {len(texts)} strings are not in {self.dir / 'text'}; "
                "pass the backbone to compute them"
            )
        embeddings = backbone.encode_text(list(texts))
        self.save_text(texts, embeddings)
        return embeddings

    # --- manifest --------------------------------------------------------------------------------

    def _read_manifest(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            log.warning("Ignoring unreadable manifest %s (%s); it is rebuilt from the video files", path, exc)
            return
        self._entries.update(data.get("videos", {}))
        for video_id, info in data.get("skipped", {}).items():
            if video_id not in self._entries:
                self._skipped[video_id] = info

    def _load_manifests(self) -> None:
        main = self.dir / "manifest.json"
        if main.is_file():
            self._read_manifest(main)
        for part in sorted(self.dir.glob("manifest.*.json")):
            self._read_manifest(part)

    def record_skip(self, video_id: str, path: str, reason: str) -> None:
        """Note a video that could not be embedded (it is tried again on the next run)."""
        if video_id not in self._entries:
            self._skipped[video_id] = {"path": str(path), "reason": reason}

    def _payload(self) -> dict[str, Any]:
        return {"key": self.key, "key_fields": self.key_fields, "videos": self._entries, "skipped": self._skipped}

    def flush(self) -> None:
        """Write this writer's manifest part (atomically)."""
        self._write_index(self.dir / f"manifest.{self.writer}.json", json.dumps(self._payload(), indent=1, default=str))

    def consolidate(self) -> dict[str, Any]:
        """Merge all manifest parts and the video files on disk into manifest.json; call once all
        writers have finished (rank 0 after a barrier). Returns the manifest."""
        self._load_manifests()
        on_disk = {}
        for path in self.videos_dir.glob("*.safetensors"):
            on_disk[path.name] = path
        known = {Path(entry["file"]).name for entry in self._entries.values()}
        for name, path in on_disk.items():
            if name not in known:  # written, but the manifest was not updated before the process ended
                try:
                    with safe_open(str(path), framework="pt") as handle:
                        meta = dict(handle.metadata() or {})
                except Exception as exc:  # noqa: BLE001 - a damaged file is left out of the index
                    log.warning("Leaving the unreadable cache file %s out of the manifest (%s)", path, exc)
                    continue
                video_id = meta.pop("video_id", None)
                if video_id is None or meta.pop("key", None) != self.key:
                    continue
                entry: dict[str, Any] = {"file": f"videos/{name}", "num_windows": int(meta.pop("num_windows"))}
                entry.update(meta)
                self._entries[video_id] = entry
        self._entries = {vid: e for vid, e in self._entries.items() if Path(e["file"]).name in on_disk}
        self._skipped = {vid: s for vid, s in self._skipped.items() if vid not in self._entries}
        self._write_index(self.dir / "manifest.json", json.dumps(self._payload(), indent=1, default=str))
        for part in self.dir.glob("manifest.*.json"):
            part.unlink(missing_ok=True)
        return self._payload()

    @property
    def manifest(self) -> dict[str, Any]:
        return self._payload()

    def video_ids(self) -> list[str]:
        """Ids of the videos the manifest lists as done (call ``consolidate`` first after a crash)."""
        return [vid for vid in self._entries if self.has(vid)]

    def video_id_of_file(self, path: str | Path) -> str | None:
        """The id under which the video file ``path`` was embedded (the manifest records each video's
        path), or None. Ids of list datasets are relative paths, so a file name alone does not find them."""
        target = Path(path).resolve()
        for video_id, entry in self._entries.items():
            stored = entry.get("path")
            if stored and Path(stored).resolve() == target and self.has(video_id):
                return video_id
        return None

    def num_windows(self, video_id: str) -> int:
        """T of a cached video, from the manifest or else from the file header."""
        entry = self._entries.get(video_id)
        if entry is not None:
            return int(entry["num_windows"])
        if not self.has(video_id):
            raise CacheMissError(f"video '{video_id}' is not in the embedding cache {self.dir}")
        return int(self.metadata(video_id)["num_windows"])

    @property
    def skipped(self) -> dict[str, dict[str, str]]:
        return dict(self._skipped)
