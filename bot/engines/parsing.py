"""Turning a raw parameter value into a checked one, or saying plainly what is wrong with it.

Every value, whoever supplied it (a ``key: value`` line, a phrase in the text, the estate,
a capability default), passes through ``parse`` and ``check`` here.  Patterns are strict
on purpose: nothing with braces, spaces or quotes survives, so template syntax can never
reach a resource document.  Numeric ranges are read from the resource models, which
mirror ``schemas/``.  Pure functions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Any

import annotated_types

from bot.engines.facts import Facts, Values
from bot.engines.finders import record_type
from bot.engines.text import has_template
from bot.model import Container, DnsRecord, Host

NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")
LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
HOSTNAME = re.compile(rf"{LABEL}(\.{LABEL})*")
FQDN = re.compile(rf"{LABEL}(\.{LABEL})+")
URL = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~%/-]*)?")
TARGET = re.compile(r"[A-Za-z0-9.-]+:\d{1,5}")
OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
ENVIRONMENT = re.compile(r"[a-z][a-z0-9-]{0,62}")
CIDR = re.compile(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}")
SAFE_TO_ECHO = re.compile(r"[A-Za-z0-9._:/@-]{1,100}")

Parser = Callable[[str], Any]


def shown(raw: str) -> str:
    """A raw value quoted back to the requester only if it is plainly harmless."""
    return f"`{raw}`" if SAFE_TO_ECHO.fullmatch(raw) else "the value given"


def _matching(pattern: re.Pattern[str], what: str, lower: bool = True) -> Parser:
    def parse(raw: str) -> str:
        value = raw.strip().lower() if lower else raw.strip()
        if not pattern.fullmatch(value):
            raise ValueError(f"is not {what}")
        return value

    return parse


SIZES = {
    "m": 1,
    "mb": 1,
    "mib": 1,
    "g": 1024,
    "gb": 1024,
    "gib": 1024,
    "t": 1024**2,
    "tb": 1024**2,
    "tib": 1024**2,
}


def _bounded(model: type[Any], field: str, unit: str = "") -> Parser:
    """A whole number in the model's range; with a unit (MiB, GiB) "4 GB" is read too."""
    meta = model.model_fields[field].metadata
    low: int = next(m.ge for m in meta if isinstance(m, annotated_types.Ge))  # type: ignore[assignment]
    high: int = next(m.le for m in meta if isinstance(m, annotated_types.Le))  # type: ignore[assignment]

    def parse(raw: str) -> int:
        match = re.fullmatch(r"(\d{1,12})\s*([a-z]*)", raw.strip().lower())
        number, suffix = (int(match.group(1)), match.group(2)) if match else (-1, "")
        if suffix and unit and suffix in SIZES and number * SIZES[suffix] % SIZES[unit] == 0:
            number, suffix = number * SIZES[suffix] // SIZES[unit], ""
        if suffix or not low <= number <= high:
            raise ValueError(f"is not a whole number from {low} to {high}")
        return number

    return parse


def _interface(raw: str) -> str:
    if not CIDR.fullmatch(raw.strip()):
        raise ValueError("is not an address with a prefix length, like 10.77.0.20/24")
    try:
        return str(ipaddress.IPv4Interface(raw.strip()))
    except ValueError:
        raise ValueError("is not a valid IPv4 address with a prefix length") from None


def _address(raw: str) -> str:
    try:
        return str(ipaddress.IPv4Address(raw.strip()))
    except ValueError:
        raise ValueError("is not an IPv4 address") from None


def _targets(raw: str) -> list[str]:
    items = [t for t in re.split(r"[\s,]+", raw.strip()) if t]
    if not items or not all(TARGET.fullmatch(t) for t in items):
        raise ValueError("is not a list of host:port endpoints")
    return list(dict.fromkeys(items))


def _owner(raw: str) -> str:
    return str(_matching(OWNER, "a team or user name", lower=False)(raw.strip().lstrip("@")))


def _record_value(raw: str) -> str:
    value = raw.strip().lower()
    if not (HOSTNAME.fullmatch(value) or re.fullmatch(r"[\d.]+", value)):
        raise ValueError("is not an IPv4 address or a hostname")
    return value


