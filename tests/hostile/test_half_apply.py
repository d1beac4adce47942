"""No half-applies: a value that would break a service config fails before anything changes.

A trailing newline in a host name, a domain or a CNAME target fails validation (Python's ``$``
would have let it through).  A config that is valid desired state but that dnsmasq refuses (a
CNAME loop) fails the dry-run, so it is never applied; and should an apply ever get it, the
dns role's ``validate:`` keeps it from landing while the running dnsmasq serves on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from conftest_localestate import dns_query, free_port, local_host, run_playbook, write_inventory
from hostile_helpers import (
    ROOT,
    Cli,
    assert_failing_and_never_applied,
    git,
    open_pr,
    pr_json,
    statuses,
    writing,
)

from bot.flow.verify import http_get, resolve
from bot.ledger import EstateLock
from bot.localestate import LocalEstate, netns_available
from bot.model import Host

STATE = "infra/state"
CONTAINER = f"{STATE}/containers/status-page.yaml"
SITE = f"{STATE}/sites/status-page.yaml"


def _record(name: str, value: str, kind: str = "CNAME") -> str:
    return (
        f"kind: DnsRecord\nname: {name}\nowner: bob\ntype: {kind}\nvalue: {value}\nserver: dns1\n"
    )


CNAME_TO_NEWLINE = '"status.example.com\\n"'


@pytest.mark.e2e
@pytest.mark.parametrize(
    "files",
    [
        {CONTAINER: (ROOT / CONTAINER).read_text().replace(
            "hostname: status-page", 'hostname: "status-page\\n"')},
        {SITE: (ROOT / SITE).read_text().replace(
            "domain: status.example.com", 'domain: "status.example.com\\n"')},
        {f"{STATE}/dns/www.example.com.yaml": _record("www.example.com", CNAME_TO_NEWLINE)},
    ],
    ids=["hostname", "domain", "cname"],
)  # fmt: skip
def test_a_trailing_newline_fails_validation(cli: Cli, repo: Path, files: dict[str, str]) -> None:
    number = open_pr(cli, repo, writing(dict(files)))
    assert "dry-run was not run" in pr_json(cli, number)["pull_request"]["body"]
    assert_failing_and_never_applied(cli, repo, number)


LOOP = {
    f"{STATE}/dns/loop-a.example.com.yaml": _record("loop-a.example.com", "loop-b.example.com"),
    f"{STATE}/dns/loop-b.example.com.yaml": _record("loop-b.example.com", "loop-a.example.com"),
}
needs_netns = pytest.mark.skipif(
    netns_available() is not None, reason=f"network namespaces: {netns_available()}"
)


def _ports(cli: Cli) -> tuple[int, int]:
    hosts = {h["name"]: h for h in json.loads(cli("estate", "status", "--json")[1])["hosts"]}
    dns = next(s["port"] for s in hosts["dns1"]["services"] if s["name"] == "dnsmasq")
    http = next(s["port"] for s in hosts["proxy1"]["services"] if s["name"] == "nginx")
    return dns, http


def _served(repo: Path, dns: int, http: int) -> tuple[Any, ...]:
    files = sorted((repo / ".infrabot/estate/dns1/dns").rglob("*"))
    contents = {p.name: p.read_text() for p in files if p.is_file() and p.suffix != ".pid"}
    return resolve("x.example.com", dns), http_get("127.0.0.1", http, "x.example.com"), contents


@pytest.mark.e2e
@pytest.mark.integration
@needs_netns
def test_a_config_dnsmasq_refuses_fails_the_dry_run_and_nothing_changes(
    cli: Cli, repo: Path
) -> None:
    assert cli("estate", "up")[0] == 0
    try:
        dns, http = _ports(cli)
        record = {f"{STATE}/dns/x.example.com.yaml": _record("x.example.com", "127.0.0.1", "A")}
        served = open_pr(cli, repo, writing(record), branch="bob/record")
        cli("pr", "review", str(served), "--approve", "--as", "alice")
        code, out = cli("pr", "merge", str(served), "--as", "alice")
        assert code == 0, out
        before = _served(repo, dns, http)
        assert before[0] == ["127.0.0.1"] and "cnames.conf" in before[2]
        number = open_pr(cli, repo, writing(dict(LOOP)), branch="bob/loop")
        assert statuses(cli, number) == {
            "infrabot/validate": "success",  # valid desired state ...
            "infrabot/dry-run": "failure",  # ... that dnsmasq --test refuses
        }
        assert "CNAME loop" in pr_json(cli, number)["pull_request"]["body"]
        main = git(repo, "rev-parse", "main")
        cli("pr", "review", str(number), "--approve", "--as", "alice")
        assert cli("pr", "comment", str(number), "/apply", "--as", "alice")[0] == 1
        assert cli("pr", "merge", str(number), "--as", "alice")[0] == 1
        assert git(repo, "rev-parse", "main") == main
        assert _served(repo, dns, http) == before  # the estate serves what it served
        assert EstateLock(repo / ".infrabot/ledger.db").holder() is None
    finally:
        assert cli("estate", "down")[0] == 0


@pytest.mark.integration
def test_an_apply_never_installs_a_dns_file_dnsmasq_refuses(tmp_path: Path) -> None:
    """Even past the gate (a playbook run by hand), the bad file never lands: the running
    dnsmasq keeps its files and keeps answering."""
    root, port = tmp_path / "estate", free_port(udp_too=True)
    good = [{"name": "ok.example.test", "type": "A", "value": "127.0.0.1", "ttl": 60}]
    loop = [
        {"name": "a.example.test", "type": "CNAME", "value": "b.example.test", "ttl": 60},
        {"name": "b.example.test", "type": "CNAME", "value": "a.example.test", "ttl": 60},
    ]
    host = Host(name="dns1", address="127.0.0.1", connection="local", roles=("dns",),
                ports={"dns": port})  # fmt: skip
    local = LocalEstate(root, [host])

    def inventory(records: list[dict[str, Any]]) -> Path:
        dns1 = local_host(root, "dns1", ["dns"], infrabot_ports={"dns": port},
                          infrabot_dns_records=records)  # fmt: skip
        return write_inventory(tmp_path / "inventory.yml", {"dns1": dns1})

    try:
        assert run_playbook("site.yml", inventory(good)).rc == 0
        local.up()
        assert ("A", "127.0.0.1") in dns_query(port, "ok.example.test")
        files = {p: p.read_text() for p in (root / "dns1/dns").rglob("*") if p.suffix != ".pid"
                 and p.is_file()}  # fmt: skip
        run = run_playbook("site.yml", inventory(good + loop))
        assert run.rc != 0 and "CNAME loop" in run.output
        assert {p: p.read_text() for p in files} == files  # nothing of dns1 changed
        assert ("A", "127.0.0.1") in dns_query(port, "ok.example.test")  # still serving
    finally:
        local.down()
