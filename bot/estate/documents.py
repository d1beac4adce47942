"""Reading desired-state YAML with ruamel.yaml round-trip, keeping where each value came from.

A malformed file does not stop the read: it becomes a ``Finding`` so one report can
show every problem at once.  Line numbers are 1-based, as editors show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from bot.model import Finding

STATE_DIR = "infra/state"


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


def state_files(root: Path) -> list[Path]:
    base = root / STATE_DIR
    return sorted(p for p in base.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def read_documents(root: Path) -> tuple[list[Document], list[Finding]]:
    """Every document under ``infra/state`` and the files that could not be parsed."""
    docs: list[Document] = []
    findings: list[Finding] = []
    for path in state_files(root):
        rel = path.relative_to(root).as_posix()
        try:
            docs.extend(_read_file(path, rel))
        except YAMLError as exc:
            findings.append(_yaml_finding(rel, exc))
        except (OSError, UnicodeDecodeError) as exc:
            findings.append(Finding(check="yaml", file=rel, message=f"cannot read: {exc}"))
    return docs, findings


def _read_file(path: Path, rel: str) -> list[Document]:
    text = path.read_text(encoding="utf-8")
    out = []
    for i, data in enumerate(round_trip_yaml().load_all(text)):
        if data is None:
            continue
        line = data.lc.line + 1 if hasattr(data, "lc") else 1
        out.append(Document(file=rel, index=i, data=data, line=line))
    return out


def _yaml_finding(rel: str, exc: YAMLError) -> Finding:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    line = mark.line + 1 if mark is not None else None
    return Finding(check="yaml", file=rel, line=line, message=f"malformed YAML: {problem}")
