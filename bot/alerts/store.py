"""The durable alert record: deliveries and group tickets.  ``AlertRecord`` is what
intake, the check, drift and acceptance use; ``AlertStore`` is the SQLite one under
``.infrabot/``; ``bot.forge.github.alerts.GitHubAlertRecord`` keeps it on the ledger branch
for GitHub Actions runners, which keep nothing between runs (``docs/adr/0020``).

Theory of operation: Alertmanager delivers at least once (retries, redundant instances,
re-sends every ``repeat_interval``).  ``record`` inserts each alert keyed by
(fingerprint, startsAt, status) in one write transaction and returns only the rows that
were new: a re-delivery inserts nothing.  The caller may acknowledge once ``record`` has
returned.  Rows stay *pending* until the forge work for them is done (``mark_handled``), so
a crash or a forge outage between the two is finished by the next ingest of that group,
never lost and never done twice.  ``groups`` maps Alertmanager's groupKey to the one
ticket that tracks it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol

from bot.alerts.payload import Alert
from bot.ledger.sqlite import Database

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS deliveries (
        fingerprint TEXT NOT NULL,
        starts_at TEXT NOT NULL,
        status TEXT NOT NULL,
        group_key TEXT NOT NULL,
        received_at TEXT NOT NULL,
        alert TEXT NOT NULL,
        handled INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (fingerprint, starts_at, status))""",
    "CREATE INDEX IF NOT EXISTS pending ON deliveries (group_key, handled)",
    """CREATE TABLE IF NOT EXISTS groups (
        group_key TEXT PRIMARY KEY,
        ticket INTEGER NOT NULL,
        opened_at TEXT NOT NULL)""",
)


@dataclass(frozen=True)
class History:
    firings: int
    first_start: str | None


@dataclass(frozen=True)
class Received:
    new: list[Delivery]
    pending: list[Delivery]
    history: dict[str, History]
    ticket: int | None


@dataclass(frozen=True)
class Delivery:
    group_key: str
    alert: Alert
    received_at: datetime

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.alert.fingerprint, self.alert.starts_at.isoformat(), self.alert.status)


class AlertRecord(Protocol):
    """The alert record: every implementation keeps these promises (contract test:
    ``tests/test_alerts_store_contract.py``)."""

    def receive(
        self, group_key: str, alerts: Sequence[Alert], now: datetime, flap_window: timedelta
    ) -> Received:
        """Record the alerts not seen before, durably (the caller may acknowledge once this
        returns), and read what working the group needs: its pending deliveries, their
        firing history within ``flap_window`` and its ticket.  Non-empty ``pending`` means
        this caller works them now; it ends with ``mark_handled`` or ``release``."""
        ...

    def pending(self, group_key: str) -> list[Delivery]: ...

    def pending_groups(self) -> list[str]: ...

    def mark_handled(
        self, deliveries: Sequence[Delivery], ticket: tuple[str, int, datetime] | None = None
    ) -> None:
        """Done with these deliveries; with ``ticket`` (group key, number, when) the group's
        new ticket is recorded in the same write."""
        ...

    def release(self, group_key: str) -> None:
        """Give up working the group (the work failed): its pending deliveries stay pending
        for the next intake; nothing when this caller is not working it."""
        ...

    def latest(self, group_key: str) -> list[Alert]:
        """The group's alerts as last received, one per fingerprint."""
        ...

    def open_firings(self, group_key: str) -> dict[str, str]:
        """fingerprint -> startsAt of the group's firings that no resolve has ended yet."""
        ...

    def groups(self) -> list[tuple[str, int]]:
        """(group key, ticket) of every group that has had a ticket, by ticket."""
        ...

    def ticket(self, group_key: str) -> int | None: ...

    def set_ticket(self, group_key: str, ticket: int, now: datetime) -> None: ...


