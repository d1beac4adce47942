"""The fake's git side: a real bare repository, served by ``git http-backend`` (CGI).

Pushes and fetches go through git's own smart-HTTP server; the fake only checks the
token in the Basic credentials (any user name, the token as the password, as GitHub
takes them) and runs the CGI.  Merges are made in the bare repository with
``git merge-tree --write-tree`` and ``git commit-tree``, and the base branch moves by a
compare-and-swap ``update-ref``, as a server would.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

_ENV = {
    "GIT_AUTHOR_NAME": "GitHub",
    "GIT_AUTHOR_EMAIL": "noreply@github.invalid",
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


class BareRepo:
    def __init__(self, path: Path) -> None:
        self.path = path

    def git(
        self, *args: str, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(self.path), *args],
            env={**os.environ, **_ENV},
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
        )

    def create(self, default_branch: str) -> None:
        self.path.mkdir(parents=True)
        self.git("init", "--bare", "--initial-branch", default_branch)
        self.git("config", "http.receivepack", "true")
        readme = self.git("hash-object", "-w", "--stdin", stdin="# infra\n").stdout.strip()
        tree = self.git("mktree", stdin=f"100644 blob {readme}\tREADME.md\n").stdout.strip()
        sha = self.git("commit-tree", tree, "-m", "Initial commit").stdout.strip()
        self.git("update-ref", f"refs/heads/{default_branch}", sha)

    def tip(self, branch: str) -> str | None:
        loose = self.path / "refs" / "heads" / branch
        if ".." not in branch and loose.is_file():  # the common case, without a subprocess
            return loose.read_text().strip()
        done = self.git(
            "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}", check=False
        )
        return done.stdout.strip() or None

    def has_commit(self, sha: str) -> bool:
        done = self.git("cat-file", "-e", f"{sha}^{{commit}}", check=False)
        return done.returncode == 0

    def merge_tree(self, base: str, head: str) -> str | None:
        """The tree of merging ``head`` into ``base``, or None when they conflict."""
        done = self.git("merge-tree", "--write-tree", base, head, check=False)
        return done.stdout.split()[0] if done.returncode == 0 else None

    def merge(self, branch: str, base: str, head: str, message: str) -> str | None:
        tree = self.merge_tree(base, head)
        if tree is None:
            return None
        sha = self.git("commit-tree", tree, "-p", base, "-p", head, "-m", message).stdout.strip()
        moved = self.git("update-ref", f"refs/heads/{branch}", sha, base, check=False)
        return sha if moved.returncode == 0 else None

    def changed(self, base: str, head: str) -> list[tuple[str, str, int, int]]:
        """(status, path, additions, deletions) of ``base...head``."""
        names = self.git("diff", "--name-status", f"{base}...{head}").stdout.splitlines()
        stats = self.git("diff", "--numstat", f"{base}...{head}").stdout.splitlines()
        counts = {}
        for line in stats:
            add, delete, path = line.split("\t", 2)
            counts[path] = (
                int(add) if add.isdigit() else 0,
                int(delete) if delete.isdigit() else 0,
            )
        out = []
        for line in names:
            status, path = line.split("\t")[0], line.split("\t")[-1]
            word = {"A": "added", "D": "removed", "M": "modified"}.get(status[0], "changed")
            out.append((word, path, *counts.get(path, (0, 0))))
        return out


def run_cgi(
    project_root: Path,
    method: str,
    path_info: str,
    query: str,
    headers: dict[str, str],
    body: bytes,
    user: str | None,
) -> tuple[int, list[tuple[str, str]], bytes]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(project_root),
        "GIT_HTTP_EXPORT_ALL": "1",
        "REQUEST_METHOD": method,
        "PATH_INFO": path_info,
        "QUERY_STRING": query,
        "CONTENT_TYPE": headers.get("content-type", ""),
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        **_ENV,
    }
    if user:
        env["REMOTE_USER"] = user
    if "content-encoding" in headers:
        env["HTTP_CONTENT_ENCODING"] = headers["content-encoding"]
    if "git-protocol" in headers:
        env["GIT_PROTOCOL"] = headers["git-protocol"]
    done = subprocess.run(
        ["git", "http-backend"], input=body, env=env, capture_output=True, check=False
    )
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    if not _:
        head, _, payload = done.stdout.partition(b"\n\n")
    status, out = 200, []
    for line in head.decode("latin-1").splitlines():
        name, _, value = line.partition(":")
        if name.lower() == "status":
            status = int(value.strip().split()[0])
        elif name:
            out.append((name.strip(), value.strip()))
    return status, out, payload
