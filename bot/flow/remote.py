"""The bot's checkout and the forge's repository, kept in step (GitHub; a no-op locally).

On the local forge the bot's checkout *is* the repository.  On GitHub it is a clone (a
runner's checkout, or the server's): before an event the base branch is fetched, before
a pull request is read as git its head and base commits are fetched by id (a fork's
head is reachable only that way), and a branch the bot drafted is pushed before its pull
request is opened.  The bot reads commits, never the working tree.
"""

from __future__ import annotations

from bot.flow.services import Services
from bot.forge.base import PullRequest


def sync_base(svc: Services) -> None:
    if svc.remote is not None:
        base = svc.config.base_branch
        svc.remote.fetch(svc.root, [f"+refs/heads/{base}:refs/heads/{base}"])


def fetch_pull(svc: Services, pr: PullRequest) -> None:
    if svc.remote is not None:
        refs = [f"+{pr.head_sha}:refs/infrabot/pr/{pr.number}/head"]
        if pr.state == "open":
            refs.append(f"+{pr.base_sha}:refs/infrabot/pr/{pr.number}/base")
        svc.remote.fetch(svc.root, refs)


def publish(svc: Services, branch: str, sha: str) -> None:
    if svc.remote is not None:
        svc.remote.push_branch(svc.root, branch, sha)
