"""``infrabot alert ingest`` as GitHub Actions runs it: each delivery on a fresh runner (a
checkout with no ``.infrabot/``), ``infrabot.yaml`` saying ``forge: github``, the services
composed by ``bot.wiring`` as in production, the bot the GitHub App of the test-only fake
over real HTTP.  The alert record lives on the ledger branch, so the promises hold across
runs: one ticket for the group, a re-delivery changes nothing, a resolve and a re-fire
comment on that ticket."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import github
import pytest
from conftest_alerts import T0, alert, payload
from fakes.github import FakeGitHub
from github_world import github_forge

from bot.alerts.services import intake_services
from bot.cli import main
from bot.demo import make_copy
from bot.forge.github.alerts import GitHubAlertRecord
from bot.wiring import open_services

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", {"alice": "admin"}).serving() as fake:
        yield fake


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def _checkout(hub: FakeGitHub, where: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    url = hub.git_url.replace("http://", f"http://x:{hub.token('alice')}@")
    _git("clone", "-q", url, str(where))
    (where / "infrabot.yaml").write_text(hub.infrabot_yaml())
    monkeypatch.setenv("INFRABOT_APP_ID", str(hub.app_id))
    monkeypatch.setenv("INFRABOT_APP_PRIVATE_KEY", hub.app_private_key)
    monkeypatch.setenv("INFRABOT_APP_INSTALLATION_ID", str(hub.installation_id))
    monkeypatch.delenv("INFRABOT_PROMETHEUS_URL", raising=False)
    return where


def _ingest(
    runner: Path, event: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> dict[str, Any]:
    """One workflow run: a fresh ``.infrabot/``, the dispatch event as a file, the CLI."""
    shutil.rmtree(runner / ".infrabot", ignore_errors=True)
    path = runner.parent / f"{runner.name}-event.json"
    path.write_text(json.dumps({"action": "alertmanager", "client_payload": event}))
    capsys.readouterr()
    code = main(["--repo", str(runner), "-q", "alert", "ingest", "--json", str(path)])
    out = capsys.readouterr().out
    assert code == 0, out
    answer: dict[str, Any] = json.loads(out)
    return answer


def test_ingest_on_fresh_runners_keeps_one_ticket_per_group(
    hub: FakeGitHub,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    make_copy(ROOT, seed)
    push = hub.git_url.replace("http://", f"http://x:{hub.token('alice')}@")
    _git("-C", str(seed), "push", "-q", "--force", push, "HEAD:refs/heads/main")
    one = _checkout(hub, tmp_path / "runner-1", monkeypatch)
    two = _checkout(hub, tmp_path / "runner-2", monkeypatch)
    bot = github_forge(hub)

    fired = payload("g1", alert("a"))
    first = _ingest(one, fired, capsys)
    ticket = first["ticket"]
    assert isinstance(ticket, int) and "opened" in first["message"]
    assert bot.issue(ticket).state == "open"

    again = _ingest(two, fired, capsys)  # Alertmanager re-sends, another runner takes it
    assert again["ticket"] == ticket
    assert bot.comments(ticket) == []  # nothing posted

    t1 = T0 + timedelta(minutes=10)
    _ingest(one, payload("g1", alert("a", status="resolved", ends=t1.isoformat())), capsys)
    _ingest(two, payload("g1", alert("a", starts=t1 + timedelta(minutes=5))), capsys)
    bodies = [c.body for c in bot.comments(ticket) if (c.topic or "").startswith("alert:")]
    assert len(bodies) == 2
    assert bodies[0].startswith("### Resolved") and bodies[1].startswith("### Fired again")

    svc = open_services(two, lambda _m: None)
    record = intake_services(svc).store
    assert isinstance(record, GitHubAlertRecord)
    assert record.groups() == [("g1", ticket)] and record.pending_groups() == []
    client = github.Github(auth=github.Auth.Token(hub.token("alice")), base_url=hub.url)
    issues = client.get_repo(hub.full_name).get_issues(state="all")
    assert [i.number for i in issues] == [ticket]  # one ticket in all
    assert not (one / ".infrabot" / "alerts.db").exists()
