"""infrabot check's decisions over a Prometheus test double: open, update, resolve, and
nothing at all on missing data or a rejected query."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from conftest_alerts import Clock, alert, intake, payload

from bot.alerts.acceptance import verify_after_apply
from bot.alerts.check import render_check, run_check
from bot.alerts.intake import IntakeServices, ingest
from bot.alerts.payload import AlertGroup
from bot.alerts.prometheus import QueryFailed, QueryOk, QueryResult, Sample
from bot.forge.fake import FakeForge


class Prom:
    """Answers by query substring; everything else is an empty vector."""

    def __init__(self) -> None:
        self.answers: dict[str, QueryResult] = {}

    def query(self, expr: str) -> QueryResult:
        for needle, answer in self.answers.items():
            if needle in expr:
                return answer
        return QueryOk(samples=())


def probe_down(*instances: str) -> QueryOk:
    return QueryOk(samples=tuple(Sample(labels={"instance": i}, value=0) for i in instances))


def test_a_violation_opens_one_ticket_updates_it_and_resolves_it(tmp_path: Path) -> None:
    clock = Clock()
    svc = intake(tmp_path, clock)
    prom = Prom()
    prom.answers["probe_success"] = probe_down("http://a/")
    first = run_check(svc, prom)
    item = next(i for i in first.items if i.name == "site_probe_success")
    assert item.state == "violated" and item.ticket is not None
    forge = svc.forge
    assert isinstance(forge, FakeForge)
    assert "`site-unreachable`" in forge.issue(item.ticket).body
    clock.advance(minutes=5)
    run_check(svc, prom)  # the same violation: no new ticket, no comment
    assert len(forge.list_issues()) == 1 and forge.comments(item.ticket) == []
    prom.answers["probe_success"] = probe_down("http://a/", "http://b/")
    run_check(svc, prom)
    assert [c.topic for c in forge.comments(item.ticket)] == ["alerts"]
    prom.answers["probe_success"] = QueryOk(samples=())
    done = run_check(svc, prom)
    assert done.ok
    resolved = [c.body for c in forge.comments(item.ticket) if (c.topic or "").startswith("alert:")]
    assert len(resolved) == 1 and resolved[0].startswith("### Resolved")
    assert "http://a/" in resolved[0] and "http://b/" in resolved[0]
    assert forge.issue(item.ticket).state == "open"  # acceptance closes it, not a resolve


def test_prometheus_down_touches_nothing(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    prom = Prom()
    prom.answers["probe_success"] = probe_down("http://a/")
    ticket = next(i.ticket for i in run_check(svc, prom).items if i.ticket)
    prom.answers = {"": QueryFailed(kind="down", message="connection refused")}
    report = run_check(svc, prom)
    assert report.prometheus == "down" and report.items == ()
    assert "Prometheus is down" in render_check(report)
    assert isinstance(svc.forge, FakeForge) and svc.forge.comments(ticket or 0) == []


def test_a_rejected_query_is_reported_and_commented_and_resolves_nothing(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    prom = Prom()
    prom.answers["probe_success"] = probe_down("http://a/")
    ticket = next(i.ticket for i in run_check(svc, prom).items if i.ticket)
    prom.answers["probe_success"] = QueryFailed(kind="rejected", message="parse error: x")
    report = run_check(svc, prom)
    item = next(i for i in report.items if i.name == "site_probe_success")
    assert item.state == "error" and "parse error" in item.message
    assert isinstance(svc.forge, FakeForge)
    comments = svc.forge.comments(ticket or 0)
    assert [c.topic for c in comments] == ["check-query-error"]
    assert "parse error: x" in comments[0].body
    assert "ERROR" in render_check(report)


def one(value: float) -> QueryOk:
    return QueryOk(samples=(Sample(labels={"instance": "http://a/"}, value=value),))


def resolved_ticket(svc: IntakeServices, prom: Prom) -> int:
    prom.answers["probe_success"] = probe_down("http://a/")
    ticket = next(i.ticket for i in run_check(svc, prom).items if i.ticket)
    assert ticket is not None
    return ticket


def test_a_ticket_closes_only_when_the_criterion_held_for_its_duration(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    prom = Prom()
    ticket = resolved_ticket(svc, prom)
    forge = svc.forge
    assert isinstance(forge, FakeForge)
    # the violation query (`!= 1`) matches nothing now: the alert resolves, acceptance is judged
    prom.answers = {
        "!= 1": QueryOk(samples=()),
        "min_over_time": one(0),
        "count_over_time": one(10),
        "probe_success": one(1),
    }
    report = run_check(svc, prom)
    assert [v.state for v in report.acceptance] == ["not_yet"]
    assert forge.issue(ticket).state == "open"
    assert "did not hold at every point" in forge.comments(ticket)[-1].body
    prom.answers["min_over_time"] = one(1)
    prom.answers["count_over_time"] = one(3)
    assert run_check(svc, prom).acceptance[0].detail.startswith("it holds, but not yet for 5m")
    prom.answers["count_over_time"] = one(10)
    closed = run_check(svc, prom)
    assert closed.acceptance[0].closed and forge.issue(ticket).state == "closed"
    assert "accepted" in render_check(closed)
    assert run_check(svc, prom).acceptance == ()  # a closed ticket is not judged again


def test_no_data_never_closes_a_ticket(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    prom = Prom()
    ticket = resolved_ticket(svc, prom)
    prom.answers = {"!= 1": QueryOk(samples=())}
    report = run_check(svc, prom)
    assert report.acceptance[0].state == "not_yet" and "no data" in report.acceptance[0].detail
    assert isinstance(svc.forge, FakeForge) and svc.forge.issue(ticket).state == "open"


def test_after_an_apply_the_ticket_waits_for_its_criteria_and_never_closes_blind(
    tmp_path: Path,
) -> None:
    prom = Prom()
    svc = replace(intake(tmp_path), prometheus=prom)
    ticket = ingest(svc, payload("g", alert("a", instance="http://a/"))).ticket
    assert ticket is not None
    forge = svc.forge
    assert isinstance(forge, FakeForge)
    assert verify_after_apply(svc, ticket + 100, 7) is None  # not an alert group's ticket

    # The criterion held throughout, but the alert still fires: not closed.
    prom.answers["min_over_time"] = QueryOk(samples=(Sample(labels={}, value=1),))
    prom.answers["count_over_time"] = QueryOk(samples=(Sample(labels={}, value=100),))
    verdict = verify_after_apply(svc, ticket, 7)
    assert verdict is not None and verdict.state == "not_yet" and not verdict.closed
    comment = forge.comments(ticket)[-1]
    assert comment.topic == "acceptance" and "right after PR #7 applied" in comment.body
    assert "1 alert(s) still firing" in comment.body

    # Prometheus down: reported, nothing closed.
    prom.answers["min_over_time"] = QueryFailed(kind="down", message="connection refused")
    verdict = verify_after_apply(svc, ticket, 7)
    assert verdict is not None and verdict.state == "unknown" and not verdict.closed
    assert "connection refused" in forge.comments(ticket)[-1].body

    # Resolved and held for the whole duration: closed with what was measured.
    ingest(svc, payload("g", alert("a", status="resolved", instance="http://a/")))
    prom.answers["min_over_time"] = QueryOk(samples=(Sample(labels={}, value=1),))
    verdict = verify_after_apply(svc, ticket, 7)
    assert verdict is not None and verdict.closed
    assert forge.issue(ticket).state == "closed"
    assert forge.comments(ticket)[-1].body.startswith("### Acceptance criteria met")


def test_a_violation_alertmanager_already_posted_is_not_ticketed_twice(tmp_path: Path) -> None:
    """Right after a fix applies, Alertmanager's ticket waits for its criteria; a check that
    still sees the violation must not open a second ticket (and draft a second fix) for it."""
    clock = Clock()
    svc = intake(tmp_path, clock)
    forge = svc.forge
    assert isinstance(forge, FakeForge)
    posted = ingest(
        svc,
        AlertGroup.model_validate(
            payload('{}:{alertname="InvariantViolated"}', alert("am1", instance="http://a/"))
        ),
    )
    assert posted.opened and posted.ticket is not None
    prom = Prom()
    prom.answers["probe_success"] = probe_down("http://a/")
    clock.advance(minutes=1)
    item = next(i for i in run_check(svc, prom).items if i.name == "site_probe_success")
    assert item.state == "violated" and item.ticket == posted.ticket
    assert len(forge.list_issues()) == 1
    # once that ticket is closed, a violation the check sees is its own to ticket
    forge.close_issue(posted.ticket, "done")
    clock.advance(minutes=1)
    item = next(i for i in run_check(svc, prom).items if i.name == "site_probe_success")
    assert item.ticket not in (None, posted.ticket) and len(forge.list_issues()) == 2
