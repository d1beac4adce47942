"""The per-file half of validation, and the index of the estate the cross-file checks run over.

Theory of operation: everything validation says about one file (whether it parses, its
yamllint problems, each document's schema, model and policy findings, the resources it
holds and the lines of their fields) depends only on the file's path and bytes, the rules
that judge it (schemas, policy, lint config) and the code doing the judging.  That is a
``FileVerdict``, and ``verdict_key`` names exactly those inputs: the file's path and git blob
id, ``Rules.ident`` (the blob ids of the rule files and the resolved lint rules) and
``code_version()``.  A verdict can therefore be kept (``bot.validate.cache``) and reused for
any tree holding the same bytes at the same path under the same rules.

The cross-file checks (references) run over a ``TreeIndex``: the verdicts of every file in
file order, fresh or cached.  A report is assembled by the same code from the same values
either way, which is why the cache cannot change a verdict.  When many files need judging,
the work is spread over the machine's cores (``fork``-ed workers, each loading the rules once).
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import stat
import sys
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel, ConfigDict, ValidationError
from ruamel.yaml.comments import CommentedMap
from yamllint.config import YamlLintConfig

from bot.estate.documents import Document, Limits, read_file, state_names
from bot.estate.index import Estate, plain
from bot.model import Finding, Resource, parse_resource
from bot.validate.lint import CONFIG_FILES, lint_file, load_config
from bot.validate.models import Parsed, parse_documents
from bot.validate.policy import Policy, load_policy, policy_findings
from bot.validate.schema import SCHEMA_DIR, Schemas, load_schemas, schema_findings

PARALLEL_FROM = 300
"""Below this many files to judge, starting worker processes costs more than it saves."""
_CODE_PACKAGES = ("validate", "estate", "model")
_LIBRARIES = ("yamllint", "jsonschema", "pydantic", "pydantic-core", "ruamel.yaml", "fqdn")


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class IndexedDoc(_Frozen):
    """One document as the cross-file checks and the estate need it."""

    file: str
    line: int
    lines: dict[str, int] = {}
    """Line of each top-level field."""
    kind: str | None = None
    name: str | None = None
    resource: Resource | None = None
    """What the document parses into, whether or not the schema accepted it (the estate's view)."""
    checked: bool = False
    """It passed the schema and the model, so it takes part in the cross-reference checks."""

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """The line of the top-level field ``path`` starts with (the document's line without)."""
        return self.lines.get(str(path[0]), self.line) if path else self.line


class FileVerdict(_Frozen):
    """What validation says about one file; ``key`` names the inputs it was judged from."""

    key: str = ""
    file: str
    findings: tuple[Finding, ...] = ()
    docs: tuple[IndexedDoc, ...] = ()
    refused: bool = False
    """The loader refused the file (the finding says why)."""
    most_documents: int = 1
    """At most this many documents are in the file (its ``---``/``...`` lines, plus one)."""


@dataclass(frozen=True)
class Rules:
    """What judges a file, loaded once per tree, and the id of all of it."""

    schemas: Schemas
    policy: Policy
    lint: YamlLintConfig
    lint_findings: tuple[Finding, ...]
    ident: str


class VerdictStore(Protocol):
    """Somewhere verdicts are kept between runs (``bot.validate.cache.ValidationCache``)."""

    def get_many(self, keys: Sequence[str]) -> dict[str, FileVerdict]: ...

    def put_many(self, verdicts: Sequence[FileVerdict]) -> None: ...


def load_rules(root: Path) -> Rules:
    """Schemas, policy and lint config of the tree at ``root`` (InfrabotError when unusable)."""
    schemas = load_schemas(root)
    policy = load_policy(root)
    lint, lint_findings = load_config(root)
    digest = hashlib.sha256(code_version().encode())
    for rel, blob in _rule_files(root):
        digest.update(f"\0{rel}\0{blob}".encode())
    digest.update(json.dumps(lint.rules, sort_keys=True, default=_stable).encode())
    return Rules(schemas, policy, lint, tuple(lint_findings), digest.hexdigest())


def _rule_files(root: Path) -> Iterator[tuple[str, str]]:
    base = root / SCHEMA_DIR
    found = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else []
    found += [root / name for name in CONFIG_FILES if (root / name).is_file()]
    for path in found:
        yield path.relative_to(root).as_posix(), blob_id(path.read_bytes())


def _stable(value: object) -> object:
    """Lint rules hold compiled path specs: their patterns, not their addresses in memory."""
    patterns = getattr(value, "patterns", None)
    if patterns is not None:
        return [str(getattr(p, "pattern", p)) for p in patterns]
    return type(value).__name__


@cache
def code_version() -> str:
    """The code that judges files: infrabot's validation, estate and model sources, the
    libraries they lean on, and the Python running them."""
    digest = hashlib.sha256(sys.version.encode())
    bot = Path(__file__).resolve().parents[1]
    for package in _CODE_PACKAGES:
        for path in sorted((bot / package).glob("*.py")):
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
    for name in _LIBRARIES:
        try:
            digest.update(f"\0{name}={metadata.version(name)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"\0{name}=none".encode())
    return digest.hexdigest()


def blob_id(data: bytes) -> str:
    """The id git gives a file with these bytes (``git hash-object``)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def verdict_key(rules: Rules, rel: str, blob: str) -> str:
    return hashlib.sha256(f"{rules.ident}\0{rel}\0{blob}".encode()).hexdigest()


def judge_file(root: Path, path: Path, rules: Rules, budget: int | None = None) -> FileVerdict:
    """Every per-file check on one file under ``root``. ``budget``: how many more documents
    the tree may hold, when that is fewer than the file may have (such a verdict depends on
    the files before it, so it is never cached)."""
    rel = path.relative_to(root).as_posix()
    limits = rules.policy.limits
    docs, problem = read_file(path, rel, limits, budget)
    findings = [problem] if problem is not None else []
    max_bytes = limits.max_file_bytes
    findings += lint_file(root, rel, rules.lint, parse_failed=bool(findings), max_bytes=max_bytes)
    indexed = []
    for doc in docs:
        problems = schema_findings(doc, rules.schemas)
        findings += problems
        parsed: list[Parsed] = []
        if not problems:
            parsed, disagreements = parse_documents([doc])
            findings += disagreements
        indexed.append(_indexed(doc, parsed[0].resource if parsed else None, bool(parsed)))
    findings += policy_findings(rules.policy, docs)
    return FileVerdict(
        file=rel,
        findings=tuple(findings),
        docs=tuple(indexed),
        refused=problem is not None,
        most_documents=_most_documents(path, limits),
    )


def _most_documents(path: Path, limits: Limits) -> int:
    """An upper bound on the documents in the file: every ``---`` or ``...`` could start one,
    whatever line break (``\\n``, ``\\r``, NEL, LS) precedes it."""
    data = _bounded_read(path, limits)
    if data is None:
        return 1
    return 1 + data.count(b"---") + data.count(b"...")


def _bounded_read(path: Path, limits: Limits) -> bytes | None:
    """The file's bytes as the loader reads them (links not followed, at most
    ``max_file_bytes`` + 1 of them), or None when it cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limits.max_file_bytes + 1)


