"""Helpers for the hostile suite: a person's branch with arbitrary files (bytes, symlinks),
what the bot posted about a PR, and the checks every hostile case ends with."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.ledger import EstateLock

ROOT = Path(__file__).resolve().parents[2]
Cli = Callable[..., tuple[int, str]]
Edit = Callable[[Path], None]


def git(repo: Path, *args: str) -> str:
    env = os.environ | {
        "GIT_AUTHOR_NAME": "bob",
        "GIT_AUTHOR_EMAIL": "b@x",
        "GIT_COMMITTER_NAME": "bob",
        "GIT_COMMITTER_EMAIL": "b@x",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


def push_branch(repo: Path, branch: str, edit: Callable[[Path], None]) -> None:
    """A person's branch: ``edit`` changes a worktree of main, then it is committed."""
    tree = repo.parent / f"wt-{branch.replace('/', '-')}"
    git(repo, "worktree", "add", "-q", "-b", branch, str(tree), "main")
    edit(tree)
    git(tree, "add", "-A")
    git(tree, "commit", "-q", "-m", f"edit {branch}")
    git(repo, "worktree", "remove", "--force", str(tree))


def writing(files: dict[str, str | bytes]) -> Callable[[Path], None]:
    def edit(tree: Path) -> None:
        for rel, data in files.items():
            path = tree / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                path.write_bytes(data)
            else:
                path.write_text(data)

    return edit


def open_pr(cli: Cli, repo: Path, edit: Callable[[Path], None], branch: str = "bob/x") -> int:
    push_branch(repo, branch, edit)
    code, out = cli("pr", "open", branch, "--as", "bob", "--json")
    assert code == 0, out
    return int(json.loads(out)["number"])


def pr_json(cli: Cli, number: int) -> dict[str, Any]:
    code, out = cli("pr", "show", str(number), "--json")
    assert code == 0, out
    shown: dict[str, Any] = json.loads(out)
    return shown


def posted(cli: Cli, number: int) -> str:
    """Everything the bot published about a PR: body, comments, status descriptions."""
    shown = pr_json(cli, number)
    parts = [shown["pull_request"]["body"], shown["pull_request"]["title"]]
    parts += [c["body"] for c in shown["comments"]]
    parts += [f"{s['context']} {s['state']} {s.get('description', '')}" for s in shown["statuses"]]
    return "\n".join(parts)


def statuses(cli: Cli, number: int) -> dict[str, str]:
    return {s["context"]: s["state"] for s in pr_json(cli, number)["statuses"]}


def assert_failing_and_never_applied(cli: Cli, repo: Path, number: int) -> None:
    """The PR has a failing status (never none); /apply and merge are refused; main did not
    move; nothing was applied; no lock is left."""
    assert statuses(cli, number).get("infrabot/validate") == "failure"
    main_before = git(repo, "rev-parse", "main")
    cli("pr", "review", str(number), "--approve", "--as", "alice")
    code, _ = cli("pr", "comment", str(number), "/apply", "--as", "alice")
    assert code == 1
    code, _ = cli("pr", "merge", str(number), "--as", "alice")
    assert code == 1
    assert git(repo, "rev-parse", "main") == main_before
    assert pr_json(cli, number)["pull_request"]["state"] == "open"
    assert not (repo / ".infrabot/estate").exists()
    assert EstateLock(repo / ".infrabot/ledger.db").holder() is None
