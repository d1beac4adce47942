"""Where each parameter is looked for after the ``key: value`` lines: the text, then the estate.

A finder returns a raw ``Filled`` (later parsed and checked), an ``Ask`` when the text is
ambiguous, ``BLOCKED`` when it waits on an unknown parameter, or None when it found
nothing (the capability default, or a question, comes next).  Pure functions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from urllib.parse import urlsplit

from bot.engines import text
from bot.engines.facts import BLOCKED, Ask, Blocked, Facts, Filled, Outcome, Values
from bot.engines.sizes import Size, sizes
from bot.model import DnsRecord

Finder = Callable[[Facts, Values], Outcome]


def _one(found: list[str], what: str, assumption: str | None = None) -> Outcome:
    if len(found) > 1:
        return Ask(f"The request names more than one {what} ({', '.join(found)}).")
    return Filled(found[0], assumption) if found else None


def _host(role: str, words: str, param: str, lenient: bool = False) -> Finder:
    """A host named in the text ("on pve1"), or the only host with the role."""

    def find(facts: Facts, values: Values) -> Outcome:
        hosts = {h.name: h for h in facts.estate.hosts()}
        said = text.tokens_after(facts.prose, words)
        right = [t for t in said if t in hosts and role in hosts[t].roles]
        if lenient:  # a mistyped or wrong node is asked about, not silently replaced
            unknown = [t for t in said if t not in hosts and any(c.isdigit() for c in t)]
            right = right + unknown or [t for t in said if t in hosts]
        if right:
            return _one(right, f"{role} host")
        only = facts.estate.hosts_with_role(role)
        if len(only) == 1:
            return Filled(only[0].name, f"{param} {only[0].name} is the only {role} host")
        return None

    return find


def find_node(facts: Facts, values: Values) -> Outcome:
    if facts.uses("create-container") or not facts.uses("change-container"):
        return _host("node", "on", "node", lenient=True)(facts, values)
    hosts = {h.name: h for h in facts.estate.hosts()}
    said = text.tokens_after(facts.prose, "to|onto|over to")
    nodes = [t for t in said if t in hosts and "node" in hosts[t].roles]
    unknown = [t for t in said if t not in hosts and re.fullmatch(r"[a-z]+[a-z-]*\d+", t)]
    if unknown and not nodes:
        return Ask(f"There is no node {unknown[0]}.")
    return _one(nodes, "node")


def find_domain(facts: Facts, values: Values) -> Outcome:
    """The domain after "at", else the only one; "to <domain>" is a target, not the name."""
    found = text.domains_after(facts.prose, "at|as") or text.domains(facts.prose)
    if len(found) > 1:
        targets = set(text.domains_after(facts.prose, "to"))
        found = [d for d in found if d not in targets] or found
    return _one(found, "domain")


def find_name(facts: Facts, values: Values) -> Outcome:
    phrase = text.service_phrase(facts.prose)
    if phrase:
        return Filled(phrase, f"name {phrase} is made from the request's wording")
    if facts.creates("Container"):  # "new ct grafana", "an lxc ledger"
        said = text.tokens_around(facts.prose, r"container|lxc|ct|vm")
        fresh = [t for t in said if t not in text.NOT_NAMES and not facts.container(t)]
        if fresh:
            return _one(fresh[:1], "name")
    known = {c.name for c in facts.estate.containers()} | {s.name for s in facts.sites()}
    mentioned = [t for t in text.tokens_after(facts.prose, "for") if t in known]
    if mentioned:
        return _one(mentioned, "service")
    return _name_from_domain(facts, values)


def _name_from_domain(facts: Facts, values: Values) -> Outcome:
    domain = values.get("domain")
    if domain is None:
        return BLOCKED if facts.required("domain") else None
    site = None if facts.creates("Site") else facts.site(domain)
    if site is not None:
        return Filled(site.name, f"name {site.name} is the site serving {domain}")
    label = domain.split(".")[0]
    return Filled(label, f"name {label} is the first label of {domain}")


def find_hostname(facts: Facts, values: Values) -> Outcome:
    name = values.get("name")
    return Filled(name, f"hostname {name} is the container's name") if name else BLOCKED


def _referenced(facts: Facts, kind: str, nouns: str, what: str) -> Outcome:
    """An existing resource the text names ("the docs container", "status-page"); a
    named one that does not exist is asked about, never guessed."""
    names = {r.name for r in facts.estate.of_kind(kind)}
    said = [t for t in text.tokens_around(facts.prose, nouns) if t not in text.NOT_NAMES]
    found = [t for t in said if t in names]
    if not found:
        found = [t for t in text.name_tokens(facts.prose) if t in names]
    if found:
        return _one(text.unique(found), what)
    if said:
        return Ask(f"There is no {what} {said[0]}.")
    return None


def find_container(facts: Facts, values: Values) -> Outcome:
    if facts.uses("create-container"):
        return None  # the container is the one being created
    if not (facts.uses("change-container") or facts.uses("remove-container")):
        said = text.tokens_around(facts.prose, "container")
        return _one([t for t in said if facts.container(t)], "container")
    return _referenced(facts, "Container", r"container|lxc|ct|vm", "container")


def find_record(facts: Facts, values: Values) -> Outcome:
    said = text.domains(facts.prose)
    found = [d for d in said if facts.estate.get("DnsRecord", d) is not None]
    if not found and said:
        return Ask(f"There is no DNS record for {said[0]}.")
    return _one(found, "DNS record")


def find_target(facts: Facts, values: Values) -> Outcome:
    targets = facts.estate.of_kind("MonitoringTarget")
    probed = set(text.domains(facts.prose))
    by_probe = [
        t.name for t in targets if urlsplit(getattr(t, "probe", "") or "").hostname in probed
    ]
    found = by_probe or _named(facts, "MonitoringTarget")
    if not found:
        said = [t for t in text.tokens_after(facts.prose, "monitoring|monitor|of|for")]
        said = [t for t in said if t not in text.NOT_NAMES]
        return Ask(f"Nothing monitors {said[0]}.") if said else None
    return _one(text.unique(found), "monitoring target")


def _named(facts: Facts, kind: str) -> list[str]:
    names = {r.name for r in facts.estate.of_kind(kind)}
    return [t for t in text.name_tokens(facts.prose) if t in names]


def find_tls(facts: Facts, values: Values) -> Outcome:
    off = (
        r"(?:disable|remove|drop|turn\s+off|no|without|stop\s+using)\s+(?:the\s+)?(?:tls|https|ssl)"
    )
    if re.search(off, facts.prose, re.IGNORECASE):
        return Filled("off")
    on = r"(?:enable|add|turn\s+on|use|with|serve)\s+(?:\w+\s+)?(?:tls|https|ssl)"
    return Filled("on") if re.search(on, facts.prose, re.IGNORECASE) else None


def _path(suffixes: str) -> Finder:
    def find(facts: Facts, values: Values) -> Outcome:
        if values.get("tls") == "off":
            return None
        found = re.findall(rf"(?<![\w.])(/[A-Za-z0-9._/-]+\.(?:{suffixes}))(?![\w/])", facts.prose)
        return _one(text.unique(found), "path")

    return find


def find_vmid(facts: Facts, values: Values) -> Outcome:
    vmid = facts.estate.next_vmid()
    return Filled(str(vmid), f"vmid {vmid} is the next free vmid")


def find_ip(facts: Facts, values: Values) -> Outcome:
    node = values.get("node")
    if node is None:
        return BLOCKED
    free = facts.estate.next_ip(node)
    if free is None:
        return None
    return Filled(str(free), f"ip {free} is the next free address in {free.network}")


def find_gateway(facts: Facts, values: Values) -> Outcome:
    if "ip" not in values:
        return BLOCKED
    network = ipaddress.IPv4Interface(values["ip"]).network
    first = next(network.hosts())
    return Filled(str(first), f"gateway {first} is the first address of {network}")


def _number(name: str) -> Finder:
    def find(facts: Facts, values: Values) -> Outcome:
        return _one([str(n) for n in text.numbers(facts.prose, name)], f"value for {name}")

    return find


def _size(name: str) -> Finder:
    """ "4GB", "2 cores"; for an existing container also "1 GB more", "double the memory"."""

    def find(facts: Facts, values: Values) -> Outcome:
        said = [s for s in sizes(facts.prose) if s.field == name]
        current = (
            None if facts.uses("create-container") else facts.container(values.get("container"))
        )
        if current is None:
            return _one(
                text.unique(str(s.value) for s in said if not s.relative and not s.factor),
                f"value for {name}",
            )
        now: int = getattr(current, name)
        found = text.unique(str(_resized(now, s)) for s in said)
        outcome = _one(found, f"value for {name}")
        if isinstance(outcome, Filled) and any(s.relative or s.factor for s in said):
            return Filled(
                outcome.raw, f"{name} {outcome.raw} is the current {now} changed as asked"
            )
        return outcome

    return find


def _resized(now: int, size: Size) -> int:
    if size.factor is not None:
        return int(now * size.factor)
    return now + size.value if size.relative else size.value


def endpoint(facts: Facts, values: Values) -> tuple[str, int, str] | Blocked | None:
    """(address, port, whose) of the service being exposed or monitored."""
    if facts.uses("create-container"):
        if "ip" not in values or "service_port" not in values:
            return BLOCKED
        ip = str(ipaddress.IPv4Interface(values["ip"]).ip)
        return ip, int(values["service_port"]), "the new container"
    found = facts.container(values.get("container")) or facts.container(values.get("name"))
    if found is None:
        return None
    return str(found.ip.ip), found.service_port, f"container {found.name}"


def find_upstream(facts: Facts, values: Values) -> Outcome:
    domain = values.get("domain")
    said = [u for u in text.urls(facts.prose) if urlsplit(u).hostname != domain]
    if said:
        return _one(said, "upstream URL")
    point = endpoint(facts, values)
    if point is None or isinstance(point, Blocked):
        return point
    url = f"http://{point[0]}:{point[1]}"
    return Filled(url, f"upstream {url} is {point[2]}'s address and service port")


def find_targets(facts: Facts, values: Values) -> Outcome:
    point = endpoint(facts, values)
    if isinstance(point, tuple):
        target = f"{point[0]}:{point[1]}"
        return Filled(target, f"targets {target} is {point[2]}'s address and service port")
    site = facts.site(values.get("name"))
    if point is None and site is not None:
        parts = urlsplit(site.upstream)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        target = f"{parts.hostname}:{port}"
        return Filled(target, f"targets {target} is the upstream of site {site.name}")
    return BLOCKED if point is not None or "name" not in values else None


def find_probe(facts: Facts, values: Values) -> Outcome:
    domain = values.get("domain")
    site = facts.site(values.get("name"))
    if domain is None and site is not None and not facts.creates("Site"):
        domain = site.domain
    if domain is None:
        return None
    url = f"http://{domain}/"
    return Filled(url, f"probe {url} is the address of the site")


def find_type(facts: Facts, values: Values) -> Outcome:
    return Filled("CNAME") if re.search(r"\bcname\b", facts.prose, re.IGNORECASE) else None


def record_type(facts: Facts, values: Values) -> str:
    """The type told, else the changed record's own type, else A."""
    record = facts.estate.get("DnsRecord", values.get("record") or "")
    return str(values.get("type") or (record.type if isinstance(record, DnsRecord) else "A"))


