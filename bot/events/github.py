"""Events from GitHub: a webhook delivery (headers + body) or a GitHub Actions run.

Theory of operation
-------------------
Cheap checks come before expensive ones, and nothing unauthenticated is parsed: the
body's size is bounded first, then its signature is checked (``signature_ok``: fails
closed), and only then is it decoded as JSON.  The payload is validated once into small
pydantic models of just the fields the bot reads (GitHub adds fields freely; a missing
or mistyped field we need is a ``Refused`` naming it).  An event or action the bot does
not act on is ``Ignored`` with the reason; nothing here raises on any input.

GitHub Actions runs are already authenticated by GitHub (the event file is written by
the runner), so ``parse_actions`` skips the signature and keys the delivery on the run
id: a re-run of the same workflow run is the same delivery.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.events.models import (
    Actor,
    CommentCreated,
    Event,
    Ignored,
    IssueEdited,
    IssueOpened,
    Parsed,
    PullRequestMerged,
    PullRequestUpdated,
    Pushed,
    Refused,
    ReviewDismissed,
    ReviewSubmitted,
    Source,
    WorkflowDispatch,
)
from bot.events.signature import signature_ok

MAX_BODY = 4 * 1024 * 1024
"""Bytes. GitHub caps deliveries at 25 MB; the events the bot reads are a few dozen KB,
and three 65,536-character bodies escaped as JSON stay under this."""


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class _User(_Payload):
    login: str
    type: str = "User"

    def actor(self) -> Actor:
        return Actor(login=self.login, type=self.type)


class _Repo(_Payload):
    full_name: str


class _Label(_Payload):
    name: str


class _Issue(_Payload):
    number: int
    title: str
    body: str | None = None
    user: _User
    labels: list[_Label] = []
    pull_request: dict[str, Any] | None = None


class _Comment(_Payload):
    id: int
    body: str | None = None
    user: _User


class _Ref(_Payload):
    ref: str
    sha: str
    repo: _Repo | None = None


class _Pull(_Payload):
    number: int
    title: str
    user: _User
    head: _Ref
    base: _Ref
    merged: bool | None = None
    merge_commit_sha: str | None = None
    merged_by: _User | None = None

    def fork(self) -> bool:
        return (
            self.head.repo is None
            or self.base.repo is None
            or (self.head.repo.full_name != self.base.repo.full_name)
        )


class _Review(_Payload):
    id: int
    user: _User | None = None
    state: str
    commit_id: str


class _Envelope(_Payload):
    action: str | None = None
    sender: _User
    repository: _Repo | None = None


class _IssuesPayload(_Envelope):
    issue: _Issue


class _CommentPayload(_Envelope):
    issue: _Issue
    comment: _Comment


class _PullPayload(_Envelope):
    pull_request: _Pull


class _ReviewPayload(_Envelope):
    pull_request: _Pull
    review: _Review


class _PushPayload(_Envelope):
    ref: str
    before: str
    after: str
    deleted: bool = False
    forced: bool = False


class _DispatchPayload(_Envelope):
    ref: str
    inputs: dict[str, str | int | float | bool | None] | None = None


_GHOST = _User(login="ghost")  # GitHub's stand-in for a deleted account


def _common(p: _Envelope, source: Source, delivery: str) -> dict[str, Any]:
    return {
        "source": source,
        "delivery": delivery,
        "repository": p.repository.full_name if p.repository else None,
        "sender": p.sender.actor(),
    }


def _issues(data: Any, source: Source, delivery: str) -> Parsed:
    p = _IssuesPayload.model_validate(data)
    if p.action not in ("opened", "edited"):
        return _ignore("issues", p.action, delivery, "only opened and edited issues are read")
    if p.issue.pull_request is not None:
        return _ignore("issues", p.action, delivery, "a pull request, not an issue")
    fields = {
        **_common(p, source, delivery),
        "number": p.issue.number,
        "title": p.issue.title,
        "body": p.issue.body or "",
        "author": p.issue.user.actor(),
        "labels": tuple(label.name for label in p.issue.labels),
    }
    return IssueOpened(**fields) if p.action == "opened" else IssueEdited(**fields)


def _issue_comment(data: Any, source: Source, delivery: str) -> Parsed:
    p = _CommentPayload.model_validate(data)
    if p.action != "created":
        return _ignore("issue_comment", p.action, delivery, "only new comments carry commands")
    return CommentCreated(
        **_common(p, source, delivery),
        number=p.issue.number,
        comment_id=p.comment.id,
        body=p.comment.body or "",
        author=p.comment.user.actor(),
        on_pull_request=p.issue.pull_request is not None,
    )


def _pull_request(data: Any, source: Source, delivery: str) -> Parsed:
    p = _PullPayload.model_validate(data)
    pr = p.pull_request
    shared = {
        **_common(p, source, delivery),
        "number": pr.number,
        "author": pr.user.actor(),
        "head_branch": pr.head.ref,
        "head_sha": pr.head.sha,
        "base_branch": pr.base.ref,
        "base_sha": pr.base.sha,
        "fork": pr.fork(),
    }
    if p.action == "opened":
        return PullRequestUpdated(kind="pr.opened", title=pr.title, **shared)
    if p.action == "synchronize":
        return PullRequestUpdated(kind="pr.synchronize", title=pr.title, **shared)
    if p.action == "reopened":
        return PullRequestUpdated(kind="pr.reopened", title=pr.title, **shared)
    if p.action == "closed" and pr.merged:
        if not pr.merge_commit_sha:
            return Refused(status=400, reason="pull_request closed as merged without a merge sha")
        merged_by = pr.merged_by.actor() if pr.merged_by else None
        return PullRequestMerged(merge_sha=pr.merge_commit_sha, merged_by=merged_by, **shared)
    reason = "closed without merging" if p.action == "closed" else "not a change to check or apply"
    return _ignore("pull_request", p.action, delivery, reason)


def _review(data: Any, source: Source, delivery: str) -> Parsed:
    p = _ReviewPayload.model_validate(data)
    review = p.review
    shared = {
        **_common(p, source, delivery),
        "number": p.pull_request.number,
        "review_id": review.id,
        "author": (review.user or _GHOST).actor(),
        "commit_sha": review.commit_id,
    }
    state = review.state.lower()
    if p.action == "submitted" and state in ("approved", "changes_requested", "commented"):
        return ReviewSubmitted(state=state, **shared)
    if p.action == "dismissed":
        return ReviewDismissed(**shared)
    return _ignore("pull_request_review", p.action, delivery, f"review {state} is not read")


def _push(data: Any, source: Source, delivery: str) -> Parsed:
    p = _PushPayload.model_validate(data)
    if not p.ref.startswith("refs/heads/"):
        return _ignore("push", None, delivery, f"{p.ref} is not a branch")
    if p.deleted:
        return _ignore("push", None, delivery, f"{p.ref} was deleted")
    return Pushed(
        **_common(p, source, delivery),
        branch=p.ref.removeprefix("refs/heads/"),
        before=p.before,
        after=p.after,
        forced=p.forced,
    )


def _dispatch(data: Any, source: Source, delivery: str) -> Parsed:
    p = _DispatchPayload.model_validate(data)
    inputs = tuple(sorted((k, "" if v is None else str(v)) for k, v in (p.inputs or {}).items()))
    return WorkflowDispatch(**_common(p, source, delivery), ref=p.ref, inputs=inputs)


_PARSERS: dict[str, Callable[[Any, Source, str], Parsed]] = {
    "issues": _issues,
    "issue_comment": _issue_comment,
    "pull_request": _pull_request,
    "pull_request_review": _review,
    "push": _push,
    "workflow_dispatch": _dispatch,
}
EVENTS = tuple(_PARSERS)
"""The GitHub event names the bot reads (a webhook or workflow subscribes to these)."""


def _ignore(event: str, action: str | None, delivery: str, reason: str) -> Ignored:
    return Ignored(event=event, action=action, delivery=delivery, reason=reason)


def from_payload(event: str, data: Any, *, source: Source, delivery: str) -> Parsed:
    """An already-decoded payload of GitHub event ``event`` as an event, ignore or refusal."""
    parser = _PARSERS.get(event)
    if parser is None:
        return _ignore(event, None, delivery, f"the bot does not read {event!r} events")
    if not isinstance(data, dict):
        return Refused(status=400, reason=f"{event} payload is not a JSON object")
    try:
        return parser(data, source, delivery)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(part) for part in err["loc"]) or "payload"
        return Refused(status=400, reason=f"{event} payload: {where}: {err['msg']}")


def _decode(body: bytes) -> Any | Refused:
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        return Refused(status=400, reason="body is not UTF-8")
    except (ValueError, RecursionError):
        return Refused(status=400, reason="body is not JSON")


def parse_webhook(headers: Mapping[str, str], body: bytes, secret: str | None) -> Parsed:
    """A webhook delivery: checked, then parsed. Header names may be in any case."""
    if len(body) > MAX_BODY:
        return Refused(status=413, reason=f"body is {len(body)} bytes; the limit is {MAX_BODY}")
    h = {k.lower(): v for k, v in headers.items()}
    if not secret:
        return Refused(
            status=401, reason="no webhook secret is configured: every delivery is refused"
        )
    if not signature_ok(secret, body, h.get("x-hub-signature-256")):
        return Refused(status=401, reason="missing or wrong X-Hub-Signature-256")
    event, delivery = h.get("x-github-event", ""), h.get("x-github-delivery", "")
    if not event or not delivery:
        return Refused(status=400, reason="missing X-GitHub-Event or X-GitHub-Delivery")
    content_type = h.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        return Refused(status=415, reason="set the webhook's content type to application/json")
    data = _decode(body)
    if isinstance(data, Refused):
        return data
    return from_payload(event, data, source="webhook", delivery=delivery)


def parse_actions(environ: Mapping[str, str], body: bytes) -> Parsed:
    """A GitHub Actions run: ``GITHUB_EVENT_NAME``/``GITHUB_RUN_ID`` from ``environ`` and
    ``body``, the bytes of the file at ``GITHUB_EVENT_PATH`` (the caller reads it)."""
    event, run = environ.get("GITHUB_EVENT_NAME", ""), environ.get("GITHUB_RUN_ID", "")
    if not event or not run:
        return Refused(status=400, reason="GITHUB_EVENT_NAME and GITHUB_RUN_ID must be set")
    if len(body) > MAX_BODY:
        return Refused(
            status=413, reason=f"event file is {len(body)} bytes; the limit is {MAX_BODY}"
        )
    data = _decode(body)
    if isinstance(data, Refused):
        return data
    return from_payload(event, data, source="actions", delivery=f"actions:{run}")


__all__ = ["EVENTS", "MAX_BODY", "Event", "from_payload", "parse_actions", "parse_webhook"]
