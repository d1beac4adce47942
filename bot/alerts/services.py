"""The alert part's services, composed from the bot's ``Services`` (the one wiring point)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import IntakeServices
from bot.alerts.store import AlertStore
from bot.flow.services import Services


def alert_db(home: Path) -> Path:
    return home / "alerts.db"


def intake_services(svc: Services) -> IntakeServices:
    """What ``ingest`` and ``run_check`` need; the server's ``/alerts`` route calls
    ``ingest(intake_services(svc), payload)`` and answers 2xx once it returns."""

    def record(
        ticket: int,
        actor: str,
        step: str,
        outcome: str,
        inputs: dict[str, Any],
        detail: dict[str, Any],
    ) -> None:
        svc.record(ticket, actor, step, outcome, inputs, detail)

    return IntakeServices(
        forge=svc.forge,
        store=AlertStore(alert_db(svc.paths.home)),
        catalog=require_catalog(svc.root),
        clock=svc.clock,
        record=record,
    )
