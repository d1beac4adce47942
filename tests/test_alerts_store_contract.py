"""The same alert record from both implementations (``bot.alerts.store.AlertRecord``):
SQLite under ``.infrabot/``, and files on GitHub's ledger branch over real HTTP against the
test-only fake.  Two record objects are two runners: they share nothing but the disk
(SQLite) or GitHub.  Intake runs on top of each (with the in-memory forge), so the
promises of issue 8 — one ticket per group, dedupe, re-fire, resolve, flapping, a retry
after a forge failure — are checked against both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest_alerts import ROOT, T0, Clock, Recorder, alert, payload
from fakes.github import FakeGitHub
from github_world import github_forge

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import FLAP_WINDOW, IntakeServices, ingest, retry_pending
from bot.alerts.payload import Alert, parse_alert_group
from bot.alerts.store import AlertRecord, AlertStore
from bot.errors import InfrabotError
from bot.forge.fake import FakeForge
from bot.forge.github.stores import github_stores

Factory = Callable[..., AlertRecord]


class World:
    def __init__(self, kind: str, record: Factory, hub: FakeGitHub | None = None) -> None:
        self.kind, self.record, self.hub = kind, record, hub


@pytest.fixture(params=["sqlite", pytest.param("github", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "sqlite":
        yield World("sqlite", lambda **_: AlertStore(tmp_path / "alerts.db"))
        return
    hub = FakeGitHub(tmp_path / "github", {"alice": "admin"}).start()

    def record(clock: Callable[[], datetime] | None = None, **kw: object) -> AlertRecord:
        forge = github_forge(hub)  # a runner of its own: its own client, nothing shared
        found = github_stores(forge, sleep=lambda _: None).alerts
        if clock is not None:
            found.clock = clock
        for name, value in kw.items():
            setattr(found, name, value)
        return found

    try:
        yield World("github", record, hub)
    finally:
        hub.stop()
    assert hub.errors == [], "the fake sent responses GitHub could not have sent"


def _alerts(*raw: dict[str, object]) -> list[Alert]:
    return list(parse_alert_group(payload("g", *raw)).alerts)


def _intake(record: AlertRecord, clock: Clock, forge: FakeForge | None = None) -> IntakeServices:
    return IntakeServices(
        forge=forge or FakeForge(clock=clock),
        store=record,
        catalog=require_catalog(ROOT),
        clock=clock,
        record=Recorder(),
    )


# -- the record ------------------------------------------------------------------------


def test_receive_records_once_and_a_redelivery_inserts_nothing(world: World) -> None:
    a, b = world.record(), world.record()
    got = a.receive("g1", _alerts(alert("x"), alert("y")), T0, FLAP_WINDOW)
    assert [d.alert.fingerprint for d in got.new] == ["x", "y"]
    assert [d.alert.fingerprint for d in got.pending] == ["x", "y"]
    assert got.ticket is None and got.history["x"].firings == 1
    a.release("g1")
    again = b.receive("g1", _alerts(alert("x")), T0 + timedelta(minutes=1), FLAP_WINDOW)
    assert again.new == [] and len(again.pending) == 2  # still pending: nobody worked them
    assert world.record().pending_groups() == ["g1"]


def test_handled_deliveries_and_the_ticket_pass_to_another_runner(world: World) -> None:
    a = world.record()
    got = a.receive("g1", _alerts(alert("x")), T0, FLAP_WINDOW)
    a.mark_handled(got.pending, ticket=("g1", 7, T0))
    b = world.record()
    assert b.ticket("g1") == 7 and b.groups() == [("g1", 7)]
    assert b.pending("g1") == [] and b.pending_groups() == []
    assert b.ticket("never") is None and b.latest("never") == []
    later = b.receive("g1", _alerts(alert("x")), T0 + timedelta(minutes=5), FLAP_WINDOW)
    assert (later.new, later.pending, later.ticket) == ([], [], 7)


def test_latest_open_firings_and_history(world: World) -> None:
    a = world.record()
    t1 = T0 + timedelta(minutes=10)
    steps = [
        (T0, [alert("x", labels_v="1"), alert("y")]),
        (T0 + timedelta(minutes=5), [alert("x", status="resolved", ends=t1.isoformat())]),
        (t1, [alert("x", starts=t1, labels_v="2")]),
    ]
    for when, raw in steps:
        got = a.receive("g1", _alerts(*raw), when, FLAP_WINDOW)
        a.mark_handled(got.pending)
    b = world.record()
    assert {x.fingerprint: x.labels.get("labels_v") for x in b.latest("g1")} == {
        "x": "2",
        "y": None,
    }
    assert b.open_firings("g1") == {"x": t1.isoformat(), "y": T0.isoformat()}
    got = b.receive("g1", _alerts(alert("x", starts=t1 + timedelta(minutes=1))), t1, FLAP_WINDOW)
    assert got.history["x"].firings == 3 and got.history["x"].first_start == T0.isoformat()


def test_set_ticket_replaces_the_groups_ticket(world: World) -> None:
    world.record().set_ticket("infrabot-drift", 4, T0)
    world.record().set_ticket("infrabot-drift", 9, T0 + timedelta(hours=1))
    assert world.record().ticket("infrabot-drift") == 9
    assert world.record().groups() == [("infrabot-drift", 9)]


# -- intake on the record --------------------------------------------------------------


def test_one_ticket_per_group_redelivery_refire_and_resolve(world: World) -> None:
    clock = Clock()
    forge = FakeForge(clock=clock)
    first = ingest(_intake(world.record(), clock, forge), payload("g1", alert("a")))
    assert first.opened and first.ticket is not None
    again = ingest(_intake(world.record(), clock, forge), payload("g1", alert("a")))
    assert (again.new, again.duplicates, again.opened, again.ticket) == (0, 1, False, first.ticket)
    assert forge.comments(first.ticket) == []
    clock.advance(minutes=10)
    gone = alert("a", status="resolved", ends=clock.now.isoformat())
    ingest(_intake(world.record(), clock, forge), payload("g1", gone))
    clock.advance(minutes=10)
    ingest(_intake(world.record(), clock, forge), payload("g1", alert("a", starts=clock.now)))
    bodies = [c.body for c in forge.comments(first.ticket) if (c.topic or "").startswith("alert:")]
    assert bodies[0].startswith("### Resolved") and bodies[1].startswith("### Fired again")
    assert len(forge.list_issues()) == 1


def test_flapping_alerts_do_not_storm(world: World) -> None:
    clock = Clock()
    forge = FakeForge(clock=clock)
    for _ in range(6):
        result = ingest(
            _intake(world.record(), clock, forge), payload("g1", alert("a", starts=clock.now))
        )
        if result.ticket:
            forge.close_issue(result.ticket)
        clock.advance(minutes=5)
        gone = alert("a", status="resolved", starts=clock.now)
        ingest(_intake(world.record(), clock, forge), payload("g1", gone))
        clock.advance(minutes=1)
    assert len(forge.list_issues()) <= 2 and result.flapping == 1


def test_a_forge_failure_keeps_the_record_for_the_next_runner(world: World) -> None:
    clock = Clock()
    forge = FakeForge(clock=clock)
    real = forge.create_issue

    def down(*args: object, **kw: object) -> object:
        raise InfrabotError("forge unreachable")

    forge.create_issue = down  # type: ignore[method-assign,assignment]
    failed = ingest(_intake(world.record(), clock, forge), payload("g1", alert("a")))
    assert (failed.pending, failed.error, failed.ticket) == (1, "forge unreachable", None)
    forge.create_issue = real  # type: ignore[method-assign]
    # a fresh runner finishes it at once: the failed one gave its claim back
    done = retry_pending(_intake(world.record(), clock, forge))
    assert [r.opened for r in done] == [True]
    assert retry_pending(_intake(world.record(), clock, forge)) == []
    assert len(forge.list_issues()) == 1


def test_stale_alerts_and_a_resolve_without_a_ticket_open_nothing(world: World) -> None:
    clock = Clock()
    forge = FakeForge(clock=clock)
    gone = alert("a", status="resolved", ends=T0.isoformat())
    resolved = ingest(_intake(world.record(), clock, forge), payload("g1", gone))
    stale_alert = alert("b", ends=(T0 - timedelta(hours=1)).isoformat())
    stale = ingest(_intake(world.record(), clock, forge), payload("g2", stale_alert))
    assert (resolved.ticket, stale.ticket, stale.stale) == (None, None, 1)
    assert forge.list_issues() == [] and world.record().pending_groups() == []
