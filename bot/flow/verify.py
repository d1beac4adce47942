"""After an apply: probe what changed, the way a user would reach it.

A Site is checked end to end: its domain is resolved through the estate's DNS server,
the proxy is asked for it at the resolved address, and when the upstream is a container
the answer must come from the service inside that container.  Remote hosts are not
probed from here (their monitoring does that); the result says so, and such a result
decides no acceptance criterion.  Each check is also run for a removed resource: the name
no longer resolves, the proxy answers 404, the targets left file_sd, nothing answers at the
container's address.  A service's page is summarised (status and <title>), never pasted.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import dns.exception
import dns.message
import dns.query
import dns.rdatatype

from bot.alerts.acceptance import verify_after_apply
from bot.alerts.services import intake_services
from bot.engines.planning import criteria_for
from bot.estate import Estate
from bot.flow.services import Services
from bot.markdown import flat
from bot.model import Container, DnsRecord, Host, MonitoringTarget, Resource, Site, Verification

Probe = Callable[[], tuple[bool, str]]
NOT_PROBED = "not probed"
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.I | re.S)
_TAG = re.compile(r"<[^>]*>?")


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


def answers(name: str, port: int, server: str = "127.0.0.1") -> list[str]:
    """What an A query for ``name`` answers: CNAME targets (no trailing dot) and addresses."""
    query = dns.message.make_query(name, dns.rdatatype.A)
    answer = dns.query.udp(query, server, port=port, timeout=2.0)
    out = []
    for rrset in answer.answer:
        for item in rrset:
            if rrset.rdtype == dns.rdatatype.A:
                out.append(item.address)
            elif rrset.rdtype == dns.rdatatype.CNAME:
                out.append(str(item.target).rstrip("."))
    return out


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
        """One check per changed or removed resource that the estate can probe.

        A check that probed something carries the plan's acceptance criteria for its
        resource (``criteria_for``), so the evidence can tick each criterion or say it was
        not verified; "not probed" carries none.
        """
        out: list[Verification] = []
        for present, group in ((True, resources), (False, removed)):
            for resource in group:
                check = self._checks.get(type(resource))
                if check is None:
                    continue
                result = check(self, estate, resource, present)
                if not result.detail.startswith(NOT_PROBED):
                    criteria = criteria_for(resource, estate, present=present)
                    result = result.model_copy(update={"criteria": criteria})
                out.append(result)
        return out

    def _local(self, estate: Estate, name: str) -> Host | None:
        host = estate.get("Host", name)
        return host if isinstance(host, Host) and host.connection == "local" else None

    def _dns(self, estate: Estate, record: Resource, present: bool) -> Verification:
        """The record answers with its value (or, once removed, does not resolve at all)."""
        assert isinstance(record, DnsRecord)
        where = "on" if present else "removed from"
        label = f"dns: {record.name} {where} {record.server}"
        host = self._local(estate, record.server)
        if host is None or host.ports.dns is None:
            return Verification(check=label, ok=True, detail=f"{NOT_PROBED}: remote host")
        port = host.ports.dns

        def probe() -> tuple[bool, str]:
            try:
                found = answers(record.name, port)
            except (dns.exception.DNSException, OSError) as exc:
                return False, f"query to 127.0.0.1:{port} failed: {exc}"
            ok = record.value.rstrip(".") in found if present else not found
            return ok, f"{record.name} resolves to {', '.join(found) or 'nothing'}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    def _site(self, estate: Estate, site: Resource, present: bool) -> Verification:
        """The proxy answers for the domain with the upstream's page (once removed: 404)."""
        assert isinstance(site, Site)
        label = f"site: {site.domain} {'via' if present else 'removed from'} {site.proxy}"
        proxy = self._local(estate, site.proxy)
        if proxy is None or proxy.ports.http is None:
            return Verification(check=label, ok=True, detail=f"{NOT_PROBED}: remote host")
        port = proxy.ports.http
        expect = _upstream_container(estate, site)

        def probe() -> tuple[bool, str]:
            address = _resolve_via_estate(estate, site.domain) or str(proxy.address)
            url = f"GET http://{site.domain}:{port}/ at {address}"
            try:
                status, body = http_get(address, port, site.domain)
            except OSError as exc:
                return False, f"{url} failed: {exc}"
            if not present:
                return status == 404, f"{url} → {status}"
            ok = status < 400 and (expect is None or expect.hostname in body)
            via = f" (service in container {expect.name})" if expect else ""
            return ok, f"{url} → {response_summary(status, body)}{via}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    def _target(self, estate: Estate, target: Resource, present: bool) -> Verification:
        """Its targets (and its probe URL) are in Prometheus's file_sd, or gone from it."""
        assert isinstance(target, MonitoringTarget)
        where = "on" if present else "removed from"
        label = f"monitoring: {target.name} {where} {target.monitor}"
        if self._local(estate, target.monitor) is None:
            return Verification(check=label, ok=True, detail=f"{NOT_PROBED}: remote host")
        file_sd = self.runtime_root / target.monitor / "prometheus" / "file_sd"
        try:
            listed = _file_sd_targets(file_sd / "scrape.json")
            probed = _file_sd_targets(file_sd / "probe.json") if target.probe else set()
        except (OSError, ValueError) as exc:
            return Verification(check=label, ok=False, detail=f"cannot read {file_sd}: {exc}")
        wanted = [*target.targets, *([target.probe] if target.probe else [])]
        found = listed | probed
        wrong = [t for t in wanted if (t in found) is not present]
        if present:
            detail = f"missing from file_sd: {', '.join(wrong)}" if wrong else "listed in file_sd"
        else:
            detail = f"still in file_sd: {', '.join(wrong)}" if wrong else "not in file_sd"
        return Verification(check=label, ok=not wrong, detail=f"{', '.join(wanted)}: {detail}")

    def _container(self, estate: Estate, container: Resource, present: bool) -> Verification:
        """Its service answers at its address from inside it (once removed: it does not —
        another machine may answer for the address, but not with the container's page)."""
        assert isinstance(container, Container)
        where = "on" if present else "removed from"
        label = f"container: {container.name} {where} {container.node}"
        node = self._local(estate, container.node)
        if node is None or node.provider != "local":
            return Verification(check=label, ok=True, detail=f"{NOT_PROBED}: remote node")
        address, port = str(container.ip.ip), container.service_port

        def probe() -> tuple[bool, str]:
            try:
                status, body = http_get(address, port, container.hostname)
            except OSError as exc:
                if present:
                    return False, f"service at {address}:{port} unreachable: {exc}"
                return True, f"nothing answers at {address}:{port} any more"
            theirs = status < 400 and container.hostname in body
            if not present:  # something else may answer for the address (a router, a proxy)
                gone = f"no longer answers as {container.name} (got {status})"
                still = f"still answers as {container.name}"
                return not theirs, f"service at {address}:{port} {still if theirs else gone}"
            ok = theirs
            return ok, f"service at {address}:{port} answers {response_summary(status, body)}"

        ok, detail = _retry(probe)
        return Verification(check=label, ok=ok, detail=detail)

    _checks: dict[type, Callable[[LocalVerifier, Estate, Resource, bool], Verification]] = {
        DnsRecord: _dns,
        Site: _site,
        MonitoringTarget: _target,
        Container: _container,
    }


