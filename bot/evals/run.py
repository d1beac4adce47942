"""The evaluation: each case is a request on the seed estate and what the result must be.

A case passes when the engine's outcome matches: a PR (the plan and change set drafted,
applied to a scratch copy of the tree with the round-trip editor and *validated*, every
expected change present with its fields, nothing it must not touch touched), a question,
or a refusal (the plan declines the forbidden part, or the engine asks).  With
``dry_run`` the draft is also dry-run with the real Ansible runner.  The corpus is YAML
(``tests/evals/*.yaml``) read into pydantic models; a malformed case is an ``InputError``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.engines.base import Engine, EngineContext
from bot.engines.capabilities import load_capabilities
from bot.engines.files import TreeFiles
from bot.errors import InputError
from bot.estate import apply_changes, build_estate, read_documents
from bot.model import (
    ChangeSet,
    Clarification,
    DryRun,
    Finding,
    Plan,
    RunStatus,
    Stopped,
    Ticket,
    ValidationReport,
)
from bot.validate import validate_tree

TREE = ("infra", "capabilities", "schemas", "runbooks", ".yamllint")


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Expected(_Frozen):
    action: Literal["create", "update", "delete"] | None = None
    kind: str
    name: str
    fields: dict[str, Any] = Field(default_factory=dict)


class Case(_Frozen):
    id: str
    request: str
    body: str = ""
    author: str = "alice"
    expect: Literal["pr", "question", "refusal"]
    changes: tuple[Expected, ...] = ()
    untouched: tuple[tuple[str, str], ...] = ()
    """(kind, name) pairs the draft must not change."""
    only: bool = False
    """The draft changes exactly ``changes`` and nothing else."""
    mentions: str | None = None
    """Text the question (or the plan's refusal) must contain."""


class CaseResult(_Frozen):
    id: str
    expected: str
    got: str
    ok: bool
    why: str = ""
    turns: int = 0
    tokens: int = 0
    cost_usd: float = 0.0
    seconds: float = 0.0


class EvalReport(_Frozen):
    engine: str
    cases: tuple[CaseResult, ...]

    @property
    def pass_rate(self) -> float:
        return sum(c.ok for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def questions_that_became_prs(self) -> int:
        return sum(1 for c in self.cases if c.expected == "question" and c.got == "pr")

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "pass_rate": round(self.pass_rate, 4),
            "passed": sum(c.ok for c in self.cases),
            "total": len(self.cases),
            "questions_that_became_prs": self.questions_that_became_prs,
            "cost_usd": round(sum(c.cost_usd for c in self.cases), 6),
            "cases": [c.model_dump(mode="json") for c in self.cases],
        }


def load_corpus(directory: Path) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            data = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or []
            cases += [Case.model_validate(item) for item in data]
        except (YAMLError, ValidationError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"{path}: not a list of eval cases: {first}") from exc
    ids = [c.id for c in cases]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise InputError(f"{directory}: duplicate case ids: {', '.join(dupes)}")
    return cases


class ScratchChecks:
    """validate (and optionally dry-run) a draft on a scratch copy of the tree."""

    def __init__(self, tree: Path, dry_run: Callable[[Path, ChangeSet], DryRun] | None) -> None:
        self.tree, self._dry_run = tree, dry_run

    def validate(self, changes: ChangeSet) -> ValidationReport:
        with tempfile.TemporaryDirectory(prefix="eval-") as tmp:
            head = Path(tmp) / "tree"
            shutil.copytree(self.tree, head, symlinks=True)
            try:
                written = apply_changes(head, changes)
            except InputError as exc:
                return ValidationReport(
                    checks=("paths",), findings=(Finding(check="paths", message=str(exc)),)
                )
            return validate_tree(head, changed_files=written)

    def dry_run(self, changes: ChangeSet) -> DryRun:
        if self._dry_run is None:
            return DryRun(
                head_sha="eval",
                base_sha="eval",
                status=RunStatus.SKIPPED,
                hosts=(),
                error="the dry-run is not run in this evaluation (infrabot eval --dry-run)",
            )
        return self._dry_run(self.tree, changes)


def seed_tree(root: Path, dest: Path) -> Path:
    for name in TREE:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def run_eval(
    engine: Engine,
    cases: list[Case],
    root: Path,
    dry_run: Callable[[Path, ChangeSet], DryRun] | None = None,
    progress: Callable[[str], None] = lambda _m: None,
) -> EvalReport:
    with tempfile.TemporaryDirectory(prefix="eval-seed-") as tmp:
        tree = seed_tree(root, Path(tmp))
        docs, _ = read_documents(tree)
        ctx = EngineContext(
            estate=build_estate(docs),
            capabilities=load_capabilities(tree / "capabilities"),
            files=TreeFiles(tree),
            checks=ScratchChecks(tree, dry_run),
        )
        results = []
        for number, case in enumerate(cases, start=1):
            progress(f"{case.id}")
            results.append(_run_case(engine, ctx, case, number))
    return EvalReport(engine=engine.name, cases=tuple(results))


def _run_case(engine: Engine, ctx: EngineContext, case: Case, number: int) -> CaseResult:
    ticket = Ticket(number=number, title=case.request, body=case.body, author=case.author)
    started = time.monotonic()
    plan = engine.architect(ticket, ctx)
    outcome: Plan | ChangeSet | Clarification | Stopped = plan
    if isinstance(plan, Plan):
        outcome = engine.implement(ticket, plan, ctx)
    seconds = time.monotonic() - started
    usages = [*(plan.usage if isinstance(plan, Plan) else ())]
    for result in (plan, outcome):
        if isinstance(result, ChangeSet | Stopped) and result.usage is not None:
            usages.append(result.usage)
    got, ok, why = _judge(case, plan, outcome, ctx)
    return CaseResult(
        id=case.id,
        expected=case.expect,
        got=got,
        ok=ok,
        why=why,
        turns=sum(u.turns for u in usages),
        tokens=sum(
            u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
            for u in usages
        ),
        cost_usd=round(sum(u.cost_usd for u in usages), 6),
        seconds=round(seconds, 3),
    )


def _judge(
    case: Case,
    plan: Plan | Clarification | Stopped,
    outcome: Plan | ChangeSet | Clarification | Stopped,
    ctx: EngineContext,
) -> tuple[str, bool, str]:
    if isinstance(outcome, Stopped):
        return "stopped", False, outcome.reason
    if isinstance(outcome, Clarification):
        said = " ".join((*outcome.questions, outcome.reason))
        if case.expect == "pr":
            return "question", False, outcome.questions[0][:160]
        if case.mentions and case.mentions.lower() not in said.lower():
            return "question", False, f"does not mention {case.mentions!r}"
        return "question", True, ""
    assert isinstance(outcome, ChangeSet) and isinstance(plan, Plan)
    if case.expect == "question":
        return "pr", False, "a question was expected, a PR was drafted"
    if case.expect == "refusal":
        text = " ".join(plan.declined)
        if not plan.declined:
            return "pr", False, "the plan declines nothing"
        if case.mentions and case.mentions.lower() not in text.lower():
            return "pr", False, f"the refusal does not mention {case.mentions!r}"
    assert ctx.checks is not None
    report = ctx.checks.validate(outcome)
    if not report.ok:
        return "pr", False, "validation failed: " + report.errors()[0].message[:120]
    run = ctx.checks.dry_run(outcome)
    if run.status not in (RunStatus.SUCCESSFUL, RunStatus.SKIPPED) or not run.ok:
        return "pr", False, f"dry-run {run.status.value}"
    problem = _mismatch(case, outcome)
    return "pr", problem is None, problem or ""


def _mismatch(case: Case, changes: ChangeSet) -> str | None:
    drafted = {(c.kind, c.name): c for c in changes.changes}
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


def render_table(report: EvalReport) -> str:
    rows = [
        f"{'case':<34} {'want':<9} {'got':<9} {'ok':<3} {'turns':>5} {'tokens':>7} "
        f"{'cost $':>8} {'s':>6}  why"
    ]
    for c in report.cases:
        rows.append(
            f"{c.id:<34} {c.expected:<9} {c.got:<9} {'✓' if c.ok else '✗':<3} {c.turns:>5} "
            f"{c.tokens:>7} {c.cost_usd:>8.4f} {c.seconds:>6.2f}  {c.why}"
        )
    total = len(report.cases)
    passed = sum(c.ok for c in report.cases)
    cost = sum(c.cost_usd for c in report.cases)
    rows.append(
        f"\n{report.engine}: {passed}/{total} passed, pass rate {report.pass_rate:.1%}; "
        f"questions that became PRs: {report.questions_that_became_prs}; total cost ${cost:.4f} "
        f"(${cost / max(total, 1):.4f} per ticket)"
    )
    return "\n".join(rows)
