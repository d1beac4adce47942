"""Resource kinds of the desired state.

``schemas/<Kind>.schema.json`` is the source of truth; these models mirror it so the
rest of the bot works on typed values.  ``tests/test_schema_agreement.py`` fails when
the two drift apart (fields, required fields, enums, defaults).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal, Self

from fqdn import FQDN
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, model_validator

# Characters no desired-state string may hold: C0 and C1 controls, DEL, and the invisible
# format characters that make text read other than it is (zero-width, line/paragraph
# separators, bidi overrides, BOM).  Free text (``description``) may hold tabs and newlines.
# The same patterns are in schemas/*.schema.json (tests/test_schema_agreement.py).
_INVISIBLE = r"\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
LINE_PATTERN = rf"^[^\u0000-\u001f\u007f-\u009f{_INVISIBLE}]*$"
TEXT_PATTERN = rf"^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f{_INVISIBLE}]*$"
TEMPLATE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"


def is_hostname(value: object) -> bool:
    """RFC 1123 host name, the whole value: printable ASCII only, so no trailing newline
    slips through a ``$`` the way it does in ``fqdn``'s own regex."""
    if not isinstance(value, str):
        return True  # not a string: the type check reports it
    if not value or not (value.isascii() and value.isprintable()) or " " in value:
        return False
    # ``FQDN(value, min_labels=1).is_valid``, without compiling its regex on every call
    # (that was most of the time spent reading 20,000 cached resources)
    length = len(value) - value.endswith(".")
    return length <= 253 and _FQDN_SYNTAX.match(value) is not None


_FQDN_SYNTAX = re.compile(FQDN.PREFERRED_NAME_SYNTAX_REGEXSTR, re.IGNORECASE)


def _hostname(value: str) -> str:
    if not is_hostname(value):
        raise ValueError("not a valid host name")
    return value


Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
Hostname = Annotated[str, AfterValidator(_hostname)]
Line = Annotated[str, Field(pattern=LINE_PATTERN)]
Text = Annotated[str, Field(pattern=TEXT_PATTERN)]
Port = Annotated[int, Field(ge=1, le=65535)]
Role = Literal["proxy", "dns", "monitoring", "node"]
# URLs and paths end up inside nginx and Prometheus config: no ';', spaces, quotes or braces.
URL_PATTERN = r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?(/[A-Za-z0-9._~/-]*)?$"
PATH_PATTERN = r"^/[A-Za-z0-9._/-]+$"


class _Resource(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    owner: Annotated[str, Field(min_length=1, pattern=LINE_PATTERN)] | None = None
    environment: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] | None = None
    description: Text | None = None

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
    hostname: Hostname
    cores: int = Field(default=1, ge=1, le=128)
    memory: int = Field(default=512, ge=16, le=1048576)
    disk: int = Field(default=8, ge=1, le=65536)
    ip: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None = None
    template: Annotated[str, Field(pattern=TEMPLATE_PATTERN)] = "debian-12-standard"
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
    domain: Hostname
    upstream: str = Field(pattern=URL_PATTERN)
    proxy: Name
    tls: Tls | None = None

    def hosts(self) -> tuple[str, ...]:
        return (self.proxy,)


class DnsRecord(_Resource):
    kind: Literal["DnsRecord"] = "DnsRecord"
    name: Hostname
    type: Literal["A", "CNAME"] = "A"
    value: Line
    server: Name
    ttl: int = Field(default=300, ge=0, le=604800)

    @model_validator(mode="after")
    def _value_fits_type(self) -> Self:
        """An A record's value is an IPv4 address, a CNAME's a host name (as in the schema)."""
        if self.type == "CNAME" and not is_hostname(self.value):
            raise ValueError("a CNAME's value must be a host name")
        if self.type == "A":
            ipaddress.IPv4Address(self.value)  # ValueError for anything else
        return self

    def hosts(self) -> tuple[str, ...]:
        return (self.server,)


class MonitoringTarget(_Resource):
    kind: Literal["MonitoringTarget"] = "MonitoringTarget"
    name: Name
    monitor: Name
    targets: tuple[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")], ...] = Field(
        min_length=1
    )
    probe: str | None = Field(default=None, pattern=URL_PATTERN)
    labels: dict[Annotated[str, Field(pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$")], Line] = Field(
        default_factory=dict
    )

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
