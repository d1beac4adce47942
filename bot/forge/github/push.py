"""Pushing a branch to the GitHub remote with GitPython, the token kept out of sight.

The credentials travel as an ``http.extraHeader`` set through ``GIT_CONFIG_*``
environment variables: never in the remote URL or the command line, so neither a
``GitCommandError`` message nor ``ps`` shows them.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

import git

from bot.errors import InfrabotError


def push_branch(repo_path: Path, remote_url: str, branch: str, sha: str, token: str) -> None:
    """Make ``branch`` on the remote point at ``sha`` (forced: the bot owns its branches)."""
    _git(repo_path, token, f"push {branch!r} to", "push", remote_url, f"+{sha}:refs/heads/{branch}")


def fetch(repo_path: Path, remote_url: str, refspecs: Sequence[str], token: str) -> None:
    """Fetch ``refspecs`` (refs or commit ids) from the remote.  ``--update-head-ok``: the
    runner's checkout has the base branch checked out, and the bot reads commits, never
    the working tree, so its branch ref may move under it."""
    args = ("fetch", "--quiet", "--no-tags", "--update-head-ok", remote_url, *refspecs)
    _git(repo_path, token, "fetch from", *args)


def _git(repo_path: Path, token: str, what: str, *args: str) -> None:
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    env = {
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
    }
    repo = git.Repo(repo_path)
    try:
        with repo.git.custom_environment(**env):
            repo.git.execute(["git", *args])
    except git.GitCommandError as exc:
        detail = _scrub(str(exc.stderr or ""), token, basic).strip().splitlines()
        reason = detail[-1] if detail else f"exit {exc.status}"
        raise InfrabotError(f"could not {what} GitHub: {reason}") from None
    finally:
        repo.close()


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


__all__ = ["fetch", "push_branch"]
