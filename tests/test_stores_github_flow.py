"""The pipeline on GitHub keeps its state on GitHub: what one runner's check leaves is what
a fresh runner — another checkout, no ``.infrabot/`` — reads.  ``infrabot.yaml`` says
``forge: github``; the services are composed by ``bot.wiring`` as in production, the
bot is the GitHub App of the test-only fake, over real HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.github import FakeGitHub
from github_world import GitHubPeople, github_forge

from bot.demo import make_copy
from bot.errors import LockHeld
from bot.flow.checks import check_pr
from bot.flow.services import Services
from bot.forge.github.ledger import GitHubRecords
from bot.wiring import open_services

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [pytest.mark.integration, pytest.mark.e2e]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", {"alice": "admin", "bob": "write"}).serving() as fake:
        yield fake


def _git(*args: str) -> None:
    subprocess.run(["git", *args], check=True, capture_output=True)


def _runner(hub: FakeGitHub, where: Path, monkeypatch: pytest.MonkeyPatch) -> Services:
    """A fresh Actions runner: a checkout of the repository and the bot's credentials."""
    url = hub.git_url.replace("http://", f"http://x:{hub.token('alice')}@")
    _git("clone", "-q", url, str(where))
    _git("-C", str(where), "fetch", "-q", "origin", "+refs/heads/*:refs/remotes/origin/*")
    (where / "infrabot.yaml").write_text(hub.infrabot_yaml())
    monkeypatch.setenv("INFRABOT_APP_ID", str(hub.app_id))
    monkeypatch.setenv("INFRABOT_APP_PRIVATE_KEY", hub.app_private_key)
    monkeypatch.setenv("INFRABOT_APP_INSTALLATION_ID", str(hub.installation_id))
    return open_services(where, lambda _m: None)


def test_a_check_on_one_runner_is_read_by_a_fresh_one(
    hub: FakeGitHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed = tmp_path / "seed"
    seed.mkdir()
    make_copy(ROOT, seed)
    push = hub.git_url.replace("http://", f"http://x:{hub.token('alice')}@")
    _git("-C", str(seed), "push", "-q", "--force", push, "HEAD:refs/heads/main")
    people = GitHubPeople(hub, github_forge(hub), tmp_path / "people")
    people.push("broken", "infra/state/zz-broken.yaml", "kind: Site\nname: [\n")
    pr = people.open_pull_request(
        branch="broken", base="main", title="A broken site", body="", issue=None, author="bob"
    )

    first = _runner(hub, tmp_path / "runner-1", monkeypatch)
    assert isinstance(first.records, GitHubRecords)
    check = check_pr(first, pr.number)
    assert not check.validation.ok

    second = _runner(hub, tmp_path / "runner-2", monkeypatch)
    assert not (second.root / ".infrabot" / "runs").exists()
    seen = second.records.check(pr.number)
    assert seen is not None
    assert (seen.head_sha, seen.base_sha, seen.merge_tree) == (
        check.head_sha,
        check.base_sha,
        check.merge_tree,
    )
    assert not seen.validation.ok and seen.validation.errors() == check.validation.errors()
    steps = [e.step for e in second.trajectory.read(pr.number)]
    assert "validate" in steps and "dryrun" in steps
    status = [c for c in second.forge.comments(pr.number) if c.topic == "status"]
    assert len(status) == 1 and "check failed" in status[0].body
    assert "infrabot:data" not in status[0].body  # hidden from what people read

    with (
        first.lock.held(pr.number),
        pytest.raises(LockHeld, match=f"PR #{pr.number}"),
        second.lock.held(99),
    ):
        pass
    assert second.lock.holder() is None
