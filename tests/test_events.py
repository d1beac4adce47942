"""Events from GitHub's own example deliveries, from Actions event files and from the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.errors import InputError
from bot.events import (
    MAX_BODY,
    CommentCreated,
    Ignored,
    IssueEdited,
    IssueOpened,
    PullRequestMerged,
    PullRequestUpdated,
    Pushed,
    Refused,
    ReviewDismissed,
    ReviewSubmitted,
    WorkflowDispatch,
    parse_actions,
    parse_webhook,
    sign,
    signature_ok,
)
from bot.events import local as local_events
from bot.events.models import Actor
from bot.forge.base import BOT_LOGIN, Comment, Issue, PullRequest, Review

EXAMPLES = Path(__file__).parent / "fixtures" / "github" / "webhooks"
SECRET = "It's a Secret to Everybody"


def _example(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / f"{name}.json").read_text())
    return data


def _deliver(event: str, data: Any, *, secret: str | None = SECRET, **headers: str) -> Any:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    sent = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
        "X-Hub-Signature-256": sign(SECRET, body),
        "Content-Type": "application/json",
        **headers,
    }
    return parse_webhook(sent, body, secret)


def test_githubs_documented_signature_example() -> None:
    # docs.github.com "Validating webhook deliveries": this secret and body give this digest.
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert sign(SECRET, b"Hello, World!") == header
    assert signature_ok(SECRET, b"Hello, World!", header)


@pytest.mark.parametrize(
    ("secret", "header"),
    [
        (None, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        ("", "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"),
        (SECRET, None),
        (SECRET, ""),
        (SECRET, "sha256=" + "0" * 64),
        (SECRET, "sha1=01dc10d0c83e72ed246219cdd91669667fe2ca59"),  # never a downgrade
        (SECRET, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e1"),
        (SECRET, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17é"),
    ],
)
def test_signature_fails_closed(secret: str | None, header: str | None) -> None:
    assert not signature_ok(secret, b"Hello, World!", header)


def test_every_vendored_example_parses_without_a_crash() -> None:
    seen: dict[str, int] = {}
    for path in sorted(EXAMPLES.glob("*.json")):
        event = path.name.split(".")[0]
        parsed = _deliver(event, json.loads(path.read_text()))
        assert not isinstance(parsed, Refused), (path.name, parsed)
        seen[type(parsed).__name__] = seen.get(type(parsed).__name__, 0) + 1
    assert seen["Ignored"] >= 5  # labeled, edited/deleted comments, closed unmerged, ping
    assert len(seen) >= 8


def test_issue_opened_and_edited() -> None:
    opened = _deliver("issues", _example("issues.opened.1"))
    assert isinstance(opened, IssueOpened)
    assert (opened.number, opened.author.login, opened.repository) == (
        1,
        "Codertocat",
        "Codertocat/Hello-World",
    )
    assert opened.source == "webhook" and opened.delivery.startswith("72d3162e")
    assert isinstance(_deliver("issues", _example("issues.edited.1")), IssueEdited)
    labeled = _deliver("issues", _example("issues.labeled.1"))
    assert isinstance(labeled, Ignored) and labeled.action == "labeled"


def test_comment_created_carries_id_author_and_where() -> None:
    created = _deliver("issue_comment", _example("issue_comment.created.1"))
    assert isinstance(created, CommentCreated)
    assert (
        created.comment_id == 492700400
        and created.body == "You are totally right! I'll get this fixed right away."
    )
    assert not created.on_pull_request and not created.author.is_bot
    edited = _deliver("issue_comment", _example("issue_comment.edited.1"))
    assert isinstance(edited, Ignored) and "new comments" in edited.reason


def test_a_comment_on_a_pull_request_by_a_bot_is_marked() -> None:
    data = _example("issue_comment.created.1")
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/1"}
    data["comment"]["user"] = {**data["comment"]["user"], "login": "renovate[bot]", "type": "User"}
    parsed = _deliver("issue_comment", data)
    assert isinstance(parsed, CommentCreated)
    assert parsed.on_pull_request and parsed.author.is_bot
    assert Actor(login="dependabot", type="Bot").is_bot


def test_pull_request_updates_and_merge() -> None:
    opened = _deliver("pull_request", _example("pull_request.opened.1"))
    assert isinstance(opened, PullRequestUpdated)
    assert opened.kind == "pr.opened" and not opened.fork
    assert opened.head_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"
    assert opened.base_branch == "master"
    sync = _deliver("pull_request", _example("pull_request.synchronize.1"))
    assert isinstance(sync, PullRequestUpdated) and sync.kind == "pr.synchronize"
    assert _deliver("pull_request", _example("pull_request.reopened.1")).kind == "pr.reopened"
    closed = _deliver("pull_request", _example("pull_request.closed.1"))
    assert isinstance(closed, Ignored) and closed.reason == "closed without merging"
    data = _example("pull_request.closed.1")
    data["pull_request"].update(merged=True, merged_by=data["sender"])
    merged = _deliver("pull_request", data)
    assert isinstance(merged, PullRequestMerged)
    assert merged.merge_sha == "c4295bd74fb0f4fda03689c3df3f2803b658fd85"
    assert merged.merged_by is not None and merged.merged_by.login == "Codertocat"


def test_a_fork_is_told_apart() -> None:
    data = _example("pull_request.opened.1")
    data["pull_request"]["head"]["repo"] = {**data["repository"], "full_name": "mallory/Hello"}
    parsed = _deliver("pull_request", data)
    assert isinstance(parsed, PullRequestUpdated) and parsed.fork
    data["pull_request"]["head"]["repo"] = None  # the fork was deleted
    parsed = _deliver("pull_request", data)
    assert isinstance(parsed, PullRequestUpdated) and parsed.fork


def test_reviews_submitted_and_dismissed() -> None:
    data = _example("pull_request_review.submitted.1")
    submitted = _deliver("pull_request_review", data)
    assert isinstance(submitted, ReviewSubmitted) and submitted.state == "commented"
    data["review"]["state"] = "APPROVED"
    approved = _deliver("pull_request_review", data)
    assert isinstance(approved, ReviewSubmitted) and approved.state == "approved"
    dismissed = _deliver("pull_request_review", _example("pull_request_review.dismissed.1"))
    assert isinstance(dismissed, ReviewDismissed)
    assert dismissed.commit_sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821"


def test_a_push_to_a_branch_and_what_is_not_one() -> None:
    data = _example("push.1")
    pushed = _deliver("push", data)
    assert isinstance(pushed, Pushed)
    assert (pushed.branch, pushed.after) == ("master", "6113728f27ae82c7b1a177c8d03f9e96e0adf246")
    assert pushed.before == "0" * 40 and not pushed.forced
    tag = _deliver("push", {**data, "ref": "refs/tags/v1"})
    assert isinstance(tag, Ignored) and "not a branch" in tag.reason
    gone = _deliver("push", {**data, "deleted": True, "after": "0" * 40})
    assert isinstance(gone, Ignored) and "deleted" in gone.reason
    broken = _deliver("push", {k: v for k, v in data.items() if k != "after"})
    assert isinstance(broken, Refused) and "after" in broken.reason


def test_workflow_dispatch() -> None:
    data = _example("workflow_dispatch.1")
    data["inputs"] = {"pr": "7", "dry_run": True}
    parsed = _deliver("workflow_dispatch", data)
    assert isinstance(parsed, WorkflowDispatch)
    assert parsed.inputs == (("dry_run", "True"), ("pr", "7"))


@pytest.mark.parametrize(
    ("body", "headers", "secret", "status"),
    [
        (b"{}", {"X-Hub-Signature-256": ""}, SECRET, 401),
        (b"{}", {}, None, 401),
        (b"{}", {"X-Hub-Signature-256": sign("another secret", b"{}")}, SECRET, 401),
        (b"{}", {"X-GitHub-Event": ""}, SECRET, 400),
        (b"{}", {"X-GitHub-Delivery": ""}, SECRET, 400),
        (b"payload=%7B%7D", {"Content-Type": "application/x-www-form-urlencoded"}, SECRET, 415),
        (b"not json", {}, SECRET, 400),
        (b"\xff\xfe{}", {}, SECRET, 400),
        (b"[" * 100_000, {}, SECRET, 400),  # nesting that would blow the recursion limit
        (b"[]", {}, SECRET, 400),
        (b'{"action": "opened"}', {}, SECRET, 400),
        (b" " * (MAX_BODY + 1), {}, SECRET, 413),
    ],
)
def test_bad_deliveries_are_refused(
    body: bytes, headers: dict[str, str], secret: str | None, status: int
) -> None:
    parsed = _deliver("issues", body, secret=secret, **headers)
    assert isinstance(parsed, Refused) and parsed.status == status, parsed


def test_a_signature_for_another_body_is_refused() -> None:
    body = json.dumps(_example("issues.opened.1")).encode()
    tampered = body.replace(b"Spelling error", b"rm -rf")
    sent = {
        "x-github-event": "issues",
        "x-github-delivery": "d",
        "x-hub-signature-256": sign(SECRET, body),
        "content-type": "application/json; charset=utf-8",
    }
    assert isinstance(parse_webhook(sent, body, SECRET), IssueOpened)
    assert isinstance(parse_webhook(sent, tampered, SECRET), Refused)


def test_missing_fields_name_the_field() -> None:
    data = _example("pull_request.opened.1")
    del data["pull_request"]["head"]["sha"]
    parsed = _deliver("pull_request", data)
    assert isinstance(parsed, Refused)
    assert parsed.reason == "pull_request payload: pull_request.head.sha: Field required"


def test_unknown_events_and_ping_are_ignored() -> None:
    ping = _deliver("ping", _example("ping.1"))
    assert isinstance(ping, Ignored) and ping.event == "ping"
    assert isinstance(_deliver("deployment_status", {"x": 1}), Ignored)


@given(st.binary(max_size=300), st.text(max_size=30))
def test_no_body_or_event_name_makes_the_parser_raise(body: bytes, event: str) -> None:
    headers = {"x-github-event": event or "issues", "x-github-delivery": "d"}
    headers |= {"x-hub-signature-256": sign(SECRET, body), "content-type": "application/json"}
    parsed = parse_webhook(headers, body, SECRET)
    assert isinstance(parsed, Refused | Ignored) or parsed.kind


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=5),
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=4),
        max_leaves=20,
    )
)
def test_no_json_shape_makes_the_parser_raise(data: Any) -> None:
    for event in (
        "issues",
        "issue_comment",
        "pull_request",
        "pull_request_review",
        "workflow_dispatch",
    ):
        _deliver(event, data)


def test_actions_event_file_keys_on_the_run() -> None:
    body = json.dumps(_example("issue_comment.created.2")).encode()
    env = {"GITHUB_EVENT_NAME": "issue_comment", "GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2"}
    parsed = parse_actions(env, body)
    assert isinstance(parsed, CommentCreated)
    assert (parsed.source, parsed.delivery) == ("actions", "actions:4242")
    assert isinstance(parse_actions({}, body), Refused)
    assert isinstance(parse_actions(env, b"{"), Refused)
    assert isinstance(parse_actions(env, b" " * (MAX_BODY + 1)), Refused)


NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_cli_events_are_built_from_what_the_local_forge_stored() -> None:
    issue = Issue(number=1, title="t", body="b", author="alice", state="open", created_at=NOW)
    opened = local_events.issue_opened(issue)
    assert (opened.source, opened.delivery, opened.author.login) == (
        "cli",
        "local:issue:1:opened",
        "alice",
    )
    mine = Comment(id=3, number=2, author=BOT_LOGIN, body="x", created_at=NOW, topic="plan")
    made = local_events.comment_created(mine, on_pull_request=True)
    assert made.author.is_bot and made.delivery == "local:comment:3"
    pr = PullRequest(
        number=2,
        title="t",
        body="",
        author=BOT_LOGIN,
        head_branch="f",
        base_branch="main",
        head_sha="a" * 40,
        base_sha="b" * 40,
        state="open",
    )
    assert local_events.pull_request_opened(pr, "bob").kind == "pr.opened"
    review = Review(author="bob", state="approved", commit_sha="a" * 40, created_at=NOW)
    assert local_events.review_submitted(2, review).state == "approved"
    with pytest.raises(InputError, match="not merged"):
        local_events.pull_request_merged(pr, "alice")
    merged = pr.model_copy(update={"state": "merged", "merge_sha": "c" * 40})
    assert local_events.pull_request_merged(merged, "alice").merge_sha == "c" * 40
