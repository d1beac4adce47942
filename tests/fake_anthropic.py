"""A test-only fake of the Anthropic Messages API on 127.0.0.1, for the real ``anthropic``
client (``base_url``).  It plays a script: each POST /v1/messages takes the next step, a
reply (a message in the API's documented shape, streamed as server-sent events when the
request asks for ``stream``) or an error (status, error type, headers such as
``retry-after``).  Every request body and its headers are kept for assertions.
Never imported by ``bot/``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import count
from typing import Any

_ids = count(1)


def text(words: str) -> dict[str, Any]:
    return {"type": "text", "text": words}


def tool_use(name: str, tool_input: Any, ident: str | None = None) -> dict[str, Any]:
    return {
        "type": "tool_use",
        "id": ident or f"toolu_{next(_ids):04d}",
        "name": name,
        "input": tool_input,
    }


@dataclass(frozen=True)
class Reply:
    content: list[dict[str, Any]]
    stop_reason: str = "tool_use"
    input_tokens: int = 40
    output_tokens: int = 60
    cache_read: int = 0
    cache_write: int = 0

    def message(self, model: str) -> dict[str, Any]:
        return {
            "id": f"msg_{next(_ids):06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": self.content,
            "stop_reason": self.stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "cache_creation_input_tokens": self.cache_write,
                "cache_read_input_tokens": self.cache_read,
            },
        }


@dataclass(frozen=True)
class Failure:
    status: int
    error_type: str
    headers: dict[str, str] = field(default_factory=dict)


Step = Reply | Failure | Callable[[dict[str, Any]], "Reply | Failure"]


@dataclass
class Recorded:
    body: dict[str, Any]
    headers: dict[str, str]


class FakeMessagesAPI:
    def __init__(self, script: list[Step]) -> None:
        self.script = list(script)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()

    def next_step(self, body: dict[str, Any]) -> Reply | Failure:
        with self._lock:
            if not self.script:
                return Failure(500, "api_error")
            step = self.script.pop(0)
        return step(body) if callable(step) else step

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [r.body for r in self.requests]


def _sse(message: dict[str, Any]) -> Iterator[str]:
    def event(kind: str, data: dict[str, Any]) -> str:
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    usage = message["usage"]
    start = dict(message, content=[], stop_reason=None, usage=dict(usage, output_tokens=1))
    yield event("message_start", {"type": "message_start", "message": start})
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": text("")},
            )
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            opening = dict(block, input={})
            yield event(
                "content_block_start",
                {"type": "content_block_start", "index": i, "content_block": opening},
            )
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield event(
            "content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta}
        )
        yield event("content_block_stop", {"type": "content_block_stop", "index": i})
    yield event(
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": usage["output_tokens"]},
        },
    )
    yield event("message_stop", {"type": "message_stop"})


def _handler(api: FakeMessagesAPI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            api.requests.append(Recorded(body, {k.lower(): v for k, v in self.headers.items()}))
            if self.path.split("?")[0] != "/v1/messages":
                return self._json(404, _error("not_found_error", f"no route {self.path}"))
            step = api.next_step(body)
            if isinstance(step, Failure):
                return self._json(step.status, _error(step.error_type, "scripted"), step.headers)
            message = step.message(body.get("model", "claude"))
            if body.get("stream"):
                return self._stream(message)
            return self._json(200, message)

        def _json(
            self, status: int, data: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(raw)))
            self.send_header("request-id", f"req_{next(_ids)}")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(raw)

        def _stream(self, message: dict[str, Any]) -> None:
            raw = "".join(_sse(message)).encode()
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("content-length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


@contextmanager
def serving(script: list[Step]) -> Iterator[tuple[FakeMessagesAPI, str]]:
    """The fake on a free loopback port: (api, base_url); stopped and closed on exit."""
    api = FakeMessagesAPI(script)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(api))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
