"""The alert record on GitHub: one file per alert group on the ledger branch
(``docs/adr/0020``).

Theory of operation
-------------------
An Actions runner keeps nothing, so the record that makes intake idempotent (which
deliveries were seen, which group has which ticket) lives where every runner meets: the
ledger branch.  Each group is ``alerts/<sha256(group key)>.json``, holding the group key,
its ticket (number, opened at), the earliest start of each fingerprint's firings, a
*claim*, and the deliveries (the key (fingerprint, startsAt, status), received at, the
alert, handled).  Every write is one guarded update of that one file (``LedgerBranch``:
the blob sha is the guard; 409/422 re-read and redo), so:

- ``receive`` records the new deliveries and, when the group has pending work and no live
  claim by another runner, claims it, in the same write.  Once it returns the alerts are
  on GitHub (the caller may acknowledge), and a re-delivery finds its key and adds nothing.
- Two runners for one group both record; only the one whose write set the claim works the
  group.  The other re-reads every ``poll`` seconds until the claim is released
  (``mark_handled`` clears it in the same write that marks the work done and records the
  ticket; ``release`` when the work failed) or its ``lease`` ran out (a crashed runner),
  then claims and works what is still pending: the ticket the first one opened is there.
  So two runs never open two tickets for one group, and a burst loses nothing.
- Files stay bounded: a handled delivery older than the flap window (counted back from
  the oldest pending one) is dropped when it is neither a still-open firing nor its
  fingerprint's latest delivery; past ``MAX_FILE`` anyway the write is refused with a clear
  error before anything is written.
- What is written passes the trajectory's redaction (alert labels and annotations are
  untrusted text); keys compare in their redacted form, which redaction leaves stable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from bot.alerts.payload import Alert
from bot.alerts.store import Delivery, History, Received
from bot.errors import InfrabotError
from bot.forge.github.ledger import LedgerBranch
from bot.ledger.trajectory import Trajectory

FOLDER = "alerts"
MAX_FILE = 512_000
"""Bytes one group's file may hold (the contents API serves files up to 1 MB)."""
CLAIM_LEASE = timedelta(minutes=10)
"""How long a claim holds without being renewed: intake's forge work takes seconds."""
POLL_SECONDS = 3.0


def _utcnow() -> datetime:
    return datetime.now(UTC)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Delivery(_Model):
    fingerprint: str
    starts_at: str
    status: Literal["firing", "resolved"]
    received_at: datetime
    alert: dict[str, Any]
    handled: bool = False

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.fingerprint, self.starts_at, self.status)


class _Ticket(_Model):
    number: int
    opened_at: datetime


class _Claim(_Model):
    owner: str
    until: datetime


class GroupFile(_Model):
    """``alerts/<sha256(group key)>.json`` on the ledger branch."""

    version: Literal[1] = 1
    group_key: str
    ticket: _Ticket | None = None
    claim: _Claim | None = None
    first_starts: dict[str, str] = {}
    """fingerprint -> its earliest firing's start (kept when old deliveries are pruned)."""
    deliveries: list[_Delivery] = []

    def pending(self) -> list[_Delivery]:
        return sorted(
            (d for d in self.deliveries if not d.handled),
            key=lambda d: (d.received_at, d.starts_at),
        )

    def claimable(self, owner: str, now: datetime) -> bool:
        return self.claim is None or self.claim.owner == owner or self.claim.until <= now

    def history(self, fingerprints: Sequence[str], since: datetime) -> dict[str, History]:
        out = {}
        for fp in dict.fromkeys(fingerprints):
            firings = sum(
                1
                for d in self.deliveries
                if d.fingerprint == fp and d.status == "firing" and d.received_at >= since
            )
            out[fp] = History(firings=firings, first_start=self.first_starts.get(fp))
        return out

    def open_firings(self) -> dict[str, str]:
        resolved = {(d.fingerprint, d.starts_at) for d in self.deliveries if d.status == "resolved"}
        firing = sorted(
            (d for d in self.deliveries if d.status == "firing"), key=lambda d: d.starts_at
        )
        return {
            d.fingerprint: d.starts_at
            for d in firing
            if (d.fingerprint, d.starts_at) not in resolved
        }

    def prune(self, now: datetime, flap_window: timedelta) -> None:
        """Drop handled deliveries nothing reads any more (see the module's docstring)."""
        oldest = min((d.received_at for d in self.deliveries if not d.handled), default=now)
        horizon = min(now, oldest) - flap_window
        ordered = sorted(self.deliveries, key=lambda d: (d.received_at, d.starts_at))
        latest = {d.fingerprint: d.key for d in ordered}
        still_open = set(self.open_firings().items())
        self.deliveries = [
            d
            for d in ordered
            if not d.handled
            or d.received_at >= horizon
            or latest[d.fingerprint] == d.key
            or (d.status == "firing" and (d.fingerprint, d.starts_at) in still_open)
        ]


