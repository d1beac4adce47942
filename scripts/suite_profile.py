#!/usr/bin/env python3
"""Where the test suite's time goes: wall and CPU seconds per test file, heaviest first.

Runs pytest (any arguments after ``--`` are passed on, e.g. ``-n 2`` or a subset of files)
with this file as a plugin: each test's wall time (setup, call and teardown) and the CPU
seconds its process and the children it waited for spent meanwhile (ansible-playbook,
git, the servers a test stops) are summed per file. Daemons that detach (nginx, dnsmasq)
are not counted. Works with pytest-xdist: the workers attach the CPU to each report.

Printed at the end: the top files by wall time with their CPU, the totals, and the whole
run's wall and CPU seconds (pytest and every child it waited for, as ``/usr/bin/time``
reports them). CPU seconds are the figure to compare while the machine is shared with
other work; wall times there say little. Asserts nothing about time.

Usage: python scripts/suite_profile.py [--top 25] [--json FILE] [-- PYTEST_ARGS...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CPU = "suite_profile_cpu"
OUT_ENV = "SUITE_PROFILE_OUT"


def _cpu_now() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# ---------------------------------------------------------------- the plugin (-p suite_profile)


class _Collector:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, float]] = {}

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item) -> Iterator[None]:
        item.stash[_START] = _cpu_now()
        yield

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Iterator[None]:
        outcome = yield
        report = outcome.get_result()
        start = item.stash.get(_START, None)
        if start is not None:
            now = _cpu_now()
            report.user_properties.append((CPU, now - start))
            item.stash[_START] = now

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        path = report.nodeid.split("::", 1)[0]
        row = self.rows.setdefault(path, {"wall": 0.0, "cpu": 0.0, "tests": 0})
        row["wall"] += report.duration
        row["cpu"] += sum(v for k, v in report.user_properties if k == CPU)
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            row["tests"] += 1

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        out = os.environ.get(OUT_ENV)
        if out and not hasattr(session.config, "workerinput"):  # the controller only
            Path(out).write_text(json.dumps(self.rows), encoding="utf-8")


_START = pytest.StashKey[float]()


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_Collector(), "suite_profile_collector")


# ---------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    pytest_args: list[str] = []
    if "--" in args:
        cut = args.index("--")
        args, pytest_args = args[:cut], args[cut + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--top", type=int, default=25, help="files to list (default 25)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    opts = parser.parse_args(args)
    with tempfile.TemporaryDirectory(prefix="suite-profile-") as tmp:
        out = Path(tmp) / "rows.json"
        env = os.environ | {
            OUT_ENV: str(out),
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(ROOT / "scripts"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        argv_ = [sys.executable, "-m", "pytest", "-q", "-p", "suite_profile", *pytest_args]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        code = subprocess.run(argv_, cwd=ROOT, env=env, check=False).returncode
        wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        rows: dict[str, dict[str, float]] = json.loads(out.read_text()) if out.exists() else {}
    print(render(rows, wall, cpu, opts.top))
    if opts.json:
        data: dict[str, Any] = {"wall": wall, "cpu": cpu, "exit": code, "files": rows}
        opts.json.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return code


def render(rows: dict[str, dict[str, float]], wall: float, cpu: float, top: int) -> str:
    ranked = sorted(rows.items(), key=lambda kv: kv[1]["wall"], reverse=True)
    width = max([len(p) for p, _ in ranked[:top]] + [4])
    lines = [f"{'file':<{width}}  {'tests':>5}  {'wall s':>8}  {'cpu s':>8}"]
    for path, row in ranked[:top]:
        figures = f"{row['tests']:>5.0f}  {row['wall']:>8.1f}  {row['cpu']:>8.1f}"
        lines.append(f"{path:<{width}}  {figures}")
    tests = sum(r["tests"] for r in rows.values())
    summed_wall = sum(r["wall"] for r in rows.values())
    summed_cpu = sum(r["cpu"] for r in rows.values())
    lines.append(
        f"{'all ' + str(len(rows)) + ' files':<{width}}  {tests:>5.0f}  {summed_wall:>8.1f}  "
        f"{summed_cpu:>8.1f}   (summed over tests)"
    )
    lines.append(f"whole run: {wall:.1f} s wall, {cpu:.1f} s CPU (pytest and its children)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
