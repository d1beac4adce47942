"""A ticket's remediation attempts, read from its trajectory, and what to do next (pure).

Theory of operation: the trajectory is the durable record of every step, so it is also the
record of the attempts.  An *attempt* is a PR of the ticket whose apply finished
successfully (``apply.finished``); it *failed* when a follow-up check recorded
``acceptance.failed`` for it.  ``after_apply`` tells "not yet" from "failed": right after an
apply the criterion has not held for its duration yet, which is no failure; it has failed
when at least that duration has passed since the apply and the criterion is violated now,
or the group's alert fired again after the apply.  No measurement is no verdict.

After a failure the work is *reopened* (``work.reopened``: the runbook walked again, the
next PR drafted) once per failed attempt.  ``next_step`` decides it: nothing while a PR of
the ticket is open or the ticket is labelled ``needs-human``; after ``max_attempts`` failed
attempts since the last escalation the bot asks a person (``ticket.escalated``) instead.
When a person removes the label, a new round starts: the failures before the escalation no
longer count, so the bot drafts again.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeGuard

from pydantic import BaseModel, ConfigDict

from bot.ledger.events import Event

NEEDS_HUMAN = "needs-human"

Decision = Literal["not_yet", "failed", "holding", "unknown"]
Step = Literal["none", "wait", "labelled", "escalate", "draft"]


class Attempt(BaseModel):
    model_config = ConfigDict(frozen=True)

    pr: int
    applied_at: datetime
    failed_at: datetime | None = None
    measured: str = ""


class Trail(BaseModel):
    """What a ticket's trajectory says about its remediations."""

    model_config = ConfigDict(frozen=True)

    attempts: tuple[Attempt, ...] = ()
    prs: tuple[int, ...] = ()
    """Every PR opened for the ticket (by the bot or on a person's ``/plan``)."""
    reopened_at: datetime | None = None
    escalated_at: datetime | None = None

    @property
    def latest(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def failed_this_round(self) -> tuple[Attempt, ...]:
        """Failed attempts since the last escalation (a person removing ``needs-human``
        starts a new round)."""
        since = self.escalated_at
        return tuple(
            a
            for a in self.attempts
            if a.failed_at is not None and (since is None or a.failed_at > since)
        )

    @property
    def reopen_pending(self) -> bool:
        """The latest attempt failed and the work has not been reopened since."""
        last = self.latest
        if last is None or last.failed_at is None:
            return False
        return self.reopened_at is None or self.reopened_at < last.failed_at


def read_trail(events: Sequence[Event]) -> Trail:
    attempts: dict[int, Attempt] = {}
    prs: list[int] = []
    reopened = escalated = None
    for event in events:
        pr = event.inputs.get("pr")
        if event.step == "apply.finished" and event.outcome == "successful" and _is_int(pr):
            attempts.pop(pr, None)  # applied again (an /apply, then the merge): the last counts
            attempts[pr] = Attempt(pr=pr, applied_at=event.time)
        elif event.step == "acceptance.failed" and _is_int(pr) and pr in attempts:
            measured = str(event.detail.get("acceptance", ""))
            attempts[pr] = attempts[pr].model_copy(
                update={"failed_at": event.time, "measured": measured}
            )
        elif event.step == "pr.opened" and _is_int(event.detail.get("pr")):
            number = event.detail["pr"]
            prs += [] if number in prs else [number]
        elif event.step == "work.reopened":
            reopened = event.time
        elif event.step == "ticket.escalated":
            escalated = event.time
    return Trail(
        attempts=tuple(attempts.values()),
        prs=tuple(prs),
        reopened_at=reopened,
        escalated_at=escalated,
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def after_apply(
    *,
    now: datetime,
    applied_at: datetime,
    duration: float,
    violated_now: bool | None,
    refired: bool,
) -> Decision:
    """Did the remediation applied at ``applied_at`` fail?  ``duration``: the criterion's,
    in seconds; ``violated_now``: None when it could not be measured."""
    if now - applied_at < timedelta(seconds=duration):
        return "not_yet"
    if refired:
        return "failed"
    if violated_now is None:
        return "unknown"
    return "failed" if violated_now else "holding"


def refired_since(starts: Iterable[str], applied_at: datetime) -> bool:
    """Whether any of the group's open firings started after the apply."""
    return any(_aware(datetime.fromisoformat(s)) > applied_at for s in starts)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def next_step(trail: Trail, *, max_attempts: int, labelled: bool, pr_open: bool) -> Step:
    if not trail.reopen_pending:
        return "none"
    if labelled:
        return "labelled"
    if pr_open:
        return "wait"
    if len(trail.failed_this_round) >= max_attempts:
        return "escalate"
    return "draft"
