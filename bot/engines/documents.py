"""The resource documents each capability produces from its filled parameters.

A builder is a pure function of (parameters, estate).  ``document`` orders the fields as
people write them (kind, name, then the schema's property order) and leaves out values
equal to the schema default unless the capability's example writes them out, so what
an engine drafts looks like what its capability file promises.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from pydantic_core import PydanticUndefined

from bot.engines.capabilities import Capability
from bot.engines.facts import Values
from bot.estate import Estate
from bot.model import (
    KINDS,
    ChangeAction,
    Host,
    MonitoringTarget,
    Resource,
    ResourceChange,
    Site,
)

Builder = Callable[[Values, Estate], list[ResourceChange]]
COMMON = ("owner", "environment")


def field_order(kind: str) -> list[str]:
    rest = [f for f in KINDS[kind].model_fields if f not in ("kind", "name")]
    return ["kind", "name", *rest]


def _default(kind: str, field: str) -> Any:
    info = KINDS[kind].model_fields[field]
    value = info.get_default(call_default_factory=True)
    return None if value is PydanticUndefined else value


def document(kind: str, data: dict[str, Any], shown: frozenset[str]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": kind}
    for key in field_order(kind)[1:]:
        value = data.get(key)
        if value is None or (key not in shown and value == _default(kind, key)):
            continue
        out[key] = value
    return out


def _pick(values: Values, *keys: str) -> dict[str, Any]:
    return {k: values[k] for k in keys if k in values}


def _create(kind: str, data: dict[str, Any]) -> ResourceChange:
    return ResourceChange(action=ChangeAction.CREATE, kind=kind, name=str(data["name"]), data=data)


def container(values: Values, estate: Estate) -> list[ResourceChange]:
    fields = (
        "name",
        *COMMON,
        "node",
        "vmid",
        "hostname",
        "cores",
        "memory",
        "disk",
        "ip",
        "gateway",
        "service_port",
    )
    return [_create("Container", _pick(values, *fields))]


def site(values: Values, estate: Estate) -> list[ResourceChange]:
    proxy = estate.get("Host", values["proxy"])
    if not isinstance(proxy, Host):
        raise ValueError(f"proxy {values['proxy']} is not a host of the estate")
    site_data = _pick(values, "name", *COMMON, "domain", "upstream", "proxy")
    record = {
        "name": values["domain"],
        **_pick(values, *COMMON),
        "type": "A",
        "value": str(proxy.address),
        "server": values["dns_server"],
    }
    return [_create("Site", site_data), _create("DnsRecord", record)]


def monitoring(values: Values, estate: Estate) -> list[ResourceChange]:
    data = _pick(values, "name", *COMMON, "monitor", "targets", "probe")
    data["labels"] = {"service": values["name"]}
    return [_create("MonitoringTarget", data)]


def dns_record(values: Values, estate: Estate) -> list[ResourceChange]:
    data = {
        "name": values["domain"],
        **_pick(values, *COMMON, "type", "value"),
        "server": values["dns_server"],
        **_pick(values, "ttl"),
    }
    return [_create("DnsRecord", data)]


def remove_site(values: Values, estate: Estate) -> list[ResourceChange]:
    """The site, its DNS record and the monitoring that probes it or shares its name."""
    sites = [s for s in estate.of_kind("Site") if isinstance(s, Site)]
    found = next((s for s in sites if values["site"] in (s.name, s.domain)), None)
    if found is None:
        raise ValueError(f"there is no site {values['site']}")
    gone: list[Resource] = [found]
    record = estate.get("DnsRecord", found.domain)
    gone += [record] if record is not None else []
    gone += [
        m
        for m in estate.of_kind("MonitoringTarget")
        if isinstance(m, MonitoringTarget)
        and (m.name == found.name or _probed_host(m) == found.domain)
    ]
    return [_delete(r) for r in gone]


def _probed_host(target: MonitoringTarget) -> str | None:
    return urlsplit(target.probe).hostname if target.probe else None


def _delete(resource: Resource) -> ResourceChange:
    data = resource.model_dump(mode="json", exclude_none=True)
    return ResourceChange(
        action=ChangeAction.DELETE, kind=resource.kind, name=resource.name, data=data
    )


BUILDERS: dict[str, Builder] = {
    "create-container": container,
    "expose-site": site,
    "set-up-monitoring": monitoring,
    "add-dns-record": dns_record,
    "remove-site": remove_site,
}


def build(capability: Capability, values: Values, estate: Estate) -> list[ResourceChange]:
    """The capability's changes with complete, ordered documents (KeyError: a value missing)."""
    builder = BUILDERS.get(capability.name)
    if builder is None:
        raise ValueError(f"the offline engine has no builder for capability {capability.name}")
    return [_finish(change, capability) for change in builder(values, estate)]


def _finish(change: ResourceChange, capability: Capability) -> ResourceChange:
    data = document(change.kind, change.data, capability.shown_fields(change.kind))
    return change.model_copy(update={"data": data})


__all__ = ["BUILDERS", "build", "document", "field_order"]
