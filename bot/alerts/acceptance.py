"""Acceptance criteria checked against Prometheus: a ticket closes only when its criterion
has held, without a gap, for the required duration.

Theory of operation: the criterion is a ``Condition``; ``holds_bool`` turns it into 1/0
per series, and one subquery over the required duration (``min_over_time`` and
``count_over_time`` at a tenth of it) says whether it held at every step and whether
there was data at every step.  That is a follow-up check, not a sleep: ``infrabot check``
runs it for every open alert ticket whose alerts have all resolved.  It closes the ticket
when the criterion held; otherwise it edits one comment with the measured values and the
ticket stays open for more work.  Missing data or an unreachable Prometheus never closes.

When a remediation applied and failed (``bot.alerts.attempts``: its criterion's duration
passed and it is violated now, or the alert fired again), the follow-up check reopens the
work (``Rework``): the runbook is walked again with the evidence now and its next change is
drafted on the same ticket (one open PR at a time); after ``alerting.remediation_attempts``
failed attempts the ticket is labelled ``needs-human`` with one comment summarising them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from pydantic import BaseModel, ConfigDict

from bot.alerts.attempts import (
    NEEDS_HUMAN,
    Attempt,
    Trail,
    after_apply,
    next_step,
    read_trail,
    refired_since,
)
from bot.alerts.intake import IntakeServices
from bot.alerts.prometheus import PrometheusApi, QueryFailed, QueryOk
from bot.alerts.remedy import Draft, Remedy, plan_remedy
from bot.alerts.runbooks import pick_runbook
from bot.alerts.slo import prom_duration, seconds
from bot.alerts.tickets import Acceptance, acceptance_for, fenced, preferred_runbook
from bot.forge.base import BOT_LOGIN
from bot.ledger.events import Event
from bot.markdown import code, text


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket: int
    state: str  # "held" | "not_yet" | "unknown" | "failed"
    detail: str
    closed: bool = False
    pr: int | None = None
    """After a failed attempt: the PR drafted as the next attempt."""
    escalated: bool = False
    """After a failed attempt: the ticket was labelled needs-human."""


def _pr_only(pr: int) -> str:
    return f"PR #{pr}"


@dataclass(frozen=True)
class Rework:
    """What reopening the work needs beyond intake; ``bot.alerts.flow.rework`` builds it
    from the bot's ``Services``."""

    trajectory: Callable[[int], Sequence[Event]]
    """The ticket's trajectory: the record of its attempts."""
    draft: Draft | None = None
    """Drafts a remedy into a validated, dry-run PR (None: this run does not draft; failures
    are still judged, commented and escalated, and the next drafting run drafts)."""
    describe: Callable[[int], str] = field(default=_pr_only)
    """What PR ``n`` changed, in a line."""


def judge(acc: Acceptance, api: PrometheusApi) -> tuple[str, str]:
    """("held" | "not_yet" | "unknown", what was measured)."""
    crit = acc.criterion
    if crit is None:
        return "held", "every alert of the group is resolved"
    span = seconds(acc.for_)
    step = prom_duration(max(span / 10, 1))
    needed = max(1, math.floor(span / seconds(step)) - 1)
    window = f"[{acc.for_}:{step}]"
    lowest = api.query(f"min_over_time(({crit.holds_bool}){window})")
    points = api.query(f"count_over_time(({crit.holds_bool}){window})")
    now = api.query(crit.expr)
    for answer in (lowest, points, now):
        if isinstance(answer, QueryFailed):
            return "unknown", f"query failed ({answer.kind}): {answer.message}"
    assert isinstance(lowest, QueryOk) and isinstance(points, QueryOk) and isinstance(now, QueryOk)
    measured = ", ".join(f"{s.value:.6g}" for s in now.samples[:10]) or "no data"
    if not lowest.samples:
        return "not_yet", f"no data for the criterion over {acc.for_} (now: {measured})"
    if any(s.value < 1 for s in lowest.samples):
        return "not_yet", f"it did not hold at every point of the last {acc.for_} (now: {measured})"
    if any(s.value < needed for s in points.samples):
        return "not_yet", f"it holds, but not yet for {acc.for_} (now: {measured})"
    return "held", f"it held for {acc.for_} (now: {measured})"


def verify_tickets(
    services: IntakeServices, api: PrometheusApi, rework: Rework | None = None
) -> list[Verdict]:
    """Judge every open alert ticket whose alerts have all resolved; close the ones whose
    acceptance criteria held for the required duration.  With ``rework``, first: did the
    ticket's last remediation fail, and what comes next (``rework_ticket``)."""
    verdicts = []
    for group, ticket in services.store.groups():
        firing = services.store.open_firings(group)
        if (firing and rework is None) or services.forge.issue(ticket).state != "open":
            continue
        alerts = services.store.latest(group)
        if not alerts:
            continue
        acc = acceptance_for(alerts[0].labels, services.catalog)
        if rework is not None:
            reworked = rework_ticket(services, api, rework, ticket, alerts[0].labels, firing)
            if reworked is not None:
                verdicts.append(reworked)
                continue
            if firing:
                continue
        state, detail = judge(acc, api)
        verdicts.append(_act(services, ticket, acc, state, detail))
    return verdicts


