"""A test-only GitHub: the REST endpoints the forge uses and a git remote, on 127.0.0.1.

Theory of operation
-------------------
One ``ThreadingHTTPServer`` serves both the REST API (at the root, like GitHub
Enterprise's ``/api/v3`` without the prefix) and the repository's git remote
(``/<owner>/<name>.git``, through ``git http-backend``).  Every request authenticates
with a token that names a user (``FakeGitHub.token(login)``) or with the GitHub App's
JWT; what a user may do follows the repository permission the test gave them, as on
GitHub.  A pull request's head and base follow the bare repository's branches until it
is merged or closed.

Every JSON response passes through ``schema.complete`` and ``schema.check`` against
GitHub's published REST description: a response GitHub could not have sent is recorded
in ``errors`` (the fixture fails the test) and answered 500.

``faults`` injects what GitHub does under load: a primary rate limit (403 with
``x-ratelimit-remaining: 0`` and ``x-ratelimit-reset``), a secondary one (403 or 429 with
``retry-after``), a 502, or a slow answer (``delay``), each for the next ``times``
matching requests.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fakes.github import gitdata, schema
from fakes.github.git import BareRepo, run_cgi
from fakes.github.gitdata import GitData
from fakes.github.rest import ROUTES, Answer, Json, Request, Rest
from fakes.github.settings import SETTINGS_ROUTES, RepoSettings


@dataclass
class Fault:
    status: int
    method: str = "*"
    path: str = ".*"
    message: str = "Server Error"
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    delay: float = 0.0

    @classmethod
    def primary_rate_limit(cls, reset_in: int = 0, **kw: Any) -> Fault:
        reset = str(int(time.time()) + reset_in)
        headers = {
            "x-ratelimit-remaining": "0",
            "x-ratelimit-limit": "5000",
            "x-ratelimit-reset": reset,
        }
        return cls(403, message="API rate limit exceeded for user ID 1.", headers=headers, **kw)

    @classmethod
    def secondary_rate_limit(cls, status: int = 403, **kw: Any) -> Fault:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        return cls(status, message=message, headers={"retry-after": "1"}, **kw)


@cache
def _app_key() -> rsa.RSAPrivateKey:
    """One key per test run: generating a 2048-bit key per fake costs more than a test."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class FakeGitHub(GitData, Rest, RepoSettings):
    def __init__(
        self,
        root: Path,
        collaborators: dict[str, str],
        *,
        owner: str = "acme",
        name: str = "infra",
        default_branch: str = "main",
        private: bool = True,
        app_slug: str = "infrabot",
    ) -> None:
        self.owner, self.name, self.default_branch, self.private = (
            owner,
            name,
            default_branch,
            private,
        )
        self.full_name = f"{owner}/{name}"
        self.collaborators = dict(collaborators)
        self.repo = BareRepo(root / "git" / owner / f"{name}.git")
        self.repo.create(default_branch)
        self.git_root = root / "git"
        self.app_id, self.installation_id, self.app_slug = 4242, 77, app_slug
        self.bot_login = f"{app_slug}[bot]"
        key = _app_key()
        self.app_private_key = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        self._app_public = key.public_key()
        self.tokens: dict[str, str] = {}
        self.faults: list[Fault] = []
        self.errors: list[str] = []
        self.log: list[tuple[str, str, int]] = []
        self._lock = threading.RLock()
        self._init_state()
        self._init_settings()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @contextmanager
    def serving(self) -> Iterator[FakeGitHub]:
        """Started for the ``with`` block, then stopped; a test that made the fake send an
        answer GitHub could not have sent fails on the way out."""
        self.start()
        try:
            yield self
        finally:
            self.stop()
        assert self.errors == [], "the fake sent responses GitHub could not have sent"

    def infrabot_yaml(self) -> str:
        """``infrabot.yaml`` of a checkout that runs the bot against this fake, fast retries."""
        return (
            "forge: github\nengine: offline\nbase_branch: main\ngithub:\n"
            f"  repository: {self.full_name}\n  api_url: {self.url}\n  timeout: 5\n"
            "  retries: 2\n  backoff: 0.01\n  seconds_between_requests: 0\n"
            "  seconds_between_writes: 0\n"
        )

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def git_url(self) -> str:
        return f"{self.url}/{self.full_name}.git"

    def token(self, login: str) -> str:
        token = "ghp_" + hashlib.sha256(f"{login}:{id(self)}".encode()).hexdigest()[:36]
        self.tokens[token] = login
        return token

    # -- test helpers (what people do in GitHub's UI) ---------------------------------

    def close(self, number: int) -> None:
        with self._lock:
            self._freeze(self._items[number])
            self._items[number]["state"] = "closed"

    # -- HTTP ------------------------------------------------------------------------

    def handle(self, h: _Handler) -> None:
        split = urlsplit(h.path)
        path, query = unquote(split.path), split.query
        headers = {k.lower(): v for k, v in h.headers.items()}
        body = h.read_body()
        fault = self._fault(h.command, path)
        if fault is not None:
            self.log.append((h.command, path, fault.status))  # 0: no answer at all
            time.sleep(fault.delay)
            if not fault.status:  # a timeout: the client has given up; answer nothing
                h.close_connection = True
                return
            error = {"message": fault.message, "documentation_url": "https://docs.github.com/rest"}
            self._send_json(h, fault.status, error, fault.headers)
            return
        if path.startswith(f"/{self.full_name}.git/"):
            self._git(h, path, query, headers, body)
            return
        user = self._authenticate(headers.get("authorization", ""))
        try:
            data = json.loads(body) if body else None
        except ValueError:
            self._send_json(h, 400, {"message": "Problems parsing JSON"}, {})
            return
        req = Request(h.command, path, {k: v[-1] for k, v in parse_qs(query).items()}, data, user)
        status, payload, extra = self._route(req)
        if payload is not None:
            payload = self._honest(req.method, path, status, payload)
            if payload is None:
                status, payload = 500, {"message": "the fake sent a response GitHub could not have"}
        self.log.append((h.command, path, status))
        self._send_json(h, status, payload, extra)

    def _fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if (
                    fault.times > 0
                    and fault.method in ("*", method)
                    and re.search(fault.path, path)
                ):
                    fault.times -= 1
                    return fault
        return None

    def _honest(self, method: str, path: str, status: int, payload: Json) -> Json:
        if schema.operation(method, path) is None:
            self.errors.append(f"{method} {path}: not in the vendored REST description")
            return None
        shape = schema.response_schema(method, path, status)
        if shape is None:
            generic = status in (401, 403, 429, 500, 502, 503)  # any endpoint may answer these
            if generic and set(payload) <= {"message", "documentation_url"}:
                return payload
            self.errors.append(f"{method} {path} -> {status}: an undocumented response")
            return None
        payload = schema.complete(shape, payload)
        problems = schema.check(shape, payload)
        if problems:
            self.errors += [f"{method} {path} -> {status}: {p}" for p in problems]
            return None
        return payload

    @staticmethod
    def _send_json(h: _Handler, status: int, payload: Json, headers: dict[str, str]) -> None:
        raw = b"" if payload is None else json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json; charset=utf-8")
        h.send_header("Content-Length", str(len(raw)))
        rate = {
            "x-ratelimit-limit": "5000",
            "x-ratelimit-remaining": "4999",
            "x-ratelimit-reset": str(int(time.time()) + 3600),
        }
        for name, value in {**rate, **headers}.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(raw)

    def _authenticate(self, header: str) -> str | None:
        scheme, _, credential = header.partition(" ")
        scheme = scheme.lower()
        if scheme in ("token", "bearer") and credential in self.tokens:
            return self.tokens[credential]
        if scheme == "bearer" and credential.count(".") == 2:
            try:
                claims = jwt.decode(credential, self._app_public, algorithms=["RS256"])
            except jwt.PyJWTError:
                return None
            return "app" if str(claims.get("iss")) == str(self.app_id) else None
        if scheme == "basic":
            try:
                _, _, password = base64.b64decode(credential).decode().partition(":")
            except ValueError:
                return None
            return self.tokens.get(password)
        return None

    def _git(
        self, h: _Handler, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> None:
        user = self._authenticate(headers.get("authorization", ""))
        push = "git-receive-pack" in path or "service=git-receive-pack" in query
        if user is None:
            h.send_response(401)
            h.send_header("WWW-Authenticate", 'Basic realm="GitHub"')
            h.send_header("Content-Length", "0")
            h.end_headers()
            self.log.append((h.command, path, 401))
            return
        if not self._may(user, "write" if push else "read"):
            h.send_response(403)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        status, out, payload = run_cgi(self.git_root, h.command, path, query, headers, body, user)
        h.send_response(status)
        for name, value in out:
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)
        self.log.append((h.command, path, status))

    # -- routing ---------------------------------------------------------------------

    def _route(self, req: Request) -> Answer:
        if req.user is None:
            return (
                401,
                {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"},
                {},
            )
        repo = f"/repos/{self.owner}/{self.name}"
        for method, pattern, handler in [*ROUTES, *gitdata.ROUTES, *SETTINGS_ROUTES]:
            match = re.fullmatch(pattern.replace("{repo}", re.escape(repo)), req.path)
            if match and method == req.method:
                if req.user == "app" and not req.path.startswith("/app"):
                    return 401, {"message": "A JSON web token could not be decoded"}, {}
                with self._lock:
                    return handler(self, req, *match.groups())
        if req.path.startswith("/repos/") and not req.path.startswith(repo):
            return 404, {"message": "Not Found"}, {}
        return 404, {"message": f"the fake does not serve {req.method} {req.path}"}, {}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms ACK waits
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        self.server.fake.handle(self)  # type: ignore[attr-defined]

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch
