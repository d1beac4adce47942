"""``infrabot eval``: run an engine over the corpus at a depth and report per case.

``pr`` (what the issue asks, and what CI runs): each case end to end up to a validated,
dry-run pull request (``bot.evals.pipeline``).  ``draft``: the engine's draft validated on
a scratch tree, no PR and no dry-run (``bot.evals.draft``), for iterating on an engine.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from pathlib import Path

from bot.engines.base import Engine
from bot.evals.corpus import Case, Expected, load_corpus
from bot.evals.draft import run_drafts, seed_tree
from bot.evals.pipeline import run_prs
from bot.evals.report import CaseResult, Depth, EvalReport, render_table

__all__ = [
    "Case",
    "CaseResult",
    "EvalReport",
    "Expected",
    "load_corpus",
    "render_table",
    "run_eval",
    "seed_tree",
]


def _quiet(_: str) -> None:
    return None


def run_eval(
    engine: Engine,
    cases: list[Case],
    root: Path,
    *,
    depth: Depth,
    lanes: int = 1,
    estate: bool = True,
    progress: Callable[[str], None] = _quiet,
) -> EvalReport:
    """Score ``engine`` on ``cases`` against the repository at ``root``.

    At ``pr`` depth ``lanes`` scratch copies run cases side by side, each with its local
    estate up when ``estate`` and this machine can run it (else the dry-runs run without).
    """
    started, cpu = time.monotonic(), _cpu_seconds()
    if depth == "draft":
        results, note, lanes = run_drafts(engine, cases, root, progress), "", 1
    else:
        results, note, lanes = run_prs(
            engine, cases, root, lanes=lanes, estate=estate, progress=progress
        )
    return EvalReport(
        engine=engine.name,
        cases=tuple(results),
        depth=depth,
        lanes=lanes,
        estate=note,
        seconds=round(time.monotonic() - started, 1),
        cpu_seconds=round(_cpu_seconds() - cpu, 1),
    )


def _cpu_seconds() -> float:
    """CPU this process and its finished children (ansible, git, nginx -t) have used: the
    work itself, which wall time on a shared machine does not show."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
