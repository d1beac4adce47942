"""The JSON Schema check: each document against ``schemas/<Kind>.schema.json``.

Theory of operation: ``load_schemas`` reads and compiles every schema once; the resulting
validators are shared by every document of the tree (building one per document would compile
each schema, and its regexes, again and again).  Format checking is on, and loading refuses a
schema that uses a format with no checker installed: jsonschema silently accepts formats it
cannot check, so a missing optional dependency would let ``10.0.0.300`` through as an ipv4.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match

from bot.errors import InfrabotError
from bot.estate.documents import Document
from bot.estate.index import plain
from bot.model import Finding
from bot.validate.jsonpath import json_path

SCHEMA_DIR = "schemas"
_SUFFIX = ".schema.json"


@dataclass(frozen=True)
class Schemas:
    """One compiled validator per resource kind."""

    validators: Mapping[str, Draft202012Validator]

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(sorted(self.validators))


def load_schemas(root: Path) -> Schemas:
    """Compile the resource schemas under ``root/schemas``: the ``*.schema.json`` files that
    declare a ``kind`` (others, such as the runbook format, are not resource kinds).
    InfrabotError when the folder is missing or a schema is broken."""
    base = root / SCHEMA_DIR
    validators = {}
    for path in sorted(base.glob(f"*{_SUFFIX}")) if base.is_dir() else []:
        rel = path.relative_to(root).as_posix()
        schema = _read(path, rel)
        if _declared_kind(schema) is None:
            continue
        validators[_kind_of(path, schema, rel)] = _compile(schema, rel)
    if not validators:
        raise InfrabotError(f"{SCHEMA_DIR}/ has no resource *{_SUFFIX} files under {root}")
    return Schemas(validators)


def _read(path: Path, rel: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InfrabotError(f"{rel}: cannot read the schema: {exc}") from exc


def _declared_kind(schema: Any) -> Any:
    if not isinstance(schema, dict):
        return None
    kind = schema.get("properties", {}).get("kind", {})
    return kind.get("const") if isinstance(kind, dict) else None


def _kind_of(path: Path, schema: Any, rel: str) -> str:
    kind = path.name.removesuffix(_SUFFIX)
    declared = _declared_kind(schema)
    if declared != kind:
        raise InfrabotError(f"{rel}: properties.kind.const is {declared!r}, expected {kind!r}")
    return kind


def _compile(schema: Any, rel: str) -> Draft202012Validator:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InfrabotError(f"{rel}: not a valid JSON Schema: {exc.message}") from exc
    _require_format_checkers(schema, rel)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def _require_format_checkers(schema: Any, rel: str) -> None:
    known = Draft202012Validator.FORMAT_CHECKER.checkers
    missing = sorted(set(_formats(schema)) - set(known))
    if missing:
        raise InfrabotError(
            f"{rel}: format {', '.join(missing)} cannot be checked here: "
            "install infrabot's dependencies (pip install -e .: fqdn, rfc3986-validator)"
        )


def _formats(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("format"), str):
            yield node["format"]
        for value in node.values():
            yield from _formats(value)
    elif isinstance(node, list):
        for value in node:
            yield from _formats(value)


def schema_findings(doc: Document, schemas: Schemas) -> list[Finding]:
    """Every schema error of one document, the most relevant (``best_match``) first."""
    kind = doc.kind
    if not isinstance(doc.data, dict) or not isinstance(kind, str) or kind not in schemas.kinds:
        return [_kind_finding(doc, schemas.kinds)]
    errors = list(schemas.validators[kind].iter_errors(plain(doc.data)))
    if not errors:
        return []
    headline = best_match(errors)
    ordered = [headline, *(e for e in errors if e is not headline)]
    findings = [f for error in ordered for f in _error_findings(doc, error)]
    return list(dict.fromkeys(findings))  # best_match may dig out an error also listed on its own


def _kind_finding(doc: Document, kinds: tuple[str, ...]) -> Finding:
    known = ", ".join(kinds)
    if not isinstance(doc.data, dict):
        shape = "list" if isinstance(doc.data, list) else "scalar"
        problem = f"the document is a {shape}, not a mapping of resource fields"
        path = "$"
    elif "kind" not in doc.data:
        problem, path = "the document has no `kind`", "$"
    else:
        problem, path = f"unknown kind {doc.data['kind']!r}", "$.kind"
    line = doc.line_of(("kind",)) if path == "$.kind" else doc.line
    message = f"{problem}: expected one of {known}"
    return Finding(check="schema", file=doc.file, line=line, path=path, message=message)


def _error_findings(doc: Document, error: ValidationError) -> list[Finding]:
    parts: tuple[str | int, ...] = tuple(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        schema = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = sorted(schema.get("properties", {}))
        extras = [k for k in error.instance if k not in allowed]
        return [
            _finding(doc, (*parts, key), f"unknown field {key!r}: allowed are {', '.join(allowed)}")
            for key in extras
        ]
    return [_finding(doc, parts, error.message)]


def _finding(doc: Document, parts: tuple[str | int, ...], message: str) -> Finding:
    return Finding(
        check="schema",
        file=doc.file,
        line=doc.line_of(parts),
        path=json_path(parts),
        message=message,
    )
