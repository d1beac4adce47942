"""A GitHub forge over the test-only fake, and the people who use GitHub around it.

``GitHubPeople`` plays alice, bob and carol with their own tokens through the real
PyGithub client, as they would act in GitHub's UI; the forge under test is the bot.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import git
import github
from fakes.github import FakeGitHub
from github import Auth

from bot.errors import InputError
from bot.forge.base import Comment, Issue, PullRequest, Review, ReviewState, check_review
from bot.forge.github import AppAuth, GitHubForge, GitHubSettings

_EVENTS = {"approved": "APPROVE", "changes_requested": "REQUEST_CHANGES", "commented": "COMMENT"}


def github_forge(fake: FakeGitHub, **overrides: object) -> GitHubForge:
    """The bot as a GitHub App installation, with no pauses between requests."""
    fields: dict[str, object] = {
        "repository": fake.full_name,
        "api_url": fake.url,
        "timeout": 5,
        "retries": 3,
        "backoff": 0.01,
        "seconds_between_requests": 0,
        "seconds_between_writes": 0,
        **overrides,
    }
    auth = AppAuth(
        app_id=fake.app_id,
        private_key=fake.app_private_key,  # type: ignore[arg-type]
        installation_id=fake.installation_id,
    )
    return GitHubForge(GitHubSettings.model_validate(fields), auth)


class GitHubPeople:
    def __init__(self, fake: FakeGitHub, forge: GitHubForge, clone: Path) -> None:
        self.fake, self.forge = fake, forge
        self._clients: dict[str, github.Github] = {}
        url = fake.git_url.replace("http://", f"http://alice:{fake.token('alice')}@")
        self.clone = git.Repo.clone_from(url, clone)
        self._files = iter(range(1, 10_000))

    def _repo(self, login: str) -> github.Repository.Repository:
        if login not in self._clients:
            self._clients[login] = github.Github(
                auth=Auth.Token(self.fake.token(login)),
                base_url=self.fake.url,
                seconds_between_requests=0,
                seconds_between_writes=0,
                lazy=True,
            )
        return self._clients[login].get_repo(self.fake.full_name)

    def push(self, branch: str, name: str | None = None, text: str | None = None) -> str:
        """A new commit on ``branch`` (made from main when new), pushed by the bot."""
        self.clone.remotes.origin.fetch()
        heads = [ref.remote_head for ref in self.clone.remotes.origin.refs]
        start = f"origin/{branch}" if branch in heads else "origin/main"
        self.clone.git.checkout("-B", branch, start)
        name = name or f"f{next(self._files)}"
        path = Path(self.clone.working_tree_dir or ".") / name
        path.write_text(text or name)
        self.clone.index.add([str(path)])
        actor = git.Actor("t", "t@example.com")
        sha = self.clone.index.commit(f"add {name}", author=actor, committer=actor).hexsha
        self.forge.push_branch(Path(self.clone.working_tree_dir or "."), branch, sha)
        return sha

    def create_issue(
        self, title: str, body: str, author: str, *, labels: Sequence[str] = ()
    ) -> Issue:
        made = self._repo(author).create_issue(title, body=body, labels=list(labels))
        return self.forge.issue(made.number)

    def open_pull_request(
        self, *, branch: str, base: str, title: str, body: str, issue: int | None, author: str
    ) -> PullRequest:
        made = self._repo(author).create_pull(base=base, head=branch, title=title, body=body)
        return self.forge.pull_request(made.number)

    def add_comment(self, number: int, body: str, author: str) -> Comment:
        made = self._repo(author).get_issue(number).create_comment(body)
        return next(c for c in self.forge.comments(number) if c.id == made.id)

    def add_review(self, number: int, author: str, state: ReviewState) -> Review:
        pr = self.forge.pull_request(number)
        check_review(pr, author, state)  # the local people's rules; GitHub's own are
        # tested against the fake directly (tests/test_forge_github.py)
        self._repo(author).get_pull(number).create_review(
            commit=self._repo(author).get_commit(pr.head_sha), event=_EVENTS[state]
        )
        return self.forge.pull_request(number).reviews[-1]

    def dismiss_review(self, number: int, reviewer: str, by: str) -> Review:
        reviews = list(self._repo(by).get_pull(number).get_reviews())
        decisive = [r for r in reviews if r.user.login == reviewer and r.state != "COMMENTED"]
        if not decisive or decisive[-1].state == "DISMISSED":
            raise InputError(f"@{reviewer} has no review on #{number} to dismiss")
        decisive[-1].dismiss(f"dismissed by @{by}")
        return next(
            r for r in reversed(self.forge.pull_request(number).reviews) if r.author == reviewer
        )

    def list_issues(self, state: Literal["open", "closed"] | None = None) -> list[Issue]:
        rows = self._repo("alice").get_issues(state=state or "all")
        return [self.forge.issue(i.number) for i in rows if i.pull_request is None]

    def list_pull_requests(
        self, state: Literal["open", "closed", "merged"] | None = None
    ) -> list[PullRequest]:
        rows = self._repo("alice").get_pulls(state="all")
        prs = [self.forge.pull_request(p.number) for p in rows]
        return [p for p in prs if state is None or p.state == state]

    def merge(self, number: int, by: str) -> PullRequest:
        pr = self.forge.pull_request(number)
        if pr.state != "open" and pr.state != "merged":
            raise InputError(f"pull request #{number} is {pr.state}")
        return self.forge.merge(number, pr.head_sha, by)
