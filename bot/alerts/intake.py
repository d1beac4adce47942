"""Alert intake: an Alertmanager delivery becomes (at most) one ticket per alert group.

Theory of operation
-------------------
1. The payload is a frozen ``AlertGroup`` (``parse_alert_group``; bad input is an
   ``InputError``).
2. ``AlertRecord.receive`` writes every alert not seen before, keyed by (fingerprint,
   startsAt, status), in one write (a transaction in SQLite, one guarded file update on
   GitHub's ledger branch).  From here on nothing is lost (``infrabot alert
   ingest`` may report success; ``infrabot serve`` acknowledged earlier, once the post was
   in its durable delivery queue, and its worker calls this: ADR 0021).
3. The group's *pending* deliveries (this one's and any an earlier crash or forge outage
   left behind) are worked in one go, then marked handled:
   - the group has an open ticket: new alerts update the ticket's alert list (one comment,
     edited in place); a re-fire (a known fingerprint with a new start) and resolves each
     get one comment, keyed by the alerts it reports (a retry edits it, never repeats it);
   - it has none (or it was closed): the firing alerts open a ticket, unless every one of
     them is *stale* (its ``endsAt`` already passed when it arrived) or *flapping* (fired
     ``FLAP_FIRINGS`` times within ``FLAP_WINDOW``): those are noted, never a new ticket;
   - a resolve for a group without a ticket opens nothing.
   A re-delivery has nothing pending and changes nothing.

Intake groups deliveries by Alertmanager's ``groupKey``; one intake at a time works a
group's pending deliveries: the server's one worker runs them in turn, and on GitHub ``receive``
claims the group in the same guarded write that records the alerts (a second runner
records its alerts, then waits for the claim; ``docs/adr/0020``).  The claim ends with
``mark_handled`` or, when the work fails, ``release``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from bot.alerts.catalog import Catalog
from bot.alerts.payload import Alert, AlertGroup, parse_alert_group
from bot.alerts.prometheus import PrometheusApi
from bot.alerts.remedy import Remedy, plan_remedy
from bot.alerts.runbooks import Evidence, NoEvidence, pick_runbook
from bot.alerts.store import AlertRecord, Delivery, History
from bot.alerts.tickets import (
    acceptance_for,
    preferred_runbook,
    render_alerts,
    render_ticket,
    ticket_labels,
    ticket_title,
)
from bot.errors import InfrabotError
from bot.forge.base import BOT_LOGIN, Forge

FLAP_WINDOW = timedelta(hours=1)
FLAP_FIRINGS = 3
ACTOR = "alertmanager"

Recorder = Callable[[int, str, str, str, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class IntakeServices:
    forge: Forge
    store: AlertRecord
    catalog: Catalog
    clock: Callable[[], datetime]
    record: Recorder
    evidence: Evidence = field(default_factory=NoEvidence)
    """Answers the runbook's checks when a ticket opens (Prometheus, probes)."""
    prometheus: PrometheusApi | None = None
    """Where acceptance criteria are measured right after an apply (None: not configured)."""


class IngestResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    group_key: str
    ticket: int | None
    opened: bool
    new: int
    duplicates: int
    stale: int = 0
    flapping: int = 0
    pending: int = 0
    error: str | None = None
    remedy: Remedy | None = None
    """For a ticket opened now: what the runbook recommends (and whether the bot drafts it)."""


def ingest(services: IntakeServices, payload: AlertGroup | Mapping[str, Any]) -> IngestResult:
    group = payload if isinstance(payload, AlertGroup) else parse_alert_group(payload)
    return _receive(services, group.group_key, group.alerts)


def retry_pending(services: IntakeServices) -> list[IngestResult]:
    """Finish deliveries an earlier intake recorded but could not work (forge down, crash)."""
    return [_receive(services, key, ()) for key in services.store.pending_groups()]


def _receive(services: IntakeServices, group_key: str, alerts: Sequence[Alert]) -> IngestResult:
    got = services.store.receive(group_key, alerts, services.clock(), FLAP_WINDOW)
    base = IngestResult(
        group_key=group_key,
        ticket=got.ticket,
        opened=False,
        new=len(got.new),
        duplicates=len(alerts) - len(got.new),
    )
    if not got.pending:
        return base
    try:
        result = _work(services, group_key, got.pending, got.history, base)
    except InfrabotError as exc:  # the forge failed: the record stays pending for a retry
        return base.model_copy(update={"pending": len(got.pending), "error": str(exc)})
    finally:
        services.store.release(group_key)  # a no-op once mark_handled ended the claim
    return result


@dataclass(frozen=True)
class _Sorted:
    fresh: list[Alert]
    refired: list[Alert]
    resolved: list[Alert]
    stale: list[Alert]
    flapping: list[Alert]


