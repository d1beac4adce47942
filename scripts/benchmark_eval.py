#!/usr/bin/env python3
"""What ``infrabot eval --depth pr`` costs, against the naive way, measured in the same run.

The same sample of the corpus, with the offline engine, four ways:

- ``draft``: the draft validated on a scratch tree (what the eval did before: no PR);
- ``series``: depth pr, one lane, no estate — every case in series, and each PR's dry-run
  contrasted with a dry-run of main (the baseline: what "75 seed examples in a row" costs);
- ``estate``: depth pr, one lane, its local estate up and at main (no contrast run);
- ``lanes``: depth pr, ``--lanes`` lanes (default 2), each with its estate (what CI runs).

Printed (and with ``--json`` written): wall and CPU seconds (this process and its children)
of each, the ratio to ``series``, and the pass rates (the same at every pr depth, or the
ways disagree). Needs root for the estates. Asserts nothing about time.

Usage: python scripts/benchmark_eval.py [--sample 16] [--lanes 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.engines import OfflineEngine  # noqa: E402
from bot.evals import load_corpus, run_eval  # noqa: E402
from bot.evals.corpus import Case  # noqa: E402
from bot.evals.report import EvalReport  # noqa: E402


def sample(cases: list[Case], size: int) -> list[Case]:
    """Every k-th case, so each file (create, change, remove, questions, injection) is in."""
    if size >= len(cases):
        return cases
    step = len(cases) / size
    return [cases[int(i * step)] for i in range(size)]


def figures(name: str, report: EvalReport) -> dict[str, Any]:
    return {
        "way": name,
        "wall_s": report.seconds,
        "cpu_s": report.cpu_seconds,
        "passed": sum(c.ok for c in report.cases),
        "total": len(report.cases),
        "estate": report.estate,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=16, help="cases (0: the whole corpus)")
    parser.add_argument("--lanes", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    corpus = load_corpus(ROOT / "tests" / "evals")
    cases = sample(corpus, args.sample or len(corpus))
    engine = OfflineEngine()
    ways = [
        ("draft", {"depth": "draft"}),
        ("series", {"depth": "pr", "lanes": 1, "estate": False}),
        ("estate", {"depth": "pr", "lanes": 1, "estate": True}),
        (f"{args.lanes} lanes", {"depth": "pr", "lanes": args.lanes, "estate": True}),
    ]
    rows = []
    for name, how in ways:
        print(f"{name}: {len(cases)} cases …", flush=True)
        rows.append(figures(name, run_eval(engine, cases, ROOT, **how)))
    base = rows[1]
    print(f"\n{'way':<10} {'wall s':>8} {'vs series':>9} {'CPU s':>8} {'vs series':>9}  passed")
    for row in rows:
        print(
            f"{row['way']:<10} {row['wall_s']:>8.1f} {row['wall_s'] / base['wall_s']:>9.2f} "
            f"{row['cpu_s']:>8.1f} {row['cpu_s'] / base['cpu_s']:>9.2f}  "
            f"{row['passed']}/{row['total']}"
        )
    per_case = {row["way"]: round(row["cpu_s"] / len(cases), 2) for row in rows}
    print(f"\nCPU seconds per case: {per_case}")
    if args.json:
        args.json.write_text(json.dumps({"cases": len(cases), "ways": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
