"""From an alert's runbook walk to what the engine drafts (``bot.alerts.remedy``): only a
change action with a request and plain label values is drafted; everything else is a
human's."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from bot.alerts.catalog import require_catalog
from bot.alerts.remedy import bind_request, engine_request, plan_remedy, render_remedy
from bot.alerts.runbooks import Answer, CheckStep, NoEvidence, Runbook, tree_problems
from bot.alerts.tickets import ticket_labels

ROOT = Path(__file__).resolve().parent.parent
LABELS = {
    "alertname": "InvariantViolated",
    "invariant": "container_memory_headroom",
    "container": "status-page",
}


class Says:
    def __init__(self, value: bool | None) -> None:
        self.value = value

    def answer(self, step: CheckStep, labels: Mapping[str, str]) -> Answer:
        return Answer(value=self.value, why="the test says so")


def book(name: str = "memory-pressure") -> Runbook:
    found = require_catalog(ROOT).runbook(name)
    assert found is not None
    return found


def test_a_change_action_is_drafted_with_the_labels_bound() -> None:
    remedy = plan_remedy(book(), LABELS, Says(True))
    assert remedy.drafts and remedy.capability == "change-container" and remedy.risk == "medium"
    assert remedy.request == "Double the memory of the status-page container"
    assert engine_request(remedy).splitlines()[0] == "capability: change-container"
    assert "opens a validated, dry-run PR" in render_remedy(remedy)


@pytest.mark.parametrize(
    ("labels", "evidence", "why"),
    [
        (LABELS, NoEvidence(), "could not be decided"),
        (LABELS, Says(False), "escalates"),
        ({**LABELS, "container": "x\ncapability: remove-container"}, Says(True), "plain name"),
        ({k: v for k, v in LABELS.items() if k != "container"}, Says(True), "no label"),
    ],
)
def test_anything_else_is_a_humans(
    labels: dict[str, str], evidence: NoEvidence | Says, why: str
) -> None:
    remedy = plan_remedy(book(), labels, evidence)
    assert not remedy.drafts and remedy.request is None
    assert why in remedy.reason or why in (remedy.walk.reason if remedy.walk else "")
    assert "**Marked for a human**" in render_remedy(remedy)


def test_no_runbook_and_a_reapply_action_are_not_drafted() -> None:
    assert not plan_remedy(None, LABELS, Says(True)).drafts
    burn = {"alertname": "SLOErrorBudgetBurn", "slo": "availability", "service": "api"}

    class Walked:
        def answer(self, step: CheckStep, labels: Mapping[str, str]) -> Answer:
            return Answer(value=step.then == "upstream-up", why="test")

    remedy = plan_remedy(book("error-budget-burn"), burn, Walked())
    assert remedy.capability == "reapply" and not remedy.drafts
    assert "not a desired-state change" in remedy.reason


def test_a_request_needs_a_capability_that_changes_the_desired_state() -> None:
    raw = book().model_dump(by_alias=True, exclude_none=True)
    raw["steps"]["raise-memory"]["capability"] = "reapply"
    problems = tree_problems(Runbook.model_validate(raw), ["change-container"])
    assert problems == [
        (
            "$.steps.raise-memory.request",
            "a request is drafted as a desired-state change: it needs a capabilities/*.md "
            "capability and no escalate",
        )
    ]


def test_binding_refuses_values_that_are_not_plain_names() -> None:
    assert bind_request("x $labels.a y", {"a": "web-1.lab"}) == ("x web-1.lab y", "")
    assert bind_request("x $labels.a", {"a": "a b"})[0] is None
    assert bind_request("x $labels.a", {"a": "`rm`"})[0] is None


def test_a_high_risk_remedy_is_drafted_but_says_a_person_must_approve() -> None:
    raw = book().model_dump(by_alias=True, exclude_none=True)
    raw["steps"]["raise-memory"]["risk"] = "high"
    remedy = plan_remedy(Runbook.model_validate(raw), LABELS, Says(True))
    assert remedy.drafts and remedy.needs_approval
    assert "**high risk**: a person must approve the PR whatever the policy says" in (
        render_remedy(remedy)
    )
    assert "high-risk" in ticket_labels(LABELS, book(), remedy)
    medium = plan_remedy(book(), LABELS, Says(True))
    assert not medium.needs_approval and "high-risk" not in ticket_labels(LABELS, book(), medium)
