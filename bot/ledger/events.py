"""Trajectory events and the catalogue of step names.

``STEPS`` is the one place a step is named; ``Trajectory.append`` refuses any other, and
``docs/events.md`` is rendered from it (a test fails when the file drifts).  To add a
step: add it here, then run ``python -m bot.ledger > docs/events.md``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

STEPS: dict[str, str] = {
    "ticket.opened": "An issue or alert became a ticket the bot works on.",
    "ticket.replied": "A person answered on the ticket; the bot picks the work up again.",
    "alert.received": "An alert arrived and was matched to a ticket (new or existing).",
    "engine.clarify": "The engine could not proceed and asked the ticket's author questions.",
    "engine.plan": "The engine drafted a plan (capabilities, changes, risk, acceptance).",
    "engine.implement": "The engine drafted the change set that implements the plan.",
    "engine.usage": "What one role of the engine spent on the ticket: turns, tokens, cost, time.",
    "engine.stopped": "The drafting agent stopped (a cap or the API failing); nothing drafted.",
    "plan.posted": "The plan was posted: in the PR's body (the ticket gets a summary and the "
    "link), or on the ticket when no PR opened.",
    "pr.opened": "A branch was committed and a pull request opened (or updated) for it.",
    "pr.updated": "A pull request's body or head changed and its checks were refreshed.",
    "pr.failed": "Drafting or opening the pull request failed; the ticket says why.",
    "pr.reviewed": "A person approved or requested changes on a pull request's head.",
    "pr.merged": "A pull request was merged into the base branch.",
    "validate": "yamllint, schema, pydantic, references and policy ran on a PR head.",
    "dryrun": "ansible-playbook --check --diff ran on the hosts a PR head touches.",
    "command.received": "A comment command (/plan, /apply, /unlock, /help) was parsed.",
    "command.replied": "The bot answered a comment (help, an unknown command).",
    "apply.refused": "An /apply was refused; the reasons were posted on the pull request.",
    "apply.started": "An apply began under the estate lock.",
    "apply.finished": "An apply ended; outcome is the run status.",
    "apply.interrupted": "An apply was found that never ended (its process is gone): its hosts "
    "are unknown until the next run, and the PR and ticket were told.",
    "apply.skipped": "A merge was not applied: the merged commit is not the one that passed "
    "the gate (e.g. a merge that bypassed it); a ticket asks a human.",
    "reconcile.started": "The base branch is being applied to the hosts that differ from it.",
    "reconcile.finished": "A reconcile ended; outcome is the run status.",
    "verify": "Probes and acceptance criteria were checked after an apply.",
    "evidence.posted": "The evidence of an apply (recap, diff, verifications) was posted.",
    "lock.acquired": "The estate lock was taken (or taken over from a dead process).",
    "lock.released": "The estate lock was released by its holder or by /unlock.",
    "lock.kept": "An /unlock was refused: the lock belongs to an apply that is running.",
    "acceptance.failed": "An alert ticket's remediation applied, its criterion's duration "
    "passed, and it is violated now (or the alert fired again): that attempt failed.",
    "work.reopened": "After a failed attempt the runbook was walked again and the next "
    "remediation drafted on the same ticket (detail: the new PR, if one opened).",
    "ticket.escalated": "Fixes did not stick (or the runbook recommends no change): the ticket "
    "was labelled needs-human and a person asked for help; no more drafts until the label goes.",
    "issue.closed": "The ticket was closed because its change was applied and verified.",
    "revert.opened": "A pull request reverting an applied change was opened.",
}


class Event(BaseModel):
    """One step of a ticket's trajectory: who did what, with which inputs, and how it went."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    time: datetime
    ticket: int
    actor: str
    step: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    outcome: str
    detail: dict[str, Any] = Field(default_factory=dict)


def render_event_catalogue() -> str:
    """``docs/events.md``: the step names a trajectory may hold, one line each."""
    rows = "\n".join(f"| `{step}` | {text} |" for step, text in STEPS.items())
    return (
        "# Trajectory events\n\n"
        "<!-- Generated from bot/ledger/events.py by render_event_catalogue(); do not edit. -->\n\n"
        "Every step the bot takes appends one JSON line to `.infrabot/trajectories/<ticket>.jsonl`"
        "\nwith the fields `time`, `ticket`, `actor`, `step`, `inputs`, `outcome` and `detail`"
        "\n(inputs and detail are redacted before they are written).\n\n"
        "| step | meaning |\n| --- | --- |\n"
        f"{rows}\n"
    )
