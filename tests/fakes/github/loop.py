"""What the whole loop needs of the fake beyond the forge contract.

* ``GET /repos/{o}/{r}/commits/{sha}/pulls`` ("list pull requests associated with a
  commit"): the pull requests merged as ``sha`` and the open ones whose head it is.
* ``open_fork_pull``: a pull request from a fork.  As on GitHub, the fork's commit is
  kept in the base repository under ``refs/pull/<n>/head`` (so it can be fetched by id),
  and the head side of the pull request names the fork's repository.
* ``push_direct``: someone pushes a commit straight to a branch (no pull request).

The route is registered into ``rest.ROUTES`` on import (``fakes.github`` imports this).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fakes.github.rest import ROUTES, Answer, Request, Rest, _now

if TYPE_CHECKING:
    from fakes.github.server import FakeGitHub


def commit_pulls(self: Rest, req: Request, sha: str) -> Answer:
    if not self.repo.has_commit(sha):
        return 422, {"message": f"No commit found for SHA: {sha}"}, {}
    rows = []
    for item in sorted(self._items.values(), key=lambda i: i["number"]):
        if item["kind"] != "pr":
            continue
        self._sync(item)
        merged_as = item.get("merge_sha") == sha
        open_at = item["state"] == "open" and item["head_sha"] == sha
        if merged_as or open_at:
            rows.append(self._pull(item))
    return self._page(req, rows)


ROUTES.append(("GET", r"{repo}/commits/([0-9a-f]{40})/pulls", commit_pulls))


def _commit_files(fake: FakeGitHub, parent: str, files: dict[str, str], message: str) -> str:
    """A commit on ``parent`` with ``files`` written (made in a scratch clone)."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "w"
        env = {
            **os.environ,
            "GIT_AUTHOR_NAME": "someone",
            "GIT_AUTHOR_EMAIL": "someone@example.com",
            "GIT_COMMITTER_NAME": "someone",
            "GIT_COMMITTER_EMAIL": "someone@example.com",
        }

        def git(*args: str) -> str:
            done = subprocess.run(
                ["git", *args], cwd=work, env=env, capture_output=True, text=True, check=True
            )
            return done.stdout.strip()

        subprocess.run(
            ["git", "clone", "-q", "--no-checkout", str(fake.repo.path), str(work)],
            check=True,
            capture_output=True,
        )
        git("checkout", "-q", "--detach", parent)
        for name, text in files.items():
            path = work / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        git("add", "--all")
        git("commit", "-q", "-m", message)
        sha = git("rev-parse", "HEAD")
        git("push", "-q", str(fake.repo.path), f"{sha}:refs/infrabot-fake/scratch/{sha}")
    fake.repo.git("update-ref", "-d", f"refs/infrabot-fake/scratch/{sha}")
    return sha


def open_fork_pull(
    fake: FakeGitHub, login: str, title: str, files: dict[str, str], body: str = ""
) -> int:
    """``login`` opens a pull request from their fork ``<login>/<name>`` into the default
    branch, changing ``files``; returns its number."""
    base = fake.repo.tip(fake.default_branch)
    assert base is not None
    sha = _commit_files(fake, base, files, title)
    with fake._lock:
        number = fake._next_id("item")
        fake.repo.git("update-ref", f"refs/pull/{number}/head", sha)
        fake._items[number] = {
            "kind": "pr",
            "number": number,
            "title": title,
            "body": body,
            "user": login,
            "state": "open",
            "labels": [],
            "created_at": _now(),
            "updated_at": _now(),
            "head": f"fork-{login}-{number}",  # no such branch here: the head stays put
            "base": fake.default_branch,
            "head_sha": sha,
            "base_sha": base,
            "fork": f"{login}/{fake.name}",
        }
    return number


def push_direct(fake: FakeGitHub, branch: str, files: dict[str, str], message: str) -> str:
    """A commit pushed straight onto ``branch``; returns its sha."""
    tip = fake.repo.tip(branch)
    assert tip is not None
    sha = _commit_files(fake, tip, files, message)
    fake.repo.git("update-ref", f"refs/heads/{branch}", sha, tip)
    return sha


def state(fake: FakeGitHub) -> dict[str, Any]:
    """Issues, pull requests and comments by number, as the fake holds them (read-only)."""
    with fake._lock:
        return {
            "items": {n: dict(i) for n, i in fake._items.items()},
            "comments": [dict(c) for c in fake._comments.values()],
        }
