"""The drafting interface: an engine turns a ticket into a plan, and a plan into edits.

Everything an engine is given comes in an ``EngineContext``; what it returns is data (a
``Plan``, a ``ChangeSet``, or a ``Clarification`` when it would otherwise have to guess).
The pipeline validates whatever an engine returns: nothing is trusted because an engine
produced it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.engines.capabilities import Capability
from bot.estate import Estate
from bot.model import ChangeSet, Clarification, Plan, Ticket


@dataclass(frozen=True)
class EngineContext:
    estate: Estate
    capabilities: Sequence[Capability]
    read: tuple[str, ...] = ()
    """Files the engine was given (listed in the plan's "what it read")."""


class Engine(Protocol):
    name: str

    def architect(self, ticket: Ticket, ctx: EngineContext) -> Plan | Clarification: ...

    def implement(
        self, ticket: Ticket, plan: Plan, ctx: EngineContext
    ) -> ChangeSet | Clarification: ...
