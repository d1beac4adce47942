"""Helpers for the alert tests: Alertmanager payloads and intake services over a fake forge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import IntakeServices
from bot.alerts.store import AlertStore
from bot.forge.fake import FakeForge

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def alert(
    fp: str,
    *,
    status: str = "firing",
    starts: datetime = T0,
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    base = {
        "alertname": "InvariantViolated",
        "invariant": "site_probe_success",
        "infrabot_kind": "invariant",
        "severity": "ticket",
    }
    return {
        "status": status,
        "labels": base | labels,
        "annotations": {"summary": "Invariant site_probe_success does not hold"},
        "startsAt": starts.isoformat(),
        "endsAt": ends,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }


def payload(group: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "infrabot",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def __call__(
        self, ticket: int, actor: str, step: str, outcome: str, inputs: Any, detail: Any
    ) -> None:
        self.events.append((ticket, step))


def intake(tmp_path: Path, clock: Clock | None = None) -> IntakeServices:
    clock = clock or Clock()
    return IntakeServices(
        forge=FakeForge(clock=clock),
        store=AlertStore(tmp_path / "alerts.db"),
        catalog=require_catalog(ROOT),
        clock=clock,
        record=Recorder(),
    )
