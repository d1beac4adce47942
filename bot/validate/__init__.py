"""Validation of a desired-state tree: yaml, yamllint, JSON Schema, pydantic, cross-references,
policy and changed paths, all run every time and reported together in one ``ValidationReport``.

Bad input files are findings, never exceptions; only a missing or broken ``schemas/`` (the
schemas or ``policy.yaml``) raises ``InfrabotError``, because nothing can be judged without it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from bot.alerts.catalog import alerting_findings
from bot.estate.documents import Document, read_documents, state_files
from bot.model import Finding, ValidationReport
from bot.validate.excerpt import safe_finding
from bot.validate.lint import yamllint_findings
from bot.validate.models import parse_documents
from bot.validate.policy import (
    freeze_findings,
    load_policy,
    path_findings,
    policy_findings,
)
from bot.validate.references import reference_findings
from bot.validate.render import render_report_markdown
from bot.validate.schema import load_schemas, schema_findings

CHECKS = ("yaml", "yamllint", "schema", "pydantic", "references", "policy")

__all__ = ["CHECKS", "render_report_markdown", "validate_tree"]


def validate_tree(
    root: Path,
    *,
    changed_files: Sequence[str] | None = None,
    now: datetime | None = None,
) -> ValidationReport:
    """Validate the tree at ``root`` (a checkout or an exported tree of the repository).

    ``changed_files`` (repo-relative posix paths) adds the ``paths`` check; ``now`` adds a
    warning when it falls inside a policy freeze window.
    """
    schemas = load_schemas(root)
    policy = load_policy(root)
    docs, findings = read_documents(root, policy.limits)
    unparsable = {f.file for f in findings if f.file}
    files = [p.relative_to(root).as_posix() for p in state_files(root, policy.limits)]
    findings += yamllint_findings(
        root, files, parse_failed=unparsable, max_bytes=policy.limits.max_file_bytes
    )
    valid = []
    for doc in docs:
        problems = schema_findings(doc, schemas)
        findings += problems
        if not problems:
            valid.append(doc)
    parsed, disagreements = parse_documents(valid)
    findings += disagreements
    parsed_docs = {id(p.doc) for p in parsed}
    invalid = _identities(d for d in docs if id(d) not in parsed_docs)
    findings += reference_findings(parsed, invalid=invalid)
    findings += policy_findings(policy, docs)
    if now is not None:
        findings += freeze_findings(policy, now)
    # infra/slo.yaml and runbooks/ (schema, pydantic, references), owned by bot/alerts.
    findings += alerting_findings(root)
    checks: tuple[str, ...] = CHECKS
    if changed_files is not None:
        findings += path_findings(policy, changed_files)
        checks = (*CHECKS, "paths")
    # Findings are posted: each is redacted and bounded here, whichever check wrote it.
    safe = tuple(safe_finding(f) for f in _ordered(findings))
    return ValidationReport(checks=checks, findings=safe)


def _identities(docs: Iterable[Document]) -> set[tuple[str, str]]:
    """(kind, name) of the documents that declare both as strings."""
    return {(d.kind, d.name) for d in docs if isinstance(d.kind, str) and d.name is not None}


def _ordered(findings: list[Finding]) -> list[Finding]:
    """Grouped by check in the order they ran; stable inside a check."""
    rank = {name: i for i, name in enumerate((*CHECKS, "paths"))}
    return sorted(findings, key=lambda f: rank[f.check])
