"""The alert part's services, composed from the bot's ``Services`` (the one wiring point)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import IntakeServices
from bot.alerts.prometheus import HttpPrometheus, PrometheusEvidence
from bot.alerts.store import AlertRecord, AlertStore
from bot.config import Paths
from bot.flow.services import Services
from bot.forge.base import Forge
from bot.forge.github.stores import github_stores, on_github


def alert_db(home: Path) -> Path:
    return home / "alerts.db"


PROMETHEUS_ENV = "INFRABOT_PROMETHEUS_URL"


def alert_record(paths: Paths, forge: Forge) -> AlertRecord:
    """Where the alert record lives: the switch ``bot.wiring.make_stores`` uses (on GitHub's
    ledger branch when the other stores are there, else SQLite under ``.infrabot/``)."""
    if on_github(forge):
        return github_stores(forge).alerts
    return AlertStore(alert_db(paths.home))


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
        store=alert_record(svc.paths, svc.forge),
        catalog=require_catalog(svc.root),
        clock=svc.clock,
        record=record,
        evidence=PrometheusEvidence(api),
        prometheus=api,
    )
