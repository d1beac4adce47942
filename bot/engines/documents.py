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
    Container,
    DnsRecord,
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
    return ResourceChange(
        action=ChangeAction.DELETE, kind=resource.kind, name=resource.name, data=_written(resource)
    )


def _written(resource: Resource) -> dict[str, Any]:
    """The resource as its file writes it: only the fields set there, in schema order."""
    data = resource.model_dump(mode="json", exclude_unset=True) | {"kind": resource.kind}
    return {k: data[k] for k in field_order(resource.kind) if k in data}


def _existing(estate: Estate, kind: str, name: str) -> Resource:
    found = estate.get(kind, name)
    if found is None:
        raise ValueError(f"there is no {kind} {name}")
    return found


def _update(resource: Resource, changes: dict[str, Any]) -> ResourceChange:
    """The resource's document as written (only the fields its file sets), changed."""
    data = _written(resource)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    ordered = {k: data[k] for k in field_order(resource.kind) if k in data}
    return ResourceChange(
        action=ChangeAction.UPDATE, kind=resource.kind, name=resource.name, data=ordered
    )


def change_container(values: Values, estate: Estate) -> list[ResourceChange]:
    found = _existing(estate, "Container", values["container"])
    return [_update(found, _pick(values, "node", "cores", "memory", "disk"))]


def change_site(values: Values, estate: Estate) -> list[ResourceChange]:
    found = _existing(estate, "Site", _site_name(values["site"], estate))
    assert isinstance(found, Site)
    changes: dict[str, Any] = _pick(values, "upstream")
    if values.get("tls") == "off":
        changes["tls"] = None
    elif "certificate" in values or "tls_key" in values:
        old = found.tls.model_dump() if found.tls else {}
        tls = (
            old
            | _pick(values, "certificate")
            | ({"key": values["tls_key"]} if "tls_key" in values else {})
        )
        if set(tls) != {"certificate", "key"}:
            raise ValueError("TLS needs both a certificate and a key")
        changes["tls"] = tls
    return [_update(found, changes)]


def _site_name(ref: str, estate: Estate) -> str:
    sites = [s for s in estate.of_kind("Site") if isinstance(s, Site)]
    found = next((s for s in sites if ref in (s.name, s.domain)), None)
    if found is None:
        raise ValueError(f"there is no site {ref}")
    return found.name


def change_dns_record(values: Values, estate: Estate) -> list[ResourceChange]:
    found = _existing(estate, "DnsRecord", values["record"])
    return [_update(found, _pick(values, "type", "value", "ttl"))]


def remove_dns_record(values: Values, estate: Estate) -> list[ResourceChange]:
    return [_delete(_existing(estate, "DnsRecord", values["record"]))]


def stop_monitoring(values: Values, estate: Estate) -> list[ResourceChange]:
    return [_delete(_existing(estate, "MonitoringTarget", values["target"]))]


def remove_container(values: Values, estate: Estate) -> list[ResourceChange]:
    """The container and everything pointing at it: sites proxying to it, their records,
    and monitoring that scrapes it or probes those sites."""
    found = _existing(estate, "Container", values["container"])
    assert isinstance(found, Container)
    sites = [s for s in estate.of_kind("Site") if isinstance(s, Site) and _serves(s, found)]
    domains = {s.domain for s in sites}
    records = [
        r
        for r in estate.of_kind("DnsRecord")
        if isinstance(r, DnsRecord) and (r.name in domains or r.value == str(found.ip.ip))
    ]
    endpoint = f"{found.ip.ip}:{found.service_port}"
    targets = [
        m
        for m in estate.of_kind("MonitoringTarget")
        if isinstance(m, MonitoringTarget)
        and (endpoint in m.targets or m.name == found.name or _probed_host(m) in domains)
    ]
    gone: list[Resource] = [found, *sites, *records, *targets]
    return [_delete(r) for r in gone]


def _serves(site: Site, container: Container) -> bool:
    host = urlsplit(site.upstream).hostname
    return host in (str(container.ip.ip), container.name, container.hostname)


BUILDERS: dict[str, Builder] = {
    "create-container": container,
    "expose-site": site,
    "set-up-monitoring": monitoring,
    "add-dns-record": dns_record,
    "remove-site": remove_site,
    "change-container": change_container,
    "remove-container": remove_container,
    "change-site": change_site,
    "change-dns-record": change_dns_record,
    "remove-dns-record": remove_dns_record,
    "stop-monitoring": stop_monitoring,
}


def build(capability: Capability, values: Values, estate: Estate) -> list[ResourceChange]:
    """The capability's changes with complete, ordered documents (KeyError: a value missing)."""
    builder = BUILDERS.get(capability.name)
    if builder is None:
        raise ValueError(f"the offline engine has no builder for capability {capability.name}")
    return [_finish(change, capability) for change in builder(values, estate)]


def _finish(change: ResourceChange, capability: Capability) -> ResourceChange:
    if change.action is not ChangeAction.CREATE:
        return change  # an existing document keeps the fields its file sets
    data = document(change.kind, change.data, capability.shown_fields(change.kind))
    return change.model_copy(update={"data": data})


__all__ = ["BUILDERS", "build", "document", "field_order"]
