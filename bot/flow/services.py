"""Everything the pipeline talks to, passed in one value (no module globals)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bot.config import Config, Paths
from bot.engines.base import Engine
from bot.estate import Estate
from bot.execute import PlaybookRunner
from bot.execute.dnsmasq import dnsmasq_test
from bot.forge.base import Forge, Remote
from bot.gitrepo import GitRepo
from bot.ledger import Event
from bot.ledger.stores import IntentLedger, LockStore, RunStore, TrajectoryStore
from bot.model import Resource, Verification
from bot.validate.index import VerdictStore


class Verifier(Protocol):
    def verify(
        self, estate: Estate, resources: list[Resource], removed: list[Resource]
    ) -> list[Verification]: ...


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _quiet(_: str) -> None:
    return None


def _no_link(_: str | None) -> str | None:
    return None


@dataclass(frozen=True)
class Services:
    root: Path
    config: Config
    paths: Paths
    forge: Forge
    engine: Engine
    runner: PlaybookRunner
    git: GitRepo
    trajectory: TrajectoryStore
    lock: LockStore
    intents: IntentLedger
    records: RunStore
    verifier: Verifier
    nginx_test: Callable[[Path], tuple[bool, str]]
    preflight: Callable[[Estate, tuple[str, ...]], str | None]
    """Why the hosts cannot be applied right now (e.g. the local estate is down), or None."""
    clock: Callable[[], datetime] = _utcnow
    dnsmasq_test: Callable[[Mapping[str, str]], tuple[bool, str]] = dnsmasq_test
    """(ok, output) for one DNS host's rendered files (``bot.execute.dnsmasq``)."""
    progress: Callable[[str], None] = _quiet
    cache: VerdictStore | None = None
    """Validation verdicts kept between runs (None: every file is judged every time)."""
    remote: Remote | None = None
    """Where the forge keeps the repository when it is not ``git`` itself (GitHub):
    fetched from and pushed to (``bot.flow.remote``); None for the local forge."""
    log_link: Callable[[str | None], str | None] = _no_link
    """Where a comment's reader finds the full log at a local path (``bot.server.logs``)."""

    def record(
        self,
        ticket: int,
        actor: str,
        step: str,
        outcome: str,
        inputs: dict[str, Any] | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Append one event to the ticket's trajectory: if it is not there, it did not happen."""
        self.trajectory.append(
            Event(
                time=self.clock(),
                ticket=ticket,
                actor=actor,
                step=step,
                inputs=inputs or {},
                outcome=outcome,
                detail=detail or {},
            )
        )
