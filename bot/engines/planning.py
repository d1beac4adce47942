"""What a plan says about a set of drafted changes: where they go, which hosts they touch,
how they are checked, how to tell they worked, and how to undo them.  Pure functions of
the changes and the estate, so the same change set always reads the same way.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from bot.engines.text import TEMPLATE_MARKS
from bot.estate import Estate, path_for
from bot.model import (
    ChangeAction,
    Container,
    DnsRecord,
    Host,
    MonitoringTarget,
    PlannedChange,
    Resource,
    ResourceChange,
    Site,
    parse_resource,
)

Changes = Sequence[ResourceChange]


def resource_of(change: ResourceChange, estate: Estate) -> Resource | None:
    found = estate.get(change.kind, change.name)
    if change.action is ChangeAction.DELETE and found is not None:
        return found
    return parse_resource(change.data)


def planned(changes: Changes, estate: Estate) -> tuple[PlannedChange, ...]:
    out = []
    for change in changes:
        resource = resource_of(change, estate)
        existing = estate.files.get((change.kind, change.name))
        path = (
            path_for(change.kind, change.name)
            if change.action is ChangeAction.CREATE
            else existing or path_for(change.kind, change.name)
        )
        before = estate.get(change.kind, change.name)
        hosts = resource.hosts() if resource else ()
        if change.action is ChangeAction.UPDATE and before is not None:
            hosts = tuple(dict.fromkeys((*before.hosts(), *hosts)))  # a move touches both nodes
        out.append(
            PlannedChange(
                action=change.action,
                kind=change.kind,
                name=change.name,
                path=path,
                hosts=hosts,
            )
        )
    return tuple(out)


def hosts_of(changes: Sequence[PlannedChange]) -> list[str]:
    return sorted({h for c in changes for h in c.hosts})


def validation_steps(changes: Sequence[PlannedChange], estate: Estate) -> tuple[str, ...]:
    files = ", ".join(sorted({c.path for c in changes}))
    steps = [
        f"yamllint on {files}",
        "JSON Schema (schemas/<Kind>.schema.json) on every changed document",
        "pydantic models on the whole desired state",
        "references: every node, proxy, dns server and monitor named exists with that role; "
        "names, vmids, addresses and domains stay unique",
        "policy (schemas/policy.yaml): owner set, no template syntax, only infra/state/** touched",
        f"ansible-playbook --check --diff limited to {', '.join(hosts_of(changes)) or 'no host'}",
    ]
    proxies = sorted({h for c in changes if c.kind == "Site" for h in c.hosts})
    if proxies:
        steps.append(f"nginx -t on the vhosts rendered for {', '.join(proxies)}")
    return tuple(steps)


def _host_port(target: str) -> str:
    parts = urlsplit(target)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.hostname}:{port}"


def _container_at(endpoint: str, containers: list[Container]) -> Container | None:
    return next((c for c in containers if f"{c.ip.ip}:{c.service_port}" == endpoint), None)


def _created(resource: Resource, estate: Estate, containers: list[Container]) -> list[str]:
    if isinstance(resource, Container):
        return [
            f"container {resource.name} (vmid {resource.vmid}) runs on {resource.node} "
            f"with address {resource.ip}",
            f"{resource.ip.ip}:{resource.service_port} answers from inside container "
            f"{resource.name}",
        ]
    if isinstance(resource, Site):
        served = _container_at(_host_port(resource.upstream), containers)
        what = f"the service in container {served.name}" if served else resource.upstream
        return [f"http://{resource.domain}/ through {resource.proxy} answers with {what}"]
    if isinstance(resource, DnsRecord):
        return [f"{resource.name} resolves to {resource.value} on {resource.server}"]
    if isinstance(resource, MonitoringTarget):
        found = [f"{t} is in Prometheus's file_sd on {resource.monitor}" for t in resource.targets]
        probe = [f"{resource.monitor} probes {resource.probe}"] if resource.probe else []
        return found + probe
    return []


def _deleted(resource: Resource) -> list[str]:
    if isinstance(resource, Container):
        return [f"container {resource.name} no longer runs on {resource.node}"]
    if isinstance(resource, Site):
        return [f"{resource.proxy} no longer serves {resource.domain}"]
    if isinstance(resource, DnsRecord):
        return [f"{resource.name} no longer resolves on {resource.server}"]
    if isinstance(resource, MonitoringTarget):
        gone = ", ".join(resource.targets)
        return [f"{gone} is no longer in Prometheus's file_sd on {resource.monitor}"]
    return []


def _resized(container: Container) -> list[str]:
    return [
        f"container {container.name} runs on {container.node} with {container.cores} core(s), "
        f"{container.memory} MiB of memory and a {container.disk} GiB disk",
        f"{container.ip.ip}:{container.service_port} answers from inside container "
        f"{container.name}",
    ]


def acceptance_criteria(changes: Changes, estate: Estate) -> tuple[str, ...]:
    resources = [(c.action, resource_of(c, estate)) for c in changes]
    containers = estate.containers() + [r for _, r in resources if isinstance(r, Container)]
    out: list[str] = []
    for action, resource in resources:
        if resource is None or isinstance(resource, Host):
            continue
        if action is ChangeAction.DELETE:
            out += _deleted(resource)
        elif action is ChangeAction.UPDATE and isinstance(resource, Container):
            out += _resized(resource)
        else:
            out += _created(resource, estate, containers)
    return tuple(out)


def criteria_for(resource: Resource, estate: Estate, *, present: bool) -> tuple[str, ...]:
    """What a plan promises about one resource once applied (``estate`` is the result):
    verification decides exactly these sentences."""
    if present:
        return tuple(_created(resource, estate, estate.containers()))
    return tuple(_deleted(resource))


def _listing(changes: Sequence[ResourceChange | PlannedChange]) -> str:
    items = [f"{c.kind} {c.name}" for c in changes]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def rollback(changes: Sequence[PlannedChange]) -> str:
    made = [c for c in changes if c.action is ChangeAction.CREATE]
    gone = [c for c in changes if c.action is ChangeAction.DELETE]
    edited = [c for c in changes if c.action is ChangeAction.UPDATE]
    parts = []
    if edited:
        parts.append(
            f"merging the revert puts {_listing(edited)} back as they were (the next apply "
            f"reconfigures {', '.join(hosts_of(edited))})"
        )
    if made:
        parts.append(
            f"merging the revert removes {_listing(made)} (the next apply takes them "
            f"off {', '.join(hosts_of(made))})"
        )
    if gone:
        parts.append(
            f"merging the revert restores {_listing(gone)} (the next apply puts them "
            f"back on {', '.join(hosts_of(gone))})"
        )
    return "Revert the pull request; " + "; ".join(parts or ["nothing else to undo"]) + "."


def summary(changes: Changes) -> str:
    verbs = {
        ChangeAction.CREATE: "Add",
        ChangeAction.UPDATE: "Update",
        ChangeAction.DELETE: "Remove",
    }
    groups = [(verb, [c for c in changes if c.action is action]) for action, verb in verbs.items()]
    return "; ".join(f"{verb} {_listing(group)}" for verb, group in groups if group)


def objective(title: str) -> str:
    """The ticket's title, with template syntax and control characters taken out."""
    text = re.sub(r"[\x00-\x1f\x7f]", " ", title)
    while any(mark in text for mark in TEMPLATE_MARKS):
        for mark in TEMPLATE_MARKS:
            text = text.replace(mark, "")
    return " ".join(text.split())[:200] or "(untitled)"


__all__ = [
    "acceptance_criteria",
    "criteria_for",
    "objective",
    "planned",
    "rollback",
    "summary",
    "validation_steps",
]
