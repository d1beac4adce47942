"""The drift ticket's decisions (``bot.alerts.drift._ticket``) over a fake forge: one
ticket per drift, edited not repeated, closed when the drift is gone; a failed check run
touches nothing (the real check runs: test_e2e_alert_loop.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest_alerts import intake

from bot.alerts.drift import DRIFT_GROUP, _ticket
from bot.forge.fake import FakeForge
from bot.model import TaskResult


class Svc:
    """What ``_ticket`` reads of the bot's Services: the base branch and the recorder."""

    class config:
        base_branch = "main"

    def __init__(self) -> None:
        self.records: list[tuple[int, str]] = []

    def record(self, ticket: int, actor: str, step: str, *rest: Any) -> None:
        self.records.append((ticket, step))


def task(host: str, diff: str) -> TaskResult:
    return TaskResult(host=host, task="Render the A records", status="changed", diff=diff)


def test_one_ticket_for_drift_edited_then_closed(tmp_path: Path) -> None:
    svc, alerts = Svc(), intake(tmp_path)
    forge = alerts.forge
    assert isinstance(forge, FakeForge)
    none = _ticket(svc, alerts, "a" * 40, (), (), set())  # type: ignore[arg-type]
    assert none.state == "none" and none.ticket is None and forge.list_issues() == []

    first = _ticket(
        svc,  # type: ignore[arg-type]
        alerts,
        "b" * 40,
        ("dns1",),
        (task("dns1", "+10.9.9.9 by-hand"),),
        set(),
    )
    assert first.state == "drift" and first.ticket is not None
    issue = forge.issue(first.ticket)
    assert issue.labels == ("drift",) and "by-hand" in issue.body and "`dns1`" in issue.body
    assert alerts.store.ticket(DRIFT_GROUP) == first.ticket

    for diff in ("+10.9.9.9 by-hand", "+10.9.9.8 another"):
        again = _ticket(
            svc,  # type: ignore[arg-type]
            alerts,
            "b" * 40,
            ("dns1", "pve1"),
            (task("dns1", diff),),
            {"pve1"},
        )
        assert again.ticket == first.ticket
    assert len(forge.list_issues()) == 1
    comments = forge.comments(first.ticket)
    assert [c.topic for c in comments] == ["drift"]  # edited in place, not repeated
    assert "another" in comments[0].body and "state unknown" in comments[0].body

    gone = _ticket(svc, alerts, "c" * 40, (), (), set())  # type: ignore[arg-type]
    assert gone.closed and forge.issue(first.ticket).state == "closed"
    assert "No drift any more" in forge.comments(first.ticket)[-1].body

    back = _ticket(
        svc,  # type: ignore[arg-type]
        alerts,
        "d" * 40,
        ("dns1",),
        (task("dns1", "+x"),),
        set(),
    )
    assert back.ticket != first.ticket and len(forge.list_issues()) == 2  # a new drift
