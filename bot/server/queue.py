"""The server's durable delivery queue: one SQLite table.

Theory of operation
- A row per delivery, keyed by ``(source, id)`` (for GitHub the ``X-GitHub-Delivery``
  id). ``offer_many`` inserts a batch with ``ON CONFLICT DO NOTHING`` in one transaction
  committed with ``synchronous=FULL`` (the WAL is fsynced): deduplication and enqueueing
  are one atomic, durable step, so once it returns the deliveries survive a crash or a
  power cut, and a redelivered id is answered "duplicate" and never queued twice. Batching
  is how the intake pays one fsync for a burst (``bot.server.commit``).
- States: ``queued`` → ``working`` → ``done`` | ``failed``. ``claim`` moves the oldest
  queued row to ``working`` in one ``UPDATE … RETURNING``, so no two workers can hold one
  row; ``finish`` moves it on only while that claim is still current (``attempts`` is the
  claim's token).
- A row left ``working`` was claimed by a process that stopped before finishing it:
  ``recover``, run once when the server starts, puts it back in the queue, or fails it
  once it has been tried ``max_attempts`` times (a delivery that crashes the server must
  not crash it forever). One server holds the file at a time (an exclusive ``flock`` on a
  side file), so recovery never takes back work that a live server is doing.
- Finished rows keep their key, not their body, for ``retention`` seconds: the memory that
  makes a late redelivery a duplicate. GitHub redelivers on request for three days.
  Alertmanager's deliveries are keyed by their content and remembered for an hour
  (``SOURCE_RETENTION``): long enough for its retries of one notification and a redundant
  instance's copy, short enough that its repeat of a still-firing group hours later
  reaches intake again, which then finishes anything a forge outage left pending.

The worker's own transitions (claim, finish, recover) commit with ``synchronous=NORMAL``
on a second connection: durable against a crash of the process, and after a power cut
the worst case is a delivery worked again, which the idempotent router absorbs. All calls
are short and serialised by one lock, so nobody waits on SQLite's busy handler.

Neither connection checkpoints the WAL on commit (SQLite would do it inside whichever
commit crosses 1000 pages, copying megabytes and fsyncing the database while an
acknowledgement waits). The worker calls ``checkpoint`` instead, between deliveries, on a
third connection outside the lock: a PASSIVE checkpoint runs beside writers and never
waits for them.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ConfigDict

from bot.errors import InfrabotError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  source TEXT NOT NULL,
  id TEXT NOT NULL,
  event TEXT NOT NULL,
  headers TEXT NOT NULL,
  body BLOB,
  state TEXT NOT NULL CHECK (state IN ('queued', 'working', 'done', 'failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  received_at REAL NOT NULL,
  claimed_at REAL,
  finished_at REAL,
  outcome TEXT,
  UNIQUE (source, id)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (state, seq);
"""
_COLUMNS = "source, id, event, headers, body, received_at, attempts"
_INSERT = (
    f"INSERT INTO deliveries ({_COLUMNS}, state) VALUES (?, ?, ?, ?, ?, ?, 0, 'queued')"
    " ON CONFLICT (source, id) DO NOTHING"
)
DEFAULT_RETENTION = 14 * 24 * 3600.0
SOURCE_RETENTION: dict[str, float] = {"alertmanager": 3600.0}
"""Sources remembered for less than ``DEFAULT_RETENTION`` (see the module's theory)."""


class Delivery(BaseModel):
    """One delivery as received: what a worker hands to the processing callable."""

    model_config = ConfigDict(frozen=True)

    source: str
    """Who sent it: ``github`` or ``alertmanager``."""
    id: str
    """The deduplication key: GitHub's ``X-GitHub-Delivery``, the SHA-256 of an
    Alertmanager body."""
    event: str
    """The event name (``X-GitHub-Event``: ``issues``, ``pull_request``, …; ``alert``)."""
    headers: dict[str, str]
    """The request headers a parser needs, names in lower case."""
    body: bytes
    """The raw body, byte for byte as signed."""
    received_at: float
    """When the server accepted it (Unix time)."""
    attempts: int = 0
    """How many times a worker has claimed it: 1 on the first run, more after a restart."""


class Offer(StrEnum):
    QUEUED = "queued"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class Recovered:
    """What ``recover`` found left ``working`` by a server that stopped."""

    requeued: tuple[str, ...]
    failed: tuple[str, ...]


class QueueBusy(InfrabotError):
    """Another server process holds the queue file."""


