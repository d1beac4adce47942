"""The run's artifacts on disk: the full log is kept, with credentials masked."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from bot.execute.redact import redact

_MAX_REDACTED_BYTES = 64 * 1024 * 1024


def _rewrite(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def redact_file(path: Path) -> None:
    """Mask credentials in a text file in place (atomically); other files are left alone."""
    if not path.is_file() or path.is_symlink() or path.stat().st_size > _MAX_REDACTED_BYTES:
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return
    masked = redact(text)
    if masked != text:
        _rewrite(path, masked)


def redact_tree(root: Path) -> None:
    """Mask credentials in every text file under ``root`` (the log, events, fact cache)."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        redact_file(path)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log, to say why a run stopped early ('' if there is no log)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(line.rstrip() for line in text.strip().splitlines()[-lines:])
