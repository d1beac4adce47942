"""infra/slo.yaml and runbooks/ are validated like desired state: schema with line and
path, pydantic, references; loops and unknown capabilities are rejected; walks."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.alerts.catalog import load_catalog
from bot.alerts.runbooks import (
    ActionStep,
    Answer,
    CheckStep,
    NoEvidence,
    Runbook,
    bind_labels,
    pick_runbook,
    walk,
)
from bot.alerts.slo import parse_condition
from bot.validate import validate_tree


def problems(tree: Path) -> list[str]:
    return [f"{f.check} {f.location()} {f.message}" for f in load_catalog(tree)[1]]


def test_the_repository_catalogue_is_valid() -> None:
    root = Path(__file__).resolve().parent.parent
    catalog, found = load_catalog(root)
    assert found == []
    assert [b.name for b in catalog.runbooks] == [
        "dns-record-missing",
        "error-budget-burn",
        "memory-pressure",
        "site-unreachable",
    ]


@pytest.mark.parametrize(
    ("text", "expr", "op", "threshold"),
    [
        ("available > 20%", "available", ">", 0.2),
        ("a > b >= 3", "a > b", ">=", 3.0),
        ('min(x{a="b"}) == 1', 'min(x{a="b"})', "==", 1.0),
        ("x<-1.5", "x", "<", -1.5),
    ],
)
def test_conditions_parse(text: str, expr: str, op: str, threshold: float) -> None:
    cond = parse_condition(text)
    assert (cond.expr, cond.op, cond.threshold) == (expr, op, threshold)


def test_a_bad_slo_file_fails_validation_with_file_line_and_path(seed_tree: Path) -> None:
    path = seed_tree / "infra/slo.yaml"
    path.write_text(path.read_text().replace("target: 99.9%", "target: 100.5%"))
    report = validate_tree(seed_tree)
    bad = [f for f in report.findings if f.file == "infra/slo.yaml"]
    assert not report.ok and bad[0].check == "schema"
    assert (bad[0].line, bad[0].path) == (7, "$.slos[0].target")


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("}) > 20%'", "})'", "does not match"),
        ("runbook: site-unreachable", "runbook: no-such-book", "no valid runbook"),
        ("  - name: site_probe_success", "  - name: capacity_headroom", "used 2 times"),
        ("good: 'http_requests_total", "good: 'sum(http_requests_total", "$window"),
        ("runbook: site-unreachable\n", "\n", "'runbook' is a required property"),
    ],
)
def test_slo_file_mistakes_are_caught(seed_tree: Path, old: str, new: str, needle: str) -> None:
    path = seed_tree / "infra/slo.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    assert any(needle in p for p in problems(seed_tree)), problems(seed_tree)


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("    else: recovered", "    else: still-burning", "the steps loop"),
        ("capability: reapply", "capability: rm-rf", "unknown capability 'rm-rf'"),
        ("    then: upstream-up", "    then: nowhere", "'nowhere' is not defined"),
        ("    then: escalate\n", "    then: recovered\n", "unreachable"),
        ("    capability: reapply\n", "\n", "is not valid under any of the given schemas"),
    ],
)
def test_runbook_mistakes_are_rejected_by_validation(
    seed_tree: Path, old: str, new: str, needle: str
) -> None:
    path = seed_tree / "runbooks/error-budget-burn.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    report = validate_tree(seed_tree)
    assert not report.ok
    messages = [f.message for f in report.findings if f.file == "runbooks/error-budget-burn.yaml"]
    assert any(needle in m for m in messages), messages


class Answers:
    def __init__(self, **answers: bool | None) -> None:
        self.answers = answers

    def answer(self, step: CheckStep, labels: object) -> Answer:
        value = self.answers.get(step.check.split()[0].lower())
        return Answer(value=value, why="given")


BOOK = Runbook.model_validate(
    {
        "name": "disk",
        "summary": "s",
        "alerts": ["DiskFull"],
        "match": {"severity": "page"},
        "start": "full",
        "steps": {
            "full": {"check": "Full now?", "then": "logs", "else": "fine"},
            "logs": {"check": "Logs big?", "then": "wipe", "else": "grow"},
            "wipe": {"action": "delete old logs", "risk": "high", "capability": "reapply"},
            "grow": {"action": "grow the disk", "risk": "low", "capability": "reapply"},
            "fine": {"action": "nothing", "risk": "low", "escalate": True},
        },
    }
)


def test_a_walk_shows_the_path_and_a_high_risk_action_needs_a_human() -> None:
    high = walk(BOOK, {}, Answers(full=True, logs=True))
    assert [v.step for v in high.path] == ["full", "logs"]
    assert high.step == "wipe" and high.needs_approval
    low = walk(BOOK, {}, Answers(full=True, logs=False))
    assert low.step == "grow" and not low.needs_approval
    unknown = walk(BOOK, {}, NoEvidence())
    assert unknown.outcome == "escalate" and unknown.action is None and unknown.needs_approval
    assert isinstance(BOOK.steps["wipe"], ActionStep)


def test_matching_prefers_the_named_runbook_then_the_most_specific() -> None:
    labels = {"alertname": "DiskFull", "severity": "page"}
    assert pick_runbook([BOOK], labels) is BOOK
    assert pick_runbook([BOOK], {**labels, "severity": "ticket"}) is None
    assert pick_runbook([BOOK], {"alertname": "Other"}, preferred="disk") is BOOK


def test_alert_labels_enter_queries_only_as_quoted_literals() -> None:
    query = bind_labels("up{instance=$labels.instance}", {"instance": 'x"} or vector(1) #'})
    assert query == 'up{instance="x\\"} or vector(1) #"}'
    assert bind_labels("up{a=$labels.missing}", {}) is None


def test_the_catalogue_is_read_again_whenever_an_input_changes(seed_tree: Path) -> None:
    """Loading is memoised by content: every edit of a runbook, the SLO file, a schema or
    the capabilities is seen at once; an unchanged tree gives the same catalogue."""
    first, _ = load_catalog(seed_tree)
    assert load_catalog(seed_tree)[0] is first  # unchanged: not parsed again
    book = seed_tree / "runbooks" / "memory-pressure.yaml"
    original = book.read_text()
    book.write_text(original.replace("name: memory-pressure", "name: other", 1))
    assert any("name must match the file" in p for p in problems(seed_tree))
    book.write_text(original)
    assert problems(seed_tree) == []
    schema = seed_tree / "schemas" / "slo.schema.json"
    schema.write_text("not json")
    assert any("cannot read schemas/slo.schema.json" in p for p in problems(seed_tree))
    schema.unlink()
    assert any("cannot read schemas/slo.schema.json" in p for p in problems(seed_tree))
    (seed_tree / "capabilities" / "change-container.md").unlink()
    assert problems(seed_tree)  # a runbook's capability is gone