def violated_now(acc: Acceptance, api: PrometheusApi) -> tuple[bool | None, str]:
    """(is the criterion violated now, what was measured); None: it could not be measured."""
    crit = acc.criterion
    if crit is None:
        return False, "no criterion to measure (only a re-fired alert counts)"
    answer = api.query(crit.violated)
    if isinstance(answer, QueryFailed):
        return None, f"query failed ({answer.kind}): {answer.message}"
    if not answer.samples:
        return False, f"`{crit.holds}` holds now"
    shown = "; ".join(f"{_labels(s.labels)} = {s.value:.6g}" for s in answer.samples[:10]) + (
        " …" if len(answer.samples) > 10 else ""
    )
    return True, f"`{crit.holds}` is violated now: {shown}"


def _labels(labels: Mapping[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return "{" + inner + "}"


def rework_ticket(
    services: IntakeServices,
    api: PrometheusApi,
    rework: Rework,
    ticket: int,
    labels: Mapping[str, str],
    firing: Mapping[str, str],
) -> Verdict | None:
    """Did ticket ``ticket``'s last remediation fail (recorded once), and if its work is
    reopened: wait for its open PR, leave it to the person it was given to, ask a person,
    or draft the next attempt.  None: nothing to do now (judge it as usual: a ticket whose
    fix failed still closes once its criterion holds for the duration)."""
    acc = acceptance_for(labels, services.catalog)
    trail = read_trail(rework.trajectory(ticket))
    last = trail.latest
    failed_now = False
    if last is not None and last.failed_at is None:
        violated, measured = violated_now(acc, api)
        refired = refired_since(firing.values(), last.applied_at)
        now = services.clock()
        decision = after_apply(
            now=now,
            applied_at=last.applied_at,
            duration=seconds(acc.for_),
            violated_now=violated,
            refired=refired,
        )
        if decision != "failed":
            return None
        again = "; the alert fired again after the apply" if refired else ""
        measured = f"{_elapsed(now - last.applied_at)} after PR #{last.pr} applied: {measured}"
        measured += again
        services.record(
            ticket,
            BOT_LOGIN,
            "acceptance.failed",
            "failed",
            {"pr": last.pr},
            {"acceptance": measured},
        )
        last = last.model_copy(update={"failed_at": now, "measured": measured})
        trail = trail.model_copy(update={"attempts": (*trail.attempts[:-1], last)})
        failed_now = True
    if not trail.reopen_pending:
        return None
    issue = services.forge.issue(ticket)
    pr_open = any(services.forge.pull_request(n).state == "open" for n in trail.prs)
    step = next_step(
        trail,
        max_attempts=services.catalog.slos.alerting.remediation_attempts,
        labelled=NEEDS_HUMAN in issue.labels,
        pr_open=pr_open,
    )
    if step == "none" or last is None:
        return None
    failed = Verdict(ticket=ticket, state="failed", detail=last.measured)
    topic = f"rework-{last.pr}" + ("" if failed_now else "-resumed")
    if step in ("wait", "labelled"):
        if not failed_now:  # judged as usual: the criterion may still come back and close it
            return None
        why = (
            "a pull request of this ticket is open: it is the next attempt"
            if step == "wait"
            else f"the ticket is labelled `{NEEDS_HUMAN}`: the bot drafts nothing until a "
            "person removes the label"
        )
        _reworked(services, ticket, topic, acc, last, why)
        return failed
    if step == "escalate":
        count = len(trail.failed_this_round)
        reason = f"{count} remediation(s) applied and did not meet the acceptance criteria"
        return _escalate(services, rework, ticket, acc, trail, reason)
    catalog = services.catalog
    runbook = pick_runbook(catalog.runbooks, labels, preferred_runbook(labels, catalog))
    remedy = plan_remedy(runbook, labels, services.evidence)
    if not remedy.drafts:
        reason = f"the runbook, walked again now, recommends no change: {remedy.reason}"
        return _escalate(services, rework, ticket, acc, trail, reason)
    if rework.draft is None:
        why = (
            "this run does not draft (`infrabot check --no-draft`); the next check that "
            "drafts drafts the next attempt"
        )
        _reworked(services, ticket, topic, acc, last, why, remedy)
        return failed
    drafted = rework.draft(ticket, remedy)
    limit = catalog.slos.alerting.remediation_attempts
    attempt = len(trail.failed_this_round) + 1
    if drafted.pr is not None:
        why = f"the next attempt ({attempt} of at most {limit}) is PR #{drafted.pr}"
    else:
        why = f"drafting the next attempt failed: {drafted.message}"
    _reworked(services, ticket, topic, acc, last, why, remedy)
    services.record(
        ticket,
        BOT_LOGIN,
        "work.reopened",
        "ok" if drafted.pr is not None else "failed",
        {"failed_pr": last.pr},
        {"pr": drafted.pr, "request": remedy.request, "message": drafted.message},
    )
    return failed.model_copy(update={"pr": drafted.pr})


def _elapsed(span: timedelta) -> str:
    return prom_duration(max(int(span.total_seconds()), 0))


def _reworked(
    services: IntakeServices,
    ticket: int,
    topic: str,
    acc: Acceptance,
    failed: Attempt,
    why: str,
    remedy: Remedy | None = None,
) -> None:
    walked = ""
    if remedy is not None and remedy.walk is not None:
        path = remedy.walk.path
        steps = " → ".join(f"`{v.step}`" for v in path) + f" → `{remedy.walk.step}`"
        walked = (
            f"\n\nThe runbook `{remedy.runbook}` was walked again with the evidence now "
            f"({steps}): {text(remedy.reason.rstrip('.'))}. The request: "
            f"{code(remedy.request or '')}."
        )
    services.forge.ensure_comment(
        ticket,
        topic,
        f"### The fix did not stick: the work is reopened\n\n{acc.text}\n\n"
        f"Measured:\n\n{fenced(failed.measured)}{walked}\n\n**Next:** {why}.",
    )


def _escalate(
    services: IntakeServices,
    rework: Rework,
    ticket: int,
    acc: Acceptance,
    trail: Trail,
    reason: str,
) -> Verdict:
    """Stop drafting: label the ticket needs-human (first, so a crash after it drafts
    nothing), one comment summarising every attempt, and the step in the trajectory."""
    services.forge.add_labels(ticket, NEEDS_HUMAN)
    rows = ["| PR | what it changed | measured after it |", "|---|---|---|"]
    for a in trail.attempts:
        measured = a.measured or "(not judged failed)"
        rows.append(
            f"| #{a.pr} | {text(rework.describe(a.pr), 200)} | {code(measured, 400, cell=True)} |"
        )
    last = trail.attempts[-1].pr if trail.attempts else 0
    services.forge.ensure_comment(
        ticket,
        f"escalated-{last}",
        "### Fixes did not stick: a person is needed\n\n"
        f"{text(reason)}. The acceptance criteria: {acc.text}\n\n"
        + "\n".join(rows)
        + f"\n\nThe bot stops drafting for this ticket (label `{NEEDS_HUMAN}`). Please look at "
        "the attempts above and the estate, and fix the cause or decide what to change. "
        f"Remove the label `{NEEDS_HUMAN}` to let the bot walk the runbook and draft again; "
        "the ticket closes once its acceptance criteria hold.",
    )
    services.record(
        ticket,
        BOT_LOGIN,
        "ticket.escalated",
        NEEDS_HUMAN,
        {"attempts": [a.pr for a in trail.attempts]},
        {"reason": reason},
    )
    return Verdict(
        ticket=ticket,
        state="failed",
        detail=trail.attempts[-1].measured if trail.attempts else reason,
        escalated=True,
    )


def verify_after_apply(services: IntakeServices, ticket: int, pr: int) -> Verdict | None:
    """Right after PR ``pr`` of alert ticket ``ticket`` applied: measure its acceptance
    criteria now.  Closes only if they already held for the whole duration with every alert
    resolved; otherwise one comment with what was measured, and the ticket stays open for
    the follow-up check (``infrabot check``).  None: ``ticket`` is no alert group's."""
    group = next((g for g, t in services.store.groups() if t == ticket), None)
    alerts = services.store.latest(group) if group is not None else []
    if group is None or not alerts:
        return None
    acc = acceptance_for(alerts[0].labels, services.catalog)
    if services.prometheus is None:
        state, detail = "unknown", "no Prometheus configured here ($INFRABOT_PROMETHEUS_URL)"
    else:
        state, detail = judge(acc, services.prometheus)
    firing = services.store.open_firings(group)
    if state == "held" and firing:
        state, detail = "not_yet", f"{detail}; {len(firing)} alert(s) still firing"
    return _act(services, ticket, acc, state, detail, after=pr)


def _act(
    services: IntakeServices,
    ticket: int,
    acc: Acceptance,
    state: str,
    detail: str,
    after: int | None = None,
) -> Verdict:
    if state == "held":
        services.forge.close_issue(
            ticket, f"### Acceptance criteria met\n\n{acc.text}\n\nMeasured: {detail}."
        )
        services.record(ticket, BOT_LOGIN, "issue.closed", "ok", {}, {"acceptance": detail})
        return Verdict(ticket=ticket, state=state, detail=detail, closed=True)
    by = f"right after PR #{after} applied" if after else "by `infrabot check`"
    services.forge.ensure_comment(
        ticket,
        "acceptance",
        "### Acceptance criteria not met yet\n\n"
        f"{acc.text}\n\nMeasured {by}:\n\n{fenced(detail)}\n\n"
        "The ticket stays open: `infrabot check` (scheduled) measures again and closes it "
        "once the criteria have held for the required time; until then the work continues.",
    )
    services.record(ticket, BOT_LOGIN, "verify", state, {}, {"acceptance": detail})
    return Verdict(ticket=ticket, state=state, detail=detail)