def find_value(facts: Facts, values: Values) -> Outcome:
    if record_type(facts, values) == "CNAME":
        said = text.domains_after(facts.prose, "to") or text.domains(facts.prose)
        skip = {values.get("domain"), values.get("record")}
        return _one([d for d in said if d not in skip], "target hostname")
    return _one(text.ipv4s(facts.prose), "address")


def find_site(facts: Facts, values: Values) -> Outcome:
    domains = text.domains(facts.prose)
    by_domain = [s.name for s in facts.sites() if s.domain in domains]
    by_name = [t for t in text.tokens_around(facts.prose, "site") if facts.site(t)]
    found = text.unique([*by_domain, *by_name]) or _named(facts, "Site")
    if not found and domains:
        return Ask(f"No site serves {', '.join(domains)}.")
    return _one(found, "site")


def find_owner(facts: Facts, values: Values) -> Outcome:
    team = text.team(facts.prose)
    if team:
        return Filled(team)
    return Filled(facts.author, f"owner defaults to the requester @{facts.author}")


def find_environment(facts: Facts, values: Values) -> Outcome:
    for param in ("node", "proxy", "dns_server", "monitor"):
        host = facts.estate.get("Host", values.get(param) or "")
        if host is not None and host.environment:
            env = host.environment
            return Filled(env, f"environment {env} is the environment of {param} {host.name}")
    return None


FINDERS: dict[str, Finder] = {
    "node": find_node,
    "proxy": _host("proxy", "through|via|behind|on", "proxy"),
    "dns_server": _host("dns", "on|via", "dns_server"),
    "monitor": _host("monitoring", "on|via|from|in", "monitor"),
    "domain": find_domain,
    "name": find_name,
    "hostname": find_hostname,
    "container": find_container,
    "vmid": find_vmid,
    "ip": find_ip,
    "gateway": find_gateway,
    "cores": _size("cores"),
    "memory": _size("memory"),
    "disk": _size("disk"),
    "service_port": _number("service_port"),
    "ttl": _number("ttl"),
    "upstream": find_upstream,
    "targets": find_targets,
    "probe": find_probe,
    "type": find_type,
    "value": find_value,
    "site": find_site,
    "record": find_record,
    "target": find_target,
    "tls": find_tls,
    "certificate": _path("crt|pem|cer"),
    "tls_key": _path("key"),
    "owner": find_owner,
    "environment": find_environment,
}