class DeliveryQueue:
    """Deliveries on disk; see the module's theory of operation."""

    def __init__(
        self,
        connections: tuple[sqlite3.Connection, sqlite3.Connection, sqlite3.Connection],
        lock: IO[bytes],
        clock: Callable[[], float],
    ) -> None:
        self._durable, self._conn, self._checkpointer = connections
        self._lock_file = lock
        self._clock = clock
        self._mutex = threading.Lock()

    @classmethod
    def open(cls, path: Path, clock: Callable[[], float] = time.time) -> DeliveryQueue:
        """Open (or create) the queue at ``path``; ``QueueBusy`` if a server holds it."""
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = (path.parent / (path.name + ".lock")).open("wb")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            raise QueueBusy(f"another infrabot serve is using the queue {path}") from None
        try:
            durable, conn, checkpointer = (_connect(path, s) for s in ("FULL", "NORMAL", "FULL"))
            conn.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            lock.close()
            raise InfrabotError(f"the queue {path} is not a usable SQLite file: {exc}") from exc
        os.chmod(path, 0o600)  # bodies may carry private repository content
        return cls((durable, conn, checkpointer), lock, clock)

    def close(self) -> None:
        with self._mutex:
            self._durable.close()
            self._conn.close()
            self._checkpointer.close()
            self._lock_file.close()

    def offer(self, delivery: Delivery) -> Offer:
        """Queue ``delivery`` unless its key was seen before (durable when this returns)."""
        return self.offer_many([delivery])[0]

    def offer_many(self, deliveries: Sequence[Delivery]) -> list[Offer]:
        """``offer`` for a batch, in one transaction and one fsync."""
        rows = [
            (d.source, d.id, d.event, json.dumps(d.headers), d.body, d.received_at)
            for d in deliveries
        ]
        offers: list[Offer] = []
        with self._mutex:
            self._durable.execute("BEGIN IMMEDIATE")
            try:
                for row in rows:
                    cursor = self._durable.execute(_INSERT, row)
                    offers.append(Offer.QUEUED if cursor.rowcount == 1 else Offer.DUPLICATE)
                self._durable.execute("COMMIT")
            except BaseException:
                self._durable.execute("ROLLBACK")
                raise
        return offers

    def claim(self) -> Delivery | None:
        """Take the oldest queued delivery for work, or None when the queue is empty."""
        with self._mutex:
            row = self._conn.execute(
                "UPDATE deliveries SET state = 'working', attempts = attempts + 1,"
                " claimed_at = ? WHERE seq = (SELECT seq FROM deliveries"
                " WHERE state = 'queued' ORDER BY seq LIMIT 1)"
                f" RETURNING {_COLUMNS}",
                (self._clock(),),
            ).fetchone()
        if row is None:
            return None
        source, id_, event, headers, body, received_at, attempts = row
        return Delivery(
            source=source,
            id=id_,
            event=event,
            headers=json.loads(headers),
            body=body,
            received_at=received_at,
            attempts=attempts,
        )

    def finish(self, delivery: Delivery, outcome: str, *, ok: bool) -> bool:
        """Record the end of a claim; False if the claim was no longer current."""
        state = "done" if ok else "failed"
        with self._mutex:
            cursor = self._conn.execute(
                "UPDATE deliveries SET state = ?, outcome = ?, finished_at = ?,"
                " body = CASE WHEN ? THEN NULL ELSE body END"
                " WHERE source = ? AND id = ? AND state = 'working' AND attempts = ?",
                (
                    state,
                    outcome,
                    self._clock(),
                    ok,
                    delivery.source,
                    delivery.id,
                    delivery.attempts,
                ),
            )
            return cursor.rowcount == 1

    def recover(self, max_attempts: int) -> Recovered:
        """Requeue what a stopped server left ``working`` (fail it after ``max_attempts``)."""
        with self._mutex:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                failed = self._conn.execute(
                    "UPDATE deliveries SET state = 'failed', finished_at = ?,"
                    " outcome = 'gave up: the server stopped during each of its attempts'"
                    " WHERE state = 'working' AND attempts >= ? RETURNING id",
                    (self._clock(), max_attempts),
                ).fetchall()
                requeued = self._conn.execute(
                    "UPDATE deliveries SET state = 'queued' WHERE state = 'working' RETURNING id"
                ).fetchall()
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return Recovered(tuple(r[0] for r in requeued), tuple(r[0] for r in failed))

    def checkpoint(self) -> None:
        """Move committed pages from the WAL into the database (the worker's thread only)."""
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def prune(
        self,
        retention: float = DEFAULT_RETENTION,
        by_source: Mapping[str, float] = SOURCE_RETENTION,
    ) -> int:
        """Forget finished deliveries older than ``retention`` seconds (``by_source``: the
        sources remembered for another time); how many went."""
        now = self._clock()
        gone = 0
        with self._mutex:
            for source, seconds in by_source.items():
                gone += self._conn.execute(
                    "DELETE FROM deliveries WHERE state IN ('done', 'failed')"
                    " AND source = ? AND finished_at < ?",
                    (source, now - seconds),
                ).rowcount
            gone += self._conn.execute(
                "DELETE FROM deliveries WHERE state IN ('done', 'failed') AND finished_at < ?",
                (now - retention,),
            ).rowcount
        return gone

    def depth(self) -> int:
        """Deliveries waiting for a worker."""
        with self._mutex:
            row = self._conn.execute(
                "SELECT count(*) FROM deliveries WHERE state = 'queued'"
            ).fetchone()
        return int(row[0])

    def queued_by_source(self) -> dict[str, int]:
        """Deliveries waiting for a worker, by source (every known source, 0 if none)."""
        with self._mutex:
            rows = self._conn.execute(
                "SELECT source, count(*) FROM deliveries WHERE state = 'queued' GROUP BY source"
            ).fetchall()
        return {"github": 0, "alertmanager": 0} | dict(rows)

    def states(self) -> dict[str, int]:
        """How many deliveries are in each state."""
        with self._mutex:
            rows = self._conn.execute(
                "SELECT state, count(*) FROM deliveries GROUP BY state"
            ).fetchall()
        return {"queued": 0, "working": 0, "done": 0, "failed": 0} | dict(rows)

    def outcome(self, source: str, id_: str) -> tuple[str, str | None] | None:
        """The state and outcome of one delivery, None if it was never seen."""
        with self._mutex:
            row = self._conn.execute(
                "SELECT state, outcome FROM deliveries WHERE source = ? AND id = ?",
                (source, id_),
            ).fetchone()
        return None if row is None else (row[0], row[1])


def _connect(path: Path, synchronous: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous}")
    conn.execute("PRAGMA wal_autocheckpoint=0")  # the worker checkpoints; see the module
    return conn
