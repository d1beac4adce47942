"""The alert part's services, composed from the bot's ``Services`` (the one wiring point)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import IntakeServices
from bot.alerts.prometheus import HttpPrometheus, PrometheusEvidence
from bot.alerts.store import AlertStore
from bot.flow.services import Services


def alert_db(home: Path) -> Path:
    return home / "alerts.db"


PROMETHEUS_ENV = "INFRABOT_PROMETHEUS_URL"


def intake_services(svc: Services, environ: Mapping[str, str] | None = None) -> IntakeServices:
    """What ``ingest`` and ``run_check`` need.  ``$INFRABOT_PROMETHEUS_URL`` (if set) answers
    the runbooks' checks when a ticket opens and measures acceptance after an apply."""
    url = (os.environ if environ is None else environ).get(PROMETHEUS_ENV)
    api = HttpPrometheus(url) if url else None

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
        evidence=PrometheusEvidence(api),
        prometheus=api,
    )
