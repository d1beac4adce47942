"""The REST half of the fake: its state, GitHub's JSON shapes, and one handler per endpoint.

Handlers return ``(status, JSON, extra headers)``; the server (``server.py``) runs them
under its lock and passes every answer through the REST description's referee.  The
JSON builders set only what the forge reads; ``schema.complete`` fills the rest.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from fakes.github.git import BareRepo

Json = Any
Answer = tuple[int, Json, dict[str, str]]
_RANK = {"none": 0, "read": 1, "triage": 1, "write": 2, "maintain": 2, "admin": 3}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Json
    user: str | None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _id(text: str) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16)


class Rest:
    """State and endpoints; ``FakeGitHub`` adds the server, auth, faults and the referee."""

    owner: str
    name: str
    full_name: str
    default_branch: str
    private: bool
    collaborators: dict[str, str]
    repo: BareRepo
    bot_login: str
    app_id: int
    installation_id: int
    app_slug: str
    tokens: dict[str, str]
    url: str
    git_url: str

    def _init_state(self) -> None:
        self._items: dict[int, dict[str, Any]] = {}
        self._comments: dict[int, dict[str, Any]] = {}
        self._reviews: dict[int, list[dict[str, Any]]] = {}
        self._statuses: dict[str, list[dict[str, Any]]] = {}
        self._next = {"item": 1, "comment": 1001, "review": 5001, "status": 9001}

    @property
    def _api(self) -> str:
        return f"{self.url}/repos/{self.full_name}"

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
        return _RANK[self.permission(login)] >= _RANK[need]

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

    def _side(self, branch: str, sha: str, fork: str | None = None) -> Json:
        owner = fork.split("/")[0] if fork else self.owner
        repo = self._repository()
        if fork:  # a fork's pull request: its head lives in the fork (see fakes/github/forks.py)
            repo = {**repo, "id": _id(fork), "full_name": fork, "owner": self._user(owner)}
        return {
            "label": f"{owner}:{branch}",
            "ref": branch,
            "sha": sha,
            "user": self._user(owner),
            "repo": repo,
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
            "head": self._side(item["head"], item["head_sha"], item.get("fork")),
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
        may = {k: self._may(req.user, k) for k in ("admin", "write", "read")}
        mine = {"admin": may["admin"], "push": may["write"], "pull": may["read"]}
        return 200, {**self._repository(), "permissions": mine}, {}

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


ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    ("GET", r"/user", Rest.get_user),
    ("GET", r"/app", Rest.get_app),
    ("POST", r"/app/installations/(\d+)/access_tokens", Rest.installation_token),
    ("GET", r"/rate_limit", Rest.rate_limit),
    ("GET", r"{repo}", Rest.get_repo),
    ("GET", r"{repo}/collaborators/([^/]+)/permission", Rest.permission_of),
    ("GET", r"{repo}/commits/([^/]+)/status", Rest.combined_status),
    ("POST", r"{repo}/statuses/([0-9a-f]{40})", Rest.create_status),
    ("GET", r"{repo}/issues", Rest.list_issues),
    ("POST", r"{repo}/issues", Rest.create_issue),
    ("PATCH", r"{repo}/issues/comments/(\d+)", Rest.edit_comment),
    ("GET", r"{repo}/issues/(\d+)", Rest.get_issue),
    ("PATCH", r"{repo}/issues/(\d+)", Rest.edit_issue),
    ("GET", r"{repo}/issues/(\d+)/comments", Rest.list_comments),
    ("POST", r"{repo}/issues/(\d+)/comments", Rest.create_comment),
    ("POST", r"{repo}/issues/(\d+)/labels", Rest.add_labels),
    ("DELETE", r"{repo}/issues/(\d+)/labels/([^/]+)", Rest.remove_label),
    ("GET", r"{repo}/pulls", Rest.list_pulls),
    ("POST", r"{repo}/pulls", Rest.create_pull),
    ("GET", r"{repo}/pulls/(\d+)", Rest.get_pull),
    ("PATCH", r"{repo}/pulls/(\d+)", Rest.edit_pull),
    ("GET", r"{repo}/pulls/(\d+)/files", Rest.pull_files),
    ("PUT", r"{repo}/pulls/(\d+)/merge", Rest.merge_pull),
    ("GET", r"{repo}/pulls/(\d+)/reviews", Rest.list_reviews),
    ("POST", r"{repo}/pulls/(\d+)/reviews", Rest.create_review),
    ("PUT", r"{repo}/pulls/(\d+)/reviews/(\d+)/dismissals", Rest.dismiss),
]
