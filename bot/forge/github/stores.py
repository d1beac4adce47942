"""The stores on GitHub, composed once (``docs/adr/0013``; wired in ``bot.wiring``).

The lock and the intents are refs (``refs.py``); trajectories, plans and the estate's
records are files on the ledger branch, and each PR's check rides in its status comment
(``ledger.py``); the alert record is one file per alert group there too (``alerts.py``,
``docs/adr/0020``).  Each runner makes its own set; they meet only on GitHub.
``on_github`` is the one switch between these and the local stores.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeGuard

from bot.forge.base import Forge
from bot.forge.github.alerts import GitHubAlertRecord
from bot.forge.github.forge import GitHubForge
from bot.forge.github.ledger import GitHubRecords, GitHubTrajectory, LedgerBranch
from bot.forge.github.refs import GitHubIntents, GitHubLock, Liveness, Refs
from bot.ledger.trajectory import Redactor, Trajectory


def _utcnow() -> datetime:
    return datetime.now(UTC)


def on_github(forge: Forge) -> TypeGuard[GitHubForge]:
    """Does the bot's state live on GitHub?  When the forge is GitHub and ``github.stores``
    says so (the default: Actions runners keep nothing); else files and SQLite under
    ``.infrabot/``."""
    return isinstance(forge, GitHubForge) and forge.settings.stores == "github"


@dataclass(frozen=True)
class GitHubStores:
    lock: GitHubLock
    intents: GitHubIntents
    records: GitHubRecords
    trajectory: GitHubTrajectory
    alerts: GitHubAlertRecord


def github_stores(
    forge: GitHubForge,
    *,
    machine: str | None = None,
    clock: Callable[[], datetime] = _utcnow,
    redact: Redactor | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> GitHubStores:
    """The stores of one runner (``machine``: this host unless a test names another)."""
    settings = forge.settings
    liveness = Liveness(
        machine or socket.gethostname(), timedelta(minutes=settings.lease_minutes), clock
    )
    refs = Refs(forge.repo)
    ledger = LedgerBranch(forge.repo, settings.ledger_branch, sleep=sleep)
    # The local trajectory's redaction and clipping; its directory is never written.
    scrubber = Trajectory(directory=Path("/nonexistent"), redact=redact)
    return GitHubStores(
        lock=GitHubLock(refs, liveness),
        intents=GitHubIntents(refs, liveness),
        records=GitHubRecords(ledger, forge, scrubber),
        trajectory=GitHubTrajectory(ledger, scrubber),
        alerts=GitHubAlertRecord(ledger, scrubber, clock=clock, sleep=sleep),
    )