def _sort(pending: Sequence[Delivery], history: Mapping[str, History]) -> _Sorted:
    out = _Sorted([], [], [], [], [])
    for d in pending:
        alert = d.alert
        past = history[alert.fingerprint]
        if alert.status == "resolved":
            out.resolved.append(alert)
        elif _is_stale(alert, d.received_at):
            out.stale.append(alert)
        elif past.firings >= FLAP_FIRINGS:
            out.flapping.append(alert)
        elif past.first_start is not None and past.first_start < alert.starts_at.isoformat():
            out.refired.append(alert)
        else:
            out.fresh.append(alert)
    return out


def _is_stale(alert: Alert, received: datetime) -> bool:
    """Firing, yet its end had passed when it arrived (Alertmanager sends the zero time, year
    1, for an alert with no end)."""
    return alert.ends_at is not None and alert.ends_at.year > 1 and alert.ends_at < received


def _work(
    services: IntakeServices,
    group_key: str,
    pending: Sequence[Delivery],
    history: Mapping[str, History],
    base: IngestResult,
) -> IngestResult:
    forge = services.forge
    kinds = _sort(pending, history)
    ticket = base.ticket
    is_open = ticket is not None and forge.issue(ticket).state == "open"
    opened = False
    remedy = None
    if not is_open and (kinds.fresh or kinds.refired):
        ticket, remedy = _open(services, group_key, pending, [*kinds.fresh, *kinds.refired])
        opened = True
    else:
        if is_open and ticket is not None:
            _update(services, group_key, ticket, kinds)
        services.store.mark_handled(pending)
    if ticket is not None and kinds.flapping:
        forge.ensure_comment(
            ticket,
            "alerts-flapping",
            render_alerts(
                kinds.flapping,
                f"### Flapping: fired {FLAP_FIRINGS}+ times within {FLAP_WINDOW}; "
                "no new ticket is opened for them",
            ),
        )
    return base.model_copy(
        update={
            "ticket": ticket,
            "opened": opened,
            "stale": len(kinds.stale),
            "flapping": len(kinds.flapping),
            "remedy": remedy,
        }
    )


def _open(
    services: IntakeServices, group_key: str, pending: Sequence[Delivery], firing: list[Alert]
) -> tuple[int, Remedy]:
    labels = firing[0].labels
    catalog = services.catalog
    runbook = pick_runbook(catalog.runbooks, labels, preferred_runbook(labels, catalog))
    remedy = plan_remedy(runbook, labels, services.evidence)
    issue = services.forge.create_issue(
        ticket_title(labels),
        render_ticket(labels, firing, acceptance_for(labels, catalog), runbook, remedy),
        BOT_LOGIN,
        labels=ticket_labels(labels, runbook, remedy),
    )
    # at once, with the deliveries done: a retry must not open the group's ticket again
    services.store.mark_handled(pending, ticket=(group_key, issue.number, services.clock()))
    services.record(
        issue.number,
        ACTOR,
        "ticket.opened",
        "ok",
        {"group_key": group_key[:500]},
        {
            "alerts": len(firing),
            "runbook": runbook.name if runbook else None,
            "remedy": remedy.capability if remedy.drafts else None,
        },
    )
    return issue.number, remedy


def _event_topic(what: str, alerts: Sequence[Alert]) -> str:
    """One comment per event, keyed by the alerts it reports: worked twice (a retry after a
    forge failure half-way), it edits the same comment instead of adding another."""
    keys = sorted(f"{a.fingerprint}@{a.starts_at.isoformat()}" for a in alerts)
    return f"alert:{what}:{hashlib.sha256(chr(10).join(keys).encode()).hexdigest()[:16]}"


def _update(services: IntakeServices, group_key: str, ticket: int, kinds: _Sorted) -> None:
    forge = services.forge
    if kinds.fresh:
        latest = services.store.latest(group_key)
        forge.ensure_comment(ticket, "alerts", render_alerts(latest, "### Alerts in this group"))
    if kinds.refired:
        body = render_alerts(kinds.refired, "### Fired again")
        forge.ensure_comment(ticket, _event_topic("refired", kinds.refired), body)
    if kinds.resolved:
        body = render_alerts(kinds.resolved, "### Resolved")
        body += "\n\nThe ticket closes when its acceptance criteria hold, not on a resolve."
        forge.ensure_comment(ticket, _event_topic("resolved", kinds.resolved), body)
    counts = {
        "new": len(kinds.fresh),
        "refired": len(kinds.refired),
        "resolved": len(kinds.resolved),
    }
    services.record(ticket, ACTOR, "alert.received", "ok", {"group_key": group_key[:500]}, counts)
