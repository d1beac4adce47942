"""Reading ``infra/slo.yaml`` and ``runbooks/*.yaml`` into one ``Catalog``, with findings.

Both files are checked like every desired-state file: YAML, the JSON Schema in
``schemas/`` (file, line, JSON path, what was expected), the pydantic model, and
references (names unique, runbooks that exist, trees without loops, capabilities that
exist).  Bad files are findings, never exceptions; the catalogue keeps only what passed,
so intake and rule generation work on valid data even next to a broken runbook.

Loading is memoised by content: the key is a digest of every input (the runbooks, the
SLO file, both schemas, the capability names), so a changed file is read again and an
unchanged one costs a read and a hash instead of a round-trip parse and a schema check
(~150 ms; the server's worker needs the catalogue for every alert delivery).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match
from pydantic import ValidationError
from ruamel.yaml.error import YAMLError

from bot.alerts.rules import DEPLOYED_RULES, render_rules
from bot.alerts.runbooks import RUNBOOK_DIR, Runbook, capability_names, tree_problems
from bot.alerts.slo import SLO_FILE, SloFile
from bot.errors import InputError
from bot.estate.documents import Document, round_trip_yaml
from bot.estate.index import plain
from bot.model import Finding

Check = Literal["yaml", "schema", "pydantic", "references"]


@dataclass(frozen=True)
class Catalog:
    slos: SloFile = field(default_factory=SloFile)
    runbooks: tuple[Runbook, ...] = ()

    def runbook(self, name: str) -> Runbook | None:
        return next((b for b in self.runbooks if b.name == name), None)


def alerting_findings(root: Path) -> list[Finding]:
    """Every problem in ``infra/slo.yaml`` and ``runbooks/`` (none when neither exists), and
    deployed rules that ``infra/slo.yaml`` no longer generates."""
    catalog, findings = load_catalog(root)
    if not findings and (root / SLO_FILE).is_file():
        findings += deployed_rules_findings(root, catalog.slos)
    return findings


_LOADED: dict[str, tuple[Catalog, tuple[Finding, ...]]] = {}
_LOADED_MAX = 8


def load_catalog(root: Path) -> tuple[Catalog, list[Finding]]:
    key = _inputs_digest(root)
    loaded = _LOADED.get(key)
    if loaded is None:
        catalog, findings = _load_catalog(root)
        if len(_LOADED) >= _LOADED_MAX:
            _LOADED.clear()
        loaded = _LOADED[key] = (catalog, tuple(findings))
    return loaded[0], list(loaded[1])


def _inputs_digest(root: Path) -> str:
    """A digest of everything ``_load_catalog`` reads (a missing file counts as missing)."""
    digest = hashlib.sha256(str(root.resolve()).encode())
    digest.update("\0".join(capability_names(root)).encode())
    paths = [root / SLO_FILE, root / "schemas" / "runbook.schema.json"]
    paths += [root / "schemas" / "slo.schema.json"]
    paths += sorted((root / RUNBOOK_DIR).glob("*.yaml"))
    for path in paths:
        digest.update(b"\0" + path.as_posix().encode() + b"\0")
        try:
            content = path.read_bytes()
        except OSError:
            digest.update(b"-")
            continue
        digest.update(hashlib.sha256(content).digest())
    return digest.hexdigest()


def _load_catalog(root: Path) -> tuple[Catalog, list[Finding]]:
    findings: list[Finding] = []
    books: list[Runbook] = []
    capabilities = capability_names(root)
    for path in sorted((root / RUNBOOK_DIR).glob("*.yaml")):
        book, problems = _load_runbook(root, path, capabilities)
        findings += problems
        if book is not None:
            books.append(book)
    findings += _duplicates((b.name for b in books), "runbook", f"{RUNBOOK_DIR}/")
    slos, problems = _load_slos(root, {b.name for b in books})
    findings += problems
    return Catalog(slos=slos or SloFile(), runbooks=tuple(books)), findings


def require_catalog(root: Path) -> Catalog:
    """The catalogue, or InputError naming the first problem (for commands that need it)."""
    catalog, findings = load_catalog(root)
    errors = [f for f in findings if f.severity == "error"]
    if errors:
        first = errors[0]
        more = f" (and {len(errors) - 1} more: run `infrabot validate`)" if len(errors) > 1 else ""
        raise InputError(f"{first.location()}: {first.message}{more}")
    return catalog


def _load_runbook(
    root: Path, path: Path, capabilities: list[str]
) -> tuple[Runbook | None, list[Finding]]:
    doc, findings = _checked(root, path, "runbook.schema.json")
    if doc is None:
        return None, findings
    try:
        book = Runbook.model_validate(plain(doc.data))
    except ValidationError as exc:
        return None, [_pydantic(doc, exc)]
    problems = [
        _at(doc, "references", p, m, tuple(p[2:].split(".")))
        for p, m in tree_problems(book, capabilities)
    ]
    if path.stem != book.name:
        problems.append(_at(doc, "references", "$.name", f"name must match the file: {path.stem}"))
    return (None if problems else book), problems


def _load_slos(root: Path, runbooks: set[str]) -> tuple[SloFile | None, list[Finding]]:
    path = root / SLO_FILE
    if not path.exists():
        return None, []
    doc, findings = _checked(root, path, "slo.schema.json")
    if doc is None:
        return None, findings
    try:
        slos = SloFile.model_validate(plain(doc.data))
    except ValidationError as exc:
        return None, [_pydantic(doc, exc)]
    problems = _duplicates(
        [s.name for s in slos.slos] + [i.name for i in slos.invariants],
        "SLO or invariant",
        SLO_FILE,
    )
    named = [("slos", i, s.runbook) for i, s in enumerate(slos.slos)]
    named += [("invariants", i, v.runbook) for i, v in enumerate(slos.invariants)]
    for kind, i, runbook in named:
        if runbook is not None and runbook not in runbooks:
            where = f"$.{kind}[{i}].runbook"
            message = f"no valid runbook {runbook!r} in {RUNBOOK_DIR}/"
            problems.append(_at(doc, "references", where, message, (kind, i, "runbook")))
    return (None if problems else slos), problems


def deployed_rules_findings(root: Path, slos: SloFile) -> list[Finding]:
    """The rules the monitoring role deploys must be the ones ``infra/slo.yaml`` generates:
    a change to an SLO that left them behind would be reviewed, merged and applied while
    Prometheus kept alerting on the old objectives.  Nothing to say for a tree without the
    monitoring role (its Prometheus is someone else's)."""
    path = root / DEPLOYED_RULES
    if not path.parent.is_dir():
        return []
    fix = f"run `infrabot slo rules --output {DEPLOYED_RULES}` and commit it"
    try:
        expected = render_rules(slos)
    except ValueError as exc:  # a window scaled below a millisecond
        return [Finding(check="references", file=SLO_FILE, message=f"no rules: {exc}")]
    try:
        deployed = path.read_text(encoding="utf-8") if path.is_file() else None
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(check="references", file=DEPLOYED_RULES, message=f"cannot read: {exc}")]
    if deployed == expected:
        return []
    what = "is missing" if deployed is None else f"is not what {SLO_FILE} generates"
    return [
        Finding(
            check="references",
            file=DEPLOYED_RULES,
            message=f"the rules file the monitoring role deploys to Prometheus {what}: {fix}",
        )
    ]


