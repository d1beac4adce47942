"""The store interfaces the pipeline keeps its state behind (``docs/adr/0013``).

Locally they are files and SQLite under ``.infrabot/`` (``Records``, ``EstateLock``,
``IntentStore``, ``Trajectory``).  Where the forge is GitHub and the bot runs on
short-lived Actions runners, they must live where the forge lives and be atomic across
runners; each is small so that a second implementation is a small adapter.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from bot.ledger.events import Event
from bot.ledger.intents import ApplyIntent
from bot.ledger.lock import LockState, Unlock

if TYPE_CHECKING:
    from bot.flow.records import PrCheck
    from bot.model import Plan


class RunStore(Protocol):
    """A ticket's plan, a PR's last check, the hosts whose state is unknown, and the commit
    the whole estate was last brought to."""

    def save_plan(self, plan: Plan) -> None: ...

    def plan(self, ticket: int) -> Plan | None: ...

    def save_check(self, check: PrCheck) -> None: ...

    def check(self, pr: int) -> PrCheck | None: ...

    def unknown_hosts(self) -> set[str]: ...

    def set_unknown_hosts(self, hosts: set[str]) -> None: ...

    def applied(self) -> str | None: ...

    def set_applied(self, sha: str | None) -> None: ...


class LockStore(Protocol):
    """One apply at a time: a holder (PR number, 0 for a reconcile) or none."""

    def held(self, holder: int) -> AbstractContextManager[LockState]: ...

    def holder(self) -> LockState | None: ...

    def unlock(self) -> Unlock: ...


class IntentLedger(Protocol):
    """Apply intents, durable before an apply starts."""

    def begin(
        self, *, pr: int, ticket: int, sha: str, hosts: tuple[str, ...], actor: str
    ) -> ApplyIntent: ...

    def finish(self, intent: ApplyIntent, outcome: str) -> ApplyIntent: ...

    def interrupted(self) -> list[ApplyIntent]: ...


class TrajectoryStore(Protocol):
    """Append-only events per ticket."""

    def append(self, event: Event) -> None: ...

    def read(self, ticket: int) -> list[Event]: ...

    def tickets(self) -> list[int]: ...
