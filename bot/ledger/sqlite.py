"""A short SQLite transaction per call, shared by the ledger, the local forge and alerts.

Each thread of each process keeps one connection per database (so forked processes and
threads never share one, and a transaction does not pay for opening and closing a file:
closing the last connection checkpoints the WAL, which was most of an alert intake's
cost), in WAL mode with a busy timeout; each call runs in one transaction: ``BEGIN
IMMEDIATE`` for writes, so a read-modify-write is atomic across processes.  The schema is created on
first use and stamped with a version; a database of another version is refused rather
than guessed at.  Any SQLite failure becomes one line naming the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from bot.errors import InfrabotError

BUSY_TIMEOUT_S = 30.0


class Database:
    def __init__(self, path: Path, *, what: str, schema: Sequence[str], version: int) -> None:
        self.path = path
        self.what = what
        self.schema = schema
        self.version = version
        self._ready = False
        self._local = threading.local()

    @contextmanager
    def transaction(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            if not self._ready:
                self._create_schema(conn)
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield conn
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            self._forget(conn)
            raise InfrabotError(f"{self.what} {self.path}: {exc}") from exc
        finally:
            if self._local.conn is conn and conn.in_transaction:
                conn.execute("ROLLBACK")

    def close(self) -> None:
        """Close this thread's connection (the next transaction opens a new one)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            self._forget(conn)

    def _connection(self) -> sqlite3.Connection:
        """This thread's connection, opened on first use; a forked child opens its own and
        never touches (or closes) the one it inherited."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        here = conn is not None and self._local.pid == os.getpid()
        if self.path.exists():
            if here:
                assert conn is not None
                return conn
        else:  # removed under us (or never made): start over with the schema
            if here:
                assert conn is not None
                self._forget(conn)
            self._ready = False
        conn = self._connect()
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _forget(self, conn: sqlite3.Connection) -> None:
        """Drop a connection that failed (it may be broken) or is closed on request."""
        self._local.conn = None
        try:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        except sqlite3.Error:
            pass

    def _connect(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise InfrabotError(f"cannot open the {self.what} {self.path}: {exc}") from exc
        conn.row_factory = sqlite3.Row
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        _use_wal(conn)
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        for statement in self.schema:  # not executescript(): it would commit on its own
            conn.execute(statement)
        row = conn.execute("SELECT version FROM schema_version").fetchone()
        if row is None:
            conn.execute("INSERT INTO schema_version VALUES (?)", (self.version,))
        elif row[0] != self.version:
            raise InfrabotError(
                f"{self.what} {self.path} has schema version {row[0]}; "
                f"this infrabot knows version {self.version}"
            )
        conn.execute("COMMIT")
        self._ready = True


def _use_wal(conn: sqlite3.Connection) -> None:
    """Switch to WAL.  The switch needs the file to itself and SQLite does not wait for
    that (no busy handler), so when several processes create the database at once the
    losers retry until one of them has made the switch for everybody."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
