"""Apply intents: what an apply is about to do, written durably before it starts.

Theory of operation
-------------------
An apply that is killed half-way (``kill -9``, a lost runner, a power cut) leaves the estate
in a state nobody knows.  So before the first task runs, the intent — commit, hosts, pull
request, ticket, and the process that runs it — is written to its own file and fsynced;
when the apply ends, its outcome replaces it.  An intent with no outcome whose process is
gone is an *interrupted* apply: whoever finds it first (any command) reports it, marks its
hosts unknown so the next run includes them, and closes it with outcome ``interrupted``.
An intent whose process runs on another machine cannot be judged from here and is left
alone.  One JSON file per intent keeps a torn write impossible (write, fsync, rename).
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import InfrabotError
from bot.ledger.lock import process_alive, start_time


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ApplyIntent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    pr: int
    """The pull request applied (0: a reconcile of the base branch)."""
    ticket: int
    sha: str
    hosts: tuple[str, ...]
    actor: str
    pid: int
    pid_start: str | None = None
    machine: str
    started: datetime
    outcome: str | None = None
    finished: datetime | None = None


class IntentStore:
    def __init__(
        self,
        directory: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
        machine: str | None = None,
    ) -> None:
        self.dir = directory
        self.clock = clock
        self.machine = machine or socket.gethostname()

    def begin(
        self, *, pr: int, ticket: int, sha: str, hosts: tuple[str, ...], actor: str
    ) -> ApplyIntent:
        pid = os.getpid()
        started = self.clock()
        intent = ApplyIntent(
            id=f"{started:%Y%m%dT%H%M%S%f}-{pr}-{sha[:12]}",
            pr=pr,
            ticket=ticket,
            sha=sha,
            hosts=hosts,
            actor=actor,
            pid=pid,
            pid_start=start_time(pid),
            machine=self.machine,
            started=started,
        )
        self._write(intent)
        return intent

    def finish(self, intent: ApplyIntent, outcome: str) -> ApplyIntent:
        done = intent.model_copy(update={"outcome": outcome, "finished": self.clock()})
        self._write(done)
        return done

    def open(self) -> list[ApplyIntent]:
        """Intents with no outcome, oldest first."""
        found = []
        for path in sorted(self.dir.glob("*.json")) if self.dir.is_dir() else []:
            try:
                intent = ApplyIntent.model_validate_json(path.read_bytes())
            except (OSError, ValidationError) as exc:
                raise InfrabotError(f"unreadable apply intent {path}: {exc}") from exc
            if intent.outcome is None:
                found.append(intent)
        return sorted(found, key=lambda i: i.started)

    def interrupted(self) -> list[ApplyIntent]:
        """Open intents whose process is gone (on this machine): applies that never ended."""
        return [
            i
            for i in self.open()
            if i.machine == self.machine and not process_alive(i.pid, i.pid_start)
        ]

    def _write(self, intent: ApplyIntent) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f"{intent.id}.json"
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        data = json.dumps(intent.model_dump(mode="json"), indent=2)
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        directory = os.open(self.dir, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself must survive a crash
        finally:
            os.close(directory)
