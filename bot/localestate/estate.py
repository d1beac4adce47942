"""The local estate: nginx, dnsmasq and namespace containers of the local hosts, on loopback.

Theory of operation.  Each host with ``connection: local`` gets a runtime directory
``<root>/<host>`` (its ``infrabot_root`` in the inventory).  ``up()`` writes the config
that starts each service (only those files: what the services serve is written by Ansible)
and starts what is not already running; ``down()`` stops every service and removes every
container found under ``<root>`` whether or not its host is still desired, so nothing is
left behind; ``status()`` only looks.  A service is "ours" when its pid file names a live
process whose command line carries our config path, so a recycled pid is never killed.
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bot.errors import InfrabotError
from bot.estate.edit import atomic_write
from bot.localestate import processes as proc
from bot.localestate.containers import (
    UNAVAILABLE,
    container_status,
    has_containers,
    netns_available,
    remove_containers,
)
from bot.localestate.layout import HostLayout, dnsmasq_conf, nginx_conf
from bot.localestate.status import EstateStatus, HostStatus, ServiceStatus
from bot.model import Host

Proto = Literal["tcp", "udp"]
TCP: tuple[Proto, ...] = ("tcp",)
UDP_TCP: tuple[Proto, ...] = ("udp", "tcp")


class LocalEstate:
    def __init__(self, root: Path, hosts: Sequence[Host]) -> None:
        if not root.is_absolute():
            raise InfrabotError(f"the local estate root must be an absolute path, not {root}")
        self.root = root
        self.hosts = tuple(h for h in hosts if h.connection == "local")
        check_ports(self.hosts)

    def layout(self, name: str) -> HostLayout:
        return HostLayout(self.root / name)

    # ------------------------------------------------------------------ up

    def up(self) -> EstateStatus:
        """Start what the local hosts need; what already runs is left running."""
        self._preflight()
        for host in self.hosts:
            layout = self.layout(host.name)
            layout.root.mkdir(parents=True, exist_ok=True)
            if "proxy" in host.roles and host.ports.http is not None:  # see check_ports
                self._up_nginx(host.name, layout, host.ports.http)
            if "dns" in host.roles and host.ports.dns is not None:
                self._up_dnsmasq(host.name, layout, host.ports.dns)
            if "monitoring" in host.roles:
                layout.file_sd.mkdir(parents=True, exist_ok=True)
        return self.status()

    def _preflight(self) -> None:
        """Fail before starting anything: missing programs, namespaces, taken ports."""
        for role, program in (("proxy", "nginx"), ("dns", "dnsmasq")):
            users = [h.name for h in self.hosts if role in h.roles]
            if users and proc.find_binary(program) is None:
                raise InfrabotError(
                    f"{program} is not installed (needed by {', '.join(users)}): "
                    f"apt-get install {program}"
                )
        nodes = [h.name for h in self.hosts if "node" in h.roles and h.provider == "local"]
        reason = netns_available() if nodes else None
        if reason:
            raise InfrabotError(f"{UNAVAILABLE} (needed by {', '.join(nodes)}): {reason}")
        for host in self.hosts:
            self._check_ports_free(host)

    def _check_ports_free(self, host: Host) -> None:
        layout = self.layout(host.name)
        wanted = (
            ("proxy", host.ports.http, TCP, layout.nginx_pid, layout.nginx_conf),
            ("dns", host.ports.dns, UDP_TCP, layout.dnsmasq_pid, layout.dnsmasq_conf),
        )
        for role, port, protos, pid_file, conf in wanted:
            if role not in host.roles or port is None:
                continue
            if proc.running(proc.read_pid(pid_file), conf):
                continue  # ours, already up (a port change is handled by its reload)
            for proto in protos:
                if proc.port_in_use(port, proto):
                    raise InfrabotError(
                        f"port {port}/{proto} on 127.0.0.1 is taken (wanted by {host.name} "
                        f"for {role}): stop what holds it or change the host's ports"
                    )

    def _up_nginx(self, name: str, layout: HostLayout, port: int) -> None:
        for path in layout.nginx_dirs:
            path.mkdir(parents=True, exist_ok=True)
        user = _user() if os.geteuid() == 0 else None
        changed = _write_if_changed(layout.nginx_conf, nginx_conf(layout, name, port, user))
        nginx = proc.find_binary("nginx") or "nginx"
        base = [nginx, "-p", f"{layout.nginx_prefix}/", "-e", str(layout.nginx_error_log)]
        base += ["-c", str(layout.nginx_conf)]
        if proc.running(proc.read_pid(layout.nginx_pid), layout.nginx_conf):
            if changed:
                proc.start_daemon([*base, "-s", "reload"], f"nginx reload for {name}")
            return
        layout.nginx_pid.unlink(missing_ok=True)
        proc.start_daemon(base, f"nginx for {name}")
        proc.wait_for_pid(layout.nginx_pid, layout.nginx_conf, f"nginx for {name}")

    def _up_dnsmasq(self, name: str, layout: HostLayout, port: int) -> None:
        layout.dns_conf_dir.mkdir(parents=True, exist_ok=True)
        if not layout.dns_hosts.exists():
            atomic_write(layout.dns_hosts, "# No records yet: written by roles/dns.\n")
        conf = dnsmasq_conf(layout, name, port, _user())
        changed = _write_if_changed(layout.dnsmasq_conf, conf)
        pid = proc.read_pid(layout.dnsmasq_pid)
        if pid is not None and proc.running(pid, layout.dnsmasq_conf):
            if not changed:
                return
            proc.stop(pid)  # dnsmasq re-reads its options only at start
        layout.dnsmasq_pid.unlink(missing_ok=True)
        dnsmasq = proc.find_binary("dnsmasq") or "dnsmasq"
        what = f"dnsmasq for {name}"
        proc.start_daemon([dnsmasq, f"--conf-file={layout.dnsmasq_conf}"], what)
        proc.wait_for_pid(layout.dnsmasq_pid, layout.dnsmasq_conf, what)

    # ------------------------------------------------------------------ down

    def down(self) -> EstateStatus:
        """Stop every service and remove every container under the root, desired or not."""
        for layout in self._all_layouts():
            for pid_file, conf in (
                (layout.nginx_pid, layout.nginx_conf),
                (layout.dnsmasq_pid, layout.dnsmasq_conf),
            ):
                pid = proc.read_pid(pid_file)
                if pid is not None and proc.running(pid, conf):
                    proc.stop(pid)
                pid_file.unlink(missing_ok=True)
            remove_containers(layout)
        return self.status()

    def _all_layouts(self) -> list[HostLayout]:
        names = {h.name for h in self.hosts}
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if p.is_dir()}
        return [self.layout(name) for name in sorted(names)]

    # ------------------------------------------------------------------ status

    def status(self) -> EstateStatus:
        desired = {h.name: h for h in self.hosts}
        hosts = []
        for layout in self._all_layouts():
            host = desired.get(layout.root.name)
            if host is not None:
                hosts.append(self._host_status(host, layout))
            elif self._has_runtime(layout):
                hosts.append(_leftover_status(layout))
        return EstateStatus(root=str(self.root), hosts=tuple(hosts))

    def _host_status(self, host: Host, layout: HostLayout) -> HostStatus:
        services = []
        if "proxy" in host.roles:
            services.append(_service("nginx", layout.nginx_pid, layout.nginx_conf, host.ports.http))
        if "dns" in host.roles:
            services.append(
                _service("dnsmasq", layout.dnsmasq_pid, layout.dnsmasq_conf, host.ports.dns)
            )
        if "monitoring" in host.roles:
            sd = layout.file_sd
            services.append(ServiceStatus(name="file_sd", running=sd.is_dir(), detail=str(sd)))
        return HostStatus(
            name=host.name,
            root=str(layout.root),
            roles=tuple(host.roles),
            services=tuple(services),
            containers=container_status(layout),
        )

    @staticmethod
    def _has_runtime(layout: HostLayout) -> bool:
        pid_files = (layout.nginx_pid, layout.dnsmasq_pid)
        return any(p.exists() for p in pid_files) or has_containers(layout)


def check_ports(hosts: Sequence[Host]) -> None:
    """Every local proxy needs ports.http and every local DNS server ports.dns, all distinct."""
    seen: dict[tuple[int, str], str] = {}
    for host in hosts:
        wanted = (("proxy", host.ports.http, TCP), ("dns", host.ports.dns, UDP_TCP))
        for role, port, protos in wanted:
            if role not in host.roles:
                continue
            field = "http" if role == "proxy" else "dns"
            if port is None:
                raise InfrabotError(
                    f"host {host.name} has role {role} but no ports.{field}: the local estate "
                    "serves on loopback ports, set one (e.g. 18080 / 15353)"
                )
            for proto in protos:
                other = seen.setdefault((port, proto), f"{host.name} ({role})")
                if other != f"{host.name} ({role})":
                    raise InfrabotError(
                        f"hosts {other} and {host.name} ({role}) both want port {port}/{proto}"
                    )


def _service(
    name: Literal["nginx", "dnsmasq"], pid_file: Path, conf: Path, port: int | None
) -> ServiceStatus:
    pid = proc.read_pid(pid_file)
    up = proc.running(pid, conf)
    return ServiceStatus(name=name, running=up, pid=pid if up else None, port=port)


def _leftover_status(layout: HostLayout) -> HostStatus:
    services = [
        _service("nginx", layout.nginx_pid, layout.nginx_conf, None),
        _service("dnsmasq", layout.dnsmasq_pid, layout.dnsmasq_conf, None),
    ]
    return HostStatus(
        name=layout.root.name,
        root=str(layout.root),
        desired=False,
        services=tuple(s for s in services if s.running),
        containers=container_status(layout),
    )


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    atomic_write(path, text)
    return True


def _user() -> str:
    return pwd.getpwuid(os.geteuid()).pw_name