class AlertStore:
    """``AlertRecord`` in SQLite (one machine: ``infrabot serve`` serialises intake)."""

    def __init__(self, path: Path) -> None:
        self._db = Database(path, what="alert record", schema=_SCHEMA, version=1)

    def receive(
        self, group_key: str, alerts: Sequence[Alert], now: datetime, flap_window: timedelta
    ) -> Received:
        """One transaction: record the alerts not seen before (durably: the caller may
        acknowledge once this returns), and read what working the group needs."""
        with self._db.transaction(write=True) as conn:
            new = self._insert(conn, group_key, alerts, now)
            pending = self._pending(conn, group_key)
            since = min((d.received_at for d in pending), default=now) - flap_window
            history = self._history(conn, [d.alert.fingerprint for d in pending], since)
            row = conn.execute(
                "SELECT ticket FROM groups WHERE group_key = ?", (group_key,)
            ).fetchone()
        ticket = None if row is None else int(row[0])
        return Received(new=new, pending=pending, history=history, ticket=ticket)

    def record(self, group_key: str, alerts: Sequence[Alert], now: datetime) -> list[Delivery]:
        """Insert the alerts not seen before (durably, in one transaction); return those."""
        with self._db.transaction(write=True) as conn:
            return self._insert(conn, group_key, alerts, now)

    @staticmethod
    def _insert(
        conn: sqlite3.Connection, group_key: str, alerts: Sequence[Alert], now: datetime
    ) -> list[Delivery]:
        new = []
        for alert in alerts:
            d = Delivery(group_key, alert, now)
            cur = conn.execute(
                "INSERT OR IGNORE INTO deliveries "
                "(fingerprint, starts_at, status, group_key, received_at, alert) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (*d.key, group_key, now.isoformat(), alert.model_dump_json(by_alias=True)),
            )
            if cur.rowcount:
                new.append(d)
        return new

    def pending(self, group_key: str) -> list[Delivery]:
        with self._db.transaction() as conn:
            return self._pending(conn, group_key)

    @staticmethod
    def _pending(conn: sqlite3.Connection, group_key: str) -> list[Delivery]:
        rows = conn.execute(
            "SELECT alert, received_at FROM deliveries WHERE group_key = ? AND handled = 0 "
            "ORDER BY received_at, starts_at",
            (group_key,),
        ).fetchall()
        return [
            Delivery(group_key, Alert.model_validate_json(r[0]), datetime.fromisoformat(r[1]))
            for r in rows
        ]

    def latest(self, group_key: str) -> list[Alert]:
        """The group's alerts as last received, one per fingerprint."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT alert FROM deliveries WHERE group_key = ? ORDER BY received_at, starts_at",
                (group_key,),
            ).fetchall()
        latest = {}
        for row in rows:
            alert = Alert.model_validate_json(row[0])
            latest[alert.fingerprint] = alert
        return list(latest.values())

    def seen_firing(self, fingerprint: str, before: str) -> bool:
        """Was this alert received firing with an earlier start (a re-fire, not a new alert)?"""
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT 1 FROM deliveries WHERE fingerprint = ? AND status = 'firing' "
                "AND starts_at < ? LIMIT 1",
                (fingerprint, before),
            ).fetchone()
        return row is not None

    def open_firings(self, group_key: str) -> dict[str, str]:
        """fingerprint -> startsAt of the group's firings that no resolve has ended yet."""
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT f.fingerprint, f.starts_at FROM deliveries f WHERE f.group_key = ? "
                "AND f.status = 'firing' AND NOT EXISTS (SELECT 1 FROM deliveries r "
                "WHERE r.fingerprint = f.fingerprint AND r.starts_at = f.starts_at "
                "AND r.status = 'resolved') ORDER BY f.starts_at",
                (group_key,),
            ).fetchall()
        return {r[0]: r[1] for r in rows}

    def pending_groups(self) -> list[str]:
        with self._db.transaction() as conn:
            rows = conn.execute(
                "SELECT DISTINCT group_key FROM deliveries WHERE handled = 0"
            ).fetchall()
        return [r[0] for r in rows]

    def mark_handled(
        self, deliveries: Sequence[Delivery], ticket: tuple[str, int, datetime] | None = None
    ) -> None:
        """Done with these deliveries; with ``ticket`` (group key, number, when) the group's
        new ticket is recorded in the same transaction."""
        with self._db.transaction(write=True) as conn:
            if ticket is not None:
                self._set_ticket(conn, *ticket)
            conn.executemany(
                "UPDATE deliveries SET handled = 1 "
                "WHERE fingerprint = ? AND starts_at = ? AND status = ?",
                [d.key for d in deliveries],
            )

    def release(self, group_key: str) -> None:
        """Nothing to give up: SQLite's writers are serialised by its own lock."""

    def history(self, fingerprints: Sequence[str], since: datetime) -> dict[str, History]:
        """For each fingerprint: firings received since ``since`` and its earliest start."""
        with self._db.transaction() as conn:
            return self._history(conn, fingerprints, since)

    @staticmethod
    def _history(
        conn: sqlite3.Connection, fingerprints: Sequence[str], since: datetime
    ) -> dict[str, History]:
        out = {}
        for fp in dict.fromkeys(fingerprints):
            row = conn.execute(
                "SELECT SUM(received_at >= ?), MIN(starts_at) FROM deliveries "
                "WHERE fingerprint = ? AND status = 'firing'",
                (since.isoformat(), fp),
            ).fetchone()
            out[fp] = History(firings=int(row[0] or 0), first_start=row[1])
        return out

    def groups(self) -> list[tuple[str, int]]:
        """(group key, ticket) of every group that has had a ticket."""
        with self._db.transaction() as conn:
            rows = conn.execute("SELECT group_key, ticket FROM groups ORDER BY ticket").fetchall()
        return [(r[0], int(r[1])) for r in rows]

    def ticket(self, group_key: str) -> int | None:
        with self._db.transaction() as conn:
            row = conn.execute(
                "SELECT ticket FROM groups WHERE group_key = ?", (group_key,)
            ).fetchone()
        return None if row is None else int(row[0])

    def set_ticket(self, group_key: str, ticket: int, now: datetime) -> None:
        with self._db.transaction(write=True) as conn:
            self._set_ticket(conn, group_key, ticket, now)

    @staticmethod
    def _set_ticket(conn: sqlite3.Connection, group_key: str, ticket: int, now: datetime) -> None:
        conn.execute(
            "INSERT INTO groups (group_key, ticket, opened_at) VALUES (?, ?, ?) "
            "ON CONFLICT (group_key) DO UPDATE SET ticket = excluded.ticket, "
            "opened_at = excluded.opened_at",
            (group_key, ticket, now.isoformat()),
        )