def _checked(root: Path, path: Path, schema_name: str) -> tuple[Document | None, list[Finding]]:
    """The file as one Document if it parses and passes its schema; else the findings."""
    rel = path.relative_to(root).as_posix()
    try:
        data = round_trip_yaml().load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Finding(check="yaml", file=rel, message=f"cannot read: {exc}")]
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        line = mark.line + 1 if mark is not None else None
        return None, [
            Finding(check="yaml", file=rel, line=line, message=f"malformed YAML: {problem}")
        ]
    doc = Document(file=rel, index=0, data=data, line=1)
    schema_rel = f"schemas/{schema_name}"
    try:
        schema = json.loads((root / schema_rel).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        return None, [Finding(check="schema", file=rel, message=f"cannot read {schema_rel}: {exc}")]
    errors = list(Draft202012Validator(schema).iter_errors(plain(data)))
    if not errors:
        return doc, []
    head = best_match(errors)
    ordered = [head, *(e for e in errors if e is not head)]
    findings = [
        _at(doc, "schema", _json_path(e.absolute_path), e.message, tuple(e.absolute_path))
        for e in ordered
    ]
    return None, list(dict.fromkeys(findings))


def _pydantic(doc: Document, exc: ValidationError) -> Finding:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if isinstance(p, str | int))
    return _at(doc, "pydantic", _json_path(loc), err["msg"], loc)


def _duplicates(names: Iterable[str], what: str, file: str) -> list[Finding]:
    counts = Counter(names)
    return [
        Finding(check="references", file=file, message=f"{what} name {name!r} is used {n} times")
        for name, n in sorted(counts.items())
        if n > 1
    ]


def _at(
    doc: Document, check: Check, path: str, message: str, parts: tuple[Any, ...] = ()
) -> Finding:
    return Finding(check=check, file=doc.file, line=doc.line_of(parts), path=path, message=message)


def _json_path(parts: Iterable[Any]) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
