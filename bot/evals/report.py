"""The evaluation's result: one row per case (pass, turns, tokens, cost, seconds), the
pass rate, and how the run was made (depth, lanes, whether a local estate ran)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bot.evals.corpus import Case
from bot.evals.judge import Observed, judge

Depth = Literal["draft", "pr"]


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    pr: int | None = None
    """The pull request the case opened (``pr`` depth)."""


class EvalReport(_Frozen):
    engine: str
    cases: tuple[CaseResult, ...]
    depth: Depth = "draft"
    lanes: int = 1
    estate: str = ""
    """What the dry-runs ran against (``pr`` depth): a running local estate, or why not."""
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    """CPU of the whole run, children included (wall time on a shared machine is noise)."""

    @property
    def pass_rate(self) -> float:
        return sum(c.ok for c in self.cases) / len(self.cases) if self.cases else 0.0

    @property
    def questions_that_became_prs(self) -> int:
        return sum(1 for c in self.cases if c.expected == "question" and c.got == "pr")

    def as_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "depth": self.depth,
            "lanes": self.lanes,
            "estate": self.estate,
            "seconds": self.seconds,
            "cpu_seconds": self.cpu_seconds,
            "pass_rate": round(self.pass_rate, 4),
            "passed": sum(c.ok for c in self.cases),
            "total": len(self.cases),
            "questions_that_became_prs": self.questions_that_became_prs,
            "cost_usd": round(sum(c.cost_usd for c in self.cases), 6),
            "cases": [c.model_dump(mode="json") for c in self.cases],
        }


def case_result(case: Case, seen: Observed, seconds: float, pr: int | None = None) -> CaseResult:
    ok, why = judge(case, seen)
    usages = seen.usage
    return CaseResult(
        id=case.id,
        expected=case.expect,
        got=seen.got,
        ok=ok,
        why=why,
        turns=sum(u.turns for u in usages),
        tokens=sum(
            u.input_tokens + u.output_tokens + u.cache_read_tokens + u.cache_write_tokens
            for u in usages
        ),
        cost_usd=round(sum(u.cost_usd for u in usages), 6),
        seconds=round(seconds, 3),
        pr=pr,
    )


def _how(report: EvalReport) -> str:
    if report.depth == "draft":
        return "depth draft: each draft applied to a scratch tree and validated; no PR, no dry-run"
    lanes = f"{report.lanes} lane{'s' if report.lanes != 1 else ''}"
    return (
        "depth pr: each case opened as an issue on a scratch copy of the repository and taken "
        f"through plan → PR → validation → dry-run ({lanes}; {report.estate})"
    )


def render_table(report: EvalReport) -> str:
    rows = [
        _how(report),
        f"{'case':<34} {'want':<9} {'got':<9} {'ok':<3} {'turns':>5} {'tokens':>7} "
        f"{'cost $':>8} {'s':>6}  why",
    ]
    for c in report.cases:
        rows.append(
            f"{c.id:<34} {c.expected:<9} {c.got:<9} {'✓' if c.ok else '✗':<3} {c.turns:>5} "
            f"{c.tokens:>7} {c.cost_usd:>8.4f} {c.seconds:>6.2f}  {c.why}"
        )
    total = len(report.cases)
    passed = sum(c.ok for c in report.cases)
    cost = sum(c.cost_usd for c in report.cases)
    in_cases = sum(c.seconds for c in report.cases)
    rows.append(
        f"\n{report.engine}: {passed}/{total} passed, pass rate {report.pass_rate:.1%}; "
        f"questions that became PRs: {report.questions_that_became_prs}; total cost ${cost:.4f} "
        f"(${cost / max(total, 1):.4f} per ticket); {in_cases:.1f}s in cases "
        f"({in_cases / max(total, 1):.2f}s per case), {report.seconds:.1f}s in all "
        f"({report.cpu_seconds:.1f}s of CPU)"
    )
    return "\n".join(rows)
