"""Depth ``draft``: the engine's plan and change set, applied to a scratch copy of the seed
tree with the round-trip editor and validated there.  No git, no PR, no dry-run: seconds
for the whole corpus, for iterating on the engine."""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bot.engines.base import Engine, EngineContext
from bot.engines.capabilities import load_capabilities
from bot.engines.files import TreeFiles
from bot.errors import InputError
from bot.estate import apply_changes, build_estate, read_documents
from bot.evals.corpus import Case
from bot.evals.judge import Observed
from bot.evals.report import CaseResult, case_result
from bot.model import (
    ChangeSet,
    Clarification,
    DryRun,
    EngineUsage,
    Finding,
    Plan,
    RunStatus,
    Stopped,
    Ticket,
    ValidationReport,
)
from bot.validate import validate_tree
from bot.validate.cache import ValidationCache

TREE = ("infra", "capabilities", "schemas", "runbooks", ".yamllint")


class ScratchChecks:
    """validate a draft on a scratch copy of the tree (the engine's ``ctx.checks``); files
    the draft leaves alone are judged once, through the run's validation cache."""

    def __init__(self, tree: Path, cache: ValidationCache) -> None:
        self.tree, self.cache = tree, cache

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
            return validate_tree(head, changed_files=written, cache=self.cache)

    def dry_run(self, changes: ChangeSet) -> DryRun:
        return DryRun(
            head_sha="eval",
            base_sha="eval",
            status=RunStatus.SKIPPED,
            hosts=(),
            error="no dry-run at depth draft (infrabot eval --depth pr dry-runs every PR)",
        )


def seed_tree(root: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in TREE:
        src = root / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    return dest


def run_drafts(
    engine: Engine, cases: list[Case], root: Path, progress: Callable[[str], None]
) -> list[CaseResult]:
    with tempfile.TemporaryDirectory(prefix="eval-seed-") as tmp:
        tree = seed_tree(root, Path(tmp) / "tree")
        docs, _ = read_documents(tree)
        checks = ScratchChecks(tree, ValidationCache(Path(tmp) / "cache.db"))
        ctx = EngineContext(
            estate=build_estate(docs),
            capabilities=load_capabilities(tree / "capabilities"),
            files=TreeFiles(tree),
            checks=checks,
        )
        results = []
        for number, case in enumerate(cases, start=1):
            started = time.monotonic()
            seen = _draft(engine, ctx, checks, case, number)
            results.append(case_result(case, seen, time.monotonic() - started))
            progress(f"{case.id}: {'passed' if results[-1].ok else 'FAILED'}")
    return results


def _draft(
    engine: Engine, ctx: EngineContext, checks: ScratchChecks, case: Case, number: int
) -> Observed:
    ticket = Ticket(number=number, title=case.request, body=case.body, author=case.author)
    plan = engine.architect(ticket, ctx)
    outcome: ChangeSet | Clarification | Stopped = (
        engine.implement(ticket, plan, ctx) if isinstance(plan, Plan) else plan
    )
    usage = usages(plan, outcome) if outcome is not plan else usages(plan)
    if isinstance(outcome, Stopped):
        return Observed(got="stopped", said=outcome.reason, usage=usage)
    if isinstance(outcome, Clarification):
        said = " ".join((*outcome.questions, outcome.reason))
        return Observed(got="question", said=said, usage=usage)
    assert isinstance(plan, Plan)
    return Observed(
        got="pr",
        declined=plan.declined,
        changes=outcome.changes,
        validation=checks.validate(outcome),
        usage=usage,
    )


def usages(*results: object) -> tuple[EngineUsage, ...]:
    """What the engine's roles spent, from whatever they returned."""
    found: list[EngineUsage] = []
    for result in results:
        if isinstance(result, Plan):
            found += result.usage
        elif isinstance(result, ChangeSet | Stopped) and result.usage is not None:
            found.append(result.usage)
    return tuple(found)
