r"""The JSON Schema check: each document against ``schemas/<Kind>.schema.json``.

Theory of operation: ``load_schemas`` reads and compiles every schema once; the resulting
validators are shared by every document of the tree (building one per document would compile
each schema, and its regexes, again and again).  Format checking is on, and loading refuses a
schema that uses a format with no checker installed: jsonschema silently accepts formats it
cannot check, so a missing optional dependency would let ``10.0.0.300`` through as an ipv4.

Whole values only (docs/adr/0005): a ``pattern`` is ECMA-262, where ``$`` is the end of the
value; Python's ``$`` also matches before a final newline, so ``"api.example.com\n"`` would
pass ``^…$``.  ``StrictValidator`` compiles every pattern with ``$`` read as ``\Z`` (and
``\d``, ``\w`` as ASCII, as in ECMA-262), and every format refuses control characters before
its own check runs (``fqdn`` has the same ``$`` problem).  Messages quote at most a short
prefix of a value (``bot.validate.excerpt``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.protocols import Validator

from bot.errors import InfrabotError
from bot.estate.documents import Document
from bot.estate.index import plain
from bot.model import Finding
from bot.model.resources import is_hostname
from bot.validate.excerpt import control_character, quote
from bot.validate.jsonpath import json_path

SCHEMA_DIR = "schemas"
_SUFFIX = ".schema.json"


@dataclass(frozen=True)
class Schemas:
    """One compiled validator per resource kind."""

    validators: Mapping[str, Validator]

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


@functools.lru_cache(maxsize=256)
def whole_value_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (ECMA-262) as a Python regex that cannot end before a final newline:
    ``$`` outside a character class becomes ``\\Z``; ``\\d``, ``\\w``, ``\\s`` stay ASCII."""
    out, i, in_class = [], 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
        elif char == "$":
            char = r"\Z"
        out.append(char)
        i += 1
    return re.compile("".join(out), re.ASCII)


def _whole_pattern(
    validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not whole_value_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


StrictValidator: Any = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _whole_pattern}
)


def _refusing_controls(check: Callable[[object], bool]) -> Callable[[object], bool]:
    def strict(instance: object) -> bool:
        if isinstance(instance, str) and control_character(instance) is not None:
            return False
        return check(instance)

    return strict


def strict_format_checker() -> FormatChecker:
    """jsonschema's checkers, each refusing control characters first; ``hostname`` is the
    model's own check (``bot.model.resources.is_hostname``), so the two cannot disagree."""
    checker = FormatChecker(formats=())
    for name, (check, raises) in Draft202012Validator.FORMAT_CHECKER.checkers.items():
        checker.checkers[name] = (_refusing_controls(check), raises)
    checker.checkers["hostname"] = (is_hostname, ())
    return checker


_FORMATS = strict_format_checker()


def _compile(schema: Any, rel: str) -> Validator:
    try:
        StrictValidator.check_schema(schema)
    except SchemaError as exc:
        raise InfrabotError(f"{rel}: not a valid JSON Schema: {exc.message}") from exc
    _require_format_checkers(schema, rel)
    compiled: Validator = StrictValidator(schema, format_checker=_FORMATS)
    return compiled


def _require_format_checkers(schema: Any, rel: str) -> None:
    known = _FORMATS.checkers
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
    data: Any = plain(doc.data)
    errors = list(schemas.validators[kind].iter_errors(data))
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
            _finding(
                doc, (*parts, key), f"unknown field {quote(key)}: allowed are {', '.join(allowed)}"
            )
            for key in extras
        ]
    return [_finding(doc, parts, describe(error))]


def describe(error: ValidationError) -> str:
    """jsonschema's message, quoting at most a short prefix of the value (never all of it),
    and naming a control character instead of printing it."""
    instance = error.instance
    if isinstance(instance, str) and (bad := control_character(instance)) is not None:
        return f"{quote(instance)} holds {bad}: a value is one line of visible text"
    message = error.message
    try:
        shown = repr(instance)
    except ValueError:  # an int too long to print
        shown = ""
    if shown and shown in message:
        return message.replace(shown, quote(instance))
    if error.validator in ("const", "required", "minProperties", "maxProperties"):
        return message
    return f"{quote(instance)} is not valid here ({error.validator})"


def _finding(doc: Document, parts: tuple[str | int, ...], message: str) -> Finding:
    return Finding(
        check="schema",
        file=doc.file,
        line=doc.line_of(parts),
        path=json_path(parts),
        message=message,
    )
