"""The forge interface: issues, pull requests, comments, reviews, statuses, permissions.

Theory of operation
-------------------
Issues and pull requests share one number space, as on GitHub.  Every comment the bot
owns carries a hidden topic marker (``<!-- infrabot:topic=plan -->``) and is written with
``ensure_comment``, which edits the bot's comment with that topic in place instead of
adding another: a redelivered event changes nothing more.  Statuses are *set* per
(sha, context).  ``Comment.body`` never contains the marker; ``Comment.topic`` holds it.

A topic is only meaningful on a comment written by the bot: anyone can paste a marker
into their own comment, so match ``author`` as well as ``topic`` (``ensure_comment``
does).  Everything the bot posts — comments, pull request bodies — goes through
``posted``: credentials masked, no topic marker inside the body, cut to GitHub's size
limit keeping its head and its end.  Forges call it where they write, so no caller can
forget it.  An approval counts only on the pull request's current head and never when it
comes from the PR's author (``PullRequest.approvals``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from bot.errors import InputError
from bot.execute.redact import redact
from bot.markdown import MARKER_START, bound

BOT_LOGIN = "infrabot"
MAX_COMMENT = 65536
"""GitHub's limit on an issue or PR comment body, in characters (marker included)."""
MAX_TITLE = 256
"""GitHub's limit on an issue or pull request title, in characters."""

_TOPIC = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}")
_MARKER = re.compile(r"<!-- infrabot:topic=([A-Za-z0-9][A-Za-z0-9._:/-]{0,99}) -->\n?")

StatusState = Literal["pending", "success", "failure", "error"]
ReviewState = Literal["approved", "changes_requested", "commented", "dismissed"]


class Permission(StrEnum):
    NONE = "none"
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"

    def at_least(self, other: Permission) -> bool:
        return _RANK[self] >= _RANK[other]


_RANK = {Permission.NONE: 0, Permission.READ: 1, Permission.WRITE: 2, Permission.ADMIN: 3}


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Comment(_Frozen):
    id: int
    number: int
    author: str
    body: str
    created_at: datetime
    topic: str | None = None


class Review(_Frozen):
    author: str
    state: ReviewState
    commit_sha: str
    created_at: datetime


class Issue(_Frozen):
    number: int
    title: str
    body: str
    author: str
    state: Literal["open", "closed"]
    labels: tuple[str, ...] = ()
    created_at: datetime
    is_pull_request: bool = False
    """True when the number belongs to a pull request (GitHub's issues API returns both)."""


class PullRequest(_Frozen):
    number: int
    title: str
    body: str
    author: str
    head_branch: str
    base_branch: str
    head_sha: str
    base_sha: str
    state: Literal["open", "closed", "merged"]
    issue: int | None = None
    merge_sha: str | None = None
    reviews: tuple[Review, ...] = ()
    created_at: datetime | None = None
    fork: bool = False
    """The head lives in another repository (a fork): never applied by command."""
    merged_by: str | None = None

    def latest_reviews(self) -> tuple[Review, ...]:
        """Each reviewer's latest decisive review (approved, changes requested or dismissed).

        A "commented" review neither grants nor dismisses (as on GitHub).
        """
        latest: dict[str, Review] = {}
        for review in self.reviews:
            if review.state != "commented":
                latest[review.author] = review
        return tuple(latest.values())

    def approvals(self) -> tuple[str, ...]:
        """Approvers whose latest decisive review approves the current head (never the
        PR's author).  Who may approve is the gate's business (bot/commands/authorize)."""
        latest = {r.author: r for r in self.latest_reviews()}
        return tuple(
            author
            for author, review in latest.items()
            if review.state == "approved"
            and review.commit_sha == self.head_sha
            and author != self.author
        )


class Status(_Frozen):
    sha: str
    context: str
    state: StatusState
    description: str


