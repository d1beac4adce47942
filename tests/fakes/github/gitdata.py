"""The fake's git data and contents endpoints, on the real bare repository, and the
list of a commit's statuses with their creators.

What the GitHub stores call (``bot/forge/github/stores.py``): refs (create, which fails
with 422 when the ref exists; get; list by prefix; update, fast-forward only unless
forced, by compare-and-swap; delete), commits and trees (create, read), and a file's
contents on a branch (read; write guarded by the file's blob sha, 409 when it moved).
Every write is a real git object and a real ``update-ref`` with the old value given, so
two writers racing are settled the way git settles them: one wins, the other is told.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from fakes.github.git import _ENV, BareRepo
from fakes.github.rest import Answer, Json, Request, _now

_ZERO = "0" * 40


def _validation(message: str) -> Answer:
    return 422, {"message": message, "documentation_url": "https://docs.github.com/rest"}, {}


def _missing(message: str = "Not Found") -> Answer:
    return 404, {"message": message, "documentation_url": "https://docs.github.com/rest"}, {}


def _conflict(message: str) -> Answer:
    return 409, {"message": message, "documentation_url": "https://docs.github.com/rest"}, {}


class GitData:
    """Mixed into ``FakeGitHub`` beside ``Rest`` (same state: ``repo``, ``url``…)."""

    repo: BareRepo
    url: str
    full_name: str
    _may: Callable[[str | None, str], bool]
    _statuses: dict[str, list[dict[str, Any]]]
    _status: Callable[[dict[str, Any]], Json]
    _page: Callable[[Request, list[Json]], Answer]

    @property
    def _git_api(self) -> str:
        return f"{self.url}/repos/{self.full_name}/git"

    def _run(
        self, *args: str, stdin: str | bytes | None = None, index: str | None = None
    ) -> subprocess.CompletedProcess[bytes]:
        env = {**os.environ, **_ENV}
        if index is not None:
            env["GIT_INDEX_FILE"] = index
        data = stdin.encode() if isinstance(stdin, str) else stdin
        return subprocess.run(
            ["git", "-C", str(self.repo.path), *args],
            env=env,
            input=data,
            capture_output=True,
            check=False,
        )

    def _out(self, *args: str, stdin: str | bytes | None = None, index: str | None = None) -> str:
        done = self._run(*args, stdin=stdin, index=index)
        return done.stdout.decode().strip() if done.returncode == 0 else ""

    def _resolve(self, name: str) -> str:
        """The object a full ref name points at ('' when there is no such ref)."""
        return self._out("rev-parse", "--verify", "--quiet", f"{name}^{{}}") if name else ""

    def _kind(self, sha: str) -> str:
        return self._out("cat-file", "-t", sha)

    # -- JSON -------------------------------------------------------------------------

    def _ref_json(self, name: str, sha: str) -> Json:
        return {
            "ref": name,
            "node_id": f"REF_{sha[:12]}",
            "url": f"{self._git_api}/{name}",
            "object": {"type": "commit", "sha": sha, "url": f"{self._git_api}/commits/{sha}"},
        }

    def _commit_json(self, sha: str) -> Json:
        raw = self._out("cat-file", "commit", sha)
        head, _, message = raw.partition("\n\n")
        fields = [line.split(" ", 1) for line in head.splitlines()]
        tree = next(v for k, v in fields if k == "tree")
        parents = [v for k, v in fields if k == "parent"]
        person = {"name": "GitHub", "email": "noreply@github.invalid", "date": _now()}
        return {
            "sha": sha,
            "node_id": f"C_{sha[:12]}",
            "url": f"{self._git_api}/commits/{sha}",
            "html_url": f"https://github.invalid/{self.full_name}/commit/{sha}",
            "author": person,
            "committer": person,
            "tree": {"sha": tree, "url": f"{self._git_api}/trees/{tree}"},
            "message": message,
            "parents": [
                {
                    "sha": p,
                    "url": f"{self._git_api}/commits/{p}",
                    "html_url": f"https://github.invalid/{self.full_name}/commit/{p}",
                }
                for p in parents
            ],
            "verification": {
                "verified": False,
                "reason": "unsigned",
                "signature": None,
                "payload": None,
                "verified_at": None,
            },
        }

    def _file_json(self, path: str, sha: str, content: bytes | None, ref: str) -> Json:
        api = f"{self.url}/repos/{self.full_name}"
        out: dict[str, Any] = {
            "type": "file",
            "name": path.rsplit("/", 1)[-1],
            "path": path,
            "sha": sha,
            "size": len(content or b""),
            "url": f"{api}/contents/{path}?ref={ref}",
            "git_url": f"{self._git_api}/blobs/{sha}",
            "html_url": f"https://github.invalid/{self.full_name}/blob/{ref}/{path}",
            "download_url": f"https://raw.github.invalid/{self.full_name}/{ref}/{path}",
            "_links": {
                "self": f"{api}/contents/{path}?ref={ref}",
                "git": f"{self._git_api}/blobs/{sha}",
                "html": f"https://github.invalid/{self.full_name}/blob/{ref}/{path}",
            },
        }
        if content is not None:
            out["encoding"] = "base64"
            out["content"] = base64.encodebytes(content).decode()  # GitHub wraps at 60
        return out

    # -- refs -------------------------------------------------------------------------

    def create_ref(self, req: Request) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        body = req.body or {}
        name, sha = str(body.get("ref", "")), str(body.get("sha", ""))
        if not name.startswith("refs/") or name.count("/") < 2:
            return _validation("Reference name must start with 'refs/' and have two slashes")
        if self._run("check-ref-format", name).returncode != 0:
            return _validation(f"{name} is not a valid ref name.")
        if not sha or self._kind(sha) != "commit":
            return _validation("Object does not exist")
        made = self._run("update-ref", name, sha, _ZERO)  # fails if it exists: atomic
        if made.returncode != 0:
            return _validation("Reference already exists")
        return 201, self._ref_json(name, sha), {"Location": f"{self._git_api}/{name}"}

    def get_ref(self, req: Request, ref: str) -> Answer:
        name = f"refs/{ref}"
        sha = self._resolve(name) if self._may(req.user, "read") else ""
        return (200, self._ref_json(name, sha), {}) if sha else _missing()

    def matching_refs(self, req: Request, prefix: str) -> Answer:
        if not self._may(req.user, "read"):
            return _missing()
        listed = self._out("for-each-ref", "--format=%(refname) %(objectname)", "refs/")
        rows = [line.split(" ") for line in listed.splitlines()]
        return 200, [self._ref_json(n, s) for n, s in rows if n.startswith(f"refs/{prefix}")], {}

    def update_ref(self, req: Request, ref: str) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        name, body = f"refs/{ref}", req.body or {}
        old, new = self._resolve(name), str(body.get("sha", ""))
        if not old:
            return _validation("Reference does not exist")
        if not new or self._kind(new) != "commit":
            return _validation("Object does not exist")
        forward = self._run("merge-base", "--is-ancestor", old, new).returncode == 0
        if not body.get("force") and not forward:
            return _validation("Update is not a fast forward")
        if self._run("update-ref", name, new, old).returncode != 0:  # moved meanwhile
            return _validation("Update is not a fast forward")
        return 200, self._ref_json(name, new), {}

    def delete_ref(self, req: Request, ref: str) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        name = f"refs/{ref}"
        old = self._resolve(name)
        if not old or self._run("update-ref", "-d", name, old).returncode != 0:
            return _validation("Reference does not exist")
        return 204, None, {}

    # -- commits and trees -------------------------------------------------------------

    def create_tree(self, req: Request) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        body = req.body or {}
        with tempfile.TemporaryDirectory() as scratch:
            index = os.path.join(scratch, "index")
            base = str(body.get("base_tree") or "")
            if base and self._run("read-tree", base, index=index).returncode != 0:
                return _validation("base_tree is not a valid tree")
            for entry in body.get("tree") or []:
                path, mode = str(entry.get("path", "")), str(entry.get("mode", "100644"))
                blob = entry.get("sha") or self._out(
                    "hash-object", "-w", "--stdin", stdin=str(entry.get("content", ""))
                )
                added = self._run(
                    "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", index=index
                )
                if not path or added.returncode != 0:
                    return _validation("Invalid tree info")
            tree = self._out("write-tree", index=index)
        listed = self._out("ls-tree", tree)
        entries = []
        for line in listed.splitlines():
            info, path = line.split("\t", 1)
            mode, kind, sha = info.split(" ")
            entries.append({"path": path, "mode": mode, "type": kind, "sha": sha})
        url = f"{self._git_api}/trees/{tree}"
        return 201, {"sha": tree, "url": url, "truncated": False, "tree": entries}, {}

    def create_commit(self, req: Request) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        body = req.body or {}
        tree, parents = str(body.get("tree", "")), [str(p) for p in body.get("parents") or []]
        if self._kind(tree) != "tree" or any(self._kind(p) != "commit" for p in parents):
            return _validation("Tree SHA or parent SHA does not exist")
        args = ["commit-tree", tree, *[a for p in parents for a in ("-p", p)], "-F", "-"]
        sha = self._out(*args, stdin=str(body.get("message", "")))
        return 201, self._commit_json(sha), {}

    def get_commit(self, req: Request, sha: str) -> Answer:
        if not self._may(req.user, "read") or self._kind(sha) != "commit":
            return _missing()
        return 200, self._commit_json(sha), {}

    # -- contents ----------------------------------------------------------------------

    def get_contents(self, req: Request, path: str) -> Answer:
        ref = req.query.get("ref") or "main"
        tip = self._resolve(f"refs/heads/{ref}")
        if not tip and self._kind(ref) == "commit":
            tip = ref
        if not self._may(req.user, "read") or not tip:
            return _missing(f"No commit found for the ref {ref}")
        path = path.strip("/")
        kind = self._out("cat-file", "-t", f"{tip}:{path}")
        if kind == "blob":
            sha = self._out("rev-parse", f"{tip}:{path}")
            content = self._run("cat-file", "blob", sha).stdout
            return 200, self._file_json(path, sha, content, ref), {}
        if kind == "tree":
            rows = []
            for line in self._out("ls-tree", "-l", f"{tip}:{path}").splitlines():
                info, name = line.split("\t", 1)
                _, what, sha, size = info.split()
                full = f"{path}/{name}".strip("/")
                row = self._file_json(full, sha, None, ref)
                row.update(
                    type="file" if what == "blob" else "dir",
                    size=int(size) if size.isdigit() else 0,
                )
                rows.append(row)
            return 200, rows, {}
        return _missing()

    def put_contents(self, req: Request, path: str) -> Answer:
        if not self._may(req.user, "write"):
            return _missing()
        body, path = req.body or {}, path.strip("/")
        branch = str(body.get("branch") or "main")
        tip = self._resolve(f"refs/heads/{branch}")
        if not tip:
            return _missing(f"Branch {branch} not found")
        current = self._out("rev-parse", "--verify", "--quiet", f"{tip}:{path}")
        given = body.get("sha")
        if current and not given:
            return _validation('Invalid request.\n\n"sha" wasn\'t supplied.')
        if given and given != current:
            return _conflict(f"{path} does not match {given}")
        try:
            content = base64.b64decode(str(body.get("content", "")), validate=True)
        except ValueError:
            return _validation("content is not valid Base64")
        blob = self._out("hash-object", "-w", "--stdin", stdin=content)
        with tempfile.TemporaryDirectory() as scratch:
            index = os.path.join(scratch, "index")
            self._run("read-tree", tip, index=index)
            self._run("update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", index=index)
            tree = self._out("write-tree", index=index)
        message = str(body.get("message") or f"Update {path}")
        commit = self._out("commit-tree", tree, "-p", tip, "-F", "-", stdin=message)
        if self._run("update-ref", f"refs/heads/{branch}", commit, tip).returncode != 0:
            return _conflict(f"{branch} moved while {path} was written")  # another writer won
        answer = {
            "content": self._file_json(path, blob, None, branch),
            "commit": self._commit_json(commit),
        }
        return (200 if current else 201), answer, {}

    # -- statuses with their creators (the check record's seal) -------------------------

    def list_statuses(self, req: Request, ref: str) -> Answer:
        sha = self.repo.tip(ref) or ref
        if not self._may(req.user, "read") or not self.repo.has_commit(sha):
            return _missing()
        rows = sorted(self._statuses.get(sha, []), key=lambda s: -s["id"])  # newest first
        return self._page(req, [self._status(s) for s in rows])


ROUTES: list[tuple[str, str, Callable[..., Answer]]] = [
    ("POST", r"{repo}/git/refs", GitData.create_ref),
    ("GET", r"{repo}/git/ref/(.+)", GitData.get_ref),
    ("GET", r"{repo}/git/matching-refs/(.*)", GitData.matching_refs),
    ("PATCH", r"{repo}/git/refs/(.+)", GitData.update_ref),
    ("DELETE", r"{repo}/git/refs/(.+)", GitData.delete_ref),
    ("POST", r"{repo}/git/trees", GitData.create_tree),
    ("POST", r"{repo}/git/commits", GitData.create_commit),
    ("GET", r"{repo}/git/commits/([0-9a-f]{40})", GitData.get_commit),
    ("GET", r"{repo}/contents/(.*)", GitData.get_contents),
    ("PUT", r"{repo}/contents/(.+)", GitData.put_contents),
    ("GET", r"{repo}/commits/([^/]+)/statuses", GitData.list_statuses),
]
