"""Read-only access to a repository tree for engines, confined to the tree.

Theory of operation: an engine (and through it a model) names files by relative path.
A path is refused unless it stays inside the tree after normalisation, names no hidden
part (``.git``, ``.infrabot``, ``.env``) and no symlink leads out.  Reads are bounded in
size.  Refusals are values (None plus a reason), never exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol

MAX_CHARS = 40_000


class FileSource(Protocol):
    """``read``: (text, "") or (None, why not); ``listing``: (names, "") or (None, why not)."""

    def read(self, path: str) -> tuple[str | None, str]: ...

    def listing(self, path: str) -> tuple[list[str] | None, str]: ...


class NoFiles:
    def read(self, path: str) -> tuple[str | None, str]:
        return None, "no files are available to this engine"

    def listing(self, path: str) -> tuple[list[str] | None, str]:
        return None, "no files are available to this engine"


def clean(path: str) -> str | None:
    """The normalised relative path, or None when it is absolute, escapes or is hidden."""
    raw = path.strip().replace("\\", "/")
    if not raw or raw.startswith("/") or "\x00" in raw:
        return None if raw else "."
    parts = [p for p in PurePosixPath(raw).parts if p not in ("", ".")]
    if any(p == ".." or p.startswith(".") for p in parts):
        return None
    return "/".join(parts) or "."


@dataclass(frozen=True)
class TreeFiles:
    root: Path

    def _resolve(self, path: str) -> tuple[Path | None, str]:
        rel = clean(path)
        if rel is None:
            return None, f"{path!r} is outside the repository or hidden"
        target = (self.root / rel).resolve()
        if target != self.root.resolve() and self.root.resolve() not in target.parents:
            return None, f"{path!r} leads outside the repository"
        return target, ""

    def read(self, path: str) -> tuple[str | None, str]:
        target, why = self._resolve(path)
        if target is None:
            return None, why
        if not target.is_file():
            return None, f"{path} is not a file"
        text = target.read_text(encoding="utf-8", errors="replace")
        if len(text) > MAX_CHARS:
            text = text[:MAX_CHARS] + f"\n… ({len(text) - MAX_CHARS} more characters)"
        return text, ""

    def listing(self, path: str) -> tuple[list[str] | None, str]:
        target, why = self._resolve(path)
        if target is None:
            return None, why
        if not target.is_dir():
            return None, f"{path} is not a folder"
        names = sorted(
            p.name + ("/" if p.is_dir() else "")
            for p in target.iterdir()
            if not p.name.startswith(".")
        )
        return names, ""
