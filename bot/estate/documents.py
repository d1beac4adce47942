"""Reading desired-state YAML with ruamel.yaml round-trip, keeping where each value came from.

A malformed file does not stop the read: it becomes a ``Finding`` so one report can
show every problem at once.  Line numbers are 1-based, as editors show them.

Theory of operation (hostile input, docs/adr/0005): a PR author controls every byte under
``infra/state``, so reading it must end, quickly and in bounded memory, in documents or
findings — never in an exception, a hang or a read outside the tree.

* The tree is walked without following links: a symlink (to ``/etc/passwd`` or to a file
  next to it), a FIFO, a socket or a device is a finding, and is never opened.
* A file is opened with ``O_NOFOLLOW``, read up to ``max_file_bytes`` + 1 bytes (a larger file
  is a finding) and decoded as strict UTF-8 (the finding names the line of the bad byte).
* ruamel composes with ``PlainDataComposer``, which refuses, as it meets them and before
  anything is built from them, anchors and aliases (the state is data: an alias buys nothing
  and allows a billion-laughs bomb), explicit tags (``!!binary``, ``!!python/…``,
  ``!unsafe``: data has no types to declare) and nesting deeper than ``max_depth`` (the
  composer recurses); documents beyond ``max_documents`` are not read.  What ruamel's
  constructors still refuse (``2001-13-45``, an integer too long to convert) is a finding
  on the document's line.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.composer import Composer, ComposerError
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import AliasEvent, CollectionStartEvent, Event, NodeEvent, ScalarEvent

from bot.model import Finding

STATE_DIR = "infra/state"
SUFFIXES = (".yaml", ".yml")


class Limits(BaseModel):
    """Caps on what reading the desired state may cost (``limits:`` in schemas/policy.yaml)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_file_bytes: int = Field(default=1_048_576, ge=1)
    max_files: int = Field(default=50_000, ge=1)
    max_documents: int = Field(default=50_000, ge=1)
    """Both fit estates of 20,000 one-resource files (issue 9's largest) with room to grow;
    with the validation cache a change costs its own files, so the caps bound a cold run
    (about 4 ms of CPU a document), not every check (docs/adr/0018)."""
    max_depth: int = Field(default=16, ge=2)
    max_changed_files: int = Field(default=500, ge=1)
    """Files one change may touch (checked with the changed paths, in bot.validate.policy)."""


def round_trip_yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    return yaml


@dataclass(frozen=True)
class Document:
    """One YAML document of the desired state: one resource."""

    file: str  # path relative to the repository root, with forward slashes
    index: int  # position of the document in its file
    data: Any  # CommentedMap for a well-formed resource document
    line: int  # first line of the document (1-based)

    def line_of(self, path: tuple[str | int, ...]) -> int:
        """Best line for a JSON path inside the document (falls back to the nearest parent)."""
        node, line = self.data, self.line
        for part in path:
            found = _child_line(node, part)
            if found is None:
                break
            node, line = found
        return line

    @property
    def kind(self) -> str | None:
        return self.data.get("kind") if isinstance(self.data, dict) else None

    @property
    def name(self) -> str | None:
        value = self.data.get("name") if isinstance(self.data, dict) else None
        return str(value) if value is not None else None


def _child_line(node: Any, part: str | int) -> tuple[Any, int] | None:
    if isinstance(node, CommentedMap) and part in node:
        return node[part], node.lc.key(part)[0] + 1
    if isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
        return node[part], node.lc.item(part)[0] + 1
    return None


def state_files(root: Path, limits: Limits | None = None) -> list[Path]:
    """The regular ``*.yaml``/``*.yml`` files under ``infra/state`` (links never followed)."""
    files, _ = scan_state(root, limits or Limits())
    return files


def scan_state(root: Path, limits: Limits) -> tuple[list[Path], list[Finding]]:
    """The state files to read, and a finding for every entry that is not a plain file or
    folder (symlinks, FIFOs, sockets, devices) or that exceeds ``max_files``."""
    names, findings = state_names(root, limits)
    return [root / name for name in names], findings


