"""The estate lock: one apply at a time, held by a pull request.

Theory of operation
-------------------
One row named ``estate`` in SQLite, read and written inside ``BEGIN IMMEDIATE`` so two
processes can never both see it free.  The holder is a PR number.  A lock taken with a
``pid`` belongs to that process: once the process is gone (no such pid, a zombie, or a
pid reused by a process that started later), and it ran on this machine, the lock is
stale and the next ``acquire`` takes it over and says so.  A lock taken without a pid
persists until it is released (or ``/unlock``ed): it can be stale only by a person's
decision.  ``held`` takes a process-owned lock and releases it on the way out, even on
an exception, unless the same holder already had it (re-entry leaves the outer owner
in charge).

Re-entry is for the process that holds the lock, not for the PR: a second process of
the same PR (``/apply`` in ``infrabot serve`` while an operator runs ``infrabot pr
apply``, a redelivered event racing the first) is refused while the first one lives, or
both would run Ansible.  A process that re-enters a lock its PR holds without a process
*claims* it: the lock records that process until it leaves, so the same rule keeps a
second one out, and then the lock is the PR's again, without a process.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from bot.errors import LockHeld
from bot.ledger.sqlite import Database

LOCK_NAME = "estate"
SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS locks (name TEXT PRIMARY KEY, holder INTEGER NOT NULL, "
    "pid INTEGER, pid_start TEXT, host TEXT NOT NULL, since TEXT NOT NULL)",
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class LockState(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = LOCK_NAME
    holder: int
    pid: int | None
    host: str
    since: datetime
    reentered: bool = False
    """The holder already had the lock when it asked again."""
    claimed: bool = False
    """Re-entered a lock held without a process: this process is recorded until it leaves."""
    taken_over_from: int | None = None
    """The PR whose lock was taken over because its process was gone."""
    note: str = ""

    def describe(self) -> str:
        return f"PR #{self.holder} since {self.since:%Y-%m-%d %H:%M:%S %Z}".strip()


class Unlock(BaseModel):
    """The outcome of an /unlock: whether the lock was released, and why (not)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: LockState | None
    released: bool
    why: str


