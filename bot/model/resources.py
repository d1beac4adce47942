"""Resource kinds of the desired state.

``schemas/<Kind>.schema.json`` is the source of truth; these models mirror it so the
rest of the bot works on typed values.  ``tests/test_schema_agreement.py`` fails when
the two drift apart (fields, required fields, enums, defaults).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Port = Annotated[int, Field(ge=1, le=65535)]
Role = Literal["proxy", "dns", "monitoring", "node"]
# URLs and paths end up inside nginx and Prometheus config: no ';', spaces, quotes or braces.
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
PATH_PATTERN = r"^/[A-Za-z0-9._/-]+$"


class _Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    owner: str | None = None
    environment: str | None = None
    description: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(kind, name): the identity of a resource in the estate."""
        return (str(getattr(self, "kind")), self.name)  # noqa: B009 - kind is per subclass

    def hosts(self) -> tuple[str, ...]:
        """Names of the hosts whose configuration this resource ends up on."""
        return ()


class Ports(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    http: Port | None = None
    https: Port | None = None
    dns: Port | None = None


class Host(_Resource):
    kind: Literal["Host"] = "Host"
    name: Name
    address: ipaddress.IPv4Address
    connection: Literal["local", "ssh"] = "ssh"
    roles: tuple[Role, ...] = Field(min_length=1)
    provider: Literal["local", "proxmox"] = "local"
    ports: Ports = Ports()

    def hosts(self) -> tuple[str, ...]:
        return (self.name,)


class Container(_Resource):
    kind: Literal["Container"] = "Container"
    name: Name
    node: Name
    vmid: int = Field(ge=100, le=999999999)
    hostname: str
    cores: int = Field(default=1, ge=1, le=128)
    memory: int = Field(default=512, ge=16, le=1048576)
    disk: int = Field(default=8, ge=1, le=65536)
    ip: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None = None
    template: str = "debian-12-standard"
    service_port: Port = 8080

    def hosts(self) -> tuple[str, ...]:
        return (self.node,)


class Tls(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    certificate: str = Field(pattern=PATH_PATTERN)
    key: str = Field(pattern=PATH_PATTERN)


class Site(_Resource):
    kind: Literal["Site"] = "Site"
    name: Name
    domain: str
    upstream: str = Field(pattern=URL_PATTERN)
    proxy: Name
    tls: Tls | None = None

    def hosts(self) -> tuple[str, ...]:
        return (self.proxy,)


class DnsRecord(_Resource):
    kind: Literal["DnsRecord"] = "DnsRecord"
    type: Literal["A", "CNAME"] = "A"
    value: str
    server: Name
    ttl: int = Field(default=300, ge=0, le=604800)

    def hosts(self) -> tuple[str, ...]:
        return (self.server,)


class MonitoringTarget(_Resource):
    kind: Literal["MonitoringTarget"] = "MonitoringTarget"
    name: Name
    monitor: Name
    targets: tuple[str, ...] = Field(min_length=1)
    probe: str | None = Field(default=None, pattern=URL_PATTERN)
    labels: dict[str, str] = Field(default_factory=dict)

    def hosts(self) -> tuple[str, ...]:
        return (self.monitor,)


Resource = Annotated[
    Host | Container | Site | DnsRecord | MonitoringTarget, Field(discriminator="kind")
]
KINDS: dict[str, type[_Resource]] = {
    "Host": Host,
    "Container": Container,
    "Site": Site,
    "DnsRecord": DnsRecord,
    "MonitoringTarget": MonitoringTarget,
}
_ADAPTER: TypeAdapter[Resource] = TypeAdapter(Resource)


def parse_resource(data: Any) -> Resource:
    """Validate one YAML document into its resource model (raises pydantic.ValidationError)."""
    return _ADAPTER.validate_python(data)


def resource_data(resource: _Resource) -> dict[str, Any]:
    """The resource as plain YAML-ready data: defaults and empty values left out."""
    return resource.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {
        "kind": getattr(resource, "kind")  # noqa: B009
    }
