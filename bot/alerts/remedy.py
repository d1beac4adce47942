"""What an alert's ticket asks the engine to draft (pure): the runbook's recommendation.

Theory of operation: when a group's ticket opens, the runbook picked for it is walked
with the evidence at hand (Prometheus, probes; none: every check is unknown).  The walk
ends in one of:

* an action whose ``request`` names a desired-state change (a ``capabilities/*.md``
  capability): the request, with ``$labels.NAME`` bound, becomes the text the engine
  drafts from, like a person's ticket, with the capability as a key line so the engine
  does not have to guess it.  Label values are untrusted: each one bound must be a plain
  name (``SAFE_VALUE``), or nothing is drafted and a human decides;
* anything else (no runbook, an undecided check, an escalation, ``reapply`` or an action
  without a request): a human's, and the ticket says why.

A high-risk action is drafted too, but its ticket and PR say that a person must approve it
(the gate always wants a person's approval: ``approvals_required`` 0 counts as 1).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from bot.alerts.runbooks import Evidence, Runbook, Walk, walk

if TYPE_CHECKING:
    from bot.alerts.intake import IngestResult

SAFE_VALUE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


class Remedy(BaseModel):
    model_config = ConfigDict(frozen=True)

    runbook: str | None
    walk: Walk | None
    capability: str | None = None
    request: str | None = None
    """The bound request the engine drafts from; None: a human decides."""
    risk: str | None = None
    reason: str

    @property
    def drafts(self) -> bool:
        return self.request is not None and self.capability is not None

    @property
    def needs_approval(self) -> bool:
        return self.walk is None or self.walk.needs_approval


class Drafted(BaseModel):
    """What drafting a remedy gave: the PR opened (None: none, ``message`` says why)."""

    model_config = ConfigDict(frozen=True)

    pr: int | None
    message: str


Draft = Callable[[int, Remedy], Drafted]
"""Draft ticket ``n``'s remedy into a validated, dry-run PR (``bot.alerts.flow``)."""


def draft_opened(result: IngestResult, draft: Draft | None) -> Drafted | None:
    """The remediation PR of a ticket intake opened just now, when its runbook recommends a
    change: the one path for ``/alerts`` (``handle_alert``) and ``infrabot check``.  None:
    nothing to draft (no ticket opened now, a human's remedy, or no drafting here)."""
    remedy = result.remedy
    if draft is None or not (result.opened and result.ticket and remedy and remedy.drafts):
        return None
    return draft(result.ticket, remedy)


def bind_request(template: str, labels: Mapping[str, str]) -> tuple[str | None, str]:
    """(the request with labels bound, "") or (None, why it cannot be bound)."""
    for name in _LABEL_REF.findall(template):
        value = labels.get(name)
        if value is None:
            return None, f"the alert has no label {name!r} that the request needs"
        if not SAFE_VALUE.match(value):
            return None, f"the alert's label {name!r} is not a plain name"
    return _LABEL_REF.sub(lambda m: labels[m.group(1)], template), ""


def plan_remedy(runbook: Runbook | None, labels: Mapping[str, str], evidence: Evidence) -> Remedy:
    if runbook is None:
        return Remedy(runbook=None, walk=None, reason="no runbook matches this alert")
    path = walk(runbook, labels, evidence)
    action = path.action
    if path.outcome == "escalate" or action is None:
        return Remedy(runbook=runbook.name, walk=path, reason=path.reason)
    if action.request is None or action.capability is None:
        return Remedy(
            runbook=runbook.name,
            walk=path,
            capability=action.capability,
            risk=action.risk,
            reason=f"the runbook's action is not a desired-state change: {action.action}",
        )
    request, why = bind_request(action.request, labels)
    if request is None:
        return Remedy(
            runbook=runbook.name,
            walk=path,
            capability=action.capability,
            risk=action.risk,
            reason=why,
        )
    return Remedy(
        runbook=runbook.name,
        walk=path,
        capability=action.capability,
        request=request,
        risk=action.risk,
        reason=f"the runbook recommends {action.action}",
    )


def engine_request(remedy: Remedy) -> str:
    """The ticket text the engine drafts from: the capability as a key, then the request."""
    assert remedy.request is not None and remedy.capability is not None
    return f"capability: {remedy.capability}\n{remedy.request}"


def render_remedy(remedy: Remedy) -> str:
    lines = ["### Remediation"]
    if remedy.walk is not None:
        for v in remedy.walk.path:
            said = {True: "yes", False: "no", None: "unknown"}[v.answer]
            lines.append(f"- `{v.step}`: {v.question} → **{said}**")
    if remedy.drafts:
        approval = (
            "It is **high risk**: a person must approve the PR whatever the policy says."
            if remedy.risk == "high"
            else "A person approves the PR before it is merged and applied."
        )
        lines += [
            "",
            f"The bot drafts this change (capability `{remedy.capability}`, risk "
            f"{remedy.risk}) and opens a validated, dry-run PR for it:",
            "",
            f"> {remedy.request}",
            "",
            approval,
        ]
    else:
        lines += ["", f"**Marked for a human** (label `needs-human`): {remedy.reason}."]
    return "\n".join(lines)
