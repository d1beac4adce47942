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
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from fakes.github import schema
from fakes.github.git import BareRepo, run_cgi

Json = Any
Answer = tuple[int, Json, dict[str, str]]


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


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Json
    user: str | None


@cache
def _app_key() -> rsa.RSAPrivateKey:
    """One key per test run: generating a 2048-bit key per fake costs more than a test."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


class FakeGitHub:
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
        self._items: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._reviews: dict[int, list[dict[str, Any]]] = {}
        self._statuses: dict[str, list[dict[str, Any]]] = {}
        self._next = {"item": 1, "comment": 1001, "review": 5001, "status": 9001}
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

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def _api(self) -> str:
        return f"{self.url}/repos/{self.full_name}"

    @property
    def git_url(self) -> str:
        return f"{self.url}/{self.full_name}.git"

    def token(self, login: str) -> str:
        token = "ghp_" + hashlib.sha256(f"{login}:{id(self)}".encode()).hexdigest()[:36]
        self.tokens[token] = login
        return token

    def permission(self, login: str | None) -> str:
        if login is None:
            return "none"
        if login == self.bot_login:
            return "write"
        level = self.collaborators.get(login)
        if level is not None:
            return level
        return "none" if self.private else "read"

    def _may(self, login: str | None, need: str) -> bool:
        rank = {"none": 0, "read": 1, "triage": 1, "write": 2, "maintain": 2, "admin": 3}
        return rank[self.permission(login)] >= rank[need]

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
        for method, pattern, handler in _ROUTES:
            match = re.fullmatch(pattern.replace("{repo}", re.escape(repo)), req.path)
            if match and method == req.method:
                if req.user == "app" and not req.path.startswith("/app"):
                    return 401, {"message": "A JSON web token could not be decoded"}, {}
                with self._lock:
                    return handler(self, req, *match.groups())
        if req.path.startswith("/repos/") and not req.path.startswith(repo):
            return 404, {"message": "Not Found"}, {}
        return 404, {"message": f"the fake does not serve {req.method} {req.path}"}, {}

    # -- JSON builders (only what the forge reads; schema.complete fills the rest) ----

    def _user(self, login: str) -> Json:
        kind = "Bot" if login.endswith("[bot]") else "User"
        return {
            "login": login,
            "id": _id(login),
            "type": kind,
            "site_admin": False,
            "url": f"{self.url}/users/{login}",
        }

    def _repository(self) -> Json:
        return {
            "id": _id(self.full_name),
            "name": self.name,
            "full_name": self.full_name,
            "url": self._api,
            "private": self.private,
            "owner": self._user(self.owner),
            "default_branch": self.default_branch,
            "html_url": f"https://github.invalid/{self.full_name}",
            "clone_url": self.git_url,
        }

    def _labels(self, item: dict[str, Any]) -> Json:
        return [
            {"id": _id(n), "name": n, "color": "ededed", "default": False} for n in item["labels"]
        ]

    def _association(self, login: str) -> str:
        return "COLLABORATOR" if login in self.collaborators else "NONE"

    def _issue(self, item: dict[str, Any]) -> Json:
        out = {
            "id": _id(f"issue{item['number']}"),
            "url": f"{self._api}/issues/{item['number']}",
            "number": item["number"],
            "title": item["title"],
            "body": item["body"],
            "user": self._user(item["user"]),
            "labels": self._labels(item),
            "state": item["state"],
            "locked": False,
            "comments": sum(c["number"] == item["number"] for c in self._comments.values()),
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "closed_at": item.get("closed_at"),
            "author_association": self._association(item["user"]),
        }
        if item["kind"] == "pr":
            out["pull_request"] = {
                "url": f"{self.url}/repos/{self.full_name}/pulls/{item['number']}",
                "html_url": None,
                "diff_url": None,
                "patch_url": None,
                "merged_at": item.get("merged_at"),
            }
        return out

    def _sync(self, item: dict[str, Any]) -> dict[str, Any]:
        if item["kind"] == "pr" and item["state"] == "open":
            item["head_sha"] = self.repo.tip(item["head"]) or item["head_sha"]
            item["base_sha"] = self.repo.tip(item["base"]) or item["base_sha"]
        return item

    def _freeze(self, item: dict[str, Any]) -> None:
        self._sync(item)

    def _side(self, branch: str, sha: str) -> Json:
        return {
            "label": f"{self.owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self._user(self.owner),
            "repo": self._repository(),
        }

    def _pull(self, item: dict[str, Any]) -> Json:
        self._sync(item)
        mergeable = None
        if item["state"] == "open":
            mergeable = self.repo.merge_tree(item["base_sha"], item["head_sha"]) is not None
        return {
            "id": _id(f"pr{item['number']}"),
            "url": f"{self._api}/pulls/{item['number']}",
            "issue_url": f"{self._api}/issues/{item['number']}",
            "number": item["number"],
            "state": item["state"],
            "title": item["title"],
            "body": item["body"],
            "user": self._user(item["user"]),
            "labels": self._labels(item),
            "head": self._side(item["head"], item["head_sha"]),
            "base": self._side(item["base"], item["base_sha"]),
            "merged": item.get("merged", False),
            "mergeable": mergeable,
            "mergeable_state": "unknown"
            if mergeable is None
            else ("clean" if mergeable else "dirty"),
            "merge_commit_sha": item.get("merge_sha"),
            "merged_at": item.get("merged_at"),
            "merged_by": self._user(item["merged_by"]) if item.get("merged_by") else None,
            "draft": False,
            "created_at": item["created_at"],
            "updated_at": item["updated_at"],
            "closed_at": item.get("closed_at"),
            "author_association": self._association(item["user"]),
        }

    def _comment(self, c: dict[str, Any]) -> Json:
        return {
            "id": c["id"],
            "url": f"{self._api}/issues/comments/{c['id']}",
            "body": c["body"],
            "user": self._user(c["user"]),
            "created_at": c["created_at"],
            "updated_at": c["updated_at"],
            "issue_url": f"{self.url}/repos/{self.full_name}/issues/{c['number']}",
            "author_association": self._association(c["user"]),
        }

    def _review(self, number: int, r: dict[str, Any]) -> Json:
        return {
            "id": r["id"],
            "user": self._user(r["user"]),
            "body": r["body"],
            "state": r["state"],
            "commit_id": r["commit_id"],
            "submitted_at": r["submitted_at"],
            "pull_request_url": f"{self.url}/repos/{self.full_name}/pulls/{number}",
            "author_association": self._association(r["user"]),
        }

    def _status(self, s: dict[str, Any]) -> Json:
        return {
            "id": s["id"],
            "state": s["state"],
            "description": s["description"],
            "target_url": s["target_url"],
            "context": s["context"],
            "created_at": s["created_at"],
            "updated_at": s["created_at"],
            "creator": self._user(s["creator"]),
        }

    # -- helpers ----------------------------------------------------------------------

    def _item(self, number: str) -> dict[str, Any] | None:
        return self._items.get(int(number))

    def _page(self, req: Request, rows: list[Json]) -> Answer:
        per = min(int(req.query.get("per_page", "30")), 100)
        page = max(int(req.query.get("page", "1")), 1)
        chunk = rows[(page - 1) * per : page * per]
        headers = {}
        if page * per < len(rows):
            query = {**req.query, "page": str(page + 1), "per_page": str(per)}
            headers["Link"] = f'<{self.url}{req.path}?{urlencode(query)}>; rel="next"'
        return 200, chunk, headers

    def _next_id(self, kind: str) -> int:
        self._next[kind] += 1
        return self._next[kind] - 1

    @staticmethod
    def _invalid(message: str) -> Answer:
        return (
            422,
            {
                "message": "Validation Failed",
                "errors": [{"resource": "Issue", "code": "custom", "message": message}],
                "documentation_url": "https://docs.github.com/rest",
            },
            {},
        )

    @staticmethod
    def _not_found() -> Answer:
        return (
            404,
            {"message": "Not Found", "documentation_url": "https://docs.github.com/rest"},
            {},
        )

    # -- handlers ---------------------------------------------------------------------

    def get_user(self, req: Request) -> Answer:
        return 200, {**self._user(str(req.user)), "created_at": _now(), "updated_at": _now()}, {}

    def get_app(self, req: Request) -> Answer:
        if req.user != "app":
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        return (
            200,
            {
                "id": self.app_id,
                "slug": self.app_slug,
                "name": self.app_slug,
                "owner": self._user(self.owner),
                "created_at": _now(),
                "updated_at": _now(),
                "permissions": {},
                "events": [],
            },
            {},
        )

    def installation_token(self, req: Request, installation: str) -> Answer:
        if req.user != "app":
            return 401, {"message": "A JSON web token could not be decoded"}, {}
        if int(installation) != self.installation_id:
            return self._not_found()
        token = "ghs_" + hashlib.sha256(f"{time.time_ns()}".encode()).hexdigest()[:36]
        self.tokens[token] = self.bot_login
        expires = datetime.fromtimestamp(time.time() + 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            201,
            {
                "token": token,
                "expires_at": expires,
                "permissions": {
                    "issues": "write",
                    "pull_requests": "write",
                    "contents": "write",
                    "statuses": "write",
                },
                "repository_selection": "selected",
            },
            {},
        )

    def rate_limit(self, req: Request) -> Answer:
        core = {"limit": 5000, "remaining": 4999, "reset": int(time.time()) + 3600, "used": 1}
        return 200, {"resources": {"core": core, "search": core}, "rate": core}, {}

    def get_repo(self, req: Request) -> Answer:
        if not self._may(req.user, "read"):
            return self._not_found()
        return 200, self._repository(), {}

    def permission_of(self, req: Request, login: str) -> Answer:
        level = self.permission(login)
        role = {"none": "none", "read": "read", "write": "write", "admin": "admin"}.get(
            level, level
        )
        return (
            200,
            {
                "permission": {"maintain": "write", "triage": "read"}.get(level, level),
                "role_name": role,
                "user": self._user(login),
            },
            {},
        )

    def combined_status(self, req: Request, ref: str) -> Answer:
        sha = self.repo.tip(ref) or ref
        if not self.repo.has_commit(sha):
            return 404, {"message": f"No commit found for SHA: {ref}"}, {}
        latest: dict[str, dict[str, Any]] = {}
        for s in self._statuses.get(sha, []):
            latest[s["context"]] = s  # appended in time order: the last one wins
        rows = [self._status(s) for s in sorted(latest.values(), key=lambda s: -s["id"])]
        states = {s["state"] for s in latest.values()}
        state = (
            "failure"
            if states & {"failure", "error"}
            else ("pending" if "pending" in states or not states else "success")
        )
        return (
            200,
            {
                "state": state,
                "statuses": rows,
                "sha": sha,
                "total_count": len(rows),
                "repository": self._repository(),
            },
            {},
        )

    def create_status(self, req: Request, sha: str) -> Answer:
        body = req.body or {}
        if not self._may(req.user, "write"):
            return self._not_found()
        if not self.repo.has_commit(sha):
            return self._invalid(f"No commit found for SHA: {sha}")
        if len(body.get("description") or "") > 140:
            return self._invalid("description is too long (maximum is 140 characters)")
        if body.get("state") not in ("error", "failure", "pending", "success"):
            return self._invalid("state is not included in the list")
        row = {
            "id": self._next_id("status"),
            "state": body["state"],
            "context": body.get("context", "default"),
            "description": body.get("description"),
            "target_url": body.get("target_url"),
            "created_at": _now(),
            "creator": req.user,
        }
        self._statuses.setdefault(sha, []).append(row)
        return 201, self._status(row), {}

    def list_issues(self, req: Request) -> Answer:
        state = req.query.get("state", "open")
        rows = [
            i
            for i in sorted(self._items.values(), key=lambda i: -i["number"])
            if state == "all" or i["state"] == state
        ]
        return self._page(req, [self._issue(i) for i in rows])

    def create_issue(self, req: Request) -> Answer:
        body = req.body or {}
        if not self._may(req.user, "read"):
            return self._not_found()
        if not str(body.get("title") or "").strip():
            return self._invalid("title can't be blank")
        number = self._next_id("item")
        self._items[number] = {
            "kind": "issue",
            "number": number,
            "title": body["title"],
            "body": body.get("body"),
            "user": req.user,
            "state": "open",
            "labels": list(body.get("labels") or []),
            "created_at": _now(),
            "updated_at": _now(),
        }
        return 201, self._issue(self._items[number]), {}

    def get_issue(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        return (200, self._issue(item), {}) if item else self._not_found()

    def edit_issue(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        if item is None:
            return self._not_found()
        body = req.body or {}
        if not (self._may(req.user, "write") or req.user == item["user"]):
            return 403, {"message": "Must have admin rights to Repository."}, {}
        if body.get("state") == "closed" and item["state"] == "open":
            self._freeze(item)
            item.update(state="closed", closed_at=_now())
        for key in ("title", "body"):
            if key in body:
                item[key] = body[key]
        item["updated_at"] = _now()
        return 200, self._issue(item), {}

    def list_comments(self, req: Request, number: str) -> Answer:
        if self._item(number) is None:
            return self._not_found()
        rows = [
            self._comment(c)
            for c in sorted(self._comments.values(), key=lambda c: c["id"])
            if c["number"] == int(number)
        ]
        return self._page(req, rows)

    def create_comment(self, req: Request, number: str) -> Answer:
        item, body = self._item(number), req.body or {}
        if item is None or not self._may(req.user, "read"):
            return self._not_found()
        text = str(body.get("body") or "")
        if not text or len(text) > 65536:
            return self._invalid(
                "Body is too long (maximum is 65536 characters)" if text else "Body cannot be blank"
            )
        cid = self._next_id("comment")
        self._comments[cid] = {
            "id": cid,
            "number": item["number"],
            "user": req.user,
            "body": text,
            "created_at": _now(),
            "updated_at": _now(),
        }
        return 201, self._comment(self._comments[cid]), {}

    def edit_comment(self, req: Request, cid: str) -> Answer:
        comment, body = self._comments.get(int(cid)), req.body or {}
        if comment is None:
            return self._not_found()
        if comment["user"] != req.user and not self._may(req.user, "write"):
            return 403, {"message": "Must have admin rights to Repository."}, {}
        text = str(body.get("body") or "")
        if not text or len(text) > 65536:
            return self._invalid("Body is too long (maximum is 65536 characters)")
        comment.update(body=text, updated_at=_now())
        return 200, self._comment(comment), {}

    def add_labels(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        if item is None:
            return self._not_found()
        if not self._may(req.user, "triage"):
            return 403, {"message": "Resource not accessible by integration"}, {}
        body = req.body
        names = body.get("labels", []) if isinstance(body, dict) else body or []
        for name in names:
            if name not in item["labels"]:
                item["labels"].append(name)
        return 200, self._labels(item), {}

    def remove_label(self, req: Request, number: str, name: str) -> Answer:
        item = self._item(number)
        if item is None or name not in item["labels"]:
            return 404, {"message": "Label does not exist"}, {}
        item["labels"].remove(name)
        return 200, self._labels(item), {}

    def list_pulls(self, req: Request) -> Answer:
        state, head = req.query.get("state", "open"), req.query.get("head")
        rows = []
        for item in sorted(self._items.values(), key=lambda i: -i["number"]):
            if item["kind"] != "pr" or (state != "all" and item["state"] != state):
                continue
            if head and head != f"{self.owner}:{item['head']}":
                continue
            rows.append(self._pull(item))
        return self._page(req, rows)

    def create_pull(self, req: Request) -> Answer:
        body = req.body or {}
        if not self._may(req.user, "read"):
            return self._not_found()
        head, base = str(body.get("head", "")).split(":")[-1], str(body.get("base", ""))
        head_sha, base_sha = self.repo.tip(head), self.repo.tip(base)
        if head_sha is None or base_sha is None:
            return (
                422,
                {
                    "message": "Validation Failed",
                    "errors": [
                        {
                            "resource": "PullRequest",
                            "field": "head" if head_sha is None else "base",
                            "code": "invalid",
                        }
                    ],
                },
                {},
            )
        for item in self._items.values():
            if item["kind"] == "pr" and item["state"] == "open" and item["head"] == head:
                return self._invalid(f"A pull request already exists for {self.owner}:{head}.")
        if (
            self.repo.git("merge-base", "--is-ancestor", head_sha, base_sha, check=False).returncode
            == 0
        ):
            return self._invalid(f"No commits between {base} and {head}")
        number = self._next_id("item")
        self._items[number] = {
            "kind": "pr",
            "number": number,
            "title": body.get("title", head),
            "body": body.get("body"),
            "user": req.user,
            "state": "open",
            "labels": [],
            "created_at": _now(),
            "updated_at": _now(),
            "head": head,
            "base": base,
            "head_sha": head_sha,
            "base_sha": base_sha,
        }
        return 201, self._pull(self._items[number]), {}

    def get_pull(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        if item is None or item["kind"] != "pr":
            return self._not_found()
        return 200, self._pull(item), {}

    def edit_pull(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        if item is None or item["kind"] != "pr":
            return self._not_found()
        if not (self._may(req.user, "write") or req.user == item["user"]):
            return 403, {"message": "Must have admin rights to Repository."}, {}
        body = req.body or {}
        for key in ("title", "body"):
            if key in body:
                item[key] = body[key]
        if body.get("state") == "closed" and item["state"] == "open":
            self._freeze(item)
            item.update(state="closed", closed_at=_now())
        item["updated_at"] = _now()
        return 200, self._pull(item), {}

    def pull_files(self, req: Request, number: str) -> Answer:
        item = self._item(number)
        if item is None or item["kind"] != "pr":
            return self._not_found()
        self._sync(item)
        rows = [
            {
                "sha": item["head_sha"],
                "filename": path,
                "status": status,
                "additions": add,
                "deletions": rm,
                "changes": add + rm,
                "blob_url": "https://github.invalid/",
                "raw_url": "https://github.invalid/",
                "contents_url": "https://github.invalid/",
            }
            for status, path, add, rm in self.repo.changed(item["base_sha"], item["head_sha"])
        ]
        return self._page(req, rows)

    def merge_pull(self, req: Request, number: str) -> Answer:
        item, body = self._item(number), req.body or {}
        if item is None or item["kind"] != "pr":
            return self._not_found()
        if not self._may(req.user, "write"):
            return 403, {"message": "Must have write access to merge"}, {}
        self._sync(item)
        if item["state"] != "open":
            return 405, {"message": "Pull Request is not mergeable"}, {}
        if body.get("sha") and body["sha"] != item["head_sha"]:
            return 409, {"message": "Head branch was modified. Review and try the merge again."}, {}
        title = (
            body.get("commit_title")
            or f"Merge pull request #{item['number']} from {self.owner}/{item['head']}"
        )
        sha = self.repo.merge(item["base"], item["base_sha"], item["head_sha"], title)
        if sha is None:
            return 405, {"message": "Pull Request is not mergeable"}, {}
        item.update(
            state="closed",
            merged=True,
            merge_sha=sha,
            merged_by=req.user,
            merged_at=_now(),
            closed_at=_now(),
        )
        return 200, {"sha": sha, "merged": True, "message": "Pull Request successfully merged"}, {}

    def list_reviews(self, req: Request, number: str) -> Answer:
        if self._item(number) is None:
            return self._not_found()
        rows = [self._review(int(number), r) for r in self._reviews.get(int(number), [])]
        return self._page(req, rows)

    def create_review(self, req: Request, number: str) -> Answer:
        item, body = self._item(number), req.body or {}
        if item is None or item["kind"] != "pr":
            return self._not_found()
        self._sync(item)
        event = body.get("event", "COMMENT")
        state = {
            "APPROVE": "APPROVED",
            "REQUEST_CHANGES": "CHANGES_REQUESTED",
            "COMMENT": "COMMENTED",
        }.get(event)
        if state is None:
            return (
                422,
                {"message": "Unprocessable Entity", "errors": [f"Unknown event {event}"]},
                {},
            )
        refusal = None
        if item["state"] != "open":
            refusal = "Pull request is closed"
        elif req.user == item["user"] and state == "APPROVED":
            refusal = "Review Can not approve your own pull request"
        elif req.user == item["user"] and state == "CHANGES_REQUESTED":
            refusal = "Review Can not request changes on your own pull request"
        if refusal:  # this endpoint's 422 carries its errors as plain strings
            return 422, {"message": "Unprocessable Entity", "errors": [refusal]}, {}
        row = {
            "id": self._next_id("review"),
            "user": req.user,
            "body": body.get("body", ""),
            "state": state,
            "commit_id": body.get("commit_id") or item["head_sha"],
            "submitted_at": _now(),
        }
        self._reviews.setdefault(item["number"], []).append(row)
        return 200, self._review(item["number"], row), {}

    def dismiss(self, req: Request, number: str, review_id: str) -> Answer:
        if not self._may(req.user, "write"):
            return 403, {"message": "Must have write access to dismiss a review"}, {}
        for review in self._reviews.get(int(number), []):
            if review["id"] == int(review_id):
                if review["state"] not in ("APPROVED", "CHANGES_REQUESTED"):
                    return (
                        422,
                        {
                            "message": "Can not dismiss a "
                            + review["state"].lower()
                            + " pull request review"
                        },
                        {},
                    )
                review["state"] = "DISMISSED"
                return 200, self._review(int(number), review), {}
        return self._not_found()


_ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    ("GET", r"/user", FakeGitHub.get_user),
    ("GET", r"/app", FakeGitHub.get_app),
    ("POST", r"/app/installations/(\d+)/access_tokens", FakeGitHub.installation_token),
    ("GET", r"/rate_limit", FakeGitHub.rate_limit),
    ("GET", r"{repo}", FakeGitHub.get_repo),
    ("GET", r"{repo}/collaborators/([^/]+)/permission", FakeGitHub.permission_of),
    ("GET", r"{repo}/commits/([^/]+)/status", FakeGitHub.combined_status),
    ("POST", r"{repo}/statuses/([0-9a-f]{40})", FakeGitHub.create_status),
    ("GET", r"{repo}/issues", FakeGitHub.list_issues),
    ("POST", r"{repo}/issues", FakeGitHub.create_issue),
    ("PATCH", r"{repo}/issues/comments/(\d+)", FakeGitHub.edit_comment),
    ("GET", r"{repo}/issues/(\d+)", FakeGitHub.get_issue),
    ("PATCH", r"{repo}/issues/(\d+)", FakeGitHub.edit_issue),
    ("GET", r"{repo}/issues/(\d+)/comments", FakeGitHub.list_comments),
    ("POST", r"{repo}/issues/(\d+)/comments", FakeGitHub.create_comment),
    ("POST", r"{repo}/issues/(\d+)/labels", FakeGitHub.add_labels),
    ("DELETE", r"{repo}/issues/(\d+)/labels/([^/]+)", FakeGitHub.remove_label),
    ("GET", r"{repo}/pulls", FakeGitHub.list_pulls),
    ("POST", r"{repo}/pulls", FakeGitHub.create_pull),
    ("GET", r"{repo}/pulls/(\d+)", FakeGitHub.get_pull),
    ("PATCH", r"{repo}/pulls/(\d+)", FakeGitHub.edit_pull),
    ("GET", r"{repo}/pulls/(\d+)/files", FakeGitHub.pull_files),
    ("PUT", r"{repo}/pulls/(\d+)/merge", FakeGitHub.merge_pull),
    ("GET", r"{repo}/pulls/(\d+)/reviews", FakeGitHub.list_reviews),
    ("POST", r"{repo}/pulls/(\d+)/reviews", FakeGitHub.create_review),
    ("PUT", r"{repo}/pulls/(\d+)/reviews/(\d+)/dismissals", FakeGitHub.dismiss),
]


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
