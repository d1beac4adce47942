"""What an alert's ticket says (pure): objective, acceptance criteria, alerts, runbook.

The objective and the acceptance criteria come from ``infra/slo.yaml`` (the SLO or
invariant the alert's ``slo``/``invariant`` label names), never from the alert's text.
Labels and annotations are untrusted: they appear only inside a fenced block whose fence is
longer than any backtick run in them, redacted and bounded, so they cannot close the block,
forge a topic marker or inject markdown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from bot.alerts.catalog import Catalog
from bot.alerts.payload import Alert
from bot.alerts.remedy import Remedy, render_remedy
from bot.alerts.rules import error_ratio_expr
from bot.alerts.runbooks import Runbook
from bot.alerts.slo import Condition
from bot.execute.redact import redact

MAX_VALUE = 1000
MAX_ALERTS_SHOWN = 50
_LABEL_SAFE = re.compile(r"[^a-z0-9:_.-]+")


class Acceptance(BaseModel):
    """When the ticket may close: ``criterion`` holds, without a gap, for ``for_``.  No
    criterion (the alert names no SLO or invariant): every alert of the group resolved."""

    model_config = ConfigDict(frozen=True)

    objective: str
    criterion: Condition | None
    for_: str
    text: str


def acceptance_for(labels: Mapping[str, str], catalog: Catalog) -> Acceptance:
    alerting = catalog.slos.alerting
    slo = catalog.slos.slo(labels.get("slo", ""))
    if labels.get("infrabot_kind") == "slo" and slo is not None:
        page = next((t for t in alerting.tiers if t.severity == "page"), alerting.tiers[0])
        window = alerting.scaled(page.long)
        criterion = Condition(
            expr=error_ratio_expr(slo, window), op="<=", threshold=slo.error_budget
        )
        return Acceptance(
            objective=f"SLO `{slo.name}` of `{slo.service}`: {slo.target} of events good "
            f"over {slo.window}.",
            criterion=criterion,
            for_=window,
            text=f"the error ratio over {window} is at most the error budget "
            f"({slo.error_budget:.6g}, a burn rate of 1x or less) for {window}: "
            f"`{criterion.holds}`.",
        )
    inv = catalog.slos.invariant(labels.get("invariant", ""))
    if labels.get("infrabot_kind") == "invariant" and inv is not None:
        duration = alerting.scaled(inv.for_)
        return Acceptance(
            objective=f"Invariant `{inv.name}` holds: `{inv.condition}`.",
            criterion=inv.parsed,
            for_=duration,
            text=f"`{inv.parsed.holds}` holds for {duration}.",
        )
    return Acceptance(
        objective="The condition behind the alert is gone (no SLO or invariant names it).",
        criterion=None,
        for_="0s",
        text="Alertmanager reports every alert of the group resolved.",
    )


def preferred_runbook(labels: Mapping[str, str], catalog: Catalog) -> str | None:
    slo = catalog.slos.slo(labels.get("slo", ""))
    inv = catalog.slos.invariant(labels.get("invariant", ""))
    if labels.get("infrabot_kind") == "slo" and slo is not None:
        return slo.runbook
    if labels.get("infrabot_kind") == "invariant" and inv is not None:
        return inv.runbook
    return None


def ticket_title(labels: Mapping[str, str]) -> str:
    name = labels.get("alertname", "alert")
    subject = labels.get("slo") or labels.get("invariant") or labels.get("service") or ""
    title = f"Alert: {name}" + (f" ({subject})" if subject else "")
    return " ".join(title.split())[:120]


def ticket_labels(
    labels: Mapping[str, str], runbook: Runbook | None, remedy: Remedy | None = None
) -> tuple[str, ...]:
    out = ["alert"]
    for key in ("severity", "slo", "invariant"):
        if key in labels:
            out.append(f"{key}:{_LABEL_SAFE.sub('-', labels[key].lower())[:40]}")
    if runbook is None or (remedy is not None and not remedy.drafts):
        out.append("needs-human")
    if remedy is not None and remedy.drafts and remedy.needs_approval:
        out.append("high-risk")
    return tuple(out)


def render_ticket(
    labels: Mapping[str, str],
    alerts: Sequence[Alert],
    acceptance: Acceptance,
    runbook: Runbook | None,
    remedy: Remedy | None = None,
) -> str:
    parts = [
        "### Objective",
        acceptance.objective,
        "",
        "### Acceptance criteria",
        acceptance.text,
        "",
        "### Runbook",
        render_runbook_choice(runbook),
        "",
        *([render_remedy(remedy), ""] if remedy is not None and runbook is not None else []),
        render_alerts(alerts),
    ]
    return "\n".join(parts)


def render_runbook_choice(runbook: Runbook | None) -> str:
    if runbook is None:
        return (
            "No runbook matches this alert: **marked for a human** (label `needs-human`). "
            "Add one under `runbooks/` so the next alert like it starts from a decision tree."
        )
    return (
        f"`{runbook.name}`: {runbook.summary} The architect starts from its recommendation "
        f"(`infrabot runbook walk {runbook.name} --alert FILE` shows the path and why); "
        "a high-risk action always needs a human's approval."
    )


def render_alerts(alerts: Sequence[Alert], heading: str = "### Alerts") -> str:
    rows = ["| alert | status | since | fingerprint |", "|---|---|---|---|"]
    for alert in alerts[:MAX_ALERTS_SHOWN]:
        rows.append(
            f"| {_cell(alert.name)} | {alert.status} | {alert.starts_at.isoformat()} "
            f"| `{_cell(alert.fingerprint)}` |"
        )
    if len(alerts) > MAX_ALERTS_SHOWN:
        rows.append(f"| … and {len(alerts) - MAX_ALERTS_SHOWN} more | | | |")
    shown = [
        {"labels": _bounded(a.labels), "annotations": _bounded(a.annotations)}
        for a in alerts[:MAX_ALERTS_SHOWN]
    ]
    return "\n".join(
        [
            heading,
            *rows,
            "",
            "Labels and annotations as Alertmanager sent them (untrusted text, shown as data):",
            "",
            fenced(json.dumps(shown, indent=1, ensure_ascii=False), "json"),
        ]
    )


def fenced(text: str, info: str = "text") -> str:
    """``text`` in a code fence it cannot close: the fence is longer than any backtick run."""
    text = redact(text)
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text}\n{fence}"


def _bounded(values: Mapping[str, str]) -> dict[str, str]:
    return {k[:100]: v if len(v) <= MAX_VALUE else v[:MAX_VALUE] + "…" for k, v in values.items()}


def _cell(text: str) -> str:
    """A table cell from untrusted text: one line, no pipes, backticks or angle brackets."""
    return re.sub(r"[|`<>\[\]\\*_]", " ", " ".join(text.split()))[:80]