def response_summary(status: int, body: str) -> str:
    """A service's answer in a few words: its status and its page's <title> (or a short
    excerpt of its text).  The page is someone else's content: never paste it whole."""
    found = _TITLE.search(body)
    if found:
        return f"{status}, title {flat(html.unescape(found.group(1)), 80)!r}"
    words = flat(html.unescape(_TAG.sub(" ", body)), 60)
    return f"{status}, {words!r}" if words else str(status)


def _file_sd_targets(path: Path) -> set[str]:
    groups = json.loads(path.read_text())
    return {t for g in groups for t in g.get("targets", [])}


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


def alert_acceptance_after_apply(svc: Services, issue: int, pr: int) -> str | None:
    """For an alert's ticket (label ``alert``): its acceptance criteria, measured against
    Prometheus right after PR ``pr`` applied, decide whether it closes — not the apply.  None
    for any other issue (the caller closes it as applied and verified)."""
    if "alert" not in svc.forge.issue(issue).labels:
        return None
    verdict = verify_after_apply(intake_services(svc), issue, pr)
    if verdict is None:
        return None
    if verdict.closed:
        return f"ticket #{issue} closed: its acceptance criteria held ({verdict.detail})"
    return f"ticket #{issue} stays open until its acceptance criteria hold ({verdict.detail})"
