"""Helpers for the local estate and Ansible tests (imported by them, not a pytest plugin).

They talk to the real thing: ansible-playbook, nginx over HTTP, dnsmasq over UDP DNS.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import random
import re
import secrets
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
ANSIBLE_DIR = REPO / "infra" / "ansible"
RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)",
    re.MULTILINE,
)


# ---------------------------------------------------------------- inventory


class Unsafe(str):
    """A desired-state string: emitted as ``!unsafe`` like the bot's compiler does."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(Unsafe, lambda d, v: d.represent_scalar("!unsafe", str(v), style="'"))


def unsafe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    return Unsafe(value) if isinstance(value, str) else value


def local_host(root: Path, name: str, roles: list[str], **extra: Any) -> dict[str, Any]:
    """The contract host vars of one local host (desired-state values tagged !unsafe)."""
    data = {
        "ansible_connection": "local",
        "ansible_host": "127.0.0.1",
        "infrabot_root": str(root / name),
        "infrabot_roles": roles,
        "infrabot_provider": "local",
        "infrabot_ports": {},
        "infrabot_sites": [],
        "infrabot_dns_records": [],
        "infrabot_monitoring_targets": [],
        "infrabot_containers": [],
    }
    data.update(extra)
    tagged: dict[str, Any] = unsafe(data)
    tagged["ansible_python_interpreter"] = "{{ ansible_playbook_python }}"
    return tagged


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]]) -> Path:
    text = yaml.dump({"all": {"hosts": hosts}}, Dumper=_Dumper, sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------- ansible


@dataclass(frozen=True)
class PlaybookRun:
    rc: int
    output: str
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    def changed(self, host: str) -> int:
        return self.recap[host]["changed"]


def run_playbook(playbook: str, inventory: Path, *args: str) -> PlaybookRun:
    env = dict(os.environ)
    env.update(ANSIBLE_CONFIG=str(ANSIBLE_DIR / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    binary = Path(sys.executable).parent / "ansible-playbook"
    argv = [str(binary), "-i", str(inventory), str(ANSIBLE_DIR / playbook), *args]
    result = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=ANSIBLE_DIR, timeout=300
    )
    output = result.stdout + result.stderr
    recap = {
        m["host"]: {k: int(m[k]) for k in ("ok", "changed", "unreachable", "failed")}
        for m in RECAP.finditer(result.stdout)
    }
    return PlaybookRun(result.returncode, output, recap)


# ---------------------------------------------------------------- ports and names


def free_port(udp_too: bool = False) -> int:
    """A random high loopback port nothing holds (TCP, and UDP if asked)."""
    for _ in range(200):
        port = random.randint(20000, 32000)
        kinds = [socket.SOCK_STREAM] + ([socket.SOCK_DGRAM] if udp_too else [])
        try:
            for kind in kinds:
                with socket.socket(socket.AF_INET, kind) as sock:
                    sock.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    raise RuntimeError("no free port")


def unique() -> str:
    return secrets.token_hex(3)


def container(name: str) -> dict[str, Any]:
    """A container on a random private /24 (avoiding the demo's 10.77.0.0/24)."""
    net = f"10.{random.randint(200, 250)}.{random.randint(0, 255)}"
    return {
        "name": name,
        "vmid": random.randint(900000, 999999),
        "hostname": f"{name}-host",
        "cores": 1,
        "memory": 128,
        "disk": 1,
        "ip": f"{net}.10/24",
        "gateway": f"{net}.1",
        "template": "debian-12-standard",
        "service_port": 8080,
    }


# ---------------------------------------------------------------- clients


def http_get(port: int, host_header: str, path: str = "/") -> tuple[int, str]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
    try:
        conn.request("GET", path, headers={"Host": host_header})
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def eventually(check: Any, timeout: float = 5.0) -> Any:
    """Retry ``check()`` until it returns a truthy value (reloads are asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            value = None
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def dns_query(port: int, name: str) -> list[tuple[str, str]]:
    """Ask 127.0.0.1:port for the A record of ``name``; returns (type, data) answers."""
    qid = random.randint(0, 0xFFFF)
    question = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    packet = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0) + question + b"\0\x01\0\x01"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(packet, ("127.0.0.1", port))
        reply = sock.recv(4096)
    rid, _flags, _qd, ancount = struct.unpack(">HHHH", reply[:8])
    assert rid == qid
    offset = 12 + len(question) + 4
    answers = []
    for _ in range(ancount):
        _, offset = _read_name(reply, offset)
        rtype, _cls, _ttl, length = struct.unpack(">HHIH", reply[offset : offset + 10])
        offset += 10
        data = reply[offset : offset + length]
        if rtype == 1:
            answers.append(("A", socket.inet_ntoa(data)))
        elif rtype == 5:
            answers.append(("CNAME", _read_name(reply, offset)[0]))
        offset += length
    return answers


def _read_name(packet: bytes, offset: int) -> tuple[str, int]:
    labels, end = [], None
    while packet[offset]:
        if packet[offset] & 0xC0 == 0xC0:  # compression pointer
            end = end or offset + 2
            offset = struct.unpack(">H", packet[offset : offset + 2])[0] & 0x3FFF
            continue
        length = packet[offset]
        labels.append(packet[offset + 1 : offset + 1 + length].decode())
        offset += 1 + length
    return ".".join(labels), end or offset + 1


# ---------------------------------------------------------------- leftovers


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that mention ``text`` (our runtime root)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args and str(os.getpid()) != cmdline.parent.name:
            found.append(args)
    return found


def netns_names() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def container_names(state_dir: Path, name: str, vmid: int) -> tuple[str, str]:
    """(namespace, host link) the container script makes for a container in ``state_dir``
    (tagged by the state directory, so concurrent estates never share a name)."""
    tag = hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:4]
    return f"ib{tag}-{name}", f"ib{tag}{vmid}"


def link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its content (logs left out: services append to them)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.name.endswith(".log")
    }
