"""The capability library: one markdown file per capability, parsed into typed values.

The format is documented in ``capabilities/README.md``: a ``# Title`` line, a summary
paragraph, then the sections Aliases, Parameters, Kinds, Risk and Example.  A file with
a missing or malformed section is an ``InputError`` naming the file and the section, so
a broken library fails when it is loaded instead of routing requests wrongly later.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import InputError
from bot.model import KINDS, RiskLevel

SECTIONS = ("Aliases", "Words", "Parameters", "Kinds", "Risk", "Example")
WORD_LABELS = ("verbs", "objects")
TABLE_HEADER = ("name", "required", "default", "from", "description")
KIND_LABELS = ("creates", "edits", "deletes")
NONE_MARK = "(none)"


class Parameter(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    required: bool
    default: str | None = None
    source: str
    """Where the value comes from, in the order it is looked for (the table's "from")."""
    description: str


class Capability(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    title: str
    summary: str
    aliases: tuple[str, ...]
    verbs: tuple[str, ...] = ()
    """Actions the capability answers to ("spin up", "resize"); most typical first."""
    objects: tuple[str, ...] = ()
    """What those actions must be about ("container", "lxc", "memory")."""
    parameters: tuple[Parameter, ...]
    creates: tuple[str, ...] = ()
    edits: tuple[str, ...] = ()
    deletes: tuple[str, ...] = ()
    risk: RiskLevel
    risk_reason: str = ""
    example_request: str
    example_author: str | None = None
    example_yaml: str

    @property
    def kinds(self) -> tuple[str, ...]:
        return (*self.creates, *self.edits, *self.deletes)

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def example_documents(self) -> list[dict[str, Any]]:
        return _yaml_documents(self.example_yaml)

    def shown_fields(self, kind: str) -> frozenset[str]:
        """Fields the example writes out for this kind (kept even when equal to a default)."""
        docs = [d for d in self.example_documents() if d.get("kind") == kind]
        return frozenset(key for doc in docs for key in doc)


def load_capabilities(directory: Path) -> list[Capability]:
    """Every ``*.md`` in the directory but README.md, sorted by name."""
    if not directory.is_dir():
        raise InputError(f"{directory}: the capability library is missing")
    files = sorted(p for p in directory.glob("*.md") if p.name.lower() != "readme.md")
    return [parse_capability(p.stem, p.read_text(encoding="utf-8"), str(p)) for p in files]


def parse_capability(name: str, text: str, source: str) -> Capability:
    title, summary, sections = _split(text, source)
    missing = [s for s in SECTIONS if s not in sections]
    if missing:
        raise InputError(f"{source}: missing section '## {missing[0]}'")

    def part(section: str, parse: Any) -> Any:
        try:
            return parse(sections[section])
        except ValueError as exc:
            raise InputError(f"{source}: section '## {section}': {exc}") from exc

    kinds = part("Kinds", _kinds)
    risk, reason = part("Risk", _risk)
    request, author, example = part("Example", _example)
    words = part("Words", _words)
    return Capability(
        name=name,
        title=title,
        summary=summary,
        aliases=part("Aliases", _aliases),
        verbs=words["verbs"],
        objects=words["objects"],
        parameters=part("Parameters", _parameters),
        creates=kinds["creates"],
        edits=kinds["edits"],
        deletes=kinds["deletes"],
        risk=risk,
        risk_reason=reason,
        example_request=request,
        example_author=author,
        example_yaml=example,
    )


def _split(text: str, source: str) -> tuple[str, str, dict[str, list[str]]]:
    """Title, summary paragraph and the lines of each ``##`` section (fences respected)."""
    title, preamble, current = "", [], None
    sections: dict[str, list[str]] = {}
    fenced = False
    for line in text.splitlines():
        fenced ^= line.lstrip().startswith("```")
        if not fenced and line.startswith("## "):
            current = sections.setdefault(line[3:].strip(), [])
        elif current is not None:
            current.append(line)
        elif not fenced and line.startswith("# ") and not title:
            title = line[2:].strip()
        else:
            preamble.append(line)
    summary = " ".join(next(iter(_paragraphs(preamble)), []))
    if not title:
        raise InputError(f"{source}: missing the '# Title' line")
    if not summary:
        raise InputError(f"{source}: missing the summary paragraph under the title")
    return title, summary, sections


def _paragraphs(lines: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            out[-1].append(line.strip())
        elif out[-1]:
            out.append([])
    return [p for p in out if p]


def _bullets(lines: list[str]) -> list[str]:
    return [line.strip()[2:].strip() for line in lines if line.strip().startswith("- ")]


def _aliases(lines: list[str]) -> tuple[str, ...]:
    aliases = tuple(" ".join(b.lower().split()) for b in _bullets(lines))
    if not aliases or not all(re.fullmatch(r"[a-z0-9][a-z0-9 '-]*", a) for a in aliases):
        raise ValueError("expected '- phrase' bullets of lowercase words")
    return aliases


def _words(lines: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = {}
    for bullet in _bullets(lines):
        label, _, rest = bullet.partition(":")
        if label.strip() not in WORD_LABELS:
            raise ValueError(f"unknown label {label.strip()!r}; expected {', '.join(WORD_LABELS)}")
        words = tuple(" ".join(w.lower().split()) for w in rest.split(",") if w.strip())
        if not words or not all(re.fullmatch(r"[a-z0-9][a-z0-9 '-]*", w) for w in words):
            raise ValueError(f"'{label.strip()}': expected comma-separated lowercase words")
        found[label.strip()] = words
    if set(found) != set(WORD_LABELS):
        raise ValueError("expected the bullets '- verbs: ...' and '- objects: ...'")
    return found


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _parameters(lines: list[str]) -> tuple[Parameter, ...]:
    rows = [_cells(line) for line in lines if line.strip().startswith("|")]
    if not rows or tuple(c.lower() for c in rows[0]) != TABLE_HEADER:
        raise ValueError(f"expected a table with the columns {' | '.join(TABLE_HEADER)}")
    params = []
    for number, row in enumerate(rows[2:], start=1):
        if len(row) != len(TABLE_HEADER) or row[1].lower() not in ("yes", "no"):
            raise ValueError(f"row {number}: expected 5 cells and required 'yes' or 'no'")
        params.append(
            Parameter(
                name=row[0].strip("`"),
                required=row[1].lower() == "yes",
                default=row[2] or None,
                source=row[3],
                description=row[4],
            )
        )
    return tuple(params)


def _kinds(lines: list[str]) -> dict[str, tuple[str, ...]]:
    found: dict[str, tuple[str, ...]] = dict.fromkeys(KIND_LABELS, ())
    for bullet in _bullets(lines):
        label, _, rest = bullet.partition(":")
        if label.strip() not in KIND_LABELS:
            raise ValueError(f"unknown label {label.strip()!r}; expected {', '.join(KIND_LABELS)}")
        kinds = tuple(k.strip() for k in rest.split(",") if k.strip() and k.strip() != NONE_MARK)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown:
            raise ValueError(f"unknown kind {unknown[0]!r}; known: {', '.join(KINDS)}")
        found[label.strip()] = kinds
    if not any(found.values()):
        raise ValueError("declares no kinds")
    return found


def _risk(lines: list[str]) -> tuple[RiskLevel, str]:
    text = " ".join(line.strip() for line in lines if line.strip())
    word, _, reason = text.partition(" ")
    try:
        return RiskLevel(word.lower()), reason.strip(" -—:")
    except ValueError:
        raise ValueError("expected low, medium or high first") from None


def _example(lines: list[str]) -> tuple[str, str | None, str]:
    text = "\n".join(lines)
    request = re.search(r'^Request:\s*"(.+)"\s*$', text, re.MULTILINE)
    author = re.search(r"^Requested by:\s*@?([A-Za-z0-9][A-Za-z0-9_.-]*)\s*$", text, re.MULTILINE)
    block = re.search(r"^```ya?ml\s*\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    if request is None or block is None:
        raise ValueError('expected a line Request: "..." and a ```yaml block')
    try:
        _yaml_documents(block.group(1))
    except (YAMLError, TypeError) as exc:
        raise ValueError(f"the yaml block is not YAML mappings: {exc}") from None
    return request.group(1), author.group(1) if author else None, block.group(1)


def _yaml_documents(text: str) -> list[dict[str, Any]]:
    docs = [d for d in YAML(typ="safe", pure=True).load_all(text) if d is not None]
    if not all(isinstance(d, dict) for d in docs):
        raise TypeError("every document must be a mapping")
    return docs
