"""A validation report as a compact markdown section for a PR body or status comment. Pure.

Findings quote file names, JSON paths and values from the PR: each cell is escaped with
``bot.markdown`` so a value cannot break the table or inject markup.
"""

from __future__ import annotations

from bot.markdown import code, text
from bot.model import Finding, ValidationReport

MAX_FINDINGS = 50


def render_report_markdown(report: ValidationReport, *, limit: int = MAX_FINDINGS) -> str:
    errors = len(report.errors())
    warnings = len(report.findings) - errors
    lines = [f"### Validation {_headline(errors, warnings)}", "", _check_line(report)]
    if report.findings:
        lines += ["", "| | check | location | message |", "| --- | --- | --- | --- |"]
        lines += [_row(f) for f in report.findings[:limit]]
        hidden = len(report.findings) - limit
        if hidden > 0:
            lines += ["", f"… and {hidden} more"]
    return "\n".join(lines) + "\n"


def _headline(errors: int, warnings: int) -> str:
    counts = []
    if errors:
        counts.append(_plural(errors, "error"))
    if warnings:
        counts.append(_plural(warnings, "warning"))
    mark = "❌ failed" if errors else "✅ passed"
    return f"{mark} ({', '.join(counts)})" if counts else mark


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _check_line(report: ValidationReport) -> str:
    marks = []
    for check in report.checks:
        found = [f for f in report.findings if f.check == check]
        mark = "✅"
        if any(f.severity == "error" for f in found):
            mark = "❌"
        elif found:
            mark = "⚠️"
        marks.append(f"{mark} {check}")
    return " · ".join(marks)


def _row(finding: Finding) -> str:
    icon = "❌" if finding.severity == "error" else "⚠️"
    where = code(finding.location(), 200, cell=True) if finding.location() else ""
    return f"| {icon} | {finding.check} | {where} | {text(finding.message, 500)} |"
