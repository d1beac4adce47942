"""Pushing a branch to the GitHub remote with GitPython, the token kept out of sight.

The credentials travel as an ``http.extraHeader`` set through ``GIT_CONFIG_*``
environment variables: never in the remote URL or the command line, so neither a
``GitCommandError`` message nor ``ps`` shows them.
"""

from __future__ import annotations

import base64
from pathlib import Path

import git

from bot.errors import InfrabotError


def push_branch(repo_path: Path, remote_url: str, branch: str, sha: str, token: str) -> None:
    """Make ``branch`` on the remote point at ``sha`` (forced: the bot owns its branches)."""
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
            repo.git.push(remote_url, f"+{sha}:refs/heads/{branch}")
    except git.GitCommandError as exc:
        detail = _scrub(str(exc.stderr or ""), token, basic).strip().splitlines()
        reason = detail[-1] if detail else f"exit {exc.status}"
        raise InfrabotError(f"could not push {branch!r} to GitHub: {reason}") from None
    finally:
        repo.close()


def _scrub(text: str, *secrets: str) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


__all__ = ["push_branch"]
