"""The offline engine: deterministic drafting from the capability library, no network.

Theory of operation: the ticket's text is untrusted.  It chooses capabilities only by
their alias phrases (or an explicit ``capability:`` line), and it supplies parameter
values only through ``resolve``, where every value is parsed against a strict pattern
and checked against the estate.  When the engine would have to guess, it returns a
``Clarification`` whose questions say what to reply; the reply, read on the next run,
resolves it.  ``architect`` records every filled value in ``Plan.parameters`` so that
``implement`` is a pure function of (ticket, plan, context) and drafts exactly what was
planned.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError

from bot.engines import forbidden, planning
from bot.engines.base import EngineContext
from bot.engines.capabilities import Capability
from bot.engines.documents import build
from bot.engines.facts import Facts, Values
from bot.engines.resolve import question, resolve
from bot.engines.routing import declined as negated
from bot.engines.routing import route
from bot.engines.text import read_request
from bot.estate import Estate
from bot.model import (
    ChangeAction,
    ChangeSet,
    Clarification,
    Plan,
    ResourceChange,
    RiskLevel,
    Ticket,
    parse_resource,
)

NAME_PARAM = {
    "Container": "name",
    "Site": "name",
    "MonitoringTarget": "name",
    "DnsRecord": "domain",
}


class OfflineEngine:
    name = "offline"

    def architect(self, ticket: Ticket, ctx: EngineContext) -> Plan | Clarification:
        known = {p.name for c in ctx.capabilities for p in c.parameters} | {"capability"}
        request = read_request(ticket, known)
        chosen = route(request.wording, request.keys.get("capability"), ctx.capabilities)
        refused = forbidden.declined(ticket.text)
        if isinstance(chosen, Clarification):
            return _refusing(chosen, refused)
        res = resolve(Facts(request, ctx.estate, ticket.author, chosen))
        if res.questions:
            return _refusing(_ask(res.questions, chosen, ticket), refused)
        drafted = draft(chosen, res.values, ctx.estate)
        if isinstance(drafted, Clarification):
            return _refusing(drafted, refused)
        unchanged = _unchanged(drafted, chosen, ctx.estate)
        if unchanged is not None:
            return _refusing(unchanged, refused)
        skipped = tuple(
            f"not using {name}: the request says not to"
            for name in negated(request.wording, ctx.capabilities)
        )
        assumptions = (*res.all_assumptions(), *skipped)
        plan = self._plan(ticket, ctx, chosen, res.values, assumptions, drafted)
        return plan.model_copy(update={"declined": refused})

    def implement(
        self, ticket: Ticket, plan: Plan, ctx: EngineContext
    ) -> ChangeSet | Clarification:
        by_name = {c.name: c for c in ctx.capabilities}
        missing = [n for n in plan.capabilities if n not in by_name]
        if missing or not plan.capabilities:
            return Clarification(
                questions=("Run `/plan` again so the plan is drafted from the current library.",),
                reason=f"The plan names capabilities the library does not have: {missing}.",
            )
        drafted = draft([by_name[n] for n in plan.capabilities], plan.parameters, ctx.estate)
        if isinstance(drafted, Clarification):
            return drafted
        return ChangeSet(changes=tuple(drafted), summary=planning.summary(drafted))

    def _plan(
        self,
        ticket: Ticket,
        ctx: EngineContext,
        chosen: Sequence[Capability],
        values: Values,
        assumptions: tuple[str, ...],
        changes: list[ResourceChange],
    ) -> Plan:
        planned = planning.planned(changes, ctx.estate)
        return Plan(
            ticket=ticket.number,
            objective=planning.objective(ticket.title),
            capabilities=tuple(c.name for c in chosen),
            read=ctx.read,
            assumptions=assumptions,
            changes=planned,
            risk=RiskLevel.highest([c.risk for c in chosen]),
            validation_steps=planning.validation_steps(planned, ctx.estate),
            acceptance_criteria=planning.acceptance_criteria(changes, ctx.estate),
            rollback=planning.rollback(planned),
            engine=self.name,
            parameters=dict(values),
        )


def _refusing(question: Clarification, refused: tuple[str, ...]) -> Clarification:
    """A question that also says what the request asked for and will not be done."""
    if not refused:
        return question
    reason = " ".join((*refused, question.reason))
    return question.model_copy(update={"reason": reason})


def _unchanged(
    changes: list[ResourceChange], chosen: Sequence[Capability], estate: Estate
) -> Clarification | None:
    """A change capability whose draft equals what exists asks what should change."""
    same = [
        c
        for c in changes
        if c.action is ChangeAction.UPDATE
        and (found := estate.get(c.kind, c.name)) is not None
        and parse_resource(c.data) == found
    ]
    if not same or len(same) < len([c for c in changes if c.action is ChangeAction.UPDATE]):
        return None
    editing = [c for c in chosen if c.edits]
    options = [p.name for c in editing for p in c.parameters if not p.required]
    said = ", ".join(f"`{name}: …`" for name in options)
    names = ", ".join(f"{c.kind} {c.name}" for c in same)
    return Clarification(
        questions=(f"What should change on {names}? Reply with one or more of {said}.",),
        reason=f"As I read the request, nothing about {names} would change.",
    )


def _ask(questions: list[str], chosen: Sequence[Capability], ticket: Ticket) -> Clarification:
    names = ", ".join(c.name for c in chosen)
    return Clarification(
        questions=tuple(questions),
        reason=f"To draft #{ticket.number} with {names} I need {len(questions)} more answer(s).",
    )


def draft(
    chosen: Sequence[Capability], values: Values, estate: Estate
) -> list[ResourceChange] | Clarification:
    """The changes of every chosen capability, checked against each other and the estate."""
    changes: list[ResourceChange] = []
    try:
        for capability in chosen:
            changes += build(capability, values, estate)
    except KeyError as exc:
        return _stale(f"the plan has no value for {exc}")
    except ValueError as exc:
        return _stale(str(exc))
    unique = _deduplicated(changes)
    if unique is None:
        return _stale("two capabilities draft different versions of the same resource")
    return _conflicts(unique, estate) or _invalid(unique) or unique


def _deduplicated(changes: list[ResourceChange]) -> list[ResourceChange] | None:
    """One change per resource; None when two capabilities disagree about one."""
    out: dict[tuple[str, str], ResourceChange] = {}
    for change in changes:
        if out.setdefault((change.kind, change.name), change) != change:
            return None
    return list(out.values())


def _stale(problem: str) -> Clarification:
    return Clarification(
        questions=("Run `/plan` again so the plan is drafted from the current estate.",),
        reason=f"The plan cannot be drafted as it stands: {problem}.",
    )


def _conflicts(changes: list[ResourceChange], estate: Estate) -> Clarification | None:
    questions = []
    for change in changes:
        exists = estate.get(change.kind, change.name) is not None
        if change.action is ChangeAction.CREATE and exists:
            problem = f"A {change.kind} named {change.name} already exists."
            questions.append(question(NAME_PARAM.get(change.kind, "name"), estate, problem))
        elif change.action is not ChangeAction.CREATE and not exists:
            return _stale(f"{change.kind} {change.name} is no longer in the estate")
    if not questions:
        return None
    return Clarification(questions=tuple(questions), reason="Something it would create exists.")


def _invalid(changes: list[ResourceChange]) -> Clarification | None:
    for change in changes:
        try:
            parse_resource(change.data)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            return _stale(
                f"the drafted {change.kind} {change.name} is invalid at {where}: {err['msg']}"
            )
    return None
