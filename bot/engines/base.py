"""The drafting interface: an engine turns a ticket into a plan, and a plan into edits.

Everything an engine is given comes in an ``EngineContext``; what it returns is data (a
``Plan``, a ``ChangeSet``, a ``Clarification`` when it would otherwise have to guess, or
``Stopped`` when it gave up).  The pipeline validates whatever an engine returns: nothing
is trusted because an engine produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.engines.capabilities import Capability
from bot.engines.files import FileSource, NoFiles
from bot.estate import Estate
from bot.model import ChangeSet, Clarification, DryRun, Plan, Stopped, Ticket, ValidationReport


class DraftChecks(Protocol):
    """The project's own checks of a draft, run on a scratch copy of the base tree."""

    def validate(self, changes: ChangeSet) -> ValidationReport: ...

    def dry_run(self, changes: ChangeSet) -> DryRun: ...


@dataclass(frozen=True)
class EngineContext:
    estate: Estate
    capabilities: Sequence[Capability]
    read: tuple[str, ...] = ()
    """Files the engine was given (listed in the plan's "what it read")."""
    files: FileSource = field(default_factory=NoFiles)
    """Read-only access to the base branch's files (confined to the repository)."""
    checks: DraftChecks | None = None
    """validate and dry-run of a draft; None where the caller cannot run them."""


class Engine(Protocol):
    name: str

    def architect(self, ticket: Ticket, ctx: EngineContext) -> Plan | Clarification | Stopped: ...

    def implement(
        self, ticket: Ticket, plan: Plan, ctx: EngineContext
    ) -> ChangeSet | Clarification | Stopped: ...
