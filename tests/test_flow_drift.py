"""A PR's dry-run shows the PR's own changes; drift in the estate is shown apart from them,
and after `estate up` (which reconciles) there is none."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.demo import make_copy
from bot.localestate import netns_available

pytestmark = [pytest.mark.e2e, pytest.mark.integration]
ROOT = Path(__file__).resolve().parent.parent
RECORD = "Add a DNS record legacy.example.com pointing to 10.77.0.50"


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["-q", *argv])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.fixture
def live(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Iterator[Path]:
    if netns_available() is not None:
        pytest.skip(f"network namespaces: {netns_available()}")
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    monkeypatch.chdir(repo)
    code, out = cli(capsys, "estate", "up")
    assert code == 0, out
    try:
        yield repo
    finally:
        cli(capsys, "estate", "down")


def check_of(repo: Path, pr: int) -> dict:  # type: ignore[type-arg]
    return json.loads((repo / f".infrabot/runs/check-pr-{pr}.json").read_text())  # type: ignore[no-any-return]


def test_after_estate_up_a_dry_run_shows_only_the_change(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = cli(capsys, "issue", "open", RECORD, "--as", "alice", "--json")
    assert code == 0, out
    pr = json.loads(out)["pr"]
    run = check_of(live, pr)["dry_run"]
    assert run["drift"] == []
    changed = [t for t in run["tasks"] if t["status"] == "changed"]
    assert changed and {t["host"] for t in changed} == {"dns1"}


def test_drift_is_shown_apart_from_the_change(
    live: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The estate drifts: the status-page container's service dies, and pve1's state is
    # unknown (as after an interrupted apply), so the next dry-run includes it.
    state = next((live / ".infrabot/estate/pve1/containers").glob("status-page.json"))
    os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
    (live / ".infrabot/runs/unknown-hosts.json").write_text('["pve1"]')

    code, out = cli(capsys, "issue", "open", RECORD, "--as", "alice", "--json")
    assert code == 0, out
    pr = json.loads(out)["pr"]
    run = check_of(live, pr)["dry_run"]
    assert {t["host"] for t in run["drift"]} == {"pve1"}
    own = [t for t in run["tasks"] if t["status"] == "changed"]
    assert {t["host"] for t in own} == {"dns1"}
    body = json.loads(cli(capsys, "pr", "show", str(pr), "--json")[1])["pull_request"]["body"]
    assert "Drift: 1 predicted change(s) this PR does not cause" in body