def state_names(root: Path, limits: Limits) -> tuple[list[str], list[Finding]]:
    """``scan_state``'s files as repo-relative posix names, in the same order (by path
    segment, as paths sort): no ``Path`` per file, which cost more than the walk itself
    on 20,000 files."""
    files: list[str] = []
    findings: list[Finding] = []
    for rel, mode in _walk(root, STATE_DIR):
        if stat.S_ISLNK(mode):
            findings.append(_refused(rel, "is a symbolic link: desired state is plain files"))
        elif not stat.S_ISREG(mode):
            findings.append(_refused(rel, f"is not a regular file ({_kind_of(mode)})"))
        elif _suffix(rel) in SUFFIXES:
            files.append(rel)
    files.sort(key=_segments)
    if len(files) > limits.max_files:
        message = (
            f"the desired state has {len(files)} files, more than policy allows "
            f"(limits.max_files: {limits.max_files}): only the first {limits.max_files} were read"
        )
        findings.append(Finding(check="yaml", file=STATE_DIR, message=message))
        files = files[: limits.max_files]
    return files, findings


def _segments(rel: str) -> list[str]:
    return rel.split("/")


def _suffix(rel: str) -> str:
    """``PurePath(rel).suffix``."""
    name = rel.rpartition("/")[2]
    dot = name.rfind(".")
    return name[dot:] if 0 < dot < len(name) - 1 else ""


def _walk(root: Path, state_dir: str) -> Iterator[tuple[str, int]]:
    """(repo-relative name, lstat mode) of every entry under ``state_dir``, folders entered,
    links not followed. ``infra`` and ``infra/state`` themselves must be real folders."""
    parent = state_dir.rpartition("/")[0]
    for rel in (parent, state_dir):
        try:
            mode = (root / rel).lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(mode):
            yield rel, mode
            return
    pending = [(state_dir, os.fspath(root / state_dir))]
    while pending:
        rel, folder = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                mode = entry.stat(follow_symlinks=False).st_mode
                name = f"{rel}/{entry.name}"
                if stat.S_ISDIR(mode):
                    pending.append((name, entry.path))
                else:
                    yield name, mode


def _kind_of(mode: int) -> str:
    kinds = {
        stat.S_IFIFO: "a named pipe",
        stat.S_IFSOCK: "a socket",
        stat.S_IFCHR: "a character device",
        stat.S_IFBLK: "a block device",
        stat.S_IFDIR: "a folder",
    }
    return kinds.get(stat.S_IFMT(mode), "not a file")


def _refused(rel: str, why: str) -> Finding:
    return Finding(check="yaml", file=rel, message=f"{rel} {why}; it was not read")


def read_documents(
    root: Path, limits: Limits | None = None
) -> tuple[list[Document], list[Finding]]:
    """Every document under ``infra/state`` and a finding for each file that could not be
    read safely (see the module's theory of operation)."""
    limits = limits or Limits()
    files, findings = scan_state(root, limits)
    docs: list[Document] = []
    for path in files:
        rel = path.relative_to(root).as_posix()
        read, problem = read_file(path, rel, limits, limits.max_documents - len(docs))
        docs.extend(read)
        if problem is not None:
            findings.append(problem)
        if len(docs) >= limits.max_documents and problem is not None:
            break  # the tree is full: the rest would only repeat the finding
    return docs, findings


def read_file(
    path: Path, rel: str, limits: Limits, budget: int | None = None
) -> tuple[list[Document], Finding | None]:
    """The documents of one state file, or the finding that says why it was refused.
    ``budget``: how many more documents the tree may hold (``max_documents`` by default)."""
    text, problem = _read_text(path, rel, limits)
    if text is None:
        return [], problem
    return _compose(text, rel, limits, limits.max_documents if budget is None else budget)


