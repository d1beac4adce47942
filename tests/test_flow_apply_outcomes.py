"""The pipeline's handling of apply outcomes, with a fake playbook runner: a failed apply
says which task failed and how to roll back, a killed one leaves its hosts unknown until
the next run reconciles them, and nothing secret reaches a comment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from bot.demo import SEED_REQUEST, make_copy
from bot.estate import Estate
from bot.execute import FakeRunner, RunRequest, successful_run
from bot.flow.dispatch import merge_pr, revert_pr
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.model import DryRun, HostRecap, Resource, RunStatus, TaskResult, Verification
from bot.wiring import open_services

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


class NoProbes:
    def verify(
        self, estate: Estate, resources: list[Resource], removed: list[Resource]
    ) -> list[Verification]:
        return [Verification(check=f"probe {r.name}", ok=True, detail="ok") for r in resources]


def services(
    tmp_path: Path, respond: Callable[[RunRequest], DryRun]
) -> tuple[Services, FakeRunner]:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    runner = FakeRunner(respond=respond)
    svc = replace(
        open_services(repo, lambda _m: None),
        runner=runner,
        verifier=NoProbes(),
        preflight=lambda _e, _h: None,
        nginx_test=lambda _p: (True, "ok"),
        dnsmasq_test=lambda _f: (True, "ok"),
    )
    return svc, runner


def ok_run(request: RunRequest) -> DryRun:
    """A clean run; a dry-run also hands back rendered vhosts and DNS files, as the proxy and
    dns roles do."""
    rendered = {h: "# vhosts\n" for h in request.limit} if request.check else {}
    dns = {h: {"hosts": "", "cnames.conf": ""} for h in request.limit} if request.check else {}
    return successful_run(request).model_copy(update={"rendered": rendered, "rendered_dns": dns})


def failing_apply(request: RunRequest) -> DryRun:
    if request.check or request.playbook != "site.yml":
        return ok_run(request)
    host = request.limit[0]
    return DryRun(
        head_sha=request.head_sha,
        base_sha=request.base_sha,
        status=RunStatus.FAILED,
        hosts=request.limit,
        check_mode=False,
        recap=(HostRecap(host=host, ok=2, failed=1),),
        tasks=(
            TaskResult(
                host=host,
                task="Render the A records",
                status="failed",
                message=f"permission denied; token={TOKEN}",
            ),
        ),
    )


def opened_and_approved(svc: Services) -> int:
    issue = svc.forge.create_issue(SEED_REQUEST, "", "alice")
    outcome = handle_issue(svc, issue.number)
    assert outcome.pr is not None
    svc.forge.add_review(outcome.pr, "bob", "approved")
    return outcome.pr


def test_a_failed_apply_names_the_task_keeps_the_issue_open_and_offers_a_revert(
    tmp_path: Path,
) -> None:
    svc, _ = services(tmp_path, failing_apply)
    pr = opened_and_approved(svc)
    outcome = merge_pr(svc, pr, "alice")
    assert not outcome.ok and "apply failed" in outcome.message
    evidence = next(c.body for c in svc.forge.comments(pr) if c.body.startswith("### Evidence"))
    assert "task **Render the A records** failed" in evidence
    assert f"infrabot pr revert {pr}" in evidence
    assert TOKEN not in evidence and "permission denied" in evidence
    assert svc.forge.issue(1).state == "open"
    assert svc.lock.holder() is None
    reverted = revert_pr(svc, pr, "bob")
    assert reverted.ok
    revert = svc.forge.list_pull_requests("open")[-1]
    assert revert.title.startswith(f"Revert #{pr}")
    assert svc.git.changed_files(revert.base_sha, revert.head_sha)


def test_a_killed_apply_leaves_its_hosts_unknown_until_the_next_run(tmp_path: Path) -> None:
    killed: list[RunRequest] = []

    def respond(request: RunRequest) -> DryRun:
        if request.check or request.playbook != "site.yml" or killed:
            return ok_run(request)
        killed.append(request)
        return DryRun(
            head_sha=request.head_sha,
            base_sha=request.base_sha,
            status=RunStatus.UNKNOWN,
            hosts=request.limit,
            check_mode=False,
            error="the run ended without a recap",
        )

    svc, runner = services(tmp_path, respond)
    pr = opened_and_approved(svc)
    assert not merge_pr(svc, pr, "alice").ok
    unknown = svc.records.unknown_hosts()
    assert unknown == set(killed[0].limit) == {"dns1", "proxy1", "pve1"}
    evidence = next(c.body for c in svc.forge.comments(pr) if c.body.startswith("### Evidence"))
    assert "unknown" in evidence

    issue = svc.forge.create_issue(
        "Add a DNS record for docs.example.com pointing at 127.0.0.1", "", "alice"
    )
    second = handle_issue(svc, issue.number)
    assert second.pr is not None, second.message
    dry = [r for r in runner.requests if r.check and r.playbook == "site.yml"][-1]
    assert set(dry.limit) >= unknown  # the next run includes (reconciles) them
    svc.forge.add_review(second.pr, "bob", "approved")
    assert merge_pr(svc, second.pr, "alice").ok
    assert svc.records.unknown_hosts() == set()


@pytest.mark.parametrize("user", ["carol", "bob"])
def test_refused_merges_run_nothing(tmp_path: Path, user: str) -> None:
    svc, runner = services(tmp_path, ok_run)
    issue = svc.forge.create_issue(SEED_REQUEST, "", "alice")
    pr = handle_issue(svc, issue.number).pr
    assert pr is not None
    before = len(runner.requests)
    outcome = merge_pr(svc, pr, user)
    assert not outcome.ok and "refused" in outcome.message
    assert len(runner.requests) == before
    assert svc.forge.pull_request(pr).state == "open"


class BadDrafter:
    """An engine whose draft is not valid desired state (as a model's tool call may be)."""

    name = "bad"

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def architect(self, ticket, ctx):  # type: ignore[no-untyped-def]
        return self.inner.architect(ticket, ctx)  # type: ignore[attr-defined]

    def implement(self, ticket, plan, ctx):  # type: ignore[no-untyped-def]
        good = self.inner.implement(ticket, plan, ctx)  # type: ignore[attr-defined]
        first = good.changes[0]
        broken = first.model_copy(update={"data": {**first.data, "vmid": "{{ 7 * 7 }}"}})
        return good.model_copy(update={"changes": (broken, *good.changes[1:])})


def test_an_invalid_draft_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    svc, runner = services(tmp_path, ok_run)
    svc = replace(svc, engine=BadDrafter(svc.engine))
    issue = svc.forge.create_issue(SEED_REQUEST, "", "alice")
    outcome = handle_issue(svc, issue.number)
    assert outcome.kind == "failed" and "vmid" in outcome.message
    assert not svc.git.branch_exists("infrabot/1-create-a-container-on-pve1-for-the-api-s")
    assert runner.requests == []
    assert any("not valid desired state" in c.body for c in svc.forge.comments(issue.number))
