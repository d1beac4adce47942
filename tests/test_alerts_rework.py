"""A fix that does not stick reopens the work (``bot.alerts.attempts``, the acceptance part
of ``infrabot check``): not yet is no failure; a failure drafts the next attempt once; after
the configured number of failed attempts a person is asked, once; removing the label lets
the bot draft again; Prometheus down decides nothing.  The pure decisions first, then the
check over the alert record, a fake forge, a real trajectory and a Prometheus double."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest_alerts import T0, Clock, alert, intake, payload

from bot.alerts.acceptance import Rework
from bot.alerts.attempts import Attempt, Trail, after_apply, next_step, read_trail, refired_since
from bot.alerts.check import render_check, run_check
from bot.alerts.intake import IntakeServices, ingest
from bot.alerts.prometheus import PrometheusEvidence, QueryFailed, QueryOk, QueryResult, Sample
from bot.alerts.remedy import Drafted, Remedy, plan_remedy
from bot.alerts.runbooks import NoEvidence
from bot.forge.base import BOT_LOGIN
from bot.forge.fake import FakeForge
from bot.ledger.events import Event
from bot.ledger.trajectory import Trajectory

MIN = timedelta(minutes=1)

# -- the pure decisions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("elapsed", "violated", "refired", "decision"),
    [
        (timedelta(seconds=119), True, True, "not_yet"),  # the duration has not passed
        (timedelta(seconds=120), True, False, "failed"),  # exactly the duration: judged
        (timedelta(seconds=120), False, False, "holding"),
        (timedelta(seconds=120), None, False, "unknown"),  # no measurement, no verdict
        (timedelta(seconds=120), False, True, "failed"),  # fired again after the apply
        (timedelta(seconds=120), None, True, "failed"),
        (timedelta(hours=5), True, False, "failed"),
    ],
)
def test_not_yet_is_not_failed(
    elapsed: timedelta, violated: bool | None, refired: bool, decision: str
) -> None:
    got = after_apply(
        now=T0 + elapsed, applied_at=T0, duration=120, violated_now=violated, refired=refired
    )
    assert got == decision


def test_refired_means_a_firing_that_started_after_the_apply() -> None:
    assert not refired_since([T0.isoformat()], T0)
    assert not refired_since([(T0 - MIN).isoformat()], T0)
    assert refired_since([(T0 - MIN).isoformat(), (T0 + MIN).isoformat()], T0)
    assert refired_since(["2026-01-05T12:00:01"], T0)  # no zone: UTC, as Alertmanager's
    assert not refired_since([], T0)


def ev(minute: int, step: str, outcome: str = "ok", **inputs: Any) -> Event:
    detail = inputs.pop("detail", {})
    at = T0 + minute * MIN
    return Event(
        time=at, ticket=1, actor="b", step=step, outcome=outcome, inputs=inputs, detail=detail
    )


def test_the_trail_reads_attempts_failures_reopens_and_escalations() -> None:
    trail = read_trail(
        [
            ev(0, "pr.opened", detail={"pr": 2}),
            ev(1, "apply.finished", "failed", pr=7),  # an apply that failed is no attempt
            ev(2, "apply.finished", "successful", pr=True),  # not a PR number
            ev(3, "apply.finished", "successful", pr=2),
            ev(4, "acceptance.failed", "failed", pr=9, detail={"acceptance": "x"}),  # unknown
            ev(5, "acceptance.failed", "failed", pr=2, detail={"acceptance": "tight"}),
            ev(6, "pr.opened", detail={"pr": 4}),
            ev(6, "pr.opened", detail={"pr": 4}),  # updated: still one PR
            ev(7, "work.reopened"),
            ev(8, "apply.finished", "successful", pr=4),
            ev(9, "ticket.escalated", "needs-human"),
        ]
    )
    assert [a.pr for a in trail.attempts] == [2, 4]
    assert trail.attempts[0] == Attempt(
        pr=2, applied_at=T0 + 3 * MIN, failed_at=T0 + 5 * MIN, measured="tight"
    )
    assert trail.latest is not None and trail.latest.failed_at is None
    assert trail.prs == (2, 4)
    assert trail.reopened_at == T0 + 7 * MIN and trail.escalated_at == T0 + 9 * MIN
    again = read_trail([ev(0, "apply.finished", "successful", pr=2)] * 2)
    assert len(again.attempts) == 1  # an /apply, then the merge: one attempt
    order = read_trail(
        [ev(m, "apply.finished", "successful", pr=p) for m, p in enumerate([2, 4, 2])]
    )
    assert [a.pr for a in order.attempts] == [4, 2]  # the last applied is the latest


def failed(pr: int, minute: int) -> Attempt:
    return Attempt(pr=pr, applied_at=T0, failed_at=T0 + minute * MIN, measured="m")


@pytest.mark.parametrize(
    ("trail", "labelled", "pr_open", "step"),
    [
        (Trail(), False, False, "none"),  # nothing applied
        (Trail(attempts=(Attempt(pr=2, applied_at=T0),)), False, False, "none"),  # not failed
        (Trail(attempts=(failed(2, 5),), reopened_at=T0 + 6 * MIN), False, False, "none"),
        (Trail(attempts=(failed(2, 5),), reopened_at=T0 + 4 * MIN), False, False, "draft"),
        (Trail(attempts=(failed(2, 5),)), False, False, "draft"),
        (Trail(attempts=(failed(2, 5),)), True, True, "labelled"),
        (Trail(attempts=(failed(2, 5),)), False, True, "wait"),
        (Trail(attempts=(failed(2, 5), failed(4, 9))), False, True, "wait"),
        (Trail(attempts=(failed(2, 5), failed(4, 9))), False, False, "escalate"),
        # a person removed the label after the escalation: a new round
        (Trail(attempts=(failed(2, 5), failed(4, 9)), escalated_at=T0 + 10 * MIN), False, False,
         "draft"),
        (Trail(attempts=(failed(2, 5), failed(4, 9)), escalated_at=T0 + 7 * MIN), False, False,
         "draft"),
        (Trail(attempts=(failed(2, 5), failed(4, 9), failed(6, 12)),
               escalated_at=T0 + 7 * MIN), False, False, "escalate"),
    ],
)  # fmt: skip
def test_next_step(trail: Trail, labelled: bool, pr_open: bool, step: str) -> None:
    assert next_step(trail, max_attempts=2, labelled=labelled, pr_open=pr_open) == step


def test_one_allowed_attempt_escalates_after_the_first_failure() -> None:
    trail = Trail(attempts=(failed(2, 5),))
    assert next_step(trail, max_attempts=1, labelled=False, pr_open=False) == "escalate"
    assert next_step(trail, max_attempts=3, labelled=False, pr_open=False) == "draft"


# -- the check over the alert record, a fake forge and a real trajectory -------------------

TIGHT = QueryOk(samples=(Sample(labels={"container": "status-page"}, value=0.1),))


class Prom:
    """Answers by query substring, first match wins; everything else is an empty vector."""

    def __init__(self) -> None:
        self.answers: dict[str, QueryResult] = {}
        self.tight()

    def tight(self) -> None:
        self.answers = {"container_memory": TIGHT}

    def roomy(self) -> None:
        def one(value: float) -> QueryOk:
            return QueryOk(samples=(Sample(labels={"container": "status-page"}, value=value),))

        self.answers = {"min_over_time": one(1), "count_over_time": one(100)}

    def query(self, expr: str) -> QueryResult:
        for needle, answer in self.answers.items():
            if needle in expr:
                return answer
        return QueryOk(samples=())


class Loop:
    """Intake services whose steps go to a real trajectory, a draft that opens a PR on the
    fake forge as the flow would (``pr.opened``), and a merge-and-apply as the trajectory
    records it (``apply.finished``)."""

    def __init__(self, tmp_path: Path, *, draft: bool = True) -> None:
        self.clock = Clock()
        self.trajectory = Trajectory(tmp_path / "trajectories")
        self.prom = Prom()
        base = intake(tmp_path, self.clock)
        self.svc: IntakeServices = replace(
            base, record=self.record, evidence=PrometheusEvidence(self.prom), prometheus=self.prom
        )
        self.drafts: list[tuple[int, Remedy]] = []
        self.rework = Rework(
            trajectory=self.trajectory.read,
            draft=self.draft if draft else None,
            describe=lambda n: f"memory change of PR #{n}",
        )

    @property
    def forge(self) -> FakeForge:
        assert isinstance(self.svc.forge, FakeForge)
        return self.svc.forge

    def record(
        self,
        ticket: int,
        actor: str,
        step: str,
        outcome: str,
        inputs: dict[str, Any],
        detail: dict[str, Any],
    ) -> None:
        event = Event(
            time=self.clock(),
            ticket=ticket,
            actor=actor,
            step=step,
            outcome=outcome,
            inputs=inputs,
            detail=detail,
        )
        self.trajectory.append(event)

    def draft(self, ticket: int, remedy: Remedy) -> Drafted:
        self.drafts.append((ticket, remedy))
        branch = f"infrabot/{ticket}-attempt-{len(self.drafts)}"
        pr = self.forge.open_pull_request(
            branch=branch, base="main", title="t", body="b", issue=ticket, author=BOT_LOGIN
        )
        self.record(ticket, BOT_LOGIN, "pr.opened", "ok", {"branch": branch}, {"pr": pr.number})
        return Drafted(pr=pr.number, message=f"ticket #{ticket}: remediation PR #{pr.number}")

    def check(self) -> Any:
        return run_check(self.svc, self.prom, self.rework)

    def apply(self, pr: int) -> None:
        """PR ``pr`` merged and applied (what apply_merged records)."""
        self.forge.merge(pr, self.forge.pull_request(pr).head_sha, "alice")
        self.record(
            self.forge.pull_request(pr).issue or 0,
            "alice",
            "apply.finished",
            "successful",
            {"pr": pr, "sha": "abc"},
            {},
        )

    def steps(self, ticket: int) -> list[str]:
        return [e.step for e in self.trajectory.read(ticket)]


def opened(loop: Loop) -> tuple[int, int]:
    """The check finds the memory tight: one ticket, and its runbook's PR drafted."""
    report = loop.check()
    item = next(i for i in report.items if i.name == "container_memory_headroom")
    assert item.state == "violated" and item.ticket is not None
    assert item.drafted is not None and item.drafted.pr is not None
    assert "drafted   ticket #1: remediation PR #2" in render_check(report)
    return item.ticket, item.drafted.pr


