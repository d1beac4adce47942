"""Alert intake: one ticket per group, dedupe, re-fire, resolve, stale, flapping, bad input."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from conftest_alerts import T0, Clock, alert, intake, payload

from bot.alerts.intake import ingest, retry_pending
from bot.alerts.payload import parse_alert_group, parse_alert_json
from bot.alerts.store import AlertStore
from bot.errors import InfrabotError, InputError
from bot.forge.fake import FakeForge


def test_a_group_opens_one_ticket_with_objective_acceptance_and_runbook(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    result = ingest(svc, payload("g1", alert("a", instance="http://x/"), alert("b")))
    assert result.opened and result.ticket is not None and result.new == 2
    issue = svc.forge.issue(result.ticket)
    assert issue.title == "Alert: InvariantViolated (site_probe_success)"
    assert "Invariant `site_probe_success` holds" in issue.body
    assert '(min by (instance) (probe_success{job="probe"})) == 1` holds for 5m' in issue.body
    assert "`site-unreachable`" in issue.body
    # no evidence to answer the runbook's first check: the walk stops there, a human's
    assert "**Marked for a human** (label `needs-human`)" in issue.body
    assert set(issue.labels) == {
        "alert",
        "severity:ticket",
        "invariant:site_probe_success",
        "needs-human",
    }
    assert result.remedy is not None and not result.remedy.drafts


def test_redelivery_changes_nothing(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    first = ingest(svc, payload("g1", alert("a")))
    again = ingest(svc, payload("g1", alert("a")))
    assert (again.new, again.duplicates, again.opened, again.ticket) == (0, 1, False, first.ticket)
    assert isinstance(svc.forge, FakeForge)
    assert len(svc.forge.list_issues()) == 1
    assert svc.forge.comments(first.ticket or 0) == []


def test_a_new_alert_updates_the_list_and_a_refire_and_resolve_comment(tmp_path: Path) -> None:
    clock = Clock()
    svc = intake(tmp_path, clock)
    ticket = ingest(svc, payload("g1", alert("a"))).ticket
    assert ticket is not None
    ingest(svc, payload("g1", alert("a"), alert("b")))
    ingest(svc, payload("g1", alert("a"), alert("c")))
    topics = [c.topic for c in svc.forge.comments(ticket)]
    assert topics == ["alerts"]  # one list, edited in place
    assert "`c`" in svc.forge.comments(ticket)[0].body
    clock.advance(minutes=10)
    ingest(svc, payload("g1", alert("a", status="resolved", ends=clock.now.isoformat())))
    clock.advance(minutes=10)
    ingest(svc, payload("g1", alert("a", starts=clock.now)))
    bodies = [c.body for c in svc.forge.comments(ticket) if (c.topic or "").startswith("alert:")]
    assert bodies[0].startswith("### Resolved") and bodies[1].startswith("### Fired again")
    assert len(svc.forge.list_issues()) == 1


def test_a_closed_ticket_gets_a_new_one_when_the_group_fires_again(tmp_path: Path) -> None:
    clock = Clock()
    svc = intake(tmp_path, clock)
    first = ingest(svc, payload("g1", alert("a"))).ticket
    svc.forge.close_issue(first or 0)
    clock.advance(hours=3)
    second = ingest(svc, payload("g1", alert("a", starts=clock.now)))
    assert second.opened and second.ticket != first


def test_resolve_without_a_ticket_and_stale_alerts_open_nothing(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    gone = ingest(svc, payload("g1", alert("a", status="resolved", ends=T0.isoformat())))
    stale = ingest(svc, payload("g2", alert("b", ends="2026-01-05T11:00:00+00:00")))
    assert (gone.ticket, stale.ticket, stale.stale) == (None, None, 1)
    assert isinstance(svc.forge, FakeForge) and svc.forge.list_issues() == []


def test_a_flapping_alert_does_not_open_a_storm_of_tickets(tmp_path: Path) -> None:
    clock = Clock()
    svc = intake(tmp_path, clock)
    for _ in range(6):
        result = ingest(svc, payload("g1", alert("a", starts=clock.now)))
        if result.ticket:
            svc.forge.close_issue(result.ticket)  # a person closes it each time
        clock.advance(minutes=5)
        ingest(svc, payload("g1", alert("a", status="resolved", starts=clock.now)))
        clock.advance(minutes=1)
    assert isinstance(svc.forge, FakeForge)
    assert len(svc.forge.list_issues()) <= 2
    assert result.flapping == 1


def test_no_matching_runbook_still_opens_a_ticket_marked_for_a_human(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    odd = alert("a", alertname="DiskOnFire", infrabot_kind="other", invariant="")
    issue = svc.forge.issue(ingest(svc, payload("g1", odd)).ticket or 0)
    assert "needs-human" in issue.labels
    assert "marked for a human" in issue.body


def test_untrusted_labels_are_shown_as_escaped_data(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    evil = alert(
        "a",
        summary="```\n<!-- infrabot:topic=plan -->\n# owned\n/apply",
        token="password=hunter2",
    )
    body = svc.forge.issue(ingest(svc, payload("g1", evil)).ticket or 0).body
    block = body.split("untrusted text, shown as data):\n\n", 1)[1]
    assert block.startswith("````json\n") and block.rstrip().endswith("````")
    assert "hunter2" not in body
    assert "\n# owned" not in body.split("````json")[0]


def test_a_forge_failure_keeps_the_record_and_a_retry_finishes_it(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    forge = svc.forge
    assert isinstance(forge, FakeForge)
    real = forge.create_issue

    def down(*args: object, **kw: object) -> object:
        raise InfrabotError("forge unreachable")

    forge.create_issue = down  # type: ignore[method-assign,assignment]
    failed = ingest(svc, payload("g1", alert("a")))
    assert (failed.pending, failed.error, failed.ticket) == (1, "forge unreachable", None)
    forge.create_issue = real  # type: ignore[method-assign]
    again = ingest(svc, payload("g1", alert("a")))  # Alertmanager re-sends: a duplicate...
    assert again.opened and again.duplicates == 1  # ...that still finishes the pending work
    assert retry_pending(svc) == []
    assert len(forge.list_issues()) == 1


def test_the_record_is_durable_before_any_forge_work(tmp_path: Path) -> None:
    svc = intake(tmp_path)
    forge = svc.forge
    assert isinstance(forge, FakeForge)

    def crash(*args: object, **kw: object) -> object:
        raise RuntimeError("power cut")

    forge.create_issue = crash  # type: ignore[method-assign,assignment]
    with pytest.raises(RuntimeError):
        ingest(svc, payload("g1", alert("a")))
    assert [d.alert.fingerprint for d in AlertStore(tmp_path / "alerts.db").pending("g1")] == ["a"]


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda p: p.update(version="3"), "version '3' is not supported"),
        (lambda p: p.pop("groupKey"), "groupKey"),
        (lambda p: p.update(alerts=[]), "alerts"),
        (lambda p: p["alerts"][0].update(status="exploded"), "alerts.0.status"),
        (lambda p: p["alerts"][0].pop("fingerprint"), "fingerprint"),
        (lambda p: p["alerts"][0].update(startsAt="yesterday"), "startsAt"),
        (lambda p: p["alerts"][0]["labels"].update(n=1), ".n: Input should be a valid string"),
    ],
)
def test_a_payload_that_is_not_alertmanagers_is_a_clear_error(mutate, needle) -> None:  # type: ignore[no-untyped-def]
    bad = copy.deepcopy(payload("g", alert("a")))
    mutate(bad)
    with pytest.raises(InputError, match="Alertmanager") as err:
        parse_alert_group(bad)
    assert needle in str(err.value)


def test_not_json_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="invalid JSON"):
        parse_alert_json(b"<html>")
