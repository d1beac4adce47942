"""Drift as a ticket: ``infrabot check`` runs a check run of the whole estate against the
base branch and keeps one ticket for what differs.

Theory of operation: the dry-run is reconcile's own (``reconcile(dry=True)``: every host,
``--check --diff``, under the estate lock, nothing applied).  The hosts whose tasks would
change (or whose state is unknown after an interrupted apply) are drift.  One ticket
tracks it, deduplicated through the alert record's group table under ``DRIFT_GROUP``:

* drift and no open ticket: one opens, naming the hosts and their differences, with
  ``infrabot reconcile`` as the remedy;
* drift and an open ticket: its one ``drift`` comment is edited to the current differences
  (never a second ticket, never a comment per run);
* no drift and an open ticket: it is closed with a comment; no drift and no ticket: nothing.

A dry-run that fails (an unreachable host, a broken playbook) opens, updates and closes
nothing: it is reported, like Prometheus being down.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from bot.alerts.intake import IntakeServices
from bot.flow.apply import reconcile
from bot.flow.services import Services
from bot.forge.base import BOT_LOGIN
from bot.markdown import bound, code, fence
from bot.model import RunStatus, TaskResult

DRIFT_GROUP = "infrabot-check/drift"
MAX_DIFF = 2000
MAX_BODY = 30000


class DriftReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    state: str  # "none" | "drift" | "error"
    sha: str = ""
    hosts: tuple[str, ...] = ()
    ticket: int | None = None
    closed: bool = False
    message: str = ""


def check_drift(svc: Services, intake: IntakeServices) -> DriftReport:
    result = reconcile(svc, BOT_LOGIN, dry=True, ticket=False)
    run = result.check
    if run.status is not RunStatus.SUCCESSFUL:
        why = run.error or f"the check run ended {run.status.value}"
        return DriftReport(
            state="error",
            sha=result.sha,
            message=f"{why}: no drift ticket was opened, updated or closed",
        )
    unknown = svc.records.unknown_hosts()
    changed = run.changed()
    hosts = tuple(h for h in run.hosts if h in unknown or any(t.host == h for t in changed))
    return _ticket(svc, intake, result.sha, hosts, changed, unknown)


def _ticket(
    svc: Services,
    intake: IntakeServices,
    sha: str,
    hosts: tuple[str, ...],
    changed: Sequence[TaskResult],
    unknown: set[str],
) -> DriftReport:
    forge, store = intake.forge, intake.store
    base = svc.config.base_branch
    ticket = store.ticket(DRIFT_GROUP)
    is_open = ticket is not None and forge.issue(ticket).state == "open"
    if not hosts:
        if is_open and ticket is not None:
            forge.close_issue(ticket, f"No drift any more: every host matches {base} ({sha[:7]}).")
            svc.record(ticket, BOT_LOGIN, "issue.closed", "ok", {"sha": sha}, {"drift": 0})
            return DriftReport(state="none", sha=sha, ticket=ticket, closed=True)
        return DriftReport(state="none", sha=sha, ticket=ticket)
    body = render_drift(base, sha, hosts, changed, unknown)
    if is_open and ticket is not None:
        forge.ensure_comment(ticket, "drift", "### Drift now\n\n" + body)
    else:
        issue = forge.create_issue(
            f"Drift: {len(hosts)} host(s) differ from {base}",
            body,
            BOT_LOGIN,
            labels=("drift",),
        )
        ticket = issue.number
        store.set_ticket(DRIFT_GROUP, ticket, intake.clock())
        svc.record(ticket, BOT_LOGIN, "ticket.opened", "ok", {"sha": sha}, {"hosts": list(hosts)})
    return DriftReport(state="drift", sha=sha, hosts=hosts, ticket=ticket)


def render_drift(
    base: str,
    sha: str,
    hosts: Sequence[str],
    changed: Sequence[TaskResult],
    unknown: set[str],
) -> str:
    parts = [
        f"A check run of the whole estate against {code(base)} ({code(sha[:7])}) finds "
        f"{len(hosts)} host(s) that differ from it:",
        "",
    ]
    for host in hosts:
        tasks = [t for t in changed if t.host == host]
        note = " (its last apply was interrupted: state unknown)" if host in unknown else ""
        parts.append(f"#### {code(host)}{note}")
        for t in tasks:
            parts.append(f"- {code(t.task)}")
            if t.diff:
                parts.append(fence(t.diff[:MAX_DIFF] + ("…" if len(t.diff) > MAX_DIFF else "")))
        parts.append("")
    parts += [
        "### Remedy",
        f"`infrabot reconcile --as USER` applies {code(base)} to these hosts (on GitHub: the "
        "apply workflow's `workflow_dispatch` with `command: reconcile`). Or, if the change "
        "on the host is wanted, make it in the desired state with a PR. This ticket closes "
        "itself when a later `infrabot check` finds no drift.",
    ]
    return bound("\n".join(parts), MAX_BODY)
