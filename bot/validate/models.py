"""The pydantic check: documents the schema accepted must also parse into their model.

``schemas/`` is the source of truth and ``bot.model`` mirrors it; a document that one accepts
and the other rejects means the two drifted apart, which is a finding, not a crash.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from pydantic import ValidationError

from bot.estate.documents import Document
from bot.estate.index import plain
from bot.model import Finding, Resource, parse_resource
from bot.validate.jsonpath import json_path


class Located(Protocol):
    """Where a document came from: a freshly read ``Document`` or its cached index entry."""

    @property
    def file(self) -> str: ...

    def line_of(self, path: tuple[str | int, ...]) -> int: ...


@dataclass(frozen=True)
class Parsed:
    """A document and the resource it parsed into."""

    doc: Located
    resource: Resource


def parse_documents(docs: Iterable[Document]) -> tuple[list[Parsed], list[Finding]]:
    parsed: list[Parsed] = []
    findings: list[Finding] = []
    for doc in docs:
        try:
            parsed.append(Parsed(doc, parse_resource(plain(doc.data))))
        except ValidationError as exc:
            findings.extend(_disagreements(doc, exc))
    return parsed, findings


def _disagreements(doc: Document, exc: ValidationError) -> list[Finding]:
    findings = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        parts = loc[1:] if loc and loc[0] == doc.kind else loc  # drop the union's tag
        message = (
            f"the schema accepts this but the {doc.kind} model rejects it ({error['msg']}): "
            "schemas/ and bot/model disagree"
        )
        findings.append(
            Finding(
                check="pydantic",
                file=doc.file,
                line=doc.line_of(parts),
                path=json_path(parts),
                message=message,
            )
        )
    return findings
