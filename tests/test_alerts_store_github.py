"""The alert record on GitHub's ledger branch (``bot/forge/github/alerts.py``): what only
it has to prove — redaction, bounded files, the size limit, the claim that keeps two
runners from opening two tickets for one group (raced in threads over real HTTP against
the test-only fake), and a crashed runner's claim taken over when its lease runs out."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import github
import pytest
from conftest_alerts import ROOT, T0, Clock, Recorder, alert, payload
from fakes.github import FakeGitHub
from github_world import github_forge

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import FLAP_WINDOW, IngestResult, IntakeServices, ingest
from bot.alerts.payload import Alert, parse_alert_group
from bot.errors import InfrabotError
from bot.forge.github.alerts import GitHubAlertRecord, GroupFile
from bot.forge.github.forge import GitHubForge
from bot.forge.github.stores import github_stores

pytestmark = pytest.mark.integration


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", {"alice": "admin"}).serving() as fake:
        yield fake


def _record(hub: FakeGitHub, **kw: Any) -> GitHubAlertRecord:
    found = github_stores(github_forge(hub), sleep=lambda _: None).alerts
    for name, value in kw.items():
        setattr(found, name, value)
    return found


def _alerts(*raw: dict[str, object]) -> list[Alert]:
    return list(parse_alert_group(payload("g", *raw)).alerts)


def _raw(record: GitHubAlertRecord, group_key: str) -> str:
    found = record.ledger.read(record.path(group_key))
    assert found is not None
    return found[0].decode()


def _issues(hub: FakeGitHub) -> list[Any]:
    client = github.Github(auth=github.Auth.Token(hub.token("alice")), base_url=hub.url)
    return list(client.get_repo(hub.full_name).get_issues(state="all"))


def _intake(forge: GitHubForge, record: GitHubAlertRecord) -> IntakeServices:
    return IntakeServices(
        forge=forge, store=record, catalog=require_catalog(ROOT), clock=Clock(), record=Recorder()
    )


def test_what_is_written_is_redacted_and_the_group_is_still_found(hub: FakeGitHub) -> None:
    record = _record(hub)
    group = '{}:{alertname="Leak", url="http://x/?token=s3cr3tvalue"}'
    evil = alert("a", summary="password=hunter2", api_token="ghp_" + "y" * 36)
    got = record.receive(group, _alerts(evil), T0, FLAP_WINDOW)
    record.mark_handled(got.pending, ticket=(group, 3, T0))
    text = _raw(record, group)
    assert "hunter2" not in text and "y" * 36 not in text and "s3cr3tvalue" not in text
    other = _record(hub)
    ((stored_key, ticket),) = other.groups()
    assert ticket == 3 and "s3cr3tvalue" not in stored_key
    (latest,) = other.latest(stored_key)  # the key groups() gave finds its file
    assert latest.fingerprint == "a" and "hunter2" not in latest.model_dump_json()
    assert other.ticket(group) == 3


def test_handled_old_deliveries_are_pruned_and_what_intake_reads_is_kept() -> None:
    doc = GroupFile(group_key="g")
    rows: list[dict[str, Any]] = []
    when = T0
    for _ in range(50):  # fire and resolve every 30 minutes for a day
        start = when.isoformat()
        for status in ("firing", "resolved"):
            rows.append(
                {
                    "fingerprint": "a",
                    "starts_at": start,
                    "status": status,
                    "received_at": when.isoformat(),
                    "alert": {},
                    "handled": True,
                }
            )
        when += timedelta(minutes=30)
    rows.append(  # b fired long ago and never resolved: an open firing
        {
            "fingerprint": "b",
            "starts_at": T0.isoformat(),
            "status": "firing",
            "received_at": T0.isoformat(),
            "alert": {},
            "handled": True,
        }
    )
    doc = GroupFile.model_validate(
        {"group_key": "g", "first_starts": {"a": T0.isoformat()}, "deliveries": rows}
    )
    doc.prune(when, FLAP_WINDOW)
    kept = [(d.fingerprint, d.status, d.received_at) for d in doc.deliveries]
    assert len(kept) <= 6, kept
    assert ("b", "firing", T0) in kept  # still open: never dropped
    assert all(d.received_at >= when - FLAP_WINDOW for d in doc.deliveries if d.fingerprint == "a")
    assert doc.open_firings() == {"b": T0.isoformat()}
    assert doc.history(["a"], when - FLAP_WINDOW)["a"].first_start == T0.isoformat()


def test_a_pending_delivery_keeps_the_history_its_flap_count_needs() -> None:
    old = T0 - timedelta(hours=5)
    rows = [
        {
            "fingerprint": "a",
            "starts_at": (old + timedelta(minutes=m)).isoformat(),
            "status": "firing",
            "received_at": (old + timedelta(minutes=m)).isoformat(),
            "alert": {},
            "handled": m < 40,
        }
        for m in (0, 20, 40)
    ]
    doc = GroupFile.model_validate({"group_key": "g", "deliveries": rows})
    doc.prune(T0, FLAP_WINDOW)  # the forge was down for hours: one is still pending
    assert len(doc.deliveries) == 3


def test_a_group_over_the_size_limit_is_a_clear_error_and_nothing_is_written(
    hub: FakeGitHub,
) -> None:
    record = _record(hub)
    huge = [alert(f"f{n}", summary="z" * 16_000) for n in range(40)]
    with pytest.raises(InfrabotError, match=r"over the ledger's .* nothing was recorded"):
        record.receive("g1", _alerts(*huge), T0, FLAP_WINDOW)
    assert record.ledger.read(record.path("g1")) is None
    assert _record(hub).pending_groups() == []


def test_a_file_that_is_not_an_alert_record_is_a_clear_error(hub: FakeGitHub) -> None:
    record = _record(hub)
    record.ledger.update(record.path("g1"), lambda _: b'{"version": 7}', "garbage")
    with pytest.raises(InfrabotError, match=r"is not an alert record.*move it aside"):
        record.receive("g1", _alerts(alert("a")), T0, FLAP_WINDOW)
    with pytest.raises(InfrabotError, match="is not an alert record"):
        record.ticket("g1")


def test_a_crashed_runners_claim_is_taken_over_when_its_lease_runs_out(hub: FakeGitHub) -> None:
    gone = _record(hub, clock=lambda: T0)
    assert gone.receive("g1", _alerts(alert("a")), T0, FLAP_WINDOW).pending  # then it dies
    clock = Clock(T0 + timedelta(minutes=4))
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds=seconds)

    here = _record(hub, clock=clock, sleep=sleep, poll=60.0)
    got = here.receive("g1", _alerts(alert("b")), clock.now, FLAP_WINDOW)
    assert [d.alert.fingerprint for d in got.pending] == ["a", "b"]  # it works both
    assert len(waits) == 6 and clock.now >= T0 + gone.lease
    claim = json.loads(_raw(here, "g1"))["claim"]
    assert claim["owner"] == here.owner
    here.mark_handled(got.pending, ticket=("g1", 5, clock.now))
    assert json.loads(_raw(here, "g1"))["claim"] is None


def test_two_runners_racing_for_one_group_open_one_ticket(hub: FakeGitHub) -> None:
    """A opens the ticket slowly; B arrives while A works the group.  B records its
    delivery, waits for A's claim, then adds its new alert to A's ticket."""
    inside, b_waits = threading.Event(), threading.Event()
    results: dict[str, IngestResult] = {}
    errors: list[BaseException] = []
    forge_a, forge_b = github_forge(hub), github_forge(hub)
    real_create = forge_a.create_issue

    def slow_create(*args: Any, **kw: Any) -> Any:
        inside.set()
        b_waits.wait(timeout=10)  # without the claim B never waits: it opens its own
        return real_create(*args, **kw)

    forge_a.create_issue = slow_create  # type: ignore[method-assign]

    def b_sleep(seconds: float) -> None:
        b_waits.set()
        time.sleep(seconds)

    runners = {
        "a": (forge_a, _record(hub, poll=0.02)),
        "b": (forge_b, _record(hub, poll=0.02, sleep=b_sleep)),
    }
    deliveries = {"a": payload("g1", alert("x")), "b": payload("g1", alert("x"), alert("y"))}

    def run(name: str) -> None:
        try:
            forge, record = runners[name]
            results[name] = ingest(_intake(forge, record), deliveries[name])
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=run, args=("a",))
    first.start()
    assert inside.wait(timeout=30)
    second = threading.Thread(target=run, args=("b",))
    second.start()
    first.join()
    second.join()
    assert errors == []
    assert len(_issues(hub)) == 1
    a, b = results["a"], results["b"]
    assert a.opened and not b.opened and b.ticket == a.ticket and b.new == 1
    assert a.ticket is not None
    listed = [c.body for c in forge_b.comments(a.ticket) if c.topic == "alerts"]
    assert len(listed) == 1 and "`y`" in listed[0]
    assert json.loads(_raw(runners["b"][1], "g1"))["claim"] is None


def test_a_burst_of_runners_for_one_group_opens_one_ticket(hub: FakeGitHub) -> None:
    barrier = threading.Barrier(3)
    results: list[IngestResult] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            forge = github_forge(hub)
            record = _record(hub, poll=0.02, sleep=time.sleep)
            barrier.wait()
            results.append(ingest(_intake(forge, record), payload("g1", alert(f"a{n}"))))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(_issues(hub)) == 1
    assert sum(r.opened for r in results) == 1
    assert len({r.ticket for r in results}) == 1 and None not in {r.ticket for r in results}
    assert _record(hub).pending_groups() == []
    assert {a.fingerprint for a in _record(hub).latest("g1")} == {"a0", "a1", "a2"}


def test_an_unchanged_record_makes_no_commit(hub: FakeGitHub) -> None:
    record = _record(hub)
    got = record.receive("g1", _alerts(alert("a")), T0, FLAP_WINDOW)
    record.mark_handled(got.pending, ticket=("g1", 2, T0))
    forge = github_forge(hub)
    ref = f"heads/{record.ledger.branch}"
    before = forge.repo.get_git_ref(ref).object.sha
    again = record.receive("g1", _alerts(alert("a")), T0 + timedelta(minutes=1), FLAP_WINDOW)
    assert again.new == [] and again.pending == []
    assert forge.repo.get_git_ref(ref).object.sha == before
