"""The whole loop on GitHub, through ``infrabot serve``: GitHub's signed deliveries to
``/github``, queued durably and handled by the router against the fake over real HTTP.

The same world as ``test_e2e_github.py`` (the fake, the people, the bot's clone, the local
estate); here GitHub *delivers* each event to a real server on a free port, signed with
``INFRABOT_WEBHOOK_SECRET``, instead of starting a workflow run.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.github import Fault
from fakes.github import webhooks as hooks
from serverkit import SECRET, Server, start, wait_for
from test_e2e_github import GitHubLoop
from test_e2e_walkthrough import cli, needs_netns

from bot.demo import SEED_REQUEST
from bot.flow.verify import http_get, resolve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
BOT = "infrabot[bot]"


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[GitHubLoop]:
    made = GitHubLoop(tmp_path / "world", monkeypatch, capsys)
    yield made
    made.close()


def serve(loop: GitHubLoop, queue: Path, name: str) -> Server:
    argv = [sys.executable, "-m", "bot.cli", "--repo", str(loop.runner), "serve", "--port", "0"]
    argv += ["--queue", str(queue)]
    return start(argv, queue.parent, {"INFRABOT_WEBHOOK_SECRET": SECRET}, name)


def post(server: Server, delivery: hooks.Delivery, secret: str | None = SECRET) -> Any:
    status, body = server.request("POST", "/github", delivery.body, delivery.headers(secret))
    return status, body


def states(queue: Path) -> dict[str, int]:
    with sqlite3.connect(queue) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))


def processed(server: Server, event: str, outcome: str) -> float:
    return server.metric("infrabot_deliveries_total", event=event, outcome=outcome)


@needs_netns
def test_issue_to_evidence_on_github_through_serve(
    world: GitHubLoop, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = world
    assert cli(capsys, "estate", "up")[0] == 0
    queue = tmp_path / "server" / "deliveries.db"
    queue.parent.mkdir()
    server = serve(loop, queue, "first")
    try:
        _the_loop(loop, queue, server, capsys)
    finally:
        for running in (server, *loop_servers):
            if running.proc.poll() is None:
                running.stop(signal.SIGKILL)
        loop_servers.clear()
        assert cli(capsys, "estate", "down")[0] == 0


loop_servers: list[Server] = []


def _the_loop(
    loop: GitHubLoop, queue: Path, server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = loop.fake
    issue = loop.as_("alice").create_issue(SEED_REQUEST, body="")
    opened = hooks.issue(fake, issue.number)

    # a bad signature: 401, and nothing is queued
    assert post(server, opened, secret="not the secret")[0] == 401
    assert post(server, opened, secret=None)[0] == 401
    assert not queue.exists() or states(queue) == {}

    assert post(server, opened)[0] == 202
    wait_for(lambda: processed(server, "issues", "ok") == 1, timeout=240, what="the draft")
    prs = list(loop.as_("alice").get_pulls(state="open"))
    assert [p.user.login for p in prs] == [BOT]
    number = prs[0].number
    # GitHub redelivers it: a duplicate, nothing more
    assert post(server, opened)[1]["status"] == "duplicate"

    # a restart with work queued: bob's /apply is in progress (GitHub is slow to answer),
    # carol's waits behind it; a graceful stop finishes the one and keeps the other
    fake.faults.append(Fault(502, method="GET", path=rf"/issues/{number}/comments$", delay=2))
    bobs = loop.comment(number, "bob", "/apply")
    carols = loop.comment(number, "carol", "/apply")
    assert post(server, bobs)[0] == 202
    assert post(server, carols)[0] == 202
    wait_for(lambda: states(queue).get("working") == 1, what="bob's /apply to start")
    assert server.stop_gracefully(), server.stderr()
    assert states(queue) == {"done": 2, "queued": 1}
    second = serve(loop, queue, "second")
    loop_servers.append(second)
    wait_for(lambda: states(queue) == {"done": 3}, timeout=60, what="carol's /apply")
    assert processed(second, "issue_comment", "failed") == 1  # carol's; bob's not again
    assert post(second, bobs)[1]["status"] == "duplicate"
    replies = [c.body for c in loop.comments(number) if c.user.login == BOT]
    assert sum("needs 1 approval" in body for body in replies) == 2, replies  # bob's, carol's
    assert sum("carol has read permission" in body for body in replies) == 1, replies

    # a writer approves
    assert post(second, loop.approve(number, "bob"))[0] == 202
    wait_for(lambda: processed(second, "pull_request_review", "ok") == 1, what="the review")

    # alice merges in GitHub's UI: both events arrive; the push applies, once
    closed, push = loop.merge(number, "alice")
    assert post(second, closed)[0] == 202
    assert post(second, push)[0] == 202
    wait_for(lambda: processed(second, "push", "ok") == 1, timeout=240, what="the apply")
    assert processed(second, "pull_request", "ok") == 1
    evidence = [c.body for c in loop.comments(number) if "### Evidence" in c.body]
    assert len(evidence) == 1 and "❌" not in evidence[0], evidence
    assert loop.as_("alice").get_issue(issue.number).state == "closed"
    again = hooks.Delivery(push.event, push.payload)  # the same push, a new delivery id
    assert post(second, again)[0] == 202
    wait_for(lambda: processed(second, "push", "ok") == 2, what="the second push")
    assert len([c for c in loop.comments(number) if "### Evidence" in c.body]) == 1
    assert second.stop_gracefully(), second.stderr()

    hosts = {
        h["name"]: h for h in json.loads(cli(capsys, "estate", "status", "--json")[1])["hosts"]
    }
    dns_port = next(s["port"] for s in hosts["dns1"]["services"] if s["name"] == "dnsmasq")
    http_port = next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx")
    assert resolve("api-scanner.example.com", dns_port) == ["127.0.0.1"]
    assert http_get("127.0.0.1", http_port, "api-scanner.example.com")[0] == 200
