"""infra/ansible applied for real to a local estate: nginx, dnsmasq, file_sd, namespaces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest_localestate import (
    container,
    container_names,
    dns_query,
    eventually,
    free_port,
    http_get,
    link_exists,
    local_host,
    netns_names,
    processes_mentioning,
    run_playbook,
    tree,
    unique,
    write_inventory,
)

from bot.localestate import LocalEstate, netns_available
from bot.model import Host

pytestmark = pytest.mark.integration


@pytest.fixture
def needs_netns() -> None:
    reason = netns_available()
    if reason is not None:
        pytest.skip(f"network namespaces are not available here: {reason}")


class Estate:
    """One proxy, one DNS server, one monitor and one node, on a tmp root."""

    def __init__(self, tmp: Path) -> None:
        self.root = tmp / "estate"
        self.inventory = tmp / "inventory.yml"
        self.http, self.dns = free_port(), free_port(udp_too=True)
        self.ctr = container(f"t{unique()}")
        self.ctr_ip = self.ctr["ip"].split("/")[0]
        self.domain = f"{self.ctr['name']}.example.test"
        self.hosts = [
            Host(name="proxy1", address="127.0.0.1", connection="local", roles=("proxy",),
                 ports={"http": self.http}),
            Host(name="dns1", address="127.0.0.1", connection="local", roles=("dns",),
                 ports={"dns": self.dns}),
            Host(name="mon1", address="127.0.0.1", connection="local", roles=("monitoring",)),
            Host(name="pve1", address="127.0.0.1", connection="local", roles=("node",)),
        ]  # fmt: skip
        self.local = LocalEstate(self.root, self.hosts)

    def write(self, *, with_site: bool = True) -> Path:
        upstream = f"http://{self.ctr_ip}:{self.ctr['service_port']}"
        site = {"name": "web", "domain": self.domain, "upstream": upstream, "proxy": "proxy1"}
        records = [
            {"name": self.domain, "type": "A", "value": "127.0.0.1", "ttl": 300},
            {"name": f"www.{self.domain}", "type": "CNAME", "value": self.domain, "ttl": 60},
        ]
        target = {
            "name": "web",
            "targets": [f"{self.ctr_ip}:8080"],
            "probe": f"http://{self.domain}/",
            "labels": {"team": "platform"},
        }
        hosts: dict[str, Any] = {
            "proxy1": local_host(self.root, "proxy1", ["proxy"], infrabot_ports={"http": self.http},
                                 infrabot_sites=[site] if with_site else []),
            "dns1": local_host(self.root, "dns1", ["dns"], infrabot_ports={"dns": self.dns},
                               infrabot_dns_records=records),
            "mon1": local_host(self.root, "mon1", ["monitoring"],
                               infrabot_monitoring_targets=[target]),
            "pve1": local_host(self.root, "pve1", ["node"],
                               infrabot_containers=[self.ctr] if with_site else []),
        }  # fmt: skip
        return write_inventory(self.inventory, hosts)


@pytest.fixture
def estate(tmp_path: Path) -> Iterator[Estate]:
    est = Estate(tmp_path)
    try:
        yield est
    finally:
        est.local.down()


def page_through_proxy(est: Estate) -> str | None:
    status, body = http_get(est.http, est.domain)
    return body if status == 200 and est.ctr["hostname"] in body else None


@pytest.mark.usefixtures("needs_netns")
def test_check_then_apply_then_reconcile(estate: Estate) -> None:
    est = estate
    status = est.local.up()
    assert {"proxy1/nginx", "dns1/dnsmasq"} <= set(status.running)
    inventory = est.write()
    ns, link = container_names(est.root / "pve1" / "containers", est.ctr["name"], est.ctr["vmid"])

    # Dry run: every host reports changes, nothing is written or created.
    before = tree(est.root)
    check = run_playbook("site.yml", inventory, "--check", "--diff")
    assert check.rc == 0, check.output
    assert all(check.changed(h) > 0 for h in ("proxy1", "dns1", "mon1", "pve1")), check.output
    assert f"server_name {est.domain};" in check.output  # the diff shows the vhost
    assert tree(est.root) == before
    assert ns not in netns_names() and not link_exists(link)

    # Apply: DNS answers, nginx proxies the domain to the service inside the namespace.
    apply = run_playbook("site.yml", inventory)
    assert apply.rc == 0, apply.output
    assert ("A", "127.0.0.1") in dns_query(est.dns, est.domain)
    www = eventually(lambda: dns_query(est.dns, f"www.{est.domain}"))
    assert ("CNAME", est.domain) in www and ("A", "127.0.0.1") in www
    body = eventually(lambda: page_through_proxy(est))
    assert body and est.ctr["name"] in body and est.ctr["hostname"] in body
    scrape = json.loads((est.root / "mon1/prometheus/file_sd/scrape.json").read_text())
    assert scrape == [
        {
            "labels": {"infrabot_target": "web", "team": "platform"},
            "targets": [f"{est.ctr_ip}:8080"],
        }
    ]
    probe = json.loads((est.root / "mon1/prometheus/file_sd/probe.json").read_text())
    assert probe[0]["targets"] == [f"http://{est.domain}/"]
    containers = {c.name: c for h in est.local.status().hosts for c in h.containers}
    assert containers[est.ctr["name"]].healthy

    # Idempotent: a second apply changes nothing.
    again = run_playbook("site.yml", inventory)
    assert again.rc == 0, again.output
    assert {h: r["changed"] for h, r in again.recap.items()} == dict.fromkeys(
        ("proxy1", "dns1", "mon1", "pve1"), 0
    ), again.output

    # Reconcile: the site and the container leave the desired state, so they leave the host.
    removal = run_playbook("site.yml", est.write(with_site=False))
    assert removal.rc == 0, removal.output
    assert removal.changed("proxy1") > 0 and removal.changed("pve1") > 0
    sites = (est.root / "proxy1/nginx/sites/infrabot-sites.conf").read_text()
    assert est.domain not in sites and "Managed by infrabot" in sites
    assert eventually(lambda: http_get(est.http, est.domain)[0] == 404)
    assert ns not in netns_names() and not link_exists(link)
    assert not list((est.root / "pve1/containers").glob("*.json"))

    # Down: nothing left running.
    est.write()
    assert run_playbook("site.yml", inventory, "--limit", "pve1").rc == 0
    assert ns in netns_names()
    est.local.down()
    assert ns not in netns_names() and not link_exists(link)
    assert processes_mentioning(str(est.root)) == []
    assert est.local.status().running == ()


def test_limit_applies_only_the_named_hosts(estate: Estate) -> None:
    inventory = estate.write()
    run = run_playbook("site.yml", inventory, "--check", "--limit", "mon1")
    assert run.rc == 0, run.output
    assert set(run.recap) == {"mon1"}


def test_desired_state_values_are_never_templated(tmp_path: Path) -> None:
    """A Jinja expression in a desired-state value is data: rendered literally, never run."""
    marker = Path(f"/tmp/infrabot-unsafe-{unique()}")
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    root = tmp_path / "estate"
    site = {"name": "evil", "domain": evil, "upstream": "http://127.0.0.1:9", "proxy": "proxy1"}
    hosts = {
        "proxy1": local_host(root, "proxy1", ["proxy"], infrabot_ports={"http": free_port()},
                             infrabot_sites=[site]),
        "dns1": local_host(root, "dns1", ["dns"], infrabot_ports={"dns": free_port(True)},
                           infrabot_dns_records=[{"name": evil, "type": "A",
                                                  "value": "127.0.0.1", "ttl": 60}]),
        "mon1": local_host(root, "mon1", ["monitoring"], infrabot_monitoring_targets=[
            {"name": "evil", "targets": ["127.0.0.1:9"], "labels": {"note": evil}}]),
    }  # fmt: skip
    inventory = write_inventory(tmp_path / "inventory.yml", hosts)

    check = run_playbook(
        "site.yml", inventory, "--check", "--diff", "-v", "-e", "infrabot_render_vhosts=true"
    )
    assert check.rc == 0, check.output
    assert f"server_name {evil};" in check.output  # in the diff and in the rendered fact
    assert "proxy_rendered_vhosts" in check.output
    assert not (root / "proxy1/nginx/sites").exists()  # check mode wrote nothing

    apply = run_playbook("site.yml", inventory, "--limit", "dns1,mon1")
    assert apply.recap["mon1"]["failed"] == 0, apply.output
    scrape = json.loads((root / "mon1/prometheus/file_sd/scrape.json").read_text())
    assert scrape[0]["labels"]["note"] == evil
    # On dns1 the literal text reaches the hosts file's `validate:`, which refuses a line that
    # is not `<IPv4> <host name>`: the file never lands (validation refuses it before, too).
    assert apply.recap["dns1"]["failed"] == 1 and "failed to validate" in apply.output
    assert not (root / "dns1/dns/hosts").exists()
    assert not marker.exists()
