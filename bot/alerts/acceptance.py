"""Acceptance criteria checked against Prometheus: a ticket closes only when its criterion
has held, without a gap, for the required duration.

Theory of operation: the criterion is a ``Condition``; ``holds_bool`` turns it into 1/0
per series, and one subquery over the required duration (``min_over_time`` and
``count_over_time`` at a tenth of it) says whether it held at every step and whether
there was data at every step.  That is a follow-up check, not a sleep: ``infrabot check``
runs it for every open alert ticket whose alerts have all resolved.  It closes the ticket
when the criterion held; otherwise it edits one comment with the measured values and the
ticket stays open for more work.  Missing data or an unreachable Prometheus never closes.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict

from bot.alerts.intake import IntakeServices
from bot.alerts.prometheus import PrometheusApi, QueryFailed, QueryOk
from bot.alerts.slo import prom_duration, seconds
from bot.alerts.tickets import Acceptance, acceptance_for, fenced
from bot.forge.base import BOT_LOGIN


class Verdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    ticket: int
    state: str  # "held" | "not_yet" | "unknown"
    detail: str
    closed: bool = False


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


def verify_tickets(services: IntakeServices, api: PrometheusApi) -> list[Verdict]:
    """Judge every open alert ticket whose alerts have all resolved; close the ones whose
    acceptance criteria held for the required duration."""
    verdicts = []
    for group, ticket in services.store.groups():
        if services.store.open_firings(group) or services.forge.issue(ticket).state != "open":
            continue
        alerts = services.store.latest(group)
        if not alerts:
            continue
        acc = acceptance_for(alerts[0].labels, services.catalog)
        state, detail = judge(acc, api)
        verdicts.append(_act(services, ticket, acc, state, detail))
    return verdicts


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
