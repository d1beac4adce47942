"""Webhook payloads as GitHub would send them, rendered from the fake's state.

Each payload starts from GitHub's own example delivery of that event (the octokit
examples vendored in ``tests/fixtures/github/webhooks``) and has every object the fake
knows — the issue, pull request, comment, review, repository, sender — replaced by the
fake's own JSON for it, so the shape is GitHub's and the facts are the fake's.  Keys
only the example has (avatars, ``node_id``s, ``_links``) keep the example's values.

``Delivery`` carries the event name, the body and the headers GitHub sends with it, for
both entry points: a signed POST to ``infrabot serve`` or an Actions event file.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.events.signature import sign

if TYPE_CHECKING:
    from fakes.github.server import FakeGitHub

EXAMPLES = Path(__file__).parents[2] / "fixtures" / "github" / "webhooks"


@dataclass
class Delivery:
    event: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def body(self) -> bytes:
        return json.dumps(self.payload).encode()

    def headers(self, secret: str | None) -> dict[str, str]:
        out = {
            "Content-Type": "application/json",
            "X-GitHub-Event": self.event,
            "X-GitHub-Delivery": self.id,
            "User-Agent": "GitHub-Hookshot/fake",
        }
        if secret is not None:
            out["X-Hub-Signature-256"] = sign(secret, self.body)
        return out

    def write(self, path: Path) -> Path:
        """The event file a GitHub Actions runner would find at ``GITHUB_EVENT_PATH``."""
        path.write_bytes(self.body)
        return path


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    data.pop("installation", None)
    return data


def _overlay(shape: Any, ours: Any) -> Any:
    """``ours`` wins; where both are objects, keys only ``shape`` has are kept."""
    if isinstance(shape, dict) and isinstance(ours, dict):
        out = dict(shape)
        for key, value in ours.items():
            out[key] = _overlay(shape.get(key), value)
        return out
    return ours


def _render(fake: FakeGitHub, example: str, sender: str, **objects: Any) -> dict[str, Any]:
    ours = {"repository": fake._repository(), "sender": fake._user(sender), **objects}
    rendered: dict[str, Any] = _overlay(_example(example), ours)
    return rendered


def issue(fake: FakeGitHub, number: int, action: str = "opened") -> Delivery:
    with fake._lock:
        item = fake._items[number]
        payload = _render(
            fake, "issues.opened.1", item["user"], action=action, issue=fake._issue(item)
        )
    return Delivery("issues", payload)


def comment(fake: FakeGitHub, comment_id: int) -> Delivery:
    with fake._lock:
        c = fake._comments[comment_id]
        item = fake._items[c["number"]]
        payload = _render(
            fake,
            "issue_comment.created.1",
            c["user"],
            action="created",
            issue=fake._issue(item),
            comment=fake._comment(c),
        )
    return Delivery("issue_comment", payload)


def pull_request(fake: FakeGitHub, number: int, action: str, sender: str | None = None) -> Delivery:
    name = "pull_request.closed.1" if action == "closed" else f"pull_request.{action}.1"
    with fake._lock:
        item = fake._items[number]
        who = sender or item.get("merged_by") or item["user"]
        pull = fake._pull(item)
        payload = _render(fake, name, who, action=action, number=number, pull_request=pull)
    return Delivery("pull_request", payload)


def review(fake: FakeGitHub, number: int, review_id: int, action: str = "submitted") -> Delivery:
    with fake._lock:
        item = fake._items[number]
        row = next(r for r in fake._reviews[number] if r["id"] == review_id)
        shown = fake._review(number, row)
        shown["state"] = shown["state"].lower()  # webhooks spell review states in lower case
        payload = _render(
            fake,
            "pull_request_review.submitted.1",
            row["user"],
            action=action,
            pull_request=fake._pull(item),
            review=shown,
        )
    return Delivery("pull_request_review", payload)


def push(fake: FakeGitHub, branch: str, before: str, after: str, pusher: str) -> Delivery:
    message = fake.repo.git("log", "-1", "--format=%s", after).stdout.strip()
    head = {"id": after, "tree_id": fake.repo.git("rev-parse", f"{after}^{{tree}}").stdout.strip()}
    head["message"] = message
    payload = _render(
        fake,
        "push.1",
        pusher,
        ref=f"refs/heads/{branch}",
        base_ref=None,
        before=before,
        after=after,
        created=False,
        deleted=False,
        forced=False,
        pusher={"name": pusher, "email": f"{pusher}@users.noreply.github.invalid"},
        head_commit=head,
        commits=[head],
    )
    return Delivery("push", payload)


def dispatch(fake: FakeGitHub, inputs: dict[str, str], sender: str) -> Delivery:
    """Someone starts a workflow by hand (``workflow_dispatch``) with ``inputs``."""
    payload = _render(fake, "workflow_dispatch.1", sender, ref=f"refs/heads/{fake.default_branch}")
    payload["inputs"] = dict(inputs)
    return Delivery("workflow_dispatch", payload)
