"""Filling the parameters of the chosen capabilities, or the questions that would fill them.

For each parameter, in dependency order (``facts.ORDER``): an explicit ``key: value`` line
wins; then the finder (a phrase in the text, then the estate); then the capability's
default.  Whatever the source, the value is parsed and checked (``parsing``); a value
that fails is asked about, never passed through.  A required parameter with no value is
asked about too, unless it waits on another parameter that is already being asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from bot.engines.facts import Ask, Blocked, Facts, Filled, Outcome, Values
from bot.engines.finders import FINDERS
from bot.engines.parsing import check, parse, shown
from bot.estate import Estate


@dataclass
class Resolution:
    values: Values = field(default_factory=dict)
    assumptions: list[str] = field(default_factory=list)
    defaults: list[tuple[str, str, object]] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)

    def all_assumptions(self) -> tuple[str, ...]:
        by_cap: dict[str, list[str]] = {}
        for cap, name, value in self.defaults:
            by_cap.setdefault(cap, []).append(f"{name} {value}")
        grouped = [f"defaults of {cap}: {', '.join(items)}" for cap, items in by_cap.items()]
        return (*self.assumptions, *grouped)


def resolve(facts: Facts) -> Resolution:
    res = Resolution()
    for name in facts.parameter_names():
        outcome = _outcome(facts, res.values, name)
        if isinstance(outcome, Filled):
            _accept(facts, res, name, outcome)
        elif isinstance(outcome, Ask):
            res.questions.append(question(name, facts.estate, outcome.problem))
        elif outcome is None and facts.required(name):
            res.questions.append(question(name, facts.estate))
    if facts.request.dropped and res.questions:
        res.questions.append(
            f"I ignored {facts.request.dropped} line(s) of the request because they carry "
            "Jinja template syntax; restate them without it if they matter."
        )
    return res


def _outcome(facts: Facts, values: Values, name: str) -> Outcome:
    if name in facts.request.keys:
        return Filled(facts.request.keys[name])
    finder = FINDERS.get(name)
    found = finder(facts, values) if finder else None
    if found is not None:
        return found
    default = facts.default(name)
    return Filled(default[1], default_of=default[0]) if default else None


def _accept(facts: Facts, res: Resolution, name: str, filled: Filled) -> None:
    try:
        value = parse(name, filled.raw)
    except ValueError as exc:
        res.questions.append(question(name, facts.estate, f"{_said(name, filled)} {exc}."))
        return
    problem = check(name, value, facts, res.values)
    if problem:
        res.questions.append(question(name, facts.estate, problem))
        return
    res.values[name] = value
    if filled.default_of:
        res.defaults.append((filled.default_of, name, value))
    elif filled.assumption:
        res.assumptions.append(filled.assumption)


def _said(name: str, filled: Filled) -> str:
    raw = shown(filled.raw)
    return f"{raw} ({name})" if raw.startswith("`") else f"The value given for `{name}`"


Choices = Callable[[Estate], list[str]]


def _role(role: str) -> Choices:
    return lambda estate: [h.name for h in estate.hosts_with_role(role)]


def _kind(kind: str) -> Choices:
    return lambda estate: [r.name for r in estate.of_kind(kind)]


QUESTIONS: dict[str, tuple[str, str, Choices | None]] = {
    "name": ("What should it be called?", "<name>", None),
    "node": ("Which node should run the container?", "<name>", _role("node")),
    "proxy": ("Which proxy host should serve the site?", "<name>", _role("proxy")),
    "dns_server": ("Which DNS host should serve the record?", "<name>", _role("dns")),
    "monitor": ("Which monitoring host should hold the target?", "<name>", _role("monitoring")),
    "domain": ("Which domain should it be reachable at?", "<hostname>", None),
    "container": ("Which existing container is it?", "<name>", _kind("Container")),
    "hostname": ("Which hostname should the container have?", "<hostname>", None),
    "vmid": ("Which vmid should the container get?", "<number from 100>", None),
    "ip": ("Which address should the container get?", "<address>/<prefix>", None),
    "gateway": ("Which gateway should the container use?", "<address>", None),
    "cores": ("How many CPU cores should it get?", "<number>", None),
    "memory": ("How much memory (MiB) should it get?", "<MiB>", None),
    "disk": ("How large (GiB) should its disk be?", "<GiB>", None),
    "service_port": ("Which port does the service listen on?", "<port>", None),
    "upstream": (
        "Where should the site send requests? (or reply `container: <name>`)",
        "http://<address>:<port>",
        None,
    ),
    "targets": ("Which endpoints should Prometheus scrape?", "<host>:<port>", None),
    "probe": ("Which URL should the HTTP probe check?", "http://<hostname>/", None),
    "type": ("Which record type?", "A|CNAME", None),
    "value": ("What should the record point to?", "<IPv4 address>", None),
    "ttl": ("Which TTL (seconds)?", "<seconds>", None),
    "site": ("Which site is it?", "<site name or domain>", _kind("Site")),
    "record": ("Which DNS record is it?", "<domain>", _kind("DnsRecord")),
    "target": ("Which monitoring target is it?", "<name>", _kind("MonitoringTarget")),
    "tls": ("Should the site serve TLS?", "on|off", None),
    "certificate": ("Which certificate should the proxy use?", "/etc/ssl/<name>.crt", None),
    "tls_key": ("Which private key should the proxy use?", "/etc/ssl/private/<name>.key", None),
    "owner": ("Who owns it?", "<team or person>", None),
    "environment": ("Which environment is it in?", "<environment>", None),
}


def question(name: str, estate: Estate, problem: str = "") -> str:
    """One question that says exactly what to reply, in the ``key: value`` form."""
    prompt, placeholder, choices = QUESTIONS.get(
        name, (f"What should `{name}` be?", "<value>", None)
    )
    options = choices(estate) if choices else None
    tail = f" (one of: {', '.join(options)})" if options else ""
    if options == [] and not problem:
        problem = f"The estate has nothing to choose from for `{name}`."
    return f"{problem} {prompt} Reply with `{name}: {placeholder}`{tail}.".strip()


__all__ = ["Blocked", "Resolution", "question", "resolve"]
