"""The full plan is posted once, in the pull request; the issue gets its summary and the
link (issue 6: output that fits GitHub)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from test_flow_apply_outcomes import BadDrafter, ok_run, services

from bot.demo import SEED_REQUEST, make_copy
from bot.events import local
from bot.flow.tickets import handle_issue
from bot.forge.base import BOT_LOGIN
from bot.router import handle
from bot.wiring import conversation, open_services

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.e2e


def test_the_issue_gets_a_summary_and_the_pr_the_whole_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    monkeypatch.chdir(repo)
    svc = open_services(repo, lambda _m: None)
    people = conversation(svc)
    issue = people.create_issue(SEED_REQUEST, "", "alice")
    assert handle(svc, local.issue_opened(issue)).ok
    pr = people.list_pull_requests("open")[0]

    mine = [c for c in svc.forge.comments(issue.number) if c.author == BOT_LOGIN]
    assert [c.topic for c in mine] == ["pr"]
    summary = mine[0].body
    assert summary.startswith(f"### Plan for #{issue.number}:")
    assert f"pull request #{pr.number}" in summary and "risk **" in summary
    assert "Acceptance criteria" in summary
    assert "How I planned this" not in summary and "| action | kind |" not in summary

    body = svc.forge.pull_request(pr.number).body
    assert body.count("How I planned this") == 1 and "| action | kind |" in body
    steps = [e.step for e in svc.trajectory.read(issue.number)]
    assert steps.index("pr.opened") < steps.index("plan.posted")


def test_no_pr_leaves_the_whole_plan_on_the_issue_until_a_later_one_opens(
    tmp_path: Path,
) -> None:
    svc, _runner = services(tmp_path, ok_run)
    good = svc.engine
    issue = svc.forge.create_issue(SEED_REQUEST, "", "alice")
    failed = handle_issue(replace(svc, engine=BadDrafter(good)), issue.number)
    assert failed.kind == "failed"
    mine = {c.topic: c.body for c in svc.forge.comments(issue.number) if c.author == BOT_LOGIN}
    assert set(mine) == {"plan", "failure"}
    assert "How I planned this" in mine["plan"]  # no PR holds it: the issue does

    opened = handle_issue(svc, issue.number)
    assert opened.kind == "pr" and opened.pr is not None
    mine = {c.topic: c.body for c in svc.forge.comments(issue.number) if c.author == BOT_LOGIN}
    assert "How I planned this" not in mine["plan"]
    assert f"pull request #{opened.pr}" in mine["plan"]
    assert mine["pr"].startswith(f"### Plan for #{issue.number}:")
    assert "How I planned this" in svc.forge.pull_request(opened.pr).body
