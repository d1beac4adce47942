"""infrabot check's decisions over a Prometheus test double: open, update, resolve, and
nothing at all on missing data or a rejected query."""

from __future__ import annotations

from pathlib import Path

from conftest_alerts import Clock, intake

from bot.alerts.check import render_check, run_check
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
    resolved = [c.body for c in forge.comments(item.ticket) if c.topic is None]
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
