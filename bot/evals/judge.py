"""Scoring, pure: what a case came to (``Observed``) against what it must be (``Case``).

Both depths feed the same judge.  At ``draft`` depth the change set is the engine's draft,
validated on a scratch tree, and nothing is dry-run (``dry_run`` is None); at ``pr`` depth
the change set is the pull request's diff read back from git, and the validation and the
dry-run are the ones the PR's check recorded.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from bot.evals.corpus import Case
from bot.model import DryRun, EngineUsage, ResourceChange, ValidationReport


class Observed(BaseModel):
    """What one case came to, whichever depth ran it."""

    model_config = ConfigDict(frozen=True)

    got: Literal["pr", "question", "stopped", "failed"]
    said: str = ""
    """The question and its reason; why the engine stopped; why no PR was opened."""
    declined: tuple[str, ...] = ()
    """What the plan says it will not do."""
    changes: tuple[ResourceChange, ...] = ()
    validation: ValidationReport | None = None
    dry_run: DryRun | None = None
    """None: not dry-run at this depth."""
    usage: tuple[EngineUsage, ...] = ()


def judge(case: Case, seen: Observed) -> tuple[bool, str]:
    """(passed, why not)."""
    if seen.got in ("stopped", "failed"):
        return False, seen.said[:160] or seen.got
    if seen.got == "question":
        if case.expect == "pr":
            return False, seen.said[:160]
        if case.mentions and case.mentions.lower() not in seen.said.lower():
            return False, f"does not mention {case.mentions!r}"
        return True, ""
    if case.expect == "question":
        return False, "a question was expected, a PR was drafted"
    if case.expect == "refusal":
        if not seen.declined:
            return False, "the plan declines nothing"
        if case.mentions and case.mentions.lower() not in " ".join(seen.declined).lower():
            return False, f"the refusal does not mention {case.mentions!r}"
    problem = _check_problem(case, seen) or _mismatch(case, seen.changes)
    return problem is None, problem or ""


def _check_problem(case: Case, seen: Observed) -> str | None:
    report, run = seen.validation, seen.dry_run
    if report is None:
        return "the PR was not validated"
    if not report.ok:
        return "validation failed: " + report.errors()[0].message[:120]
    if run is None:
        return None
    if case.dry_run == "fails" and run.ok:
        return f"the dry-run was expected to fail and {run.status.value}"
    if case.dry_run == "passes" and not run.ok:
        return f"dry-run: {_why_run_failed(run)}"[:160]
    return None


def _why_run_failed(run: DryRun) -> str:
    failed = run.failed()
    if failed:
        task = failed[0]
        return f"{run.status.value}: {task.host}: {task.task}: {task.message}".strip(": ")
    if run.nginx_ok is False:
        return f"nginx -t failed: {run.nginx_check or ''}".strip()
    if run.dnsmasq_ok is False:
        return f"dnsmasq --test failed: {run.dnsmasq_check or ''}".strip()
    return f"{run.status.value}: {run.error or 'no reason recorded'}"


def _mismatch(case: Case, changes: tuple[ResourceChange, ...]) -> str | None:
    drafted = {(c.kind, c.name): c for c in changes}
    for want in case.changes:
        got = drafted.get((want.kind, want.name))
        if got is None:
            return f"no change to {want.kind} {want.name}"
        if want.action and got.action.value != want.action:
            return f"{want.kind} {want.name}: {got.action.value}, not {want.action}"
        for key, value in want.fields.items():
            if got.data.get(key) != value:
                return f"{want.kind} {want.name}: {key} is {got.data.get(key)!r}, not {value!r}"
    touched = [k for k in case.untouched if tuple(k) in drafted]
    if touched:
        return f"touched {touched[0][0]} {touched[0][1]}"
    if case.only and len(drafted) != len(case.changes):
        extra = sorted(set(drafted) - {(w.kind, w.name) for w in case.changes})
        return f"also changed {extra}"
    return None
