"""Trajectories: one JSON-lines file per ticket, append-only, every step a line.

Theory of operation
-------------------
``append`` writes one whole line with a single ``write`` under an exclusive ``flock``,
then ``fsync``s: a crash can leave at most a torn *last* line, never an interleaved
one.  The next append starts on a fresh line, and ``read`` skips any line that does not
parse, so a torn line costs that one event and nothing else.

Everything written passes redaction first: string values through the injected
``redact`` (by default ``bot.execute.redact``), and values under keys that name a
secret are masked whatever they hold.  Long strings are clipped; the full logs live in
artifacts, not here.
"""

from __future__ import annotations

import fcntl
import importlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from bot.errors import InfrabotError
from bot.ledger.events import STEPS, Event

MAX_STRING = 16384
MASK = "********"
_SECRET_KEY = re.compile(
    r"(?i)(^|[_.-])(pass|password|passwd|secret|token|api_?key|private_?key|credentials?)($|[_.-])"
)
_SECRET_TEXT = [
    re.compile(r"(?i)\b(authorization:\s*(?:bearer|token|basic)\s+)\S+"),
    re.compile(r"(?i)\b((?:password|passwd|secret|token|api[_-]?key)\s*[=:]\s*)\S+"),
    re.compile(r"\b(gh[pousr]_)[A-Za-z0-9]{20,}"),
    re.compile(r"\b(sk-ant-)[A-Za-z0-9_-]{10,}"),
]

Redactor = Callable[[str], str]


def mask_obvious_secrets(text: str) -> str:
    """A conservative fallback used only when ``bot.execute.redact`` is not available."""
    for pattern in _SECRET_TEXT:
        text = pattern.sub(lambda m: m.group(1) + MASK, text)
    return text


def _default_redactor() -> Redactor:
    # Looked up at run time: the ledger must not fail to import while execute is absent.
    try:
        module = importlib.import_module("bot.execute")
    except ImportError:
        return mask_obvious_secrets
    found = getattr(module, "redact", None)
    redactor: Redactor = found if callable(found) else mask_obvious_secrets
    return redactor


class Trajectory:
    def __init__(self, directory: Path, *, redact: Redactor | None = None) -> None:
        self.directory = directory
        self.redact = redact or _default_redactor()

    def path(self, ticket: int) -> Path:
        return self.directory / f"{ticket}.jsonl"

    def append(self, event: Event) -> None:
        self._write(self.path(event.ticket), self.clean(event).model_dump_json().encode() + b"\n")

    def clean(self, event: Event) -> Event:
        """The event as it may be stored: a known step, redacted, long strings clipped
        (every ``TrajectoryStore`` writes through this)."""
        if event.step not in STEPS:
            raise ValueError(
                f"unknown trajectory step {event.step!r}: add it to STEPS in bot/ledger/events.py"
            )
        return event.model_copy(
            update={
                "actor": self._scrub(event.actor),
                "outcome": self._scrub(event.outcome),
                "inputs": self.clean_data(event.inputs),
                "detail": self.clean_data(event.detail),
            }
        )

    def read(self, ticket: int) -> list[Event]:
        """The ticket's events in order; lines that do not parse (a torn write) are skipped."""
        try:
            data = self.path(ticket).read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise InfrabotError(f"cannot read trajectory {self.path(ticket)}: {exc}") from exc
        events = []
        for line in data.splitlines():
            try:
                events.append(Event.model_validate_json(line))
            except ValidationError:
                continue
        return events

    def tickets(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        names = (p.stem for p in self.directory.glob("*.jsonl"))
        return sorted(int(n) for n in names if n.lstrip("-").isdigit())

    # -- redaction -------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        text = self.redact(text)
        if len(text) > MAX_STRING:
            return text[:MAX_STRING] + f"… ({len(text) - MAX_STRING} more characters)"
        return text

    def clean_data(self, value: dict[str, Any]) -> dict[str, Any]:
        """``value`` as plain JSON data, strings redacted, secret-named keys masked."""
        plain = to_jsonable_python(value, fallback=str)
        cleaned: dict[str, Any] = self._walk(plain)
        return cleaned

    def _walk(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._scrub(value)
        if isinstance(value, dict):
            return {
                str(k): MASK if _SECRET_KEY.search(str(k)) else self._walk(v)
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self._walk(v) for v in value]
        return value

    # -- durable append --------------------------------------------------------------

    def _write(self, path: Path, line: bytes) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InfrabotError(f"cannot write trajectory {path}: {exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = b"\n" + line  # a torn line before us: start a fresh one
            _write_all(fd, line)
            os.fsync(fd)
            if size == 0:
                _fsync_dir(self.directory)
        except OSError as exc:
            raise InfrabotError(f"cannot write trajectory {path}: {exc}") from exc
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
