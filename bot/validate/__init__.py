"""Validation of a desired-state tree: yaml, yamllint, JSON Schema, pydantic, cross-references,
policy and changed paths, all run every time and reported together in one ``ValidationReport``.

Bad input files are findings, never exceptions; only a missing or broken ``schemas/`` (the
schemas or ``policy.yaml``) raises ``InfrabotError``, because nothing can be judged without it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from bot.alerts.catalog import alerting_findings
from bot.model import Finding, ValidationReport
from bot.validate.excerpt import safe_finding
from bot.validate.index import TreeIndex, VerdictStore, build_index, load_rules
from bot.validate.policy import freeze_findings, path_findings
from bot.validate.references import reference_findings
from bot.validate.render import render_report_markdown

CHECKS = ("yaml", "yamllint", "schema", "pydantic", "references", "policy")

__all__ = ["CHECKS", "index_tree", "render_report_markdown", "validate_tree"]


def validate_tree(
    root: Path,
    *,
    changed_files: Sequence[str] | None = None,
    now: datetime | None = None,
    cache: VerdictStore | None = None,
    blobs: Mapping[str, str] | None = None,
) -> ValidationReport:
    """Validate the tree at ``root`` (a checkout or an exported tree of the repository).

    ``changed_files`` (repo-relative posix paths) adds the ``paths`` check; ``now`` adds a
    warning when it falls inside a policy freeze window.  ``cache`` (a ``ValidationCache``)
    supplies the per-file verdicts of files it has seen with the same bytes and rules; the
    report is the same with or without it.  ``blobs``: git's blob ids of the tree's files
    (``GitRepo.blob_ids``), so unchanged files are looked up without being read.
    """
    rules = load_rules(root)
    index = build_index(root, rules, cache, blobs)
    findings = [*index.scan_findings, *rules.lint_findings, *index.findings()]
    findings += reference_findings(index.checked(), invalid=index.invalid())
    if now is not None:
        findings += freeze_findings(rules.policy, now)
    # infra/slo.yaml and runbooks/ (schema, pydantic, references), owned by bot/alerts.
    findings += alerting_findings(root)
    checks: tuple[str, ...] = CHECKS
    if changed_files is not None:
        findings += path_findings(rules.policy, changed_files)
        checks = (*CHECKS, "paths")
    # Findings are posted: each is redacted and bounded here, whichever check wrote it.
    safe = tuple(safe_finding(f) for f in _ordered(findings))
    return ValidationReport(checks=checks, findings=safe)


def index_tree(
    root: Path, cache: VerdictStore | None = None, blobs: Mapping[str, str] | None = None
) -> TreeIndex:
    """The index of the tree at ``root`` under its own rules (its estate: ``.estate()``)."""
    return build_index(root, load_rules(root), cache, blobs)


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Grouped by check in the order they ran; stable inside a check."""
    rank = {name: i for i, name in enumerate((*CHECKS, "paths"))}
    return sorted(findings, key=lambda f: rank[f.check])
