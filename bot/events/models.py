"""What happened, as frozen values: the one shape every entry point builds.

A GitHub webhook, a GitHub Actions run and the local CLI each become one of these
events (or an ``Ignored`` / ``Refused`` value); nothing deeper reads a raw payload.

Every event carries ``delivery``, a key that names *this* happening: GitHub's
``X-GitHub-Delivery``, the Actions run (``actions:<run id>``, so a re-run keys the same),
or the local forge's ids.  The router keys its writes on it, so handling the same
delivery twice changes nothing more.

``Actor.is_bot``: a login ending in ``[bot]`` or of type ``Bot`` is never a person,
whatever else the payload says about it.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from bot.alerts.payload import AlertGroup

Source = Literal["webhook", "actions", "cli"]
ReviewState = Literal["approved", "changes_requested", "commented"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Actor(_Frozen):
    login: str
    type: str = "User"
    """GitHub's account type: ``User``, ``Bot``, ``Organization`` or ``Mannequin``."""

    @property
    def is_bot(self) -> bool:
        return self.type == "Bot" or self.login.endswith("[bot]")


class _Event(_Frozen):
    source: Source
    delivery: str
    repository: str | None = None
    """``owner/name`` on GitHub; None for the local forge."""
    sender: Actor


class IssueOpened(_Event):
    kind: Literal["issue.opened"] = "issue.opened"
    number: int
    title: str
    body: str
    author: Actor
    labels: tuple[str, ...] = ()


class IssueEdited(_Event):
    kind: Literal["issue.edited"] = "issue.edited"
    number: int
    title: str
    body: str
    author: Actor
    labels: tuple[str, ...] = ()


class CommentCreated(_Event):
    kind: Literal["comment.created"] = "comment.created"
    number: int
    comment_id: int
    body: str
    author: Actor
    on_pull_request: bool


class ReviewSubmitted(_Event):
    kind: Literal["review.submitted"] = "review.submitted"
    number: int
    review_id: int | None
    author: Actor
    state: ReviewState
    commit_sha: str


class ReviewDismissed(_Event):
    kind: Literal["review.dismissed"] = "review.dismissed"
    number: int
    review_id: int | None
    author: Actor
    """Whose review was dismissed (``sender`` is who dismissed it)."""
    commit_sha: str


class PullRequestUpdated(_Event):
    """Opened, pushed to (``synchronize``) or reopened: its head needs checking."""

    kind: Literal["pr.opened", "pr.synchronize", "pr.reopened"]
    number: int
    title: str
    author: Actor
    head_branch: str
    head_sha: str
    base_branch: str
    base_sha: str
    fork: bool
    """The head lives in another repository: checked without secrets, never applied by command."""


class PullRequestMerged(_Event):
    kind: Literal["pr.merged"] = "pr.merged"
    number: int
    author: Actor
    head_branch: str
    head_sha: str
    base_branch: str
    base_sha: str
    merge_sha: str
    merged_by: Actor | None
    fork: bool


class Pushed(_Event):
    """Commits pushed to a branch (``push``): on the base branch, a merge to apply."""

    kind: Literal["push"] = "push"
    branch: str
    before: str
    after: str
    """The branch's new tip."""
    forced: bool = False


class WorkflowDispatch(_Event):
    kind: Literal["workflow.dispatch"] = "workflow.dispatch"
    ref: str
    inputs: tuple[tuple[str, str], ...] = ()


class AlertFired(_Event):
    """One Alertmanager delivery (webhook version 4): the alerts of one group, as sent.
    ``/alerts`` and ``infrabot alert ingest`` build it; the sender is the relay
    (``alertmanager``, a bot), the delivery key the payload's digest."""

    kind: Literal["alert.fired"] = "alert.fired"
    group: AlertGroup


Event = Annotated[
    IssueOpened
    | IssueEdited
    | CommentCreated
    | ReviewSubmitted
    | ReviewDismissed
    | PullRequestUpdated
    | PullRequestMerged
    | Pushed
    | WorkflowDispatch
    | AlertFired,
    Field(discriminator="kind"),
]


class Ignored(_Frozen):
    """A well-formed delivery the bot does not act on (logged, answered 2xx)."""

    kind: Literal["ignored"] = "ignored"
    event: str
    action: str | None = None
    delivery: str | None = None
    reason: str


class Refused(_Frozen):
    """A delivery that is not acceptable: ``status`` is the HTTP answer it deserves."""

    kind: Literal["refused"] = "refused"
    status: int
    reason: str


Parsed = Event | Ignored | Refused
