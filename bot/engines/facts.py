"""What parameter resolution works from, and what each step of it can come to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.engines.capabilities import Capability
from bot.engines.text import Request
from bot.estate import Estate
from bot.model import Container, Site

ORDER = (
    "node",
    "proxy",
    "dns_server",
    "monitor",
    "domain",
    "name",
    "hostname",
    "container",
    "record",
    "target",
    "vmid",
    "ip",
    "gateway",
    "cores",
    "memory",
    "disk",
    "service_port",
    "upstream",
    "tls",
    "certificate",
    "tls_key",
    "targets",
    "probe",
    "type",
    "value",
    "ttl",
    "site",
    "owner",
    "environment",
)
"""Resolution order: a parameter may depend only on those before it."""

Values = dict[str, Any]


@dataclass(frozen=True)
class Facts:
    request: Request
    estate: Estate
    author: str
    capabilities: tuple[Capability, ...]

    @property
    def prose(self) -> str:
        return self.request.prose

    def uses(self, capability: str) -> bool:
        return any(c.name == capability for c in self.capabilities)

    def creates(self, kind: str) -> bool:
        return any(kind in c.creates for c in self.capabilities)

    def parameter_names(self) -> list[str]:
        names = {p.name for c in self.capabilities for p in c.parameters}
        return [n for n in ORDER if n in names] + sorted(names - set(ORDER))

    def required(self, name: str) -> bool:
        return any(p.required for c in self.capabilities for p in c.parameters if p.name == name)

    def default(self, name: str) -> tuple[str, str] | None:
        """(capability, default) of the first capability giving the parameter a default."""
        for cap in self.capabilities:
            param = cap.parameter(name)
            if param is not None and param.default is not None:
                return cap.name, param.default
        return None

    def container(self, name: str | None) -> Container | None:
        found = self.estate.get("Container", name) if name else None
        return found if isinstance(found, Container) else None

    def sites(self) -> list[Site]:
        return [s for s in self.estate.of_kind("Site") if isinstance(s, Site)]

    def site(self, ref: str | None) -> Site | None:
        """The site with this name, or else the one serving this domain."""
        by_name = [s for s in self.sites() if s.name == ref]
        return next(iter(by_name or [s for s in self.sites() if s.domain == ref]), None)


@dataclass(frozen=True)
class Filled:
    """A raw value found for a parameter; it is parsed and checked before it is used."""

    raw: str
    assumption: str | None = None
    """Set when the value was derived rather than told (listed in the plan)."""
    default_of: str | None = None
    """The capability whose default this is."""


@dataclass(frozen=True)
class Ask:
    """The value cannot be settled without a person; ``problem`` says why (may be empty)."""

    problem: str = ""


@dataclass(frozen=True)
class Blocked:
    """The parameter waits on another one that is still unknown (that one is asked)."""


BLOCKED = Blocked()
Outcome = Filled | Ask | Blocked | None