def _switch(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("on", "off"):
        raise ValueError("is not on or off")
    return value


def _record_type(raw: str) -> str:
    value = raw.strip().upper()
    if value not in ("A", "CNAME"):
        raise ValueError("is not A or CNAME")
    return value


_name = _matching(NAME, "a valid name (lowercase letters, digits and hyphens, at most 63)")
PARSERS: dict[str, Parser] = {
    "name": _name,
    "node": _name,
    "proxy": _name,
    "dns_server": _name,
    "monitor": _name,
    "container": _name,
    "hostname": _matching(HOSTNAME, "a valid hostname"),
    "domain": _matching(FQDN, "a domain name like app.example.com"),
    "site": _matching(HOSTNAME, "a site name or domain"),
    "vmid": _bounded(Container, "vmid"),
    "cores": _bounded(Container, "cores"),
    "memory": _bounded(Container, "memory", unit="mib"),
    "disk": _bounded(Container, "disk", unit="gib"),
    "service_port": _bounded(Container, "service_port"),
    "ttl": _bounded(DnsRecord, "ttl"),
    "ip": _interface,
    "gateway": _address,
    "upstream": _matching(URL, "an http:// or https:// URL", lower=False),
    "probe": _matching(URL, "an http:// or https:// URL", lower=False),
    "targets": _targets,
    "owner": _owner,
    "environment": _matching(ENVIRONMENT, "an environment name (lowercase, like lab)"),
    "type": _record_type,
    "value": _record_value,
    "record": _matching(FQDN, "a domain name like app.example.com"),
    "target": _name,
    "tls": _switch,
    "certificate": _matching(re.compile(r"/[A-Za-z0-9._/-]+"), "an absolute path", lower=False),
    "tls_key": _matching(re.compile(r"/[A-Za-z0-9._/-]+"), "an absolute path", lower=False),
}


def parse(name: str, raw: str) -> Any:
    """The typed value, or ValueError with a message that reads after the value's name."""
    if has_template(raw):
        raise ValueError("contains Jinja template syntax, which is never copied into the estate")
    if len(raw) > 253:
        raise ValueError("is too long")
    return PARSERS.get(name, _matching(NAME, "a valid value"))(raw)


def _host_role(role: str) -> Callable[[Any, Facts, Values], str | None]:
    def check(value: str, facts: Facts, values: Values) -> str | None:
        host = facts.estate.get("Host", value)
        if not isinstance(host, Host):
            return f"There is no host {value}."
        if role not in host.roles:
            return f"{value} is not a {role} host (its roles: {', '.join(host.roles)})."
        return None

    return check


def _check_name(value: str, facts: Facts, values: Values) -> str | None:
    for kind in ("Container", "Site", "MonitoringTarget"):
        if facts.creates(kind) and facts.estate.get(kind, value) is not None:
            where = facts.estate.files.get((kind, value), "the estate")
            return f"A {kind} named {value} already exists ({where})."
    return None


def _check_domain(value: str, facts: Facts, values: Values) -> str | None:
    if facts.creates("Site"):
        taken = next((s for s in facts.sites() if s.domain == value), None)
        if taken is not None:
            return f"{value} is already served by site {taken.name}."
    record = facts.estate.get("DnsRecord", value)
    if facts.creates("DnsRecord") and isinstance(record, DnsRecord):
        return f"{value} already has a DNS record (on {record.server})."
    return None


def _check_vmid(value: int, facts: Facts, values: Values) -> str | None:
    user = next((c for c in facts.estate.containers() if c.vmid == value), None)
    return f"vmid {value} is used by container {user.name}." if user else None


def _check_ip(value: str, facts: Facts, values: Values) -> str | None:
    address = ipaddress.IPv4Interface(value).ip
    user = next((c for c in facts.estate.containers() if c.ip.ip == address), None)
    return f"{address} is used by container {user.name}." if user else None


def _check_container(value: str, facts: Facts, values: Values) -> str | None:
    return None if facts.container(value) else f"There is no container {value}."


def _check_site(value: str, facts: Facts, values: Values) -> str | None:
    return None if facts.site(value) else f"There is no site {value}."


def _check_value(value: str, facts: Facts, values: Values) -> str | None:
    if record_type(facts, values) == "A":
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            return f"An A record needs an IPv4 address; {shown(value)} is not one."
    elif not FQDN.fullmatch(value):
        return f"A CNAME record needs a hostname; {shown(value)} is not one."
    return None


def _exists(kind: str, what: str) -> Callable[[Any, Facts, Values], str | None]:
    def check(value: str, facts: Facts, values: Values) -> str | None:
        return None if facts.estate.get(kind, value) is not None else f"There is no {what} {value}."

    return check


def _check_record(value: str, facts: Facts, values: Values) -> str | None:
    missing = _exists("DnsRecord", "DNS record")(value, facts, values)
    if missing or not facts.uses("remove-dns-record") or facts.uses("remove-site"):
        return missing
    site = next((s for s in facts.sites() if s.domain == value), None)
    if site is None:
        return None
    return (
        f"{value} is the domain of site {site.name}, which needs its record: "
        "remove the site to take both down "
        f"(reply `capability: remove-site` and `site: {site.name}`)."
    )


CHECKS: dict[str, Callable[[Any, Facts, Values], str | None]] = {
    "node": _host_role("node"),
    "proxy": _host_role("proxy"),
    "dns_server": _host_role("dns"),
    "monitor": _host_role("monitoring"),
    "name": _check_name,
    "domain": _check_domain,
    "vmid": _check_vmid,
    "ip": _check_ip,
    "container": _check_container,
    "site": _check_site,
    "value": _check_value,
    "record": _check_record,
    "target": _exists("MonitoringTarget", "monitoring target"),
}


def check(name: str, value: Any, facts: Facts, values: Values) -> str | None:
    """What is wrong with the value given the estate and the values settled so far."""
    checker = CHECKS.get(name)
    return checker(value, facts, values) if checker else None
