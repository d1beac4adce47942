"""Runbooks as decision trees: load, check, match an alert, walk.

Theory of operation: a runbook (``runbooks/*.yaml``, ``schemas/runbook.schema.json``) is a
tree of *checks* (a yes/no question, answered by a read-only PromQL query, a probe, or a
person) ending in *actions* (each with a risk level and the capability it uses) or in
escalation to a human.  ``tree_problems`` rejects what the schema cannot: a step that leads
back to itself (a loop), a branch to an undefined step, an unreachable step, a capability
nobody provides.  ``walk`` is pure: the answers come from an ``Evidence`` the caller hands
in, so the same walk runs against Prometheus, a test double, or nothing at all (then every
evidence-backed check is "unknown" and the walk stops there, escalating).  A high-risk
action always needs a human's approval, whatever the environment's policy says.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

RUNBOOK_DIR = "runbooks"
BUILTIN_CAPABILITIES = {"reapply": "re-run the apply of the affected hosts (infrabot reconcile)"}
_EXPECT = re.compile(r"^(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)$")
_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Probe(_Frozen):
    http: str | None = None
    tcp: str | None = None


class CheckStep(_Frozen):
    check: str
    then: str
    else_: str = Field(alias="else")
    query: str | None = None
    probe: Probe | None = None
    expect: str | None = None

    def satisfied(self, value: float) -> bool:
        """Does one sample's value meet ``expect`` (any value does without one)?"""
        found = _EXPECT.match(self.expect or "")
        if found is None:
            return True
        op, bound = found.group(1), float(found.group(2))
        return {
            ">": value > bound,
            ">=": value >= bound,
            "<": value < bound,
            "<=": value <= bound,
            "==": value == bound,
            "!=": value != bound,
        }[op]


class ActionStep(_Frozen):
    action: str
    risk: Literal["low", "medium", "high"]
    capability: str | None = None
    escalate: bool = False
    request: str | None = None
    """The change to draft, worded as a person would ask (``$labels.NAME`` bound)."""

    @property
    def needs_approval(self) -> bool:
        """A human decides: always for escalation and for high risk, whatever the policy."""
        return self.escalate or self.risk == "high"


Step = CheckStep | ActionStep


class Runbook(_Frozen):
    name: str
    summary: str
    start: str
    steps: dict[str, Step]
    applies_to: tuple[str, ...] = ()
    alerts: tuple[str, ...] = ()
    match: dict[str, str] = Field(default_factory=dict)

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.alerts and labels.get("alertname") not in self.alerts:
            return False
        if not self.alerts and not self.match:
            return False
        return all(labels.get(k) == v for k, v in self.match.items())

    def specificity(self) -> int:
        return len(self.match) + (1 if self.alerts else 0)


def tree_problems(book: Runbook, capabilities: Iterable[str]) -> list[tuple[str, str]]:
    """(JSON path, message) for every structural problem: undefined, looping, unreachable
    steps and unknown capabilities."""
    known = set(capabilities) | set(BUILTIN_CAPABILITIES)
    problems: list[tuple[str, str]] = []
    if book.start not in book.steps:
        problems.append(("$.start", f"start step {book.start!r} is not defined"))
    for name, step in book.steps.items():
        if isinstance(step, CheckStep):
            for key, target in (("then", step.then), ("else", step.else_)):
                if target not in book.steps:
                    problems.append((f"$.steps.{name}.{key}", f"step {target!r} is not defined"))
        elif step.capability is not None and step.capability not in known:
            problems.append(
                (
                    f"$.steps.{name}.capability",
                    f"unknown capability {step.capability!r}: expected one of "
                    + ", ".join(sorted(known)),
                )
            )
    for name, step in book.steps.items():
        drafted = isinstance(step, ActionStep) and step.request is not None
        if drafted and isinstance(step, ActionStep) and not _drafts_a_change(step):
            problems.append(
                (
                    f"$.steps.{name}.request",
                    "a request is drafted as a desired-state change: it needs a "
                    "capabilities/*.md capability and no escalate",
                )
            )
    problems += _loops(book)
    reachable = _reachable(book)
    for name in book.steps:
        if name not in reachable and book.start in book.steps:
            problems.append((f"$.steps.{name}", f"step {name!r} is unreachable from the start"))
    return problems


def _drafts_a_change(step: ActionStep) -> bool:
    return not step.escalate and step.capability not in (None, *BUILTIN_CAPABILITIES)


