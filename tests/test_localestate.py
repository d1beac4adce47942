"""bot.localestate: the config it owns (pure), and real nginx/dnsmasq/namespaces (marked)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest_localestate import (
    ANSIBLE_DIR,
    container,
    container_names,
    dns_query,
    free_port,
    http_get,
    link_exists,
    netns_names,
    processes_mentioning,
    unique,
)

from bot.errors import InfrabotError
from bot.localestate import (
    EstateStatus,
    HostLayout,
    HostStatus,
    LocalEstate,
    ServiceStatus,
    check_ports,
    dnsmasq_conf,
    netns_available,
    nginx_conf,
    render_status,
)
from bot.model import Host
from bot.model.resources import Ports

SCRIPT = ANSIBLE_DIR / "roles/node/files/local_container.py"


def host(name: str, *roles: str, http: int | None = None, dns: int | None = None) -> Host:
    return Host(
        name=name,
        address="127.0.0.1",  # type: ignore[arg-type]
        connection="local",
        roles=roles,  # type: ignore[arg-type]
        ports=Ports(http=http, dns=dns),
    )


# ---------------------------------------------------------------- pure


def test_nginx_conf_keeps_everything_under_the_prefix() -> None:
    layout = HostLayout(Path("/srv/estate/proxy1"))
    conf = nginx_conf(layout, "proxy1", 18080, user=None)
    assert 'pid "/srv/estate/proxy1/nginx/nginx.pid";' in conf
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        assert f'{temp}_temp_path "/srv/estate/proxy1/nginx/temp/{temp}";' in conf
    assert "listen 127.0.0.1:18080 default_server;" in conf and "return 404;" in conf
    assert 'include "/srv/estate/proxy1/nginx/sites/*.conf";' in conf
    assert "user " not in conf
    assert nginx_conf(layout, "proxy1", 18080, user="root").count("user root;") == 1


def test_dnsmasq_conf_serves_only_infrabot_records_on_loopback() -> None:
    conf = dnsmasq_conf(HostLayout(Path("/e/dns1")), "dns1", 15353, user="root").splitlines()
    for line in (
        "port=15353",
        "listen-address=127.0.0.1",
        "bind-interfaces",
        "no-resolv",
        "no-hosts",
        "addn-hosts=/e/dns1/dns/hosts",
        "conf-dir=/e/dns1/dns/dnsmasq.d,*.conf",
        "pid-file=/e/dns1/dns/dnsmasq.pid",
    ):
        assert line in conf


@pytest.mark.parametrize(
    ("hosts", "error"),
    [
        ([host("p", "proxy")], "host p has role proxy but no ports.http"),
        ([host("d", "dns")], "host d has role dns but no ports.dns"),
        (
            [host("a", "dns", dns=15353), host("b", "dns", dns=15353)],
            "hosts a (dns) and b (dns) both want port 15353/udp",
        ),
        (
            [host("a", "proxy", http=8000), host("b", "dns", dns=8000)],
            "hosts a (proxy) and b (dns) both want port 8000/tcp",
        ),
        (
            [host("a", "proxy", "dns", http=8000, dns=8000)],
            "hosts a (proxy) and a (dns) both want port 8000/tcp",
        ),
        ([host("a", "proxy", "dns", http=8000, dns=8001), host("n", "node")], None),
    ],
)
def test_check_ports(hosts: list[Host], error: str | None) -> None:
    if error is None:
        check_ports(hosts)
        return
    with pytest.raises(InfrabotError, match="^" + error.replace("(", r"\(").replace(")", r"\)")):
        check_ports(hosts)


def test_root_must_be_absolute() -> None:
    with pytest.raises(InfrabotError, match="absolute"):
        LocalEstate(Path("relative"), [])


def test_ssh_hosts_are_not_part_of_the_local_estate() -> None:
    remote = Host(name="far", address="192.0.2.9", roles=("proxy",))  # type: ignore[arg-type]
    assert LocalEstate(Path("/x"), [remote]).hosts == ()


def test_render_status_names_every_service() -> None:
    status = EstateStatus(
        root="/e",
        hosts=(
            HostStatus(
                name="proxy1",
                root="/e/proxy1",
                roles=("proxy",),
                services=(ServiceStatus(name="nginx", running=True, pid=42, port=18080),),
            ),
        ),
    )
    text = render_status(status)
    assert "proxy1" in text and "nginx" in text and "running  pid 42  port 18080" in text
    assert status.running == ("proxy1/nginx",)


# ---------------------------------------------------------------- real services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[LocalEstate]:
    hosts = [
        host("proxy1", "proxy", http=free_port()),
        host("dns1", "dns", dns=free_port(udp_too=True)),
        host("mon1", "monitoring"),
    ]
    estate = LocalEstate(tmp_path / "estate", hosts)
    try:
        yield estate
    finally:
        estate.down()


@pytest.mark.integration
def test_up_is_idempotent_and_down_leaves_nothing(services: LocalEstate) -> None:
    proxy, dns = services.hosts[0], services.hosts[1]
    assert proxy.ports.http and dns.ports.dns
    first = services.up()
    assert set(first.running) == {"proxy1/nginx", "dns1/dnsmasq"}
    assert http_get(proxy.ports.http, "nobody.example.test")[0] == 404
    assert dns_query(dns.ports.dns, "nothing.example.test") == []
    assert (services.root / "mon1/prometheus/file_sd").is_dir()

    pids = {(h.name, s.name): s.pid for h in first.hosts for s in h.services}
    second = services.up()
    assert {(h.name, s.name): s.pid for h in second.hosts for s in h.services} == pids

    down = services.down()
    assert down.running == ()
    assert processes_mentioning(str(services.root)) == []
    assert services.down().running == ()  # idempotent


@pytest.mark.integration
def test_up_refuses_a_taken_port_and_starts_nothing(services: LocalEstate) -> None:
    port = services.hosts[0].ports.http
    assert port
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(InfrabotError) as err:
            services.up()
    assert str(err.value) == (
        f"port {port}/tcp on 127.0.0.1 is taken (wanted by proxy1 for proxy): "
        "stop what holds it or change the host's ports"
    )
    assert processes_mentioning(str(services.root)) == []


@pytest.mark.integration
def test_up_names_a_missing_program(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.localestate.processes.SBIN", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    estate = LocalEstate(tmp_path / "e", [host("dns1", "dns", dns=free_port(udp_too=True))])
    with pytest.raises(InfrabotError, match=r"^dnsmasq is not installed \(needed by dns1\)"):
        estate.up()


# ---------------------------------------------------------------- the container script


def script(
    *args: str, state: Path, python: str = sys.executable
) -> subprocess.CompletedProcess[str]:
    argv = [python, str(SCRIPT), *args, "--state-dir", str(state)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


@pytest.fixture
def needs_netns() -> None:
    reason = netns_available()
    if reason is not None:
        pytest.skip(f"network namespaces are not available here: {reason}")


@pytest.mark.integration
@pytest.mark.usefixtures("needs_netns")
def test_container_script_repairs_a_dead_service_and_removes_cleanly(tmp_path: Path) -> None:
    state = tmp_path / "containers"
    ctr = container(f"t{unique()}")
    desired = json.dumps([ctr])
    try:
        made = script("apply", "--desired", desired, state=state)
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["created"] == [ctr["name"]]
        pid = json.loads((state / f"{ctr['name']}.json").read_text())["pid"]
        subprocess.run(["kill", str(pid)], check=True)

        check = json.loads(script("apply", "--desired", desired, "--check", state=state).stdout)
        assert check["repaired"] == [ctr["name"]] and check["changed"]
        fixed = json.loads(script("apply", "--desired", desired, state=state).stdout)
        assert fixed["repaired"] == [ctr["name"]]
        (status,) = json.loads(script("status", state=state).stdout)["containers"]
        assert status["service_answering"] and status["namespace_present"]
    finally:
        gone = script("remove-all", state=state)
    assert gone.returncode == 0, gone.stderr
    ns, link = container_names(state, ctr["name"], ctr["vmid"])
    assert ns not in netns_names() and not link_exists(link)
    assert processes_mentioning(str(state)) == []


@pytest.mark.integration
@pytest.mark.usefixtures("needs_netns")
def test_container_script_never_takes_over_a_namespace_it_did_not_make(tmp_path: Path) -> None:
    ctr = container(f"t{unique()}")
    foreign = container_names(tmp_path / "c", ctr["name"], ctr["vmid"])[0]
    subprocess.run(["ip", "netns", "add", foreign], check=True)
    try:
        run = script("apply", "--desired", json.dumps([ctr]), state=tmp_path / "c")
        assert run.returncode == 1
        assert f"namespace {foreign} already exists and was not made by this node" in run.stderr
        assert foreign in netns_names()
        assert not list((tmp_path / "c").glob("*.json"))
    finally:
        subprocess.run(["ip", "netns", "del", foreign], check=False)


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv")
def test_container_script_says_plainly_when_namespaces_are_unavailable(tmp_path: Path) -> None:
    state = tmp_path / "c"
    nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    argv = [*nobody, "/usr/bin/python3", str(SCRIPT), "apply", "--state-dir", str(state)]
    run = subprocess.run(
        [*argv, "--desired", json.dumps([container("tnope")])],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1
    assert run.stderr.startswith("network namespaces are not available on this machine: ")


@pytest.mark.parametrize(
    ("desired", "error"),
    [
        ('[{"name": "Bad_Name", "vmid": 900, "ip": "10.9.9.9/24"}]', "is not a valid name"),
        ('[{"name": "a", "vmid": 900, "ip": "10.9.9.9/32"}]', "needs an explicit gateway"),
        ('[{"name": "a", "vmid": 900, "ip": "not-an-ip"}]', "bad or missing vmid/ip"),
        (
            '[{"name": "a", "vmid": 900, "ip": "10.9.9.9/24"},'
            ' {"name": "b", "vmid": 900, "ip": "10.9.9.8/24"}]',
            "two containers on this node share vmid 900",
        ),
        ("{not json", "--desired is not JSON"),
    ],
)
def test_container_script_rejects_bad_input_in_one_line(
    tmp_path: Path, desired: str, error: str
) -> None:
    run = script("apply", "--desired", desired, "--check", state=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert error in run.stderr and len(run.stderr.strip().splitlines()) == 1
