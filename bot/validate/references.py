"""Cross-references between resources: hosts exist and have the right role, identities and
addresses are unique, every Site's domain has a DnsRecord.

Pure: works on documents that already passed the schema and the model.  A duplicate names both
places it occurs, so whoever reads the finding can pick which one to change.  A reference to a
resource that exists but failed validation is not reported again as missing: the schema finding
on that resource already says what to fix.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Iterable, Sequence
from dataclasses import dataclass

from bot.model import Container, DnsRecord, Finding, Host, Site
from bot.validate.jsonpath import json_path
from bot.validate.models import Parsed

# kind -> (field naming the host, role the host must have)
HOST_FIELDS: dict[str, tuple[str, str]] = {
    "Container": ("node", "node"),
    "Site": ("proxy", "proxy"),
    "DnsRecord": ("server", "dns"),
    "MonitoringTarget": ("monitor", "monitoring"),
}


@dataclass(frozen=True)
class _Use:
    """One occurrence of a value that must be unique."""

    key: Hashable
    label: str
    item: Parsed
    field: str


def reference_findings(
    parsed: Sequence[Parsed], *, invalid: Collection[tuple[str, str]] = ()
) -> list[Finding]:
    """``invalid``: (kind, name) of documents present in the tree that did not validate."""
    return [
        *_duplicates(_identities(parsed)),
        *_host_references(parsed, {name for kind, name in invalid if kind == "Host"}),
        *_duplicates(_addresses(parsed)),
        *_duplicates(_vmids(parsed)),
        *_duplicates(_hostnames(parsed)),
        *_duplicates(_domains(parsed)),
        *_sites_without_dns(parsed, {_dns_name(n) for k, n in invalid if k == "DnsRecord"}),
    ]


def _dns_name(name: str) -> str:
    return name.lower().rstrip(".")


def _identities(parsed: Iterable[Parsed]) -> list[_Use]:
    uses = []
    for p in parsed:
        kind, name = p.resource.key
        key_name = _dns_name(name) if kind == "DnsRecord" else name
        uses.append(_Use((kind, key_name), f"{kind} {name!r}", p, "name"))
    return uses


def _addresses(parsed: Iterable[Parsed]) -> list[_Use]:
    """Container IPs and the addresses of ssh hosts (local hosts all share loopback)."""
    uses = []
    for p in parsed:
        r = p.resource
        if isinstance(r, Container):
            uses.append(_Use(r.ip.ip, f"IP {r.ip.ip}", p, "ip"))
        elif isinstance(r, Host) and r.connection == "ssh":
            uses.append(_Use(r.address, f"IP {r.address}", p, "address"))
    return uses


def _vmids(parsed: Iterable[Parsed]) -> list[_Use]:
    return [
        _Use(p.resource.vmid, f"vmid {p.resource.vmid}", p, "vmid")
        for p in parsed
        if isinstance(p.resource, Container)
    ]


def _hostnames(parsed: Iterable[Parsed]) -> list[_Use]:
    return [
        _Use(_dns_name(r.hostname), f"hostname {r.hostname!r}", p, "hostname")
        for p in parsed
        if isinstance(r := p.resource, Container)
    ]


def _domains(parsed: Iterable[Parsed]) -> list[_Use]:
    return [
        _Use(_dns_name(r.domain), f"Site domain {r.domain!r}", p, "domain")
        for p in parsed
        if isinstance(r := p.resource, Site)
    ]


def _duplicates(uses: Iterable[_Use]) -> list[Finding]:
    first: dict[Hashable, _Use] = {}
    findings = []
    for use in uses:
        earlier = first.setdefault(use.key, use)
        if earlier is not use:
            where = _places(earlier, use)
            findings.append(_finding(use.item, use.field, f"duplicate {use.label}: {where}"))
    return findings


def _places(a: _Use, b: _Use) -> str:
    if a.item.doc.file != b.item.doc.file:
        return f"{a.item.doc.file} and {b.item.doc.file}"
    line_a = a.item.doc.line_of((a.field,))
    line_b = b.item.doc.line_of((b.field,))
    return f"{a.item.doc.file}:{line_a} and {b.item.doc.file}:{line_b}"


def _host_references(parsed: Sequence[Parsed], invalid_hosts: set[str]) -> list[Finding]:
    hosts: dict[str, Parsed] = {}
    for p in parsed:
        if isinstance(p.resource, Host):
            hosts.setdefault(p.resource.name, p)
    findings = []
    for p in parsed:
        kind = p.resource.key[0]
        if kind in HOST_FIELDS:
            field, role = HOST_FIELDS[kind]
            problem = _host_problem(p, field, role, hosts, invalid_hosts)
            if problem:
                findings.append(_finding(p, field, problem))
    return findings


def _host_problem(
    p: Parsed, field: str, role: str, hosts: dict[str, Parsed], invalid_hosts: set[str]
) -> str | None:
    kind, name = p.resource.key
    target = str(getattr(p.resource, field))
    host = hosts.get(target)
    if host is None:
        if target in invalid_hosts:
            return None  # it exists; its own findings say why it did not validate
        known = ", ".join(sorted(hosts)) or "none"
        return f"{kind} {name!r}: {field} {target!r} is not a Host (hosts: {known})"
    if not isinstance(host.resource, Host) or role in host.resource.roles:
        return None
    roles = ", ".join(host.resource.roles)
    return (
        f"{kind} {name!r}: {field} {target!r} must be a Host with role {role!r}, "
        f"but its roles are {roles} ({host.doc.file})"
    )


def _sites_without_dns(parsed: Sequence[Parsed], invalid_names: set[str]) -> list[Finding]:
    names = {_dns_name(p.resource.name) for p in parsed if isinstance(p.resource, DnsRecord)}
    names |= invalid_names
    findings = []
    for p in parsed:
        site = p.resource
        if isinstance(site, Site) and _dns_name(site.domain) not in names:
            message = (
                f"Site {site.name!r} serves {site.domain}, but no DnsRecord is named "
                f"{site.domain}: add one (kind: DnsRecord, name: {site.domain})"
            )
            findings.append(_finding(p, "domain", message))
    return findings


def _finding(p: Parsed, field: str, message: str) -> Finding:
    return Finding(
        check="references",
        file=p.doc.file,
        line=p.doc.line_of((field,)),
        path=json_path((field,)),
        message=message,
    )
