"""An Alertmanager delivery through the router: intake, then the remediation PR.

Theory of operation: ``handle_alert`` is the router's step for ``AlertFired``.  It hands
the group to intake (recorded durably first, one ticket per group, deduplicated); when
that opened a ticket whose runbook recommends a desired-state change
(``bot.alerts.remedy``), the engine drafts it from the bound request and the flow opens a
validated, dry-run PR exactly as for a person's ticket (``handle_issue``).  Otherwise the
ticket is a human's (labelled ``needs-human``) and no PR is opened.  A re-delivery opens
nothing, so it drafts nothing.

``rework`` gives ``infrabot check`` the same drafting (for the tickets it opens, and for the
next attempt after a failed one: ``bot.alerts.acceptance``), the trajectory and what each
PR changed.
"""

from __future__ import annotations

import hashlib

from bot.alerts.acceptance import Rework
from bot.alerts.intake import ACTOR, IngestResult, ingest
from bot.alerts.payload import AlertGroup
from bot.alerts.remedy import Drafted, Remedy, draft_opened, engine_request
from bot.alerts.services import intake_services
from bot.errors import InfrabotError
from bot.events import Actor, AlertFired
from bot.events.models import Source
from bot.flow.dispatch import Outcome
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.model import Ticket


def alert_event(group: AlertGroup, body: bytes, source: Source) -> AlertFired:
    """The event for one delivery, keyed by its content (a retry is the same delivery)."""
    digest = hashlib.sha256(body).hexdigest()[:24]
    return AlertFired(
        source=source,
        delivery=f"alertmanager:{digest}",
        sender=Actor(login=ACTOR, type="Bot"),
        group=group,
    )


def handle_alert(svc: Services, event: AlertFired) -> Outcome:
    result = ingest(intake_services(svc), event.group)
    if result.error:
        return Outcome(False, _said(result))
    drafted = draft_opened(result, lambda n, r: draft_remedy(svc, n, r))
    if drafted is None:
        return Outcome(True, _said(result))
    return Outcome(drafted.pr is not None, drafted.message)


def rework(svc: Services, *, draft: bool = True) -> Rework:
    """What ``infrabot check`` needs to reopen the work, from the bot's services."""
    return Rework(
        trajectory=svc.trajectory.read,
        draft=(lambda n, r: _drafted(svc, n, r)) if draft else None,
        describe=lambda n: _changed(svc, n),
    )


def _drafted(svc: Services, number: int, remedy: Remedy) -> Drafted:
    """``draft_remedy`` for a check that works many tickets: a forge or git failure is this
    ticket's (said on the check's output), not the end of the check."""
    try:
        return draft_remedy(svc, number, remedy)
    except InfrabotError as exc:
        return Drafted(pr=None, message=f"ticket #{number}: no remediation PR: {exc}")


def _changed(svc: Services, pr: int) -> str:
    """What PR ``pr`` changed: its head commit's subject (the change set's summary), else
    its title (the commit is not in this clone)."""
    found = svc.forge.pull_request(pr)
    try:
        return str(svc.git.repo.commit(svc.git.sha(found.head_sha)).summary)
    except InfrabotError:
        return found.title


def draft_remedy(svc: Services, number: int, remedy: Remedy) -> Drafted:
    """The engine drafts the runbook's request for ticket ``number``; the flow opens the PR."""
    issue = svc.forge.issue(number)
    ticket = Ticket(
        number=number,
        title=issue.title,
        body=engine_request(remedy),
        author=ACTOR,
        source="alert",
    )
    outcome = handle_issue(svc, number, ticket)
    if outcome.pr is None:
        return Drafted(pr=None, message=f"ticket #{number}: no remediation PR: {outcome.message}")
    return Drafted(pr=outcome.pr, message=f"ticket #{number}: remediation PR #{outcome.pr} opened")


def _said(result: IngestResult) -> str:
    if result.error:
        return f"recorded {result.new} new alert(s); the forge failed: {result.error}"
    if result.new == 0 and result.duplicates:
        return f"already recorded: {result.duplicates} duplicate alert(s), nothing changed"
    verb = "opened" if result.opened else "updated" if result.ticket else "no ticket for"
    where = f" ticket #{result.ticket}" if result.ticket else " this group"
    human = result.remedy is not None and not result.remedy.drafts
    return f"{verb}{where}{' (marked for a human)' if human else ''} ({result.new} new alert(s))"
