"""The GitHub Actions workflows keep their security properties (ADR 0011).

actionlint and zizmor run in `.ci/run`; these tests pin what the design promises on top
of them, so a later edit cannot quietly undo it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

WORKFLOWS = Path(__file__).resolve().parent.parent / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PR_EVENTS = {"pull_request", "pull_request_review", "pull_request_target", "workflow_run"}


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(path.read_text())
    return data


def _jobs(path: Path) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = _load(path)["jobs"]
    return jobs


def _steps(path: Path) -> list[dict[str, Any]]:
    return [step for job in _jobs(path).values() for step in job.get("steps", [])]


def _events(path: Path) -> dict[str, Any]:
    on = _load(path)["on"]
    return {on: None} if isinstance(on, str) else dict(on)


def test_there_are_workflows_for_the_bot() -> None:
    names = {p.name for p in FILES}
    assert {"ci.yml", "infrabot-tickets.yml", "infrabot-pull-requests.yml"} <= names
    assert {"infrabot-apply.yml", "infrabot-check.yml"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_are_pinned_by_commit_with_the_version_beside(path: Path) -> None:
    uses = re.findall(r"^\s*-?\s*uses:\s*(\S+)(.*)", path.read_text(), re.M)
    assert uses
    for ref, rest in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[0-9a-f]{40}", ref), ref
        assert re.search(r"#\s*v\d", rest), f"{ref}: no version comment"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_permissions_are_read_by_default_and_granted_per_job(path: Path) -> None:
    assert _load(path)["permissions"] == {"contents": "read"}
    for name, job in _jobs(path).items():
        assert isinstance(job.get("permissions"), dict), name
        assert "write-all" not in str(job["permissions"])


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_no_event_text_reaches_a_shell(path: Path) -> None:
    for step in _steps(path):
        assert "${{" not in step.get("run", ""), step["run"]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials(path: Path) -> None:
    checkouts = [s for s in _steps(path) if s.get("uses", "").startswith("actions/checkout@")]
    assert checkouts
    for step in checkouts:
        assert step["with"]["persist-credentials"] is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_pull_request_jobs_hold_no_secrets_and_no_environment(path: Path) -> None:
    assert not {"pull_request_target", "workflow_run"} & set(_events(path))
    if not PR_EVENTS & set(_events(path)):
        return
    assert "secrets." not in path.read_text()
    for name, job in _jobs(path).items():
        assert "environment" not in job, name


def test_the_bot_handles_the_events_the_design_names() -> None:
    handled: dict[str, set[str]] = {}
    for path in FILES:
        runs = " ".join(step.get("run", "") for step in _steps(path))
        if "infrabot handle-event" not in runs:
            continue
        for event, spec in _events(path).items():
            handled.setdefault(event, set()).update((spec or {}).get("types", []))
    assert handled == {
        "issues": {"opened", "edited"},
        "issue_comment": {"created"},
        "pull_request": {"opened", "synchronize", "reopened", "closed"},
        "pull_request_review": {"submitted", "dismissed"},
        "push": set(),
        "workflow_dispatch": set(),
    }


def test_applies_run_in_a_protected_environment_one_at_a_time() -> None:
    (job,) = _jobs(WORKFLOWS / "infrabot-apply.yml").values()
    assert job["environment"] == "production"
    assert job["concurrency"]["group"].endswith(job["environment"])
    assert job["concurrency"]["cancel-in-progress"] is False
    assert set(_events(WORKFLOWS / "infrabot-apply.yml")) == {"push", "workflow_dispatch"}


def test_one_concurrency_group_per_issue_or_pull_request() -> None:
    groups = {
        path.name: job["concurrency"]
        for path in FILES
        if path.name in ("infrabot-tickets.yml", "infrabot-pull-requests.yml")
        for job in _jobs(path).values()
    }
    assert groups["infrabot-tickets.yml"]["group"] == "infrabot-${{ github.event.issue.number }}"
    assert groups["infrabot-pull-requests.yml"]["group"] == (
        "infrabot-${{ github.event.pull_request.number }}"
    )
    assert all(g["cancel-in-progress"] is False for g in groups.values())


def test_the_schedule_runs_the_check() -> None:
    path = WORKFLOWS / "infrabot-check.yml"
    assert "schedule" in _events(path)
    assert any(step.get("run") == "infrabot check" for step in _steps(path))


def test_only_runs_on_main_save_the_validation_cache() -> None:
    """Pull requests restore main's validation verdicts but never save any (docs/adr/0018):
    what a PR's run could save is not what main's or another PR's run will read."""
    saving = {}
    for path in FILES:
        caches = [s for s in _steps(path) if s.get("uses", "").startswith("actions/cache")]
        for step in caches:
            assert step["with"]["path"] == ".infrabot/cache", path.name
        if any(not s["uses"].startswith("actions/cache/restore@") for s in caches):
            saving[path.name] = set(_events(path))
    assert saving == {"infrabot-validation-cache.yml": {"push"}}
    assert _load(WORKFLOWS / "infrabot-validation-cache.yml")["on"]["push"] == {
        "branches": ["main"]
    }
    restores = [
        s["with"]
        for s in _steps(WORKFLOWS / "infrabot-pull-requests.yml")
        if s.get("uses", "").startswith("actions/cache/restore@")
    ]
    assert restores and restores[0]["restore-keys"] == "infrabot-validation-"


def test_alerts_arrive_by_repository_dispatch_as_a_file() -> None:
    path = WORKFLOWS / "infrabot-alerts.yml"
    assert _events(path) == {"repository_dispatch": {"types": ["alertmanager"]}}
    runs = [step["run"] for step in _steps(path) if "infrabot" in step.get("run", "")]
    assert runs[-1] == 'infrabot alert ingest "$GITHUB_EVENT_PATH"'
    (job,) = _jobs(path).values()
    # no concurrency group: GitHub would cancel all but one pending delivery; the alert
    # record's per-group claim keeps concurrent runs to one ticket (docs/adr/0020)
    assert "concurrency" not in job


DRAFTING = ("infrabot-tickets.yml", "infrabot-alerts.yml", "infrabot-check.yml")
"""Workflows whose job may draft a PR: from an issue, an alert, or a check's ticket."""


@pytest.mark.parametrize("name", DRAFTING)
def test_every_drafting_job_has_what_drafting_needs(name: str) -> None:
    """A remediation PR is drafted like a person's: branch pushed, PR opened, statuses set,
    by the App (so the PR's own checks run), with the engine and the dry-run's credentials,
    from a checkout with history.  Granting less fails only on GitHub, at the first alert."""
    [job] = _jobs(WORKFLOWS / name).values()
    for scope in ("contents", "issues", "pull-requests", "statuses"):
        assert job["permissions"].get(scope) == "write", (name, scope)
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0, name
    env = next(s for s in job["steps"] if "infrabot " in s.get("run", ""))["env"]
    for secret in (
        "INFRABOT_APP_ID",
        "INFRABOT_APP_INSTALLATION_ID",
        "INFRABOT_APP_PRIVATE_KEY",
        "ANTHROPIC_API_KEY",
        "INFRABOT_ESTATE_SSH_KEY",
    ):
        assert secret in env, (name, secret)
