"""``infrabot check``: every invariant and SLO queried against Prometheus now.

A violation goes through alert intake as if Alertmanager had sent it, under a group key
of its own (``infrabot-check/<kind>/<name>``): the same one ticket per group, the same
dedupe.  Each violating series keeps the start time of its first sighting, so a check
that runs every few minutes updates the ticket instead of re-firing it; a series that no
longer violates is resolved (a comment on the ticket).  When Prometheus cannot be reached
nothing is opened, updated or resolved: missing data is not evidence.  A query Prometheus
rejects is reported (and commented on the item's ticket, if it has one).

Given a ``Rework`` (the CLI builds it from the bot's services), a ticket the check opens
gets its runbook's remediation PR exactly as an Alertmanager group's does (``draft_opened``,
the path ``handle_alert`` takes), and acceptance reopens the work of tickets whose fix did
not stick (``bot.alerts.acceptance``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from bot.alerts.acceptance import Rework, Verdict, verify_tickets
from bot.alerts.intake import IngestResult, IntakeServices, ingest, retry_pending
from bot.alerts.payload import AlertGroup
from bot.alerts.prometheus import PrometheusApi, QueryFailed, QueryOk
from bot.alerts.remedy import Drafted, draft_opened
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
    drafted: Drafted | None = None
    """For a ticket this check opened whose runbook recommends a change: its PR."""


class CheckReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    prometheus: str  # "up" | "down"
    message: str = ""
    items: tuple[ItemResult, ...] = ()
    acceptance: tuple[Verdict, ...] = ()

    @property
    def ok(self) -> bool:
        return self.prometheus == "up" and all(i.state == "ok" for i in self.items)


CHECK_GROUP_PREFIX = "infrabot-check/"
"""The alert groups ``infrabot check`` itself opens tickets for."""


@dataclass(frozen=True)
class _Item:
    kind: str  # "invariant" | "slo"
    name: str
    group: str  # one ticket per invariant and per SLO (both severities share it)
    query: str
    labels: dict[str, str]


def _items(services: IntakeServices) -> list[_Item]:
    """Every invariant, and every SLO once per severity."""
    slos = services.catalog.slos
    out = []
    for inv in slos.invariants:
        labels = {"alertname": INVARIANT_ALERT, "invariant": inv.name, "severity": "ticket"}
        labels["infrabot_kind"] = "invariant"
        group = f"{CHECK_GROUP_PREFIX}invariant/{inv.name}"
        out.append(_Item("invariant", inv.name, group, inv.parsed.violated, labels))
    for slo in slos.slos:
        for severity in dict.fromkeys(t.severity for t in slos.alerting.tiers):
            labels = {"alertname": SLO_ALERT, "slo": slo.name, "service": slo.service}
            labels |= {"severity": severity, "infrabot_kind": "slo"}
            expr = burn_expr(slo, slos.alerting, severity, inline=True)
            group = f"{CHECK_GROUP_PREFIX}slo/{slo.name}"
            out.append(_Item("slo", f"{slo.name}/{severity}", group, expr, labels))
    return out


def run_check(
    services: IntakeServices, api: PrometheusApi, rework: Rework | None = None
) -> CheckReport:
    items = _items(services)
    answers = [api.query(item.query) for item in items]
    down = next((a for a in answers if isinstance(a, QueryFailed) and a.kind == "down"), None)
    if down is not None:
        return CheckReport(
            prometheus="down",
            message=f"{down.message}: nothing was opened, updated or resolved",
        )
    retry_pending(services)
    rejected = {i.group for i, a in zip(items, answers, strict=True) if isinstance(a, QueryFailed)}
    firing: dict[str, list[tuple[dict[str, str], dict[str, str]]]] = {}
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, QueryOk):
            firing.setdefault(item.group, [])
            firing[item.group] += [
                ({**s.labels, **item.labels}, item.labels) for s in answer.samples
            ]
    # A violation whose alert already has an open ticket (Alertmanager's group posted it)
    # is that ticket's work: the check opens no second ticket for it.
    elsewhere = {
        item.group: ticket
        for item in items
        if firing.get(item.group) and services.store.ticket(item.group) is None
        for ticket in [tracked_elsewhere(services, item.group, item.labels)]
        if ticket is not None
    }
    ingested = {
        group: _ingest_group(services, group, series)
        for group, series in firing.items()
        if group not in rejected  # half an answer is no answer: resolve nothing on it
        and group not in elsewhere
    }
    draft = rework.draft if rework is not None else None
    drafted = {
        group: draft_opened(result, draft)
        for group, result in ingested.items()
        if result is not None
    }
    tickets = {group: r.ticket for group, r in ingested.items() if r is not None}
    results = []
    for item, answer in zip(items, answers, strict=True):
        if isinstance(answer, QueryFailed):
            results.append(_rejected(services, item, answer.message))
            continue
        results.append(
            ItemResult(
                kind=item.kind,
                name=item.name,
                query=item.query,
                state="violated" if answer.samples else "ok",
                violations=len(answer.samples),
                ticket=tickets.get(item.group)
                or services.store.ticket(item.group)
                or elsewhere.get(item.group),
                drafted=drafted.pop(item.group, None),  # once per group
            )
        )
    verdicts = verify_tickets(services, api, rework)
    return CheckReport(prometheus="up", items=tuple(results), acceptance=tuple(verdicts))


def tracked_elsewhere(services: IntakeServices, group: str, labels: dict[str, str]) -> int | None:
    """The open ticket of another alert group whose alerts carry ``labels`` (the check's own
    marker aside): the same invariant or SLO, already posted by Alertmanager and worked
    there.  None when no open ticket tracks it."""
    wanted = {k: v for k, v in labels.items() if k not in ("infrabot_kind", "severity")}
    for other, ticket in services.store.groups():
        if other == group or other.startswith(CHECK_GROUP_PREFIX):
            continue
        alerts = services.store.latest(other)
        if not any(wanted.items() <= dict(a.labels).items() for a in alerts):
            continue
        if services.forge.issue(ticket).state == "open":
            return ticket
    return None


def _rejected(services: IntakeServices, item: _Item, message: str) -> ItemResult:
    ticket = services.store.ticket(item.group)
    if ticket is not None and services.forge.issue(ticket).state == "open":
        services.forge.ensure_comment(
            ticket,
            "check-query-error",
            "### The check's query failed\n\nPrometheus rejected the query for "
            f"{item.kind} `{item.name}`, so this ticket was neither updated nor resolved:\n\n"
            + fenced(message),
        )
    return ItemResult(
        kind=item.kind,
        name=item.name,
        query=item.query,
        state="error",
        message=message,
        ticket=ticket,
    )


def _ingest_group(
    services: IntakeServices, group: str, series: list[tuple[dict[str, str], dict[str, str]]]
) -> IngestResult | None:
    """Firing for each violating series (keeping its first start), resolved for the group's
    series that no longer violate; one intake call for the group."""
    started = services.store.open_firings(group)
    now = services.clock()
    alerts = []
    current = set()
    for full, _ in series:
        fp = _fingerprint(full)
        current.add(fp)
        alerts.append(_alert("firing", full, fp, started.get(fp, now.isoformat())))
    known = {a.fingerprint: dict(a.labels) for a in services.store.latest(group)}
    for fp, start in started.items():
        if fp not in current:
            alerts.append(_alert("resolved", known.get(fp, {}), fp, start, now.isoformat()))
    if not alerts:
        return None
    payload = AlertGroup.model_validate(
        {
            "version": "4",
            "groupKey": group,
            "status": "firing" if series else "resolved",
            "receiver": "infrabot-check",
            "alerts": alerts,
        }
    )
    return ingest(services, payload)


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
        if item.drafted is not None:
            lines.append(f"{'drafted':9} {item.drafted.message}")
    for v in report.acceptance:
        verb = "closed" if v.closed else v.state.replace("_", " ")
        if v.state == "failed":
            verb = "the fix did not stick" + (
                f"; next attempt PR #{v.pr}"
                if v.pr
                else "; labelled needs-human"
                if v.escalated
                else ""
            )
        lines.append(
            f"{'accepted' if v.closed else 'open':9} ticket #{v.ticket}: {verb}: {v.detail}"
        )
    return "\n".join(lines) or "nothing to check: infra/slo.yaml has no SLO or invariant"
