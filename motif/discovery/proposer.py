"""Concept proposals from a vision-language model over the OpenAI-compatible chat-completions API.

The API is the one vLLM, SGLang, llama.cpp's server, Ollama, LM Studio and hosted services expose;
requests go through the official ``openai`` client (``discovery.endpoint``, ``discovery.model``, the
key from the environment variable ``discovery.api_key_env``). One request per sampled training
video: its representative frames (motif.discovery.frames) as base64 JPEG data URLs and the class
name; with ``discovery.input=text`` one request per class with the class name only, for language
models without vision.

Answers are JSON ``{"concepts": [...]}``: requested with a JSON schema
(``discovery.structured_output=json_schema``), as a JSON object (``json_object``), or only by the
prompt (``none``), and always parsed tolerantly (code fences, text around the JSON, a bare list,
objects with a "name"). Rate limits (429), server errors (5xx), timeouts and unusable answers
(malformed, truncated, not JSON) are retried ``discovery.retries`` times with exponential backoff
(or the server's Retry-After); a request that still fails is reported and skipped. An endpoint that
cannot be reached, rejects the key or does not serve the model stops the run at once.

Every answer is written to the response cache (``discovery.cache_dir``) as its own file, atomically,
as soon as it arrives, keyed by the model, the prompt version, the class, the number of concepts
asked for and the sha256 of the frames sent. A rerun sends only the requests without an answer on
disk: a finished run costs nothing again and a killed run resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import re
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import openai
from omegaconf import DictConfig

from motif.data import VideoRecord
from motif.discovery.errors import DiscoveryError
from motif.discovery.frames import VideoFrames, representative_frames
from motif.files import atomic_write_text
from motif.video import VideoError

log = logging.getLogger(__name__)

PROMPT_VERSION = 1
BACKOFF_SECONDS = 0.5
MAX_BACKOFF_SECONDS = 30.0
PREFLIGHT_TIMEOUT = 5.0
IMAGE_TOKEN_PIXELS = 28  # one image token per 28 x 28 pixels (Qwen2-VL style), for the cost estimate

SYSTEM_PROMPT = ("You annotate videos with visual concepts: short phrases naming objects, body parts, scene "
                 "elements and actions that can be seen.")


def concept_schema(count: int) -> dict:
    """The JSON schema of an answer: {"concepts": [up to ``count`` strings]}."""
    return {"type": "object", "additionalProperties": False, "required": ["concepts"],
            "properties": {"concepts": {"type": "array", "items": {"type": "string"}, "maxItems": count}}}


def prompt_text(class_name: str, count: int, num_images: int) -> str:
    """The user prompt; ``num_images`` = 0 for the text-only mode."""
    ask = (f"List up to {count} short phrases (one to four words each) for visual concepts that help to "
           f'recognise "{class_name}": objects, body parts, scene elements, and actions or motions. '
           'No class names, no sentences. Answer with JSON only: {"concepts": ["phrase", ...]}.')
    if num_images == 0:
        return f'Think of videos of the class "{class_name}". ' + ask
    return (f'The {num_images} images are frames, in temporal order, of a video of the class "{class_name}". '
            "Name what is visible in them. " + ask)


def build_messages(class_name: str, count: int, image_urls: Sequence[str] = ()) -> list[dict]:
    """Chat messages of one request: the prompt, then the images as data URLs."""
    content: list[dict] = [{"type": "text", "text": prompt_text(class_name, count, len(image_urls))}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in image_urls]
    return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]


def response_format(mode: str, count: int) -> dict | None:
    """The ``response_format`` of ``discovery.structured_output``."""
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": "concepts", "strict": True, "schema": concept_schema(count)}}
    if mode == "json_object":
        return {"type": "json_object"}
    return None


class AnswerError(ValueError):
    """An answer holds no usable concept list (it is retried)."""


def _phrases(value: Any) -> list[str] | None:
    if isinstance(value, dict):
        for key in ("concepts", "phrases", "items"):
            if isinstance(value.get(key), list):
                return _phrases(value[key])
        lists = [v for v in value.values() if isinstance(v, list)]
        return _phrases(lists[0]) if len(lists) == 1 else None
    if isinstance(value, list):
        out = []
        for item in value:
            if isinstance(item, dict):
                item = next((item[k] for k in ("name", "concept", "phrase") if isinstance(item.get(k), str)), None)
            if isinstance(item, str) and item.strip():
                out.append(item.strip())
        return out
    return None


def parse_concepts(text: str | None, finish_reason: str | None = None) -> list[str]:
    """The concept phrases of an answer, or AnswerError saying what is wrong with it."""
    if not text or not text.strip():
        raise AnswerError("the answer is empty")
    body = re.sub(r"^```[a-zA-Z]*\s*|\s*```$", "", text.strip())
    attempts = [body]
    for opening, closing in (("{", "}"), ("[", "]")):
        start, end = body.find(opening), body.rfind(closing)
        if 0 <= start < end:
            attempts.append(body[start:end + 1])
    for attempt in attempts:
        try:
            phrases = _phrases(json.loads(attempt))
        except json.JSONDecodeError:
            continue
        if phrases:
            return phrases
        raise AnswerError(f"the JSON answer has no list of concept phrases: {text[:120]!r}")
    if finish_reason == "length":
        raise AnswerError("the answer was cut off at max_tokens (raise discovery.max_tokens)")
    raise AnswerError(f"the answer is not JSON: {text[:120]!r}")


class ResponseCache:
    """One JSON file per answered request, ``<dir>/<key>.json``, written atomically."""

    def __init__(self, root: str | Path) -> None:
        self.dir = Path(root)
        self.dir.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.json"

    def get(self, key: str) -> dict | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError:
            log.warning("Ignoring the unreadable cached answer %s; the request is sent again", path)
            return None

    def size(self) -> int:
        """Number of answers on disk (of any model or dataset sharing the folder)."""
        return sum(1 for _ in self.dir.glob("*.json"))

    def put(self, key: str, record: dict) -> None:
        atomic_write_text(self.path(key), json.dumps(record, indent=1))


def request_key(model: str, class_name: str, count: int, frames_digest: str) -> str:
    """sha256 of (model, prompt version, class, concepts asked for, frames digest or "text")."""
    fields = {"model": model, "prompt_version": PROMPT_VERSION, "class": class_name, "count": count,
              "frames": frames_digest}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:24]


@dataclass
class ProposalRequest:
    """One request: the class, the video (None in text mode), its frames, its cache key."""

    class_name: str
    video_id: str | None
    frames: VideoFrames | None
    key: str


class ChatClient:
    """Chat-completions calls with the retry policy of the module docstring."""

    def __init__(self, endpoint: str, model: str, api_key: str, *, timeout: float, retries: int,
                 structured_output: str, max_tokens: int, temperature: float) -> None:
        self.endpoint, self.model = endpoint, model
        self.client = openai.OpenAI(base_url=endpoint, api_key=api_key, timeout=timeout, max_retries=0)
        self.retries, self.structured_output = retries, structured_output
        self.max_tokens, self.temperature = max_tokens, temperature

    def unreachable(self, reason: str) -> DiscoveryError:
        return DiscoveryError(
            f"Cannot reach the chat-completions endpoint {self.endpoint} ({reason}).", where="discovery.endpoint",
            hint=f"Check that the model server is running and listening there (e.g. 'vllm serve {self.model} --port "
                 "8000'), and that discovery.endpoint has the right scheme, host, port and the /v1 path.")

    def check(self) -> None:
        """Fail within seconds when the endpoint cannot be reached; warn when it lacks the model."""
        try:
            served = [m.id for m in self.client.with_options(timeout=PREFLIGHT_TIMEOUT).models.list()]
        except openai.APIConnectionError as exc:
            raise self.unreachable(str(exc) or type(exc).__name__) from exc
        except openai.AuthenticationError as exc:
            raise DiscoveryError(f"{self.endpoint} rejected the API key ({exc})", where="discovery.api_key_env",
                                 hint="set the environment variable named by discovery.api_key_env") from exc
        except openai.APIStatusError as exc:
            log.warning("%s/models answered HTTP %d; going on without checking the model name",
                        self.endpoint, exc.status_code)
            return
        if served and self.model not in served:
            log.warning("%s serves %s, not '%s' (discovery.model); requests may fail", self.endpoint,
                        ", ".join(served), self.model)

    def _fatal(self, exc: openai.APIStatusError) -> DiscoveryError:
        hint = {401: "set the environment variable named by discovery.api_key_env",
                403: "set the environment variable named by discovery.api_key_env",
                404: f"check discovery.model ('{self.model}') and the /v1 path of discovery.endpoint",
                400: "if the server does not support JSON-schema output, set discovery.structured_output="
                     "json_object or none"}.get(exc.status_code, "see the server's log")
        return DiscoveryError(f"{self.endpoint} answered HTTP {exc.status_code}: {str(exc)[:300]}; {hint}.")

    def complete(self, messages: list[dict], count: int) -> tuple[list[str], dict, int]:
        """(concepts, usage, attempts) of one request; AnswerError / APIError after the last retry."""
        extra = {}
        fmt = response_format(self.structured_output, count)
        if fmt is not None:
            extra["response_format"] = fmt
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                response = self.client.chat.completions.create(
                    model=self.model, messages=messages, max_tokens=self.max_tokens,
                    temperature=self.temperature, **extra)
                choice = response.choices[0] if response.choices else None
                if choice is None:
                    raise AnswerError("the answer has no choices")
                concepts = parse_concepts(choice.message.content, choice.finish_reason)
                usage = response.usage.model_dump() if response.usage is not None else {}
                return concepts, usage, attempt + 1
            except openai.APITimeoutError as exc:
                error: Exception = exc
            except openai.APIConnectionError as exc:
                raise self.unreachable(str(exc) or type(exc).__name__) from exc
            except (openai.RateLimitError, openai.InternalServerError) as exc:
                error = exc
                retry_after = exc.response.headers.get("retry-after")
            except openai.APIStatusError as exc:
                if exc.status_code < 500 and exc.status_code not in (408, 409, 429):
                    raise self._fatal(exc) from exc
                error = exc
            except AnswerError as exc:
                error = exc
            if attempt == self.retries:
                raise error
            delay = min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2**attempt)
            if retry_after is not None:
                try:
                    delay = min(MAX_BACKOFF_SECONDS, max(0.0, float(retry_after)))
                except ValueError:
                    pass
            log.info("Retrying in %.1f s after: %s", delay, str(error)[:200])
            time.sleep(delay)
        raise AssertionError("unreachable")


def sample_videos(records: Sequence[VideoRecord], class_names: Sequence[str], per_class: int, seed: int
                  ) -> dict[str, list[VideoRecord]]:
    """A seeded sample of ``per_class`` training videos of every class (all of them when fewer)."""
    by_class: dict[int, list[VideoRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.video_id):
        by_class[record.label].append(record)
    out = {}
    for label, name in enumerate(class_names):
        pool = by_class.get(label, [])
        rng = random.Random(f"{seed}:{name}")
        out[name] = sorted(rng.sample(pool, min(per_class, len(pool))), key=lambda r: r.video_id)
    return out


def image_tokens(width: int, height: int) -> int:
    """Estimated input tokens of one image: one per 28 x 28 pixels (Qwen2-VL style)."""
    return math.ceil(width / IMAGE_TOKEN_PIXELS) * math.ceil(height / IMAGE_TOKEN_PIXELS)


def cost_estimate(requests: Sequence[ProposalRequest], cached: set[str], max_tokens: int, count: int) -> dict:
    """Requests, images and tokens a run sends; ``cached``: the keys answered already."""
    todo = [r for r in requests if r.key not in cached]
    sizes = [size for r in todo if r.frames is not None for size in r.frames.sizes]
    prompt_tokens = sum(len(SYSTEM_PROMPT + prompt_text(r.class_name, count, len(r.frames.sizes) if r.frames else 0)) // 4
                        for r in todo)
    return {"requests": len(requests), "cached": len(requests) - len(todo), "to_send": len(todo),
            "images": len(sizes), "input_tokens": prompt_tokens + sum(image_tokens(w, h) for w, h in sizes),
            "max_output_tokens": len(todo) * max_tokens}


def build_requests(cfg: DictConfig, records: Sequence[VideoRecord], class_names: Sequence[str]
                   ) -> tuple[list[ProposalRequest], list[dict]]:
    """The requests of a run and the videos that could not be read ({video_id, path, reason})."""
    d = cfg.discovery
    requests, skipped = [], []
    if d.input == "text":
        for name in class_names:
            requests.append(ProposalRequest(name, None, None, request_key(d.model, name, d.concepts_per_request, "text")))
        return requests, skipped
    for name, videos in sample_videos(records, class_names, d.videos_per_class, d.seed).items():
        for record in videos:
            try:
                frames = representative_frames(record.path, d.frames_per_video, d.image_size, cfg.video.backend)
            except VideoError as exc:
                skipped.append({"video_id": record.video_id, "path": str(record.path), "reason": str(exc)})
                log.warning("Skipping video %s for proposals: %s", record.path, exc)
                continue
            key = request_key(d.model, name, d.concepts_per_request, frames.digest)
            requests.append(ProposalRequest(name, record.video_id, frames, key))
    return requests, skipped


def propose_for_dataset(cfg: DictConfig, records: Sequence[VideoRecord], class_names: Sequence[str]
                        ) -> tuple[list[dict], dict]:
    """Proposals ({class, video_id, frames, concepts}) for the training videos, and a report
    (requests sent, answers from the cache, failed requests, skipped videos, seconds, usage)."""
    d = cfg.discovery
    started = time.perf_counter()
    cache = ResponseCache(d.cache_dir)
    client = ChatClient(d.endpoint, d.model, os.environ.get(d.api_key_env) or "EMPTY", timeout=d.timeout,
                        retries=d.retries, structured_output=d.structured_output, max_tokens=d.max_tokens,
                        temperature=d.temperature)
    planned = len(class_names) if d.input == "text" else sum(
        len(v) for v in sample_videos(records, class_names, d.videos_per_class, d.seed).values())
    checked = planned > cache.size()  # some request must be sent: check the endpoint before decoding frames
    if checked:
        client.check()
    requests, skipped = build_requests(cfg, records, class_names)
    frames_seconds = time.perf_counter() - started
    answers = {r.key: cache.get(r.key) for r in requests}
    todo = [r for r in requests if answers[r.key] is None]
    estimate = cost_estimate(requests, {r.key for r in requests if answers[r.key] is not None}, d.max_tokens,
                             d.concepts_per_request)
    log.info("Proposal requests: %d (%d answered in %s already, %d to send: %d images, about %d input "
             "tokens, at most %d output tokens) to %s, model %s", estimate["requests"], estimate["cached"],
             cache.dir, estimate["to_send"], estimate["images"], estimate["input_tokens"],
             estimate["max_output_tokens"], d.endpoint, d.model)
    failed: list[dict] = []
    usage: dict[str, int] = defaultdict(int)
    if todo:
        if not checked:
            client.check()
        lock = threading.Lock()

        def send(request: ProposalRequest) -> None:
            urls = request.frames.data_urls() if request.frames is not None else []
            messages = build_messages(request.class_name, d.concepts_per_request, urls)
            try:
                concepts, request_usage, attempts = client.complete(messages, d.concepts_per_request)
            except (AnswerError, openai.APIError) as exc:
                with lock:
                    failed.append({"class": request.class_name, "video_id": request.video_id, "error": str(exc)[:300]})
                log.warning("Request for %s (%s) failed after %d attempts: %s", request.video_id or "text",
                            request.class_name, d.retries + 1, exc)
                return
            record = {"class": request.class_name, "video_id": request.video_id,
                      "frames": request.frames.indices if request.frames is not None else [],
                      "concepts": concepts, "model": d.model, "prompt_version": PROMPT_VERSION,
                      "usage": request_usage, "attempts": attempts}
            cache.put(request.key, record)
            with lock:
                answers[request.key] = record
                for name, value in request_usage.items():
                    if isinstance(value, int):
                        usage[name] += value

        with ThreadPoolExecutor(max_workers=max(1, d.concurrency)) as pool:
            futures = [pool.submit(send, r) for r in todo]
            try:
                for future in as_completed(futures):
                    future.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    proposals = [{"class": r.class_name, "video_id": r.video_id, "frames": answers[r.key]["frames"],
                  "concepts": answers[r.key]["concepts"]} for r in requests if answers[r.key] is not None]
    report = {**estimate, "sent": len(todo), "failed": failed, "skipped_videos": skipped, "usage": dict(usage),
              "seconds": round(time.perf_counter() - started, 3), "frames_seconds": round(frames_seconds, 3)}
    if failed:
        log.warning("%d of %d requests failed (listed in proposals.json); rerun to retry them", len(failed), len(todo))
    if not proposals:
        raise DiscoveryError(f"No proposals: {len(failed)} requests failed and {len(skipped)} videos were "
                             "unreadable; see the log.")
    log.info("Proposals: %d answers (%d sent now) in %.1f s (%.1f s of it choosing and encoding frames)",
             len(proposals), len(todo) - len(failed), report["seconds"], frames_seconds)
    return proposals, report