def _indexed(doc: Document, resource: Resource | None, checked: bool) -> IndexedDoc:
    if resource is None:
        try:
            resource = parse_resource(plain(doc.data))
        except ValidationError:
            resource = None
    lines = {}
    if isinstance(doc.data, CommentedMap):
        lines = {k: doc.data.lc.key(k)[0] + 1 for k in doc.data if isinstance(k, str)}
    kind = doc.kind if isinstance(doc.kind, str) else None
    return IndexedDoc(
        file=doc.file,
        line=doc.line,
        lines=lines,
        kind=kind,
        name=doc.name,
        resource=resource,
        checked=checked,
    )


@dataclass(frozen=True)
class TreeIndex:
    """The verdicts of every desired-state file of a tree, in file order, and what the walk
    of the tree found (links, devices, too many files)."""

    verdicts: tuple[FileVerdict, ...]
    scan_findings: tuple[Finding, ...] = ()

    def docs(self) -> Iterator[IndexedDoc]:
        for verdict in self.verdicts:
            yield from verdict.docs

    def findings(self) -> list[Finding]:
        return [f for verdict in self.verdicts for f in verdict.findings]

    def checked(self) -> list[Parsed]:
        """Documents that passed the schema and the model, for the cross-reference checks."""
        return [Parsed(d, d.resource) for d in self.docs() if d.checked and d.resource]

    def invalid(self) -> set[tuple[str, str]]:
        """(kind, name) of the documents present that did not validate."""
        return {
            (d.kind, d.name)
            for d in self.docs()
            if not d.checked and d.kind is not None and d.name is not None
        }

    def estate(self) -> Estate:
        """Like ``build_estate``: every document that parses, the first of each (kind, name)."""
        resources: dict[tuple[str, str], Resource] = {}
        files: dict[tuple[str, str], str] = {}
        for doc in self.docs():
            if doc.resource is not None:
                resources.setdefault(doc.resource.key, doc.resource)
                files.setdefault(doc.resource.key, doc.file)
        return Estate(resources=resources, files=files)


