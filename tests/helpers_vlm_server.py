"""A stand-in for a vLLM server in tests: a real HTTP server on 127.0.0.1 that speaks the
OpenAI-compatible chat-completions protocol (``POST /v1/chat/completions``, ``GET /v1/models``),
so that the discovery client is tested over the network stack it uses against vLLM, without a model.

Run as a process: ``python tests/helpers_vlm_server.py [--model NAME]`` prints ``PORT <n>`` and
serves until killed. Its answers follow a script: ``POST /control`` with ``{"queue": [...],
"default": "ok"}`` sets the behaviours of the next requests, one per request, then the default:

- ``ok``: ``{"concepts": [...]}`` built from the class name quoted in the prompt;
- ``fenced``: the same JSON inside a Markdown code fence, with a sentence before it;
- ``malformed``: broken JSON; ``truncated``: JSON cut off, ``finish_reason: "length"``;
- ``nonjson``: prose; ``nolist``: JSON without a list of phrases;
- ``429`` / ``500``: that HTTP status (429 with ``Retry-After: 0``);
- ``slow:S``: answer ``ok`` after S seconds; ``hang``: never answer.

``GET /stats`` returns what arrived: per request its fingerprint (sha256 of the messages), the
behaviour, the model, the response_format, the number of images and whether each image is a
base64 JPEG data URL, whether it was answered, and the prompt text; and the largest number of
requests that were in progress at the same time (since the last reset).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
STATE: dict = {"queue": [], "default": "ok", "requests": [], "epoch": 0, "in_flight": 0, "max_in_flight": 0}
STOP = threading.Event()


def concepts_for(text: str) -> list[str]:
    match = re.search(r'class "([^"]+)"', text)
    words = (match.group(1) if match else "unknown").split()
    return [f"The {words[0]} objects", f"{words[-1]} motion", "a hand"]


def is_jpeg_data_url(url: str) -> bool:
    prefix = "data:image/jpeg;base64,"
    if not url.startswith(prefix):
        return False
    try:
        return base64.b64decode(url[len(prefix):], validate=True)[:2] == b"\xff\xd8"
    except ValueError:
        return False


class Handler(BaseHTTPRequestHandler):
    model = "stand-in-vlm"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict | str, headers: dict | None = None) -> None:
        body = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.model, "object": "model"}]})
        elif self.path == "/stats":
            with LOCK:
                self._send(200, {"requests": STATE["requests"], "max_in_flight": STATE["max_in_flight"]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path == "/control":
            with LOCK:
                STATE["queue"] = list(body.get("queue", []))
                STATE["default"] = body.get("default", "ok")
                if body.get("reset"):  # requests still running from before are no longer counted
                    STATE["requests"], STATE["in_flight"], STATE["max_in_flight"] = [], 0, 0
                    STATE["epoch"] += 1
            self._send(200, {"ok": True})
            return
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        with LOCK:
            epoch = STATE["epoch"]
            STATE["in_flight"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
        try:
            self._complete(body)
        finally:
            with LOCK:
                if STATE["epoch"] == epoch:
                    STATE["in_flight"] -= 1

    def _complete(self, body: dict) -> None:
        user = body["messages"][-1]["content"]
        parts = user if isinstance(user, list) else [{"type": "text", "text": user}]
        text = " ".join(p["text"] for p in parts if p.get("type") == "text")
        urls = [p["image_url"]["url"] for p in parts if p.get("type") == "image_url"]
        with LOCK:
            behaviour = STATE["queue"].pop(0) if STATE["queue"] else STATE["default"]
            entry = {"fingerprint": hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest(),
                     "behaviour": behaviour, "model": body.get("model"), "response_format": body.get("response_format"),
                     "num_images": len(urls), "images_are_jpeg": [is_jpeg_data_url(u) for u in urls],
                     "text": text, "answered": False}
            STATE["requests"].append(entry)
        if behaviour == "hang":
            STOP.wait(600)
            return
        if behaviour.startswith("slow:"):
            time.sleep(float(behaviour.split(":", 1)[1]))
            behaviour = "ok"
        if behaviour in ("429", "500"):
            self._send(int(behaviour), {"error": {"message": f"scripted {behaviour}"}},
                       {"Retry-After": "0"} if behaviour == "429" else None)
            return
        answer = json.dumps({"concepts": concepts_for(text)})
        content, finish = {
            "ok": (answer, "stop"),
            "fenced": ("Here you go:\n```json\n" + answer + "\n```", "stop"),
            "malformed": ('{"concepts": ["red", "blue",, ]', "stop"),
            "truncated": (answer[: len(answer) // 2], "length"),
            "nonjson": ("Sure! Some concepts: red things, blue things.", "stop"),
            "nolist": ('{"answer": "none"}', "stop"),
        }[behaviour]
        with LOCK:
            entry["answered"] = True
        self._send(200, {
            "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [{"index": 0, "finish_reason": finish,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": 100 + 256 * len(urls), "completion_tokens": 20,
                      "total_tokens": 120 + 256 * len(urls)},
        })


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="stand-in-vlm")
    args = parser.parse_args()
    Handler.model = args.model
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
