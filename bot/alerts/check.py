"""``infrabot check``: every invariant and SLO queried against Prometheus now.

A violation goes through alert intake as if Alertmanager had sent it, under a group key
of its own (``infrabot-check/<kind>/<name>``): the same one ticket per group, the same
dedupe.  Each violating series keeps the start time of its first sighting, so a check
that runs every few minutes updates the ticket instead of re-firing it; a series that no
longer violates is resolved (a comment on the ticket).  When Prometheus cannot be reached
nothing is opened, updated or resolved: missing data is not evidence.  A query Prometheus
rejects is reported (and commented on the item's ticket, if it has one).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.alerts.intake import IngestResult, IntakeServices, ingest, retry_pending
from bot.alerts.payload import AlertGroup
from bot.alerts.prometheus import PrometheusApi, QueryFailed, Sample
from bot.alerts.rules import INVARIANT_ALERT, SLO_ALERT, burn_expr
from bot.alerts.tickets import fenced

ZERO = datetime(1, 1, 1).isoformat() + "Z"


class ItemResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: str  # "invariant" | "slo"
    name: str
    query: str
    state: str  # "ok" | "violated" | "error"
    violations: int = 0
    message: str = ""
    ticket: int | None = None


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    prometheus: str  # "up" | "down"
    message: str = ""
    items: tuple[ItemResult, ...] = ()

    @property
    def ok(self) -> bool:
        return self.prometheus == "up" and all(i.state == "ok" for i in self.items)


def _items(services: IntakeServices) -> list[tuple[str, str, str, dict[str, str]]]:
    """(kind, name, violation query, labels) for every invariant and SLO severity."""
    slos = services.catalog.slos
    out = []
    for inv in slos.invariants:
        labels = {"alertname": INVARIANT_ALERT, "invariant": inv.name, "severity": "ticket"}
        labels["infrabot_kind"] = "invariant"
        out.append(("invariant", inv.name, inv.parsed.violated, labels))
    for slo in slos.slos:
        for severity in dict.fromkeys(t.severity for t in slos.alerting.tiers):
            labels = {"alertname": SLO_ALERT, "slo": slo.name, "service": slo.service}
            labels |= {"severity": severity, "infrabot_kind": "slo"}
            expr = burn_expr(slo, slos.alerting, severity, inline=True)
            out.append(("slo", f"{slo.name}/{severity}", expr, labels))
    return out


def run_check(services: IntakeServices, api: PrometheusApi) -> CheckReport:
    items = _items(services)
    answers = [api.query(query) for _, _, query, _ in items]
    down = next((a for a in answers if isinstance(a, QueryFailed) and a.kind == "down"), None)
    if down is not None:
        return CheckReport(
            prometheus="down",
            message=f"{down.message}: nothing was opened, updated or resolved",
        )
    retry_pending(services)
    results = []
    for (kind, name, query, labels), answer in zip(items, answers, strict=True):
        key = f"infrabot-check/{kind}/{name}"
        if isinstance(answer, QueryFailed):
            results.append(_rejected(services, kind, name, query, key, answer.message))
            continue
        outcome = _ingest_samples(services, key, labels, answer.samples)
        state = "violated" if answer.samples else "ok"
        results.append(
            ItemResult(
                kind=kind,
                name=name,
                query=query,
                state=state,
                violations=len(answer.samples),
                ticket=outcome.ticket if outcome else services.store.ticket(key),
            )
        )
    return CheckReport(prometheus="up", items=tuple(results))


def _rejected(
    services: IntakeServices, kind: str, name: str, query: str, key: str, message: str
) -> ItemResult:
    ticket = services.store.ticket(key)
    if ticket is not None and services.forge.issue(ticket).state == "open":
        services.forge.ensure_comment(
            ticket,
            "check-query-error",
            "### The check's query failed\n\nPrometheus rejected the query for "
            f"{kind} `{name}`, so this ticket was neither updated nor resolved:\n\n"
            + fenced(message),
        )
    return ItemResult(
        kind=kind, name=name, query=query, state="error", message=message, ticket=ticket
    )


def _ingest_samples(
    services: IntakeServices, key: str, labels: dict[str, str], samples: tuple[Sample, ...]
) -> IngestResult | None:
    started = services.store.open_firings(key)
    now = services.clock()
    alerts = []
    current = set()
    for sample in samples:
        full = {**sample.labels, **labels}
        fp = _fingerprint(full)
        current.add(fp)
        alerts.append(_alert("firing", full, fp, started.get(fp, now.isoformat())))
    for fp, start in started.items():
        if fp not in current:
            alerts.append(_alert("resolved", labels, fp, start, ends=now.isoformat()))
    if not alerts:
        return None
    group = AlertGroup.model_validate(
        {
            "version": "4",
            "groupKey": key,
            "status": "firing" if samples else "resolved",
            "receiver": "infrabot-check",
            "commonLabels": labels,
            "alerts": alerts,
        }
    )
    return ingest(services, group)


def _alert(
    status: str, labels: dict[str, str], fp: str, start: str, ends: str = ZERO
) -> dict[str, object]:
    return {
        "status": status,
        "labels": labels,
        "annotations": {},
        "startsAt": start,
        "endsAt": ends,
        "fingerprint": fp,
    }


def _fingerprint(labels: dict[str, str]) -> str:
    raw = json.dumps(sorted(labels.items())).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def render_check(report: CheckReport) -> str:
    if report.prometheus == "down":
        return f"Prometheus is down: {report.message}"
    lines = []
    for item in report.items:
        mark = {"ok": "ok", "violated": "VIOLATED", "error": "ERROR"}[item.state]
        ticket = f" (ticket #{item.ticket})" if item.ticket else ""
        extra = f": {item.message}" if item.message else ""
        count = f" ({item.violations} series)" if item.violations else ""
        lines.append(f"{mark:9} {item.kind} {item.name}{count}{ticket}{extra}")
    return "\n".join(lines) or "nothing to check: infra/slo.yaml has no SLO or invariant"
