"""``engine: auto``: the offline engine first; Claude when the offline engine cannot map the
request at all and a key is present.  The plan says which engine drafted it, and the
implementer of that engine implements it."""

from __future__ import annotations

from bot.engines.base import Engine, EngineContext
from bot.model import ChangeSet, Clarification, Plan, Stopped, Ticket


class AutoEngine:
    name = "auto"

    def __init__(self, offline: Engine, claude: Engine | None) -> None:
        self.offline, self.claude = offline, claude

    def architect(self, ticket: Ticket, ctx: EngineContext) -> Plan | Clarification | Stopped:
        first = self.offline.architect(ticket, ctx)
        if isinstance(first, Clarification) and not first.understood and self.claude is not None:
            return self.claude.architect(ticket, ctx)
        return first

    def implement(
        self, ticket: Ticket, plan: Plan, ctx: EngineContext
    ) -> ChangeSet | Clarification | Stopped:
        if plan.engine == "claude" and self.claude is not None:
            return self.claude.implement(ticket, plan, ctx)
        return self.offline.implement(ticket, plan, ctx)