def _successors(book: Runbook, name: str) -> list[str]:
    step = book.steps.get(name)
    if isinstance(step, CheckStep):
        return [t for t in (step.then, step.else_) if t in book.steps]
    return []


def _reachable(book: Runbook) -> set[str]:
    seen: set[str] = set()
    todo = [book.start] if book.start in book.steps else []
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _successors(book, name)
    return seen


def _loops(book: Runbook) -> list[tuple[str, str]]:
    """A step from which the walk can come back to it: the tree would never end."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    found: list[tuple[str, str]] = []

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for nxt in _successors(book, name):
            if state.get(nxt) == 1:
                here = [*path, name]
                cycle = " → ".join([*here[here.index(nxt) :], nxt])
                found.append((f"$.steps.{name}", f"the steps loop: {cycle}"))
            elif nxt not in state:
                visit(nxt, [*path, name])
        state[name] = 2

    for name in book.steps:
        if name not in state:
            visit(name, [])
    return found


def pick_runbook(
    books: Iterable[Runbook], labels: Mapping[str, str], preferred: str | None = None
) -> Runbook | None:
    """The runbook named by the SLO/invariant if it exists, else the most specific match."""
    books = list(books)
    if preferred is not None:
        named = next((b for b in books if b.name == preferred), None)
        if named is not None:
            return named
    matching = [b for b in books if b.matches(labels)]
    matching.sort(key=lambda b: (-b.specificity(), b.name))
    return matching[0] if matching else None


# Walking.


class Answer(_Frozen):
    value: bool | None
    """None: the evidence could not decide (no Prometheus, a rejected query, a question)."""
    why: str


class Evidence(Protocol):
    def answer(self, step: CheckStep, labels: Mapping[str, str]) -> Answer: ...


class NoEvidence:
    """Nothing to ask: every check is unknown, so a walk stops at the first one."""

    def answer(self, step: CheckStep, labels: Mapping[str, str]) -> Answer:
        source = "a query" if step.query else "a probe" if step.probe else "a person"
        return Answer(value=None, why=f"not evaluated: needs {source} to answer")


class Visited(_Frozen):
    step: str
    question: str
    answer: bool | None
    why: str


class Walk(_Frozen):
    runbook: str
    path: tuple[Visited, ...]
    outcome: Literal["action", "escalate"]
    step: str | None
    action: ActionStep | None
    reason: str

    @property
    def needs_approval(self) -> bool:
        return self.action is None or self.action.needs_approval


def walk(book: Runbook, labels: Mapping[str, str], evidence: Evidence) -> Walk:
    """Follow the tree from ``start`` with the evidence's answers.  An unknown answer stops
    the walk and escalates to a human, saying which check could not be decided."""
    path: list[Visited] = []
    name = book.start
    for _ in range(len(book.steps) + 1):  # a validated tree has no loop; never trust that
        step = book.steps[name]
        if isinstance(step, ActionStep):
            outcome: Literal["action", "escalate"] = "escalate" if step.escalate else "action"
            why = "the runbook escalates here" if step.escalate else "reached an action"
            return Walk(
                runbook=book.name,
                path=tuple(path),
                outcome=outcome,
                step=name,
                action=step,
                reason=why,
            )
        ans = evidence.answer(step, labels)
        path.append(Visited(step=name, question=step.check, answer=ans.value, why=ans.why))
        if ans.value is None:
            return Walk(
                runbook=book.name,
                path=tuple(path),
                outcome="escalate",
                step=None,
                action=None,
                reason=f"check {name!r} could not be decided: escalate to a human",
            )
        name = step.then if ans.value else step.else_
    return Walk(
        runbook=book.name,
        path=tuple(path),
        outcome="escalate",
        step=None,
        action=None,
        reason="the walk did not end (the runbook loops): escalate to a human",
    )


def promql_string(value: str) -> str:
    """A PromQL double-quoted string literal holding ``value`` exactly (labels are untrusted)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def bind_labels(query: str, labels: Mapping[str, str]) -> str | None:
    """``$labels.NAME`` replaced by the alert's label as a quoted literal; None if missing."""
    missing = [n for n in _LABEL_REF.findall(query) if n not in labels]
    if missing:
        return None
    return _LABEL_REF.sub(lambda m: promql_string(labels[m.group(1)]), query)


def capability_names(root: Path) -> list[str]:
    base = root / "capabilities"
    return sorted(p.stem for p in base.glob("*.md") if p.name != "README.md")