def test_a_check_opened_ticket_gets_its_remediation_pr_once(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    ticket, pr = opened(loop)
    (drafted_for, remedy) = loop.drafts[0]
    assert drafted_for == ticket and remedy.request == (
        "Double the memory of the status-page container"
    )
    assert loop.forge.pull_request(pr).issue == ticket
    loop.clock.advance(minutes=5)
    report = loop.check()  # still violated: the ticket is updated, nothing drafted again
    assert len(loop.drafts) == 1
    assert all(i.drafted is None for i in report.items)


def test_without_drafting_the_check_opens_the_ticket_and_drafts_nothing(tmp_path: Path) -> None:
    loop = Loop(tmp_path, draft=False)
    report = loop.check()
    item = next(i for i in report.items if i.name == "container_memory_headroom")
    assert item.ticket is not None and item.drafted is None and loop.drafts == []


def test_not_yet_then_failed_reopens_the_work_once(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.clock.advance(minutes=1)
    loop.apply(first)
    loop.clock.advance(seconds=119)  # the invariant's `for` is 2m: not yet judged
    report = loop.check()
    assert report.acceptance == () and len(loop.drafts) == 1
    assert "acceptance.failed" not in loop.steps(ticket)

    loop.clock.advance(seconds=1)  # 2m after the apply, still tight: the fix failed
    report = loop.check()
    (verdict,) = report.acceptance
    assert verdict.state == "failed" and verdict.pr == 3
    assert "2m after PR #2 applied" in verdict.detail and "is violated now" in verdict.detail
    assert len(loop.drafts) == 2 and loop.forge.pull_request(3).issue == ticket
    comment = loop.forge.comments(ticket)[-1]
    assert comment.topic == "rework-2"
    assert comment.body.startswith("### The fix did not stick: the work is reopened")
    assert "the next attempt (2 of at most 2) is PR #3" in comment.body
    assert 'container="status-page"} = 0.1' in comment.body
    assert "(`still-tight` → `raise-memory`)" in comment.body  # the runbook walked again
    assert "the fix did not stick; next attempt PR #3" in render_check(report)
    assert loop.steps(ticket)[-3:] == ["acceptance.failed", "pr.opened", "work.reopened"]

    loop.clock.advance(minutes=10)
    again = loop.check()  # PR #3 is open: nothing is drafted, nothing recorded
    assert len(loop.drafts) == 2 and again.acceptance == ()
    assert loop.steps(ticket).count("acceptance.failed") == 1

    loop.prom.roomy()  # the headroom came back after all: acceptance, not the PR, decides
    closed = loop.check()
    assert [v.state for v in closed.acceptance] == ["held"]
    assert loop.forge.issue(ticket).state == "closed"


def test_fixes_that_do_not_stick_ask_a_person_once_until_the_label_goes(
    tmp_path: Path,
) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.apply(first)
    loop.clock.advance(minutes=3)
    second = loop.check().acceptance[0].pr
    assert second is not None
    loop.apply(second)
    loop.clock.advance(minutes=3)

    report = loop.check()  # the second attempt failed too: a person is asked
    (verdict,) = report.acceptance
    assert verdict.escalated and verdict.pr is None and len(loop.drafts) == 2
    assert "needs-human" in loop.forge.issue(ticket).labels
    asks = [c for c in loop.forge.comments(ticket) if (c.topic or "").startswith("escalated")]
    assert len(asks) == 1
    body = asks[0].body
    assert body.startswith("### Fixes did not stick: a person is needed")
    assert "2 remediation(s) applied and did not meet the acceptance criteria" in body
    for pr in (first, second):
        assert f"| #{pr} | memory change of PR #{pr} |" in body
    assert body.count("is violated now") == 2
    assert "labelled needs-human" in render_check(report)
    assert loop.steps(ticket)[-1] == "ticket.escalated"

    for _ in range(2):  # labelled: no drafting, no second comment, nothing recorded
        loop.clock.advance(minutes=10)
        assert loop.check().acceptance == ()  # still firing: nothing to judge
    assert len(loop.drafts) == 2
    asks = [c for c in loop.forge.comments(ticket) if (c.topic or "").startswith("escalated")]
    assert len(asks) == 1 and loop.steps(ticket).count("ticket.escalated") == 1

    loop.forge.remove_label(ticket, "needs-human")  # a person lets the bot try again
    resumed = loop.check().acceptance[0]
    assert resumed.pr is not None and len(loop.drafts) == 3
    assert loop.forge.comments(ticket)[-1].topic == f"rework-{second}-resumed"
    assert "the next attempt (1 of at most 2)" in loop.forge.comments(ticket)[-1].body
    loop.clock.advance(minutes=10)
    assert len(loop.drafts) == 3 and loop.check().acceptance == ()


def test_a_fix_that_holds_is_not_failed_and_closes_the_ticket(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.apply(first)
    loop.clock.advance(minutes=3)
    loop.prom.roomy()
    report = loop.check()
    assert [v.state for v in report.acceptance] == ["held"]
    assert loop.forge.issue(ticket).state == "closed" and len(loop.drafts) == 1
    assert "acceptance.failed" not in loop.steps(ticket)


def test_an_alert_that_fires_again_after_the_apply_fails_the_fix(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    loop.prom.answers = {}  # Prometheus sees no violation now: only the re-fire can tell
    labels = {"container": "status-page", "invariant": "container_memory_headroom"}
    ticket = ingest(loop.svc, payload("am", alert("m", **labels))).ticket
    assert ticket is not None
    first = loop.draft(ticket, plan_remedy(None, {}, NoEvidence())).pr
    assert first is not None
    loop.clock.advance(minutes=1)
    ingest(loop.svc, payload("am", alert("m", status="resolved", **labels)))
    loop.apply(first)
    loop.clock.advance(minutes=3)
    assert run_check(loop.svc, loop.prom, loop.rework).acceptance[0].state == "not_yet"
    refire = alert("m", starts=loop.clock() - MIN, **labels)  # started after the apply
    ingest(loop.svc, payload("am", refire))
    report = loop.check()
    verdict = next(v for v in report.acceptance if v.ticket == ticket)
    assert verdict.state == "failed"
    assert "holds now; the alert fired again after the apply" in verdict.detail
    # the runbook saw no tight memory when the ticket opened: it was a person's from the
    # start (needs-human), so the failure is recorded and commented, and nothing drafted
    assert verdict.pr is None and not verdict.escalated and len(loop.drafts) == 1
    assert "needs-human" in loop.forge.issue(ticket).labels
    assert "the ticket is labelled `needs-human`" in loop.forge.comments(ticket)[-1].body


def test_prometheus_down_or_a_failed_query_decides_nothing(tmp_path: Path) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.apply(first)
    loop.clock.advance(minutes=3)
    loop.prom.answers = {"": QueryFailed(kind="down", message="connection refused")}
    report = loop.check()
    assert report.prometheus == "down" and report.acceptance == ()
    # the check's own queries answer, but the criterion's does not: no verdict either
    loop.prom.answers = {") <= 0.2": QueryFailed(kind="rejected", message="bad"), **{}}
    loop.prom.answers["container_memory"] = TIGHT
    report = loop.check()
    assert all(v.state != "failed" for v in report.acceptance)
    assert len(loop.drafts) == 1 and "acceptance.failed" not in loop.steps(ticket)


def test_a_check_that_may_not_draft_records_the_failure_and_a_later_one_drafts(
    tmp_path: Path,
) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.apply(first)
    loop.clock.advance(minutes=3)
    quiet = replace(loop.rework, draft=None)
    report = run_check(loop.svc, loop.prom, quiet)
    assert report.acceptance[0].state == "failed" and report.acceptance[0].pr is None
    assert "--no-draft" in loop.forge.comments(ticket)[-1].body and len(loop.drafts) == 1
    assert loop.check().acceptance[0].pr is not None and len(loop.drafts) == 2


def test_when_the_runbook_recommends_no_change_any_more_a_person_is_asked(
    tmp_path: Path,
) -> None:
    loop = Loop(tmp_path)
    ticket, first = opened(loop)
    loop.apply(first)
    loop.clock.advance(minutes=3)
    # the criterion is violated, but the runbook's own check says the headroom is back
    loop.prom.answers = {"< 0.2": QueryOk(samples=()), "container_memory": TIGHT}
    verdict = loop.check().acceptance[0]
    assert verdict.escalated and len(loop.drafts) == 1
    assert "the runbook, walked again now, recommends no change" in (
        loop.forge.comments(ticket)[-1].body
    )


def test_times_in_the_trajectory_are_aware() -> None:
    assert read_trail([ev(0, "apply.finished", "successful", pr=2)]).attempts[0].applied_at == (
        datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    )