class EstateLock:
    def __init__(
        self,
        db_path: Path,
        *,
        clock: Callable[[], datetime] = _utcnow,
        hostname: str | None = None,
    ) -> None:
        self.db_path = db_path
        self.clock = clock
        self.hostname = hostname or socket.gethostname()
        self.db = Database(db_path, what="lock database", schema=_SCHEMA, version=SCHEMA_VERSION)

    def acquire(self, holder: int, *, pid: int | None = None) -> LockState:
        with self.db.transaction(write=True) as conn:
            live, stale = self._live(conn)
            if live is not None:
                if live.holder != holder:
                    raise LockHeld(f"the estate lock is held by {live.describe()}")
                if pid is None or (live.pid == pid and live.host == self.hostname):
                    return live.model_copy(update={"reentered": True})
                if live.pid is not None:  # another process of the same PR, alive
                    raise LockHeld(
                        f"PR #{holder} is already being applied by process {live.pid} on "
                        f"{live.host} since {live.since:%Y-%m-%d %H:%M:%S %Z}: wait for it "
                        "to finish"
                    )
                conn.execute(
                    "UPDATE locks SET pid = ?, pid_start = ?, host = ? WHERE name = ?",
                    (pid, start_time(pid), self.hostname, LOCK_NAME),
                )
                return live.model_copy(
                    update={"pid": pid, "host": self.hostname, "reentered": True, "claimed": True}
                )
            state = LockState(holder=holder, pid=pid, host=self.hostname, since=self.clock())
            if stale is not None:
                state = state.model_copy(update=_takeover(stale))
            conn.execute("DELETE FROM locks WHERE name = ?", (LOCK_NAME,))
            conn.execute(
                "INSERT INTO locks (name, holder, pid, pid_start, host, since) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (LOCK_NAME, holder, pid, start_time(pid), self.hostname, state.since.isoformat()),
            )
            return state

    def release(self, holder: int) -> None:
        with self.db.transaction(write=True) as conn:
            conn.execute("DELETE FROM locks WHERE name = ? AND holder = ?", (LOCK_NAME, holder))

    def _give_back(self, holder: int, pid: int) -> None:
        """The end of a claim: the lock is the PR's again, without a process."""
        with self.db.transaction(write=True) as conn:
            conn.execute(
                "UPDATE locks SET pid = NULL, pid_start = NULL "
                "WHERE name = ? AND holder = ? AND pid = ? AND host = ?",
                (LOCK_NAME, holder, pid, self.hostname),
            )

    def unlock(self) -> Unlock:
        """What ``/unlock`` may do: release a lock held without a process (a person's or a
        plan's) or one whose process is gone; never the lock of an apply that is running."""
        with self.db.transaction(write=True) as conn:
            found = self._read(conn)
            if found is None:
                return Unlock(state=None, released=False, why="the estate lock was not held")
            state, start = found
            if state.pid is not None and state.host != self.hostname:
                return Unlock(
                    state=state,
                    released=False,
                    why=f"it is held by process {state.pid} on {state.host}, which cannot be "
                    "checked from here; release it there",
                )
            if state.pid is not None and process_alive(state.pid, start):
                return Unlock(
                    state=state,
                    released=False,
                    why=f"it belongs to an apply that is running (process {state.pid}): wait "
                    "for it to finish",
                )
            conn.execute("DELETE FROM locks WHERE name = ?", (LOCK_NAME,))
            why = (
                "it was held without a running process"
                if state.pid is None
                else f"its process {state.pid} is gone"
            )
            return Unlock(state=state, released=True, why=why)

    def holder(self) -> LockState | None:
        """The live holder, or None when the lock is free or its process is gone."""
        with self.db.transaction() as conn:
            return self._live(conn)[0]

    @contextmanager
    def held(self, holder: int) -> Iterator[LockState]:
        state = self.acquire(holder, pid=os.getpid())
        try:
            yield state
        finally:
            if state.claimed:
                self._give_back(holder, os.getpid())
            elif not state.reentered:
                self.release(holder)

    @staticmethod
    def _read(conn: sqlite3.Connection) -> tuple[LockState, str | None] | None:
        """The recorded lock and the start time of its process (to tell a reused pid)."""
        row = conn.execute(
            "SELECT holder, pid, host, since, pid_start FROM locks WHERE name = ?", (LOCK_NAME,)
        ).fetchone()
        if row is None:
            return None
        state = LockState(
            holder=row[0], pid=row[1], host=row[2], since=datetime.fromisoformat(row[3])
        )
        return state, row[4]

    def _live(self, conn: sqlite3.Connection) -> tuple[LockState | None, LockState | None]:
        """(live holder, stale record): at most one of them is set."""
        found = self._read(conn)
        if found is None:
            return None, None
        state, start = found
        if state.pid is None or state.host != self.hostname:
            return state, None  # persistent, or another machine's process: we cannot tell
        return (state, None) if process_alive(state.pid, start) else (None, state)


def _takeover(previous: LockState) -> dict[str, object]:
    return {
        "taken_over_from": previous.holder,
        "note": (
            f"took over the estate lock from PR #{previous.holder}: its process "
            f"{previous.pid} on {previous.host} is gone"
        ),
    }


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state letter, start time in clock ticks) from /proc, or None where there is none."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2 :].split()
    return (fields[0], fields[19]) if len(fields) > 19 else None


def start_time(pid: int | None) -> str | None:
    stat = _proc_stat(pid) if pid is not None else None
    return stat[1] if stat else None


def process_alive(pid: int, recorded_start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    stat = _proc_stat(pid)
    if stat is None:
        return True  # no /proc: trust kill()
    state, start = stat
    if state in ("Z", "X"):
        return False
    return recorded_start is None or start == recorded_start