class GitHubAlertRecord:
    """``AlertRecord`` on the ledger branch; one object per runner (its claims are its)."""

    def __init__(
        self,
        ledger: LedgerBranch,
        scrubber: Trajectory,
        *,
        clock: Callable[[], datetime] = _utcnow,
        sleep: Callable[[float], None] = time.sleep,
        lease: timedelta = CLAIM_LEASE,
        poll: float = POLL_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.ledger, self.scrubber = ledger, scrubber
        self.clock, self.sleep, self.lease, self.poll = clock, sleep, lease, poll
        self.owner = owner or uuid.uuid4().hex
        self._held: set[str] = set()
        self._paths: dict[str, str] = {}
        """Stored (redacted) group key -> its file, for keys ``groups`` handed out."""

    # -- files --------------------------------------------------------------------------

    def path(self, group_key: str) -> str:
        known = self._paths.get(group_key)
        if known is not None:
            return known
        return f"{FOLDER}/{hashlib.sha256(group_key.encode()).hexdigest()}.json"

    def _parse(self, path: str, raw: bytes) -> GroupFile:
        try:
            return GroupFile.model_validate_json(raw)
        except ValidationError as exc:
            raise InfrabotError(
                f"{path} on {self.ledger.branch} is not an alert record "
                f"({exc.errors()[0]['msg']}): move it aside, or restore it from the "
                "branch's history"
            ) from exc

    def _load(self, group_key: str) -> GroupFile | None:
        path = self.path(group_key)
        found = self.ledger.read(path)
        return None if found is None else self._parse(path, found[0])

    def _change(self, group_key: str, what: str, edit: Callable[[GroupFile], None]) -> None:
        """One guarded update of the group's file (redone on what is there when another
        runner wrote first): ``edit`` the document, write it back when it changed."""
        path = self.path(group_key)
        stored_key = self.scrubber.clean_data({"k": group_key})["k"]

        def change(current: bytes | None) -> bytes:
            doc = GroupFile(group_key=stored_key) if current is None else self._parse(path, current)
            edit(doc)
            data = json.dumps(doc.model_dump(mode="json"), indent=1, sort_keys=True).encode()
            if len(data) > MAX_FILE:
                raise InfrabotError(
                    f"the alert record of one group would be {len(data):,} bytes, over the "
                    f"ledger's {MAX_FILE:,} ({path} on {self.ledger.branch}): nothing was "
                    "recorded; close or resolve the group's alerts in Alertmanager, or move "
                    "the file aside"
                )
            return data + b"\n"

        self.ledger.update(path, change, f"alerts {path.rsplit('/', 1)[-1][:12]}: {what}")

    def _clean(self, alert: Alert) -> Alert:
        """The alert as stored: redacted (masks and clipping keep every field's form)."""
        return Alert.model_validate(
            self.scrubber.clean_data(alert.model_dump(mode="json", by_alias=True))
        )

    @staticmethod
    def _delivery(group_key: str, row: _Delivery) -> Delivery:
        return Delivery(group_key, Alert.model_validate(row.alert), row.received_at)

    # -- AlertRecord --------------------------------------------------------------------

    def receive(
        self, group_key: str, alerts: Sequence[Alert], now: datetime, flap_window: timedelta
    ) -> Received:
        cleaned = [self._clean(a) for a in alerts]
        new: list[Delivery] = []
        waits = int(self.lease.total_seconds() / self.poll) + 2
        for attempt in range(waits):
            out: dict[str, Any] = {}
            adding = cleaned if attempt == 0 else []

            def edit(
                doc: GroupFile, adding: list[Alert] = adding, out: dict[str, Any] = out
            ) -> None:
                out["new"] = self._add(doc, group_key, adding, now)
                pending = doc.pending()
                out["claimed"] = bool(pending) and doc.claimable(self.owner, self.clock())
                if out["claimed"]:
                    doc.claim = _Claim(owner=self.owner, until=self.clock() + self.lease)
                doc.prune(now, flap_window)
                since = min((d.received_at for d in pending), default=now) - flap_window
                out["pending"] = [self._delivery(group_key, d) for d in pending]
                out["history"] = doc.history([d.fingerprint for d in pending], since)
                out["ticket"] = doc.ticket.number if doc.ticket else None

            self._change(group_key, "receive", edit)
            if attempt == 0:
                new = out["new"]
            if out["claimed"] or not out["pending"]:
                if out["claimed"]:
                    self._held.add(group_key)
                return Received(
                    new=new, pending=out["pending"], history=out["history"], ticket=out["ticket"]
                )
            self.sleep(self.poll)  # another runner works the group: wait for its claim
        # recorded, and still claimed after a whole lease: the next intake works them
        return Received(new=new, pending=[], history={}, ticket=out["ticket"])

    def _add(
        self, doc: GroupFile, group_key: str, alerts: Sequence[Alert], now: datetime
    ) -> list[Delivery]:
        seen = {d.key for d in doc.deliveries}
        new = []
        for alert in alerts:
            d = Delivery(group_key, alert, now)
            if d.key in seen:
                continue
            seen.add(d.key)
            fp, start, status = d.key
            doc.deliveries.append(
                _Delivery(
                    fingerprint=fp,
                    starts_at=start,
                    status=status,
                    received_at=now,
                    alert=alert.model_dump(mode="json", by_alias=True),
                )
            )
            if status == "firing" and (fp not in doc.first_starts or start < doc.first_starts[fp]):
                doc.first_starts[fp] = start
            new.append(d)
        return new

    def pending(self, group_key: str) -> list[Delivery]:
        doc = self._load(group_key)
        return [] if doc is None else [self._delivery(group_key, d) for d in doc.pending()]

    def _files(self) -> list[tuple[str, GroupFile]]:
        out = []
        for name in sorted(self.ledger.names(FOLDER)):
            if not name.endswith(".json"):
                continue
            path = f"{FOLDER}/{name}"
            found = self.ledger.read(path)
            if found is not None:
                doc = self._parse(path, found[0])
                self._paths[doc.group_key] = path
                out.append((path, doc))
        return out

    def pending_groups(self) -> list[str]:
        return [doc.group_key for _, doc in self._files() if doc.pending()]

    def mark_handled(
        self, deliveries: Sequence[Delivery], ticket: tuple[str, int, datetime] | None = None
    ) -> None:
        by_group: dict[str, list[Delivery]] = {}
        for d in deliveries:
            by_group.setdefault(d.group_key, []).append(d)
        if ticket is not None:
            by_group.setdefault(ticket[0], [])
        for group_key, done in by_group.items():
            keys = {Delivery(group_key, self._clean(d.alert), d.received_at).key for d in done}

            def edit(
                doc: GroupFile, keys: set[tuple[str, str, str]] = keys, group_key: str = group_key
            ) -> None:
                for row in doc.deliveries:
                    if row.key in keys:
                        row.handled = True
                if ticket is not None and ticket[0] == group_key:
                    doc.ticket = _Ticket(number=ticket[1], opened_at=ticket[2])
                if doc.claim is not None and doc.claim.owner == self.owner:
                    doc.claim = None

            self._change(group_key, "handled", edit)
            self._held.discard(group_key)

    def release(self, group_key: str) -> None:
        if group_key not in self._held:
            return

        def edit(doc: GroupFile) -> None:
            if doc.claim is not None and doc.claim.owner == self.owner:
                doc.claim = None

        with contextlib.suppress(InfrabotError):  # GitHub down: the lease runs out instead
            self._change(group_key, "released", edit)
        self._held.discard(group_key)

    def latest(self, group_key: str) -> list[Alert]:
        doc = self._load(group_key)
        if doc is None:
            return []
        latest: dict[str, Alert] = {}
        for row in sorted(doc.deliveries, key=lambda d: (d.received_at, d.starts_at)):
            latest[row.fingerprint] = Alert.model_validate(row.alert)
        return list(latest.values())

    def open_firings(self, group_key: str) -> dict[str, str]:
        doc = self._load(group_key)
        return {} if doc is None else doc.open_firings()

    def groups(self) -> list[tuple[str, int]]:
        found = [(doc.group_key, doc.ticket.number) for _, doc in self._files() if doc.ticket]
        return sorted(found, key=lambda g: g[1])

    def ticket(self, group_key: str) -> int | None:
        doc = self._load(group_key)
        return doc.ticket.number if doc is not None and doc.ticket is not None else None

    def set_ticket(self, group_key: str, ticket: int, now: datetime) -> None:
        def edit(doc: GroupFile) -> None:
            doc.ticket = _Ticket(number=ticket, opened_at=now)

        self._change(group_key, "ticket", edit)
