"""A typed, indexed view of the desired state, and the estate facts engines fill parameters from."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import ValidationError

from bot.estate.documents import Document
from bot.model import Container, Host, Resource, parse_resource


@dataclass(frozen=True)
class Estate:
    """Resources by (kind, name), with the file each came from."""

    resources: dict[tuple[str, str], Resource] = field(default_factory=dict)
    files: dict[tuple[str, str], str] = field(default_factory=dict)

    def of_kind(self, kind: str) -> list[Resource]:
        return [r for (k, _), r in sorted(self.resources.items()) if k == kind]

    def get(self, kind: str, name: str) -> Resource | None:
        return self.resources.get((kind, name))

    def hosts(self) -> list[Host]:
        return [r for r in self.of_kind("Host") if isinstance(r, Host)]

    def hosts_with_role(self, role: str) -> list[Host]:
        return [h for h in self.hosts() if role in h.roles]

    def containers(self) -> list[Container]:
        return [r for r in self.of_kind("Container") if isinstance(r, Container)]

    def next_vmid(self, start: int = 100) -> int:
        used = {c.vmid for c in self.containers()}
        vmid = start
        while vmid in used:
            vmid += 1
        return vmid

    def next_ip(self, node: str) -> ipaddress.IPv4Interface | None:
        """The lowest free address in the subnet of the node's containers (from .10 up)."""
        on_node = [c for c in self.containers() if c.node == node] or self.containers()
        if not on_node:
            return None
        network = on_node[0].ip.network
        taken = {c.ip.ip for c in self.containers()} | {c.gateway for c in on_node if c.gateway}
        for addr in list(network.hosts())[9:]:  # .1-.9 are kept for gateways and infrastructure
            if addr not in taken:
                return ipaddress.IPv4Interface(f"{addr}/{network.prefixlen}")
        return None


def changed_pairs(before: Estate, after: Estate) -> list[tuple[Resource | None, Resource | None]]:
    """(old, new) for every resource that differs; None where it does not exist."""
    keys = sorted(set(before.resources) | set(after.resources))
    pairs = [(before.resources.get(k), after.resources.get(k)) for k in keys]
    return [(old, new) for old, new in pairs if old != new]


def build_estate(docs: Iterable[Document]) -> Estate:
    """Index the documents that validate; the rest are the validator's business."""
    resources: dict[tuple[str, str], Resource] = {}
    files: dict[tuple[str, str], str] = {}
    for doc in docs:
        try:
            resource = parse_resource(_plain(doc.data))
        except ValidationError:
            continue
        resources.setdefault(resource.key, resource)
        files.setdefault(resource.key, doc.file)
    return Estate(resources=resources, files=files)


def _plain(data: object) -> object:
    """ruamel's commented containers as plain dicts/lists (pydantic and jsonschema want those)."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    return data


plain = _plain
