"""After an apply: probe what changed, the way a user would reach it.

A Site is checked end to end: its domain is resolved through the estate's DNS server,
the proxy is asked for it at the resolved address, and when the upstream is a container
the answer must come from the service inside that container.  Remote hosts are not
probed from here (their monitoring does that); the result says so.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from bot.estate import Estate
from bot.model import Container, DnsRecord, Host, MonitoringTarget, Resource, Site, Verification

Probe = Callable[[], tuple[bool, str]]


def _retry(probe: Probe, attempts: int = 10, delay: float = 0.3) -> tuple[bool, str]:
    """Services reload asynchronously (nginx reload, dnsmasq SIGHUP): give them a moment."""
    ok, detail = probe()
    for _ in range(attempts - 1):
        if ok:
            break
        time.sleep(delay)
        ok, detail = probe()
    return ok, detail


def resolve(name: str, port: int, server: str = "127.0.0.1") -> list[str]:
    query = dns.message.make_query(name, dns.rdatatype.A)
    answer = dns.query.udp(query, server, port=port, timeout=2.0)
    return [
        item.address for rrset in answer.answer for item in rrset if rrset.rdtype == dns.rdatatype.A
    ]


def http_get(address: str, port: int, host_header: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection(address, port, timeout=3.0)
    try:
        conn.request("GET", path, headers={"Host": host_header, "User-Agent": "infrabot-verify"})
        response = conn.getresponse()
        return response.status, response.read(4096).decode("utf-8", "replace")
    finally:
        conn.close()


class LocalVerifier:
    def __init__(self, runtime_root: Path) -> None:
        self.runtime_root = runtime_root

    def verify(
        self, estate: Estate, resources: list[Resource], removed: list[Resource]
    ) -> list[Verification]:
        out: list[Verification] = []
        for resource in resources:
            check = self._checks.get(type(resource))
            if check is not None:
                out.append(check(self, estate, resource))
        for resource in removed:
            if isinstance(resource, DnsRecord):
                out.append(self._dns(estate, resource, present=False))
            elif isinstance(resource, Site):
                out.append(self._site(estate, resource, present=False))
        return out

    def _local(self, estate: Estate, name: str) -> Host | None:
        host = estate.get("Host", name)
        return host if isinstance(host, Host) and host.connection == "local" else None

    def _dns(self, estate: Estate, record: Resource, present: bool = True) -> Verification:
        """The record answers with its value (or, once removed, does not resolve at all)."""
        assert isinstance(record, DnsRecord)
        where = "on" if present else "removed from"
        label = f"dns: {record.name} {where} {record.server}"
        host = self._local(estate, record.server)
        if host is None or host.ports.dns is None:
            return Verification(check=label, ok=True, detail="not probed: remote host")
        port = host.ports.dns

        def probe() -> tuple[bool, str]:
            try:
                found = resolve(record.name, port)
            except (dns.exception.DNSException, OSError) as exc:
                return False, f"query to 127.0.0.1:{port} failed: {exc}"
            ok = (record.type != "A" or record.value in found) if present else not found
            return ok, f"{record.name} resolves to {', '.join(found) or 'nothing'}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    def _site(self, estate: Estate, site: Resource, present: bool = True) -> Verification:
        """The proxy answers for the domain with the upstream's page (once removed: 404)."""
        assert isinstance(site, Site)
        label = f"site: {site.domain} {'via' if present else 'removed from'} {site.proxy}"
        proxy = self._local(estate, site.proxy)
        if proxy is None or proxy.ports.http is None:
            return Verification(check=label, ok=True, detail="not probed: remote host")
        port = proxy.ports.http
        expect = _upstream_container(estate, site)

        def probe() -> tuple[bool, str]:
            address = _resolve_via_estate(estate, site.domain) or str(proxy.address)
            try:
                status, body = http_get(address, port, site.domain)
            except OSError as exc:
                return False, f"GET http://{site.domain}:{port}/ at {address} failed: {exc}"
            if not present:
                return status == 404, f"GET http://{site.domain}:{port}/ → {status}"
            ok = status < 400 and (expect is None or expect.hostname in body)
            shown = " ".join(body.split())[:120]
            via = f" (service in container {expect.name})" if expect else ""
            return ok, f"GET http://{site.domain}:{port}/ at {address} → {status}{via}: {shown}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    def _target(self, estate: Estate, target: Resource) -> Verification:
        assert isinstance(target, MonitoringTarget)
        label = f"monitoring: {target.name} on {target.monitor}"
        if self._local(estate, target.monitor) is None:
            return Verification(check=label, ok=True, detail="not probed: remote host")
        path = self.runtime_root / target.monitor / "prometheus" / "file_sd" / "scrape.json"
        try:
            groups = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            return Verification(check=label, ok=False, detail=f"cannot read {path}: {exc}")
        listed = {t for g in groups for t in g.get("targets", [])}
        missing = [t for t in target.targets if t not in listed]
        detail = (
            f"missing from {path.name}: {', '.join(missing)}"
            if missing
            else f"{', '.join(target.targets)} listed in {path}"
        )
        return Verification(check=label, ok=not missing, detail=detail)

    def _container(self, estate: Estate, container: Resource) -> Verification:
        assert isinstance(container, Container)
        label = f"container: {container.name} on {container.node}"
        node = self._local(estate, container.node)
        if node is None or node.provider != "local":
            return Verification(check=label, ok=True, detail="not probed: remote node")
        address = str(container.ip.ip)

        def probe() -> tuple[bool, str]:
            try:
                status, body = http_get(address, container.service_port, container.hostname)
            except OSError as exc:
                return False, f"service at {address}:{container.service_port} unreachable: {exc}"
            ok = status < 400 and container.hostname in body
            return ok, f"service at {address}:{container.service_port} answers {status}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    _checks: dict[type, Callable[[LocalVerifier, Estate, Resource], Verification]] = {
        DnsRecord: _dns,
        Site: _site,
        MonitoringTarget: _target,
        Container: _container,
    }


def _upstream_container(estate: Estate, site: Site) -> Container | None:
    for c in estate.containers():
        if f"//{c.ip.ip}:" in site.upstream or site.upstream.rstrip("/").endswith(f"//{c.ip.ip}"):
            return c
    return None


def _resolve_via_estate(estate: Estate, name: str) -> str | None:
    """Resolve through the estate's own local DNS server, as a client of the estate would."""
    for record in estate.of_kind("DnsRecord"):
        assert isinstance(record, DnsRecord)
        server = estate.get("Host", record.server)
        if record.name != name or not isinstance(server, Host) or server.ports.dns is None:
            continue
        if server.connection != "local":
            continue
        try:
            found = resolve(name, server.ports.dns)
        except (dns.exception.DNSException, OSError):
            return None
        return found[0] if found else None
    return None