def _read_text(path: Path, rel: str, limits: Limits) -> tuple[str | None, Finding | None]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        why = (
            "is a symbolic link" if exc.errno == errno.ELOOP else f"cannot be read ({exc.strerror})"
        )
        return None, _refused(rel, why)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None, _refused(rel, "is not a regular file")
        data = handle.read(limits.max_file_bytes + 1)
    if len(data) > limits.max_file_bytes:
        message = (
            f"{rel} is larger than policy allows (limits.max_file_bytes: "
            f"{limits.max_file_bytes} bytes): split it into smaller files; it was not read"
        )
        return None, Finding(check="yaml", file=rel, message=message)
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        message = (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at line {line}, column {column} "
            "(save the file as UTF-8)"
        )
        return None, Finding(check="yaml", file=rel, line=line, message=message)


def _plain_data_composer(limits: Limits, roots: list[int]) -> type[Composer]:
    """A ruamel composer that refuses, as it meets them and before anything is built, what
    plain data never needs; it notes the first line of each document in ``roots``."""

    class PlainDataComposer(Composer):
        def compose_document(self) -> Any:  # ruamel's, noting where the root node starts
            self.anchors = {}
            self.parser.get_event()  # DOCUMENT-START
            mark = self.parser.peek_event().start_mark
            roots.append(mark.line + 1 if mark is not None else 1)
            node = self.compose_node(None, None)
            self.parser.get_event()  # DOCUMENT-END
            return node

        def compose_node(self, parent: Any, index: Any) -> Any:
            event = self.parser.peek_event()
            refusal = _refusal(event, self.depth, limits)
            if refusal is not None:
                raise ComposerError(None, None, refusal, event.start_mark)
            return super().compose_node(parent, index)

    return PlainDataComposer


def _refusal(event: Event, depth: int, limits: Limits) -> str | None:
    if isinstance(event, AliasEvent):
        return f"alias *{event.anchor}: anchors and aliases are refused (desired state is data)"
    if isinstance(event, NodeEvent) and event.anchor is not None:
        return f"anchor &{event.anchor}: anchors and aliases are refused (desired state is data)"
    tag = getattr(event, "tag", None)
    if isinstance(event, ScalarEvent | CollectionStartEvent) and tag is not None:
        return f"tag {str(tag)[:40]}: tags are refused (desired state is plain data)"
    if isinstance(event, CollectionStartEvent) and depth + 1 > limits.max_depth:
        return f"nested deeper than policy allows (limits.max_depth: {limits.max_depth})"
    return None


def _compose(
    text: str, rel: str, limits: Limits, budget: int
) -> tuple[list[Document], Finding | None]:
    roots: list[int] = []
    yaml = round_trip_yaml()
    yaml.Composer = _plain_data_composer(limits, roots)
    out: list[Document] = []
    try:
        for i, data in enumerate(yaml.load_all(text)):
            if i + 1 > budget:
                message = (
                    "the desired state holds more documents than policy allows "
                    f"(limits.max_documents: {limits.max_documents}); this file was not read"
                )
                return [], Finding(check="yaml", file=rel, line=roots[i], message=message)
            if data is not None:
                line = data.lc.line + 1 if hasattr(data, "lc") else roots[i]
                out.append(Document(file=rel, index=i, data=data, line=line))
    except YAMLError as exc:
        return [], _yaml_finding(rel, exc)
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        # ruamel's constructors raise plain exceptions on some scalars (an impossible date,
        # an integer too long to convert); the document being built is the last one composed.
        message = f"malformed YAML: a value cannot be read ({_first_line(exc)})"
        line = roots[-1] if roots else None
        return [], Finding(check="yaml", file=rel, line=line, message=message)
    return out, None


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:120]


def _yaml_finding(rel: str, exc: YAMLError) -> Finding:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or _first_line(exc)
    line = mark.line + 1 if mark is not None else None
    return Finding(check="yaml", file=rel, line=line, message=f"malformed YAML: {problem}")
