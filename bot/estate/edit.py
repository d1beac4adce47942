"""Applying a ChangeSet to the desired-state files with ruamel.yaml round-trip.

Comments, key order and quoting of what is not changed survive an edit.  Every file is
written to a temporary sibling and renamed into place, so a failure never leaves a
half-written file; all new contents are computed before the first write.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap

from bot.errors import InputError
from bot.estate.documents import STATE_DIR, round_trip_yaml
from bot.estate.index import plain
from bot.model import ChangeAction, ChangeSet, ResourceChange

KIND_DIRS = {
    "Host": "hosts",
    "Container": "containers",
    "Site": "sites",
    "DnsRecord": "dns",
    "MonitoringTarget": "monitoring",
}


def path_for(kind: str, name: str) -> str:
    """Where a new resource of this kind is written (relative to the repository root)."""
    if kind not in KIND_DIRS:
        raise InputError(f"unknown resource kind {kind!r}; known: {', '.join(KIND_DIRS)}")
    if "/" in name or name.startswith(".") or not name:
        raise InputError(f"resource name {name!r} cannot be used as a file name")
    return f"{STATE_DIR}/{KIND_DIRS[kind]}/{name}.yaml"


def apply_changes(root: Path, changes: ChangeSet) -> list[str]:
    """Edit the files under ``root``; returns the relative paths written or removed."""
    files: dict[str, list[Any] | None] = {}
    dirty: set[str] = set()
    for change in changes.changes:
        dirty.add(_apply_one(root, files, change))
    for rel in sorted(dirty):
        _write(root / rel, files[rel])
    return sorted(dirty)


def _apply_one(root: Path, files: dict[str, list[Any] | None], change: ResourceChange) -> str:
    """Apply one change to the in-memory documents; returns the file it dirtied."""
    found = _find(root, files, change.kind, change.name)
    if change.action is ChangeAction.CREATE:
        if found is not None:
            raise InputError(f"{change.kind} {change.name!r} already exists in {found[0]}")
        rel = path_for(change.kind, change.name)
        docs = _load(root, files, rel) if (root / rel).exists() or rel in files else []
        docs.append(_ordered(change.data))
        files[rel] = docs
        return rel
    if found is None:
        raise InputError(f"cannot {change.action.value} {change.kind} {change.name!r}: not found")
    rel, i = found
    docs = _load(root, files, rel)
    if change.action is ChangeAction.DELETE:
        del docs[i]
        files[rel] = docs or None
    else:
        _merge(docs[i], change.data)
        files[rel] = docs
    return rel


def _find(
    root: Path, files: dict[str, list[Any] | None], kind: str, name: str
) -> tuple[str, int] | None:
    base = root / STATE_DIR
    candidates = {p.relative_to(root).as_posix() for p in base.rglob("*.y*ml")} | set(files)
    for rel in sorted(candidates):
        for i, doc in enumerate(_load(root, files, rel)):
            if isinstance(doc, dict) and doc.get("kind") == kind and str(doc.get("name")) == name:
                return rel, i
    return None


def _load(root: Path, files: dict[str, list[Any] | None], rel: str) -> list[Any]:
    if rel in files:
        return files[rel] or []
    path = root / rel
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    docs = [d for d in round_trip_yaml().load_all(text) if d is not None]
    files[rel] = docs
    return docs


def _ordered(data: dict[str, Any]) -> CommentedMap:
    """A new document with kind and name first, as people write them."""
    out = CommentedMap()
    for key in ("kind", "name"):
        if key in data:
            out[key] = data[key]
    for key, value in data.items():
        if key not in out:
            out[key] = value
    return out


def _merge(doc: CommentedMap, new: dict[str, Any]) -> None:
    """Set changed keys in place (keeping their comments and position); drop removed keys."""
    for key in [k for k in doc if k not in new]:
        del doc[key]
    for key, value in new.items():
        if key not in doc or plain(doc[key]) != value:
            doc[key] = value


def _write(path: Path, docs: list[Any] | None) -> None:
    if docs is None:
        path.unlink(missing_ok=True)
        return
    buf = io.StringIO()
    round_trip_yaml().dump_all(docs, buf)
    text = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, text)


def atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