def build_index(
    root: Path,
    rules: Rules,
    store: VerdictStore | None = None,
    blobs: Mapping[str, str] | None = None,
) -> TreeIndex:
    """Judge every desired-state file under ``root``, reusing the verdicts ``store`` holds for
    the same path, bytes, rules and code, and keeping the new ones there.

    ``blobs``: git's blob id of files under ``root`` (repo-relative paths), from the tree
    the caller exported or a clean working tree (``GitRepo.blob_ids``): those files are
    looked up without being read.  Any other file is read and hashed.  A verdict is kept
    only when the bytes judged hash to the blob id it is filed under, so a file that changed
    while judged, or whose bytes are not the blob git named, is never cached."""
    limits = rules.policy.limits
    rels, scanned = state_names(root, limits)
    given = blobs or {}
    ids = [given.get(rel) or _blob_of(root / rel, limits) for rel in rels]
    keys = [
        verdict_key(rules, rel, blob) if blob else "" for rel, blob in zip(rels, ids, strict=True)
    ]
    known = store.get_many([k for k in keys if k]) if store is not None else {}
    missing = [i for i, key in enumerate(keys) if not key or key not in known]
    judged = _judge_all(root, [root / rels[i] for i in missing], rules)
    fresh = dict(zip(missing, judged, strict=True))
    keep = []
    verdicts = []
    for i, key in enumerate(keys):
        if i not in fresh:
            verdicts.append(known[key])
            continue
        verdict = fresh[i]
        if key and _blob_of(root / rels[i], limits) == ids[i]:  # the bytes judged are that blob
            verdict = verdict.model_copy(update={"key": key})
            keep.append(verdict)
        verdicts.append(verdict)
    if store is not None and keep:
        store.put_many(keep)
    return TreeIndex(_within(verdicts, root, rules), tuple(scanned))


def _within(verdicts: list[FileVerdict], root: Path, rules: Rules) -> tuple[FileVerdict, ...]:
    """The verdicts as ``read_documents`` would have read the tree: a file that could take
    the tree past ``max_documents`` is read again with what is left, and once the tree is
    full and a file was refused the files after it are not read (only linted, as before)."""
    limits: Limits = rules.policy.limits
    out = []
    held = 0
    full = False
    for verdict in verdicts:
        if full:
            rel = verdict.file
            lint = lint_file(root, rel, rules.lint, max_bytes=limits.max_file_bytes)
            out.append(FileVerdict(file=rel, findings=tuple(lint)))
            continue
        if held + verdict.most_documents > limits.max_documents:
            verdict = judge_file(root, root / verdict.file, rules, limits.max_documents - held)
        out.append(verdict)
        held += len(verdict.docs)
        full = held >= limits.max_documents and verdict.refused
    return tuple(out)


def _blob_of(path: Path, limits: Limits) -> str | None:
    """The blob id of the file as it is now; None when it cannot be read or is over
    ``max_file_bytes`` (such a file is refused unread, and never cached)."""
    data = _bounded_read(path, limits)
    if data is None or len(data) > limits.max_file_bytes:
        return None
    return blob_id(data)


def _judge_all(root: Path, paths: list[Path], rules: Rules) -> list[FileVerdict]:
    workers = min(os.cpu_count() or 1, 4)
    if len(paths) < PARALLEL_FROM or workers < 2 or "fork" not in _start_methods():
        return [judge_file(root, p, rules) for p in paths]
    size = -(-len(paths) // (workers * 4))
    chunks = [paths[i : i + size] for i in range(0, len(paths), size)]
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(workers, context, initializer=_start_worker, initargs=(root,)) as pool:
        judged = list(pool.map(_judge_chunk, [(root, chunk) for chunk in chunks]))
    if any(ident != rules.ident for ident, _ in judged):  # the rules changed under us
        return [judge_file(root, p, rules) for p in paths]
    return [verdict for _, chunk in judged for verdict in chunk]


def _start_methods() -> list[str]:
    return multiprocessing.get_all_start_methods()


_worker_rules: dict[str, Rules] = {}
"""The rules of a worker process, loaded once when it starts (worker processes only)."""


def _start_worker(root: Path) -> None:
    _worker_rules["rules"] = load_rules(root)


def _judge_chunk(job: tuple[Path, list[Path]]) -> tuple[str, list[FileVerdict]]:
    root, paths = job
    rules = _worker_rules["rules"]
    return rules.ident, [judge_file(root, p, rules) for p in paths]