class Forge(Protocol):
    def issue(self, number: int) -> Issue: ...

    def pull_request(self, number: int) -> PullRequest: ...

    def comments(self, number: int) -> list[Comment]: ...

    def ensure_comment(
        self, number: int, topic: str, body: str, *, author: str = BOT_LOGIN
    ) -> Comment: ...

    def open_pull_request(
        self, *, branch: str, base: str, title: str, body: str, issue: int | None, author: str
    ) -> PullRequest: ...

    def update_pull_request(self, number: int, *, body: str) -> PullRequest: ...

    def set_status(self, sha: str, context: str, state: StatusState, description: str) -> None: ...

    def statuses(self, sha: str) -> list[Status]: ...

    def permission(self, user: str) -> Permission: ...

    def close_issue(self, number: int, comment: str | None = None) -> None: ...

    def add_labels(self, number: int, *labels: str) -> None:
        """Add labels to issue ``number`` (one it already has is kept once)."""
        ...

    def remove_label(self, number: int, label: str) -> None:
        """Remove ``label`` from issue ``number`` (absent: nothing happens)."""
        ...

    def create_issue(
        self, title: str, body: str, author: str, *, labels: Sequence[str] = ()
    ) -> Issue: ...

    def merged_pull_request(self, sha: str) -> PullRequest | None:
        """The pull request whose merge made commit ``sha`` (None: no merged PR did, e.g. a
        direct push).  GitHub: "list pull requests associated with a commit"."""
        ...

    def merge(self, number: int, expected_head_sha: str, by: str) -> PullRequest:
        """Merge exactly ``expected_head_sha``; refuse (InputError) if the head moved.

        The local forge does the git merge; GitHub's merge API has the same ``sha`` guard.
        Returns the merged pull request, its ``merge_sha`` set."""
        ...


# Pure helpers shared by every forge implementation, so they agree on the rules.


def check_topic(topic: str) -> str:
    if not _TOPIC.fullmatch(topic):
        raise InputError(
            f"comment topic {topic!r} must be 1-100 characters of letters, digits and ._:/-"
        )
    return topic


def with_marker(topic: str, body: str) -> str:
    """The raw comment text the forge stores: hidden marker, then the visible body."""
    marker = f"<!-- infrabot:topic={check_topic(topic)} -->\n"
    return check_body(marker + posted(body, MAX_COMMENT - len(marker)))


def posted(body: str, limit: int = MAX_COMMENT) -> str:
    """What the bot may post of ``body``: redacted, without a topic marker, within ``limit``."""
    safe = redact(body).replace(MARKER_START, MARKER_START.replace(":", "\u2060:"))
    return bound(safe, limit)


def split_marker(raw: str) -> tuple[str | None, str]:
    """(topic, visible body) of a raw comment; a marker counts only at the very start."""
    found = _MARKER.match(raw)
    if found is None:
        return None, raw
    return found.group(1), raw[found.end() :]


def posted_title(title: str) -> str:
    """A title the bot may post: redacted, one line, within GitHub's 256 characters."""
    return " ".join(redact(title).split())[:MAX_TITLE]


def check_body(raw: str) -> str:
    if len(raw) > MAX_COMMENT:
        raise InputError(f"comment body is {len(raw)} characters; the limit is {MAX_COMMENT}")
    return raw


def check_review(pr: PullRequest, author: str, state: ReviewState) -> None:
    if state == "dismissed":
        raise InputError("a review is dismissed by someone else: use dismiss_review")
    if pr.state != "open":
        raise InputError(f"pull request #{pr.number} is {pr.state}: it cannot be reviewed")
    if author == pr.author and state == "approved":
        raise InputError("you cannot approve your own pull request")
    if author == pr.author and state == "changes_requested":
        raise InputError("you cannot request changes on your own pull request")


def not_found(number: int) -> InputError:
    return InputError(f"no issue or pull request #{number}")


class Remote(Protocol):
    """Where the forge keeps the repository, when that is not the bot's own checkout
    (GitHub): the bot fetches what it reads and pushes the branches it drafts."""

    def fetch(self, repo_path: Path, refspecs: Sequence[str]) -> None: ...

    def push_branch(self, repo_path: Path, branch: str, sha: str) -> None: ...


def bot_topics(forge: Forge, number: int) -> set[str]:
    """The topics of the bot's own comments on issue or PR ``number``: what it has already
    said there (a plan, a PR, a question, the reply to comment N)."""
    return {c.topic for c in forge.comments(number) if c.author == BOT_LOGIN and c.topic}


class ConversationForge(Forge, Protocol):
    """A forge the bot also drives for people: the local forge, where the ``infrabot`` CLI
    opens issues, comments, reviews and records merges (on GitHub people do that in the UI)."""

    def list_issues(self, state: Literal["open", "closed"] | None = None) -> list[Issue]: ...

    def list_pull_requests(
        self, state: Literal["open", "closed", "merged"] | None = None
    ) -> list[PullRequest]: ...

    def add_comment(self, number: int, body: str, author: str) -> Comment: ...

    def add_review(self, number: int, author: str, state: ReviewState) -> Review: ...

    def mark_merged(self, number: int, merge_sha: str, by: str) -> PullRequest: ...

    def dismiss_review(self, number: int, reviewer: str, by: str) -> Review: ...
