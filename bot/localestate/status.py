"""What the local estate is running: frozen models, built once from what the machine says."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServiceStatus(_Frozen):
    """One service of a host: nginx (proxy), dnsmasq (dns) or the file_sd directory."""

    name: Literal["nginx", "dnsmasq", "file_sd"]
    running: bool
    pid: int | None = None
    port: int | None = None
    detail: str = ""


class ContainerStatus(_Frozen):
    """One container of the local provider, as its state file and the kernel see it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    name: str
    hostname: str
    ip: str
    service_port: int
    namespace: str
    link: str
    namespace_present: bool
    link_present: bool
    pid: int | None = None
    service_running: bool
    service_answering: bool

    @property
    def healthy(self) -> bool:
        return self.namespace_present and self.link_present and self.service_answering


class HostStatus(_Frozen):
    """One host's runtime directory; ``desired`` is false for leftovers of removed hosts."""

    name: str
    root: str
    roles: tuple[str, ...] = ()
    desired: bool = True
    services: tuple[ServiceStatus, ...] = ()
    containers: tuple[ContainerStatus, ...] = ()


class EstateStatus(_Frozen):
    root: str
    hosts: tuple[HostStatus, ...] = ()

    @property
    def running(self) -> tuple[str, ...]:
        """``host/service`` (or ``host/container``) for everything that is up."""
        up = [f"{h.name}/{s.name}" for h in self.hosts for s in self.services_of(h) if s.running]
        up += [f"{h.name}/{c.name}" for h in self.hosts for c in h.containers if c.healthy]
        return tuple(up)

    @staticmethod
    def services_of(host: HostStatus) -> tuple[ServiceStatus, ...]:
        return tuple(s for s in host.services if s.name != "file_sd")


def render_status(status: EstateStatus) -> str:
    """The status as a few aligned lines for a terminal."""
    lines = [f"local estate at {status.root}"]
    for host in status.hosts:
        note = "" if host.desired else "  (not in the desired state: leftover)"
        lines.append(f"{host.name}  roles: {', '.join(host.roles) or '-'}{note}")
        for svc in host.services:
            state = "running" if svc.running else "stopped"
            extra = "".join(
                (f"  pid {svc.pid}" if svc.pid else "", f"  port {svc.port}" if svc.port else "")
            )
            lines.append(f"  {svc.name:<8} {state}{extra}{'  ' + svc.detail if svc.detail else ''}")
        for ctr in host.containers:
            state = "answering" if ctr.service_answering else "NOT answering"
            ns = "present" if ctr.namespace_present else "MISSING"
            lines.append(
                f"  container {ctr.name}  {ctr.ip}:{ctr.service_port}  namespace {ctr.namespace} "
                f"{ns}  service {state}"
            )
    return "\n".join(lines)
