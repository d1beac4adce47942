"""The router: every entry point's events go through ``handle``, and handling the same
event twice changes nothing more — also without local memory of the first time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import SEED_REQUEST
from bot.events import local
from bot.router import handle
from bot.wiring import conversation, open_services

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_redelivered_events_change_nothing_more(repo: Path) -> None:
    svc = open_services(repo, lambda _m: None)
    people = conversation(svc)
    issue = people.create_issue(SEED_REQUEST, "", "alice")
    first = handle(svc, local.issue_opened(issue))
    assert first.ok and "opened PR" in first.message
    pr = people.list_pull_requests("open")[0]
    head = pr.head_sha
    again = handle(svc, local.issue_opened(issue))
    assert again.ok and "already being worked on" in again.message
    assert svc.forge.pull_request(pr.number).head_sha == head  # not re-drafted

    comment = people.add_comment(pr.number, "/apply", "carol")
    event = local.comment_created(comment, on_pull_request=True)
    refused = handle(svc, event)
    assert not refused.ok and "read permission" in refused.message
    replies = [c for c in svc.forge.comments(pr.number) if c.topic == f"reply-{comment.id}"]
    assert len(replies) == 1
    assert "already answered" in handle(svc, event).message
    assert len([c for c in svc.forge.comments(pr.number) if c.author == "carol"]) == 1


def test_a_bots_comment_is_never_a_command(repo: Path) -> None:
    svc = open_services(repo, lambda _m: None)
    people = conversation(svc)
    issue = people.create_issue(SEED_REQUEST, "", "alice")
    handle(svc, local.issue_opened(issue))
    pr = people.list_pull_requests("open")[0]
    comment = people.add_comment(pr.number, "/apply", "alice")
    bot = local.comment_created(comment, on_pull_request=True).model_copy(
        update={"author": local.actor("infrabot"), "sender": local.actor("infrabot")}
    )
    assert "bot" in handle(svc, bot).message


def test_handle_event_takes_an_actions_event_file(
    repo: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub's own issue_comment example, pointed at the local PR, through handle-event."""
    assert main(["-q", "issue", "open", SEED_REQUEST, "--as", "alice"]) == 0
    capsys.readouterr()
    data = json.loads(
        (ROOT / "tests/fixtures/github/webhooks/issue_comment.created.1.json").read_text()
    )
    data["issue"]["number"] = 2
    data["issue"]["pull_request"] = {"url": "https://api.github.com/repos/o/r/pulls/2"}
    data["comment"].update(body="/apply", id=424242)
    data["comment"]["user"].update(login="carol", type="User")
    data["sender"].update(login="carol", type="User")
    event = repo / "event.json"
    event.write_text(json.dumps(data))
    monkeypatch.setenv("GITHUB_EVENT_NAME", "issue_comment")
    monkeypatch.setenv("GITHUB_RUN_ID", "77")
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(event))
    assert main(["-q", "handle-event"]) == 1
    assert "read permission" in capsys.readouterr().out
    assert main(["-q", "handle-event"]) == 0  # the re-run of the same workflow
    assert "already answered" in capsys.readouterr().out
    event.write_bytes(b"\xff not json")
    assert main(["-q", "handle-event"]) == 2
