"""Compiling the desired state into an Ansible inventory, and the hosts a change touches.

Theory of operation: desired-state values are *data*.  Every string that comes from a
YAML document is emitted with Ansible's ``!unsafe`` tag, so Jinja in a value (say
``{{ lookup('pipe', 'id') }}``) is never templated on the controller even if it got past
validation.  The only templated value is the interpreter line the bot itself writes.
"""

from __future__ import annotations

import io
from collections import defaultdict
from collections.abc import Collection
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.representer import SafeRepresenter

from bot.estate.edit import atomic_write
from bot.estate.index import Estate, changed_pairs
from bot.model import Container, Host, MonitoringTarget, Site

REMOTE_ROOT = "/var/lib/infrabot"


class Unsafe(str):
    """A string Ansible must never template."""


class _Trusted(str):
    """A string the bot wrote itself and Ansible may template."""


def _represent_unsafe(rep: SafeRepresenter, value: Unsafe) -> Any:
    return rep.represent_scalar("!unsafe", str(value), style="'")


def _represent_trusted(rep: SafeRepresenter, value: _Trusted) -> Any:
    return rep.represent_scalar("tag:yaml.org,2002:str", str(value), style='"')


def _unsafe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _unsafe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_unsafe(v) for v in value]
    if isinstance(value, str):
        return Unsafe(value)
    return value


def _data(resource: Any, *exclude: str) -> dict[str, Any]:
    skip = {"kind", "owner", "environment", "description", *exclude}
    dumped: dict[str, Any] = resource.model_dump(mode="json", exclude_none=True)
    return {k: v for k, v in dumped.items() if k not in skip}


def host_vars(host: Host, estate: Estate, runtime_root: Path) -> dict[str, Any]:
    """The variables of one inventory host (the contract with infra/ansible)."""
    by_host: dict[str, list[Any]] = defaultdict(list)
    for kind, attr in (
        ("Site", "proxy"),
        ("DnsRecord", "server"),
        ("MonitoringTarget", "monitor"),
        ("Container", "node"),
    ):
        for r in estate.of_kind(kind):
            if getattr(r, attr) == host.name:
                by_host[kind].append(r)
    local = host.connection == "local"
    out: dict[str, Any] = {
        "ansible_connection": "local" if local else "ssh",
        "ansible_host": str(host.address),
        "infrabot_root": str(runtime_root / host.name) if local else REMOTE_ROOT,
        "infrabot_roles": list(host.roles),
        "infrabot_provider": host.provider,
        "infrabot_ports": host.ports.model_dump(exclude_none=True),
        "infrabot_sites": [_data(s) for s in by_host["Site"] if isinstance(s, Site)],
        "infrabot_dns_records": [_data(d, "server") for d in by_host["DnsRecord"]],
        "infrabot_monitoring_targets": [
            _data(m, "monitor")
            for m in by_host["MonitoringTarget"]
            if isinstance(m, MonitoringTarget)
        ],
        "infrabot_containers": [
            _data(c, "node") for c in by_host["Container"] if isinstance(c, Container)
        ],
    }
    out = _unsafe(out)
    if local:
        out["ansible_python_interpreter"] = _Trusted("{{ ansible_playbook_python }}")
    return out


def compile_inventory(
    estate: Estate, runtime_root: Path, only: Collection[str] | None = None
) -> str:
    """The estate as an Ansible YAML inventory (text): every host, or ``only`` those.

    Each host's variables are complete on their own (its sites, records, containers), so
    a run on a few hosts needs only theirs; a small inventory also loads much faster.
    """
    chosen = [h for h in estate.hosts() if only is None or h.name in only]
    hosts = {h.name: host_vars(h, estate, runtime_root) for h in chosen}
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.add_representer(Unsafe, _represent_unsafe)
    yaml.representer.add_representer(_Trusted, _represent_trusted)
    buf = io.StringIO()
    yaml.dump({"all": {"hosts": hosts}}, buf)
    return buf.getvalue()


def write_inventory(
    estate: Estate, runtime_root: Path, path: Path, only: Collection[str] | None = None
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, compile_inventory(estate, runtime_root, only))
    return path


def blast_radius(before: Estate, after: Estate) -> tuple[str, ...]:
    """The hosts whose configuration differs between two estates (and exist after)."""
    touched: set[str] = set()
    for pair in changed_pairs(before, after):
        for resource in pair:
            if resource is not None:
                touched.update(resource.hosts())
    existing = {h.name for h in after.hosts()}
    return tuple(sorted(touched & existing))
