#!/usr/bin/env python3
"""Containers of the local estate: one network namespace per container, its service inside.

Theory of operation.  A container ``<name>`` on this node is

* a network namespace ``ib<tag>-<name>``;
* a veth pair: host side ``ib<tag><vmid>`` (holds the gateway address as /32 and a /32 route
  to the container IP), peer ``eth0`` inside the namespace (holds the container IP, default
  route via the gateway, ``lo`` up);
* a small HTTP server inside the namespace, bound to the container IP on its service port,
  answering with a page that names the container and its hostname, and ``/metrics`` in
  Prometheus's text format: ``container_memory_limit_bytes`` (the container's ``memory``)
  and ``container_memory_used_bytes`` (the workload's use: the MiB in
  ``<state-dir>/<name>.workload`` if that file exists, else a small baseline; the alert demo
  and its test write it to exhaust the container's memory).

``<tag>`` is four hex digits derived from the state directory, so two estates on one
machine (two test runs, a demo beside a real estate) never share a namespace or a link.

Before anything is created a state file ``<state-dir>/<name>.json`` records the intent, so
only namespaces, links and processes this tool made are ever removed (``remove``,
``apply`` for containers no longer desired, ``remove-all`` for ``infrabot estate down``).
The script copies itself to ``<state-dir>/bin/`` so the servers and later teardown run the
same code that made them.

Actions (all print one JSON object on stdout; failures exit 1 with one line on stderr):

  apply      --state-dir D --desired JSON [--check]  ensure the desired list, remove the rest
  ensure     --state-dir D --spec JSON [--check]     one container
  remove     --state-dir D --name N [--check]        one container
  remove-all --state-dir D                           everything in the state dir
  status     --state-dir D                           what exists and whether it answers
  serve      --bind IP --port P --name N --hostname H  (internal: the service itself)

Standard library only: it runs on the managed host under whatever python3 is there.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import html
import http.server
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
NETNS_DIR = Path("/run/netns")
UNAVAILABLE = "network namespaces are not available on this machine"
SERVE_TIMEOUT = 5.0


class Failure(Exception):
    """A failure with a one-line message for the operator."""


# ---------------------------------------------------------------- the desired spec


def parse_spec(raw: Any) -> dict[str, Any]:
    """Validate one desired container into the normalised spec this tool compares."""
    if not isinstance(raw, dict):
        raise Failure(f"a container must be a mapping, got {type(raw).__name__}")
    name = str(raw.get("name", ""))
    if not NAME_RE.match(name):
        raise Failure(f"container name {name!r} is not a valid name (lowercase, digits, '-')")
    try:
        vmid = int(raw["vmid"])
        iface = ipaddress.IPv4Interface(str(raw["ip"]))
        port = int(raw.get("service_port", 8080))
        memory = int(raw.get("memory", 512))
    except (KeyError, TypeError, ValueError) as exc:
        raise Failure(f"container {name}: bad or missing vmid/ip/service_port: {exc}") from exc
    if not 100 <= vmid <= 999999999 or not 1 <= port <= 65535 or not 16 <= memory <= 1048576:
        raise Failure(f"container {name}: vmid, service_port or memory out of range")
    gateway = _gateway(name, iface, raw.get("gateway"))
    return {
        "name": name,
        "vmid": vmid,
        "hostname": str(raw.get("hostname") or name),
        "ip": str(iface),
        "gateway": str(gateway),
        "service_port": port,
        "memory": memory,
    }


def _gateway(name: str, iface: ipaddress.IPv4Interface, raw: Any) -> ipaddress.IPv4Address:
    if raw:
        try:
            gateway = ipaddress.IPv4Address(str(raw))
        except ValueError as exc:
            raise Failure(f"container {name}: bad gateway {raw!r}") from exc
    elif iface.network.prefixlen >= 31:
        raise Failure(f"container {name}: ip {iface} needs an explicit gateway")
    else:  # the first host address of the network, or the last if that is the container
        first, last = iface.network[1], iface.network[-2]
        gateway = first if first != iface.ip else last
    if gateway == iface.ip:
        raise Failure(f"container {name}: gateway {gateway} is the container's own address")
    return gateway


def parse_desired(text: str) -> list[dict[str, Any]]:
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise Failure(f"--desired is not JSON: {exc}") from exc
    if not isinstance(raw, list):
        raise Failure("--desired must be a JSON list of containers")
    specs = [parse_spec(item) for item in raw]
    for key in ("name", "vmid", "ip"):
        seen: set[Any] = set()
        for spec in specs:
            value = spec[key] if key != "ip" else spec["ip"].split("/")[0]
            if value in seen:
                raise Failure(f"two containers on this node share {key} {value}")
            seen.add(value)
    return specs


def estate_tag(state_dir: Path) -> str:
    return hashlib.sha1(str(state_dir.resolve()).encode()).hexdigest()[:4]


def namespace(state_dir: Path, spec: dict[str, Any]) -> str:
    return f"ib{estate_tag(state_dir)}-{spec['name']}"


def host_link(state_dir: Path, spec: dict[str, Any]) -> str:
    """At most 15 characters (the kernel's limit): 'ib', the tag, a vmid of up to 9 digits."""
    return f"ib{estate_tag(state_dir)}{spec['vmid']}"


def recorded_names(state_dir: Path, state: dict[str, Any]) -> tuple[str, str]:
    """(namespace, link) a state file says this tool made: teardown removes exactly those."""
    spec = state["spec"]
    ns = state.get("namespace") or namespace(state_dir, spec)
    link = state.get("link") or host_link(state_dir, spec)
    return str(ns), str(link)


# ---------------------------------------------------------------- state files


def state_path(state_dir: Path, name: str) -> Path:
    return state_dir / f"{name}.json"


def read_states(state_dir: Path) -> dict[str, dict[str, Any]]:
    states: dict[str, dict[str, Any]] = {}
    for path in sorted(state_dir.glob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            states[data["spec"]["name"]] = data
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise Failure(f"unreadable container state file {path}: {exc}") from exc
    return states


def write_state(state_dir: Path, spec: dict[str, Any], pid: int | None) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "version": 1,
        "spec": spec,
        "namespace": namespace(state_dir, spec),
        "link": host_link(state_dir, spec),
    }
    data["pid"] = pid
    atomic_write(state_path(state_dir, spec["name"]), json.dumps(data, indent=2) + "\n")


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def installed_script(state_dir: Path) -> Path:
    """Copy this script beside the state files (the servers run from there)."""
    target = state_dir / "bin" / "local_container.py"
    source = Path(__file__).read_bytes()
    if not target.exists() or target.read_bytes() != source:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(source)
        os.replace(tmp, target)
    return target


# ---------------------------------------------------------------- the live system


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        reason = (result.stderr or result.stdout).strip().splitlines()
        raise Failure(f"ip {' '.join(args)}: {reason[0] if reason else 'failed'}")
    return result


def ns_exists(ns: str) -> bool:
    return (NETNS_DIR / ns).exists()


def link_exists(link: str) -> bool:
    return Path("/sys/class/net", link).exists()


def pid_alive(pid: int | None, name: str) -> bool:
    """True if ``pid`` is a server this tool started for container ``name``."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    mine = b"serve" in cmdline and b"--name" in cmdline and name.encode() in cmdline
    return mine and _running(pid)


def answering(spec: dict[str, Any], timeout: float = 1.0) -> bool:
    address = (spec["ip"].split("/")[0], spec["service_port"])
    try:
        with socket.create_connection(address, timeout=timeout):
            return True
    except OSError:
        return False


def healthy(state_dir: Path, state: dict[str, Any]) -> bool:
    spec = state["spec"]
    ns, link = recorded_names(state_dir, state)
    return (
        ns_exists(ns)
        and link_exists(link)
        and pid_alive(state.get("pid"), spec["name"])
        and answering(spec)
    )


def check_netns_usable() -> None:
    if shutil.which("ip") is None:
        raise Failure(f"{UNAVAILABLE}: the ip command (iproute2) is not installed")
    if os.geteuid() != 0:
        raise Failure(f"{UNAVAILABLE}: creating them needs root (running as uid {os.geteuid()})")


# ---------------------------------------------------------------- create / remove


def create(state_dir: Path, spec: dict[str, Any]) -> None:
    check_netns_usable()
    ns, link = namespace(state_dir, spec), host_link(state_dir, spec)
    for kind, thing, exists in (("namespace", ns, ns_exists), ("link", link, link_exists)):
        if exists(thing):  # anything of ours was removed before: this belongs to someone else
            raise Failure(
                f"container {spec['name']}: {kind} {thing} already exists and was not made "
                f"by this node (state in {state_dir}); remove it or change the name/vmid"
            )
    write_state(state_dir, spec, None)  # intent first: whatever follows is ours to remove
    result = ip("netns", "add", ns, check=False)
    if result.returncode != 0:
        state_path(state_dir, spec["name"]).unlink(missing_ok=True)
        raise Failure(f"{UNAVAILABLE}: ip netns add {ns}: {result.stderr.strip()}")
    ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
    gateway, container_ip = spec["gateway"], spec["ip"].split("/")[0]
    ip("addr", "add", f"{gateway}/32", "dev", link)
    ip("link", "set", link, "up")
    ip("route", "replace", f"{container_ip}/32", "dev", link, "src", gateway)
    ip("-n", ns, "addr", "add", spec["ip"], "dev", "eth0")
    ip("-n", ns, "link", "set", "lo", "up")
    ip("-n", ns, "link", "set", "eth0", "up")
    ip("-n", ns, "route", "replace", "default", "via", gateway, "dev", "eth0", "onlink")
    write_state(state_dir, spec, start_server(state_dir, spec))


def start_server(state_dir: Path, spec: dict[str, Any]) -> int:
    script = installed_script(state_dir)
    log = state_dir / f"{spec['name']}.log"
    argv = [
        *("ip", "netns", "exec", namespace(state_dir, spec), sys.executable, str(script), "serve"),
        *("--bind", spec["ip"].split("/")[0], "--port", str(spec["service_port"])),
        *("--name", spec["name"], "--hostname", spec["hostname"]),
        *("--memory", str(spec.get("memory", 512))),
        *("--workload", str(state_dir / f"{spec['name']}.workload")),
    ]
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
        )
    deadline = time.monotonic() + SERVE_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if answering(spec, timeout=0.2):
            return proc.pid
        time.sleep(0.05)
    stop_pid(proc.pid, spec["name"], force=True)
    tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise Failure(f"container {spec['name']}: its service did not start: {tail[0]}")


def stop_pid(pid: int | None, name: str, force: bool = False) -> None:
    """Stop a server of container ``name`` (``force``: any process in its namespace)."""
    if not pid or not (force or pid_alive(pid, name)):
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            if not _running(pid):
                return
            time.sleep(0.05)


def _running(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def remove(state_dir: Path, state: dict[str, Any]) -> None:
    spec = state["spec"]
    ns, link = recorded_names(state_dir, state)
    stop_pid(state.get("pid"), spec["name"])
    if ns_exists(ns):
        for pid in ip("netns", "pids", ns, check=False).stdout.split():
            stop_pid(int(pid), spec["name"], force=True)
    if link_exists(link):
        ip("link", "del", link)
    if ns_exists(ns):
        ip("netns", "del", ns)
    for path in (state_path(state_dir, spec["name"]), state_dir / f"{spec['name']}.log"):
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------- actions


def ensure(state_dir: Path, spec: dict[str, Any], state: dict[str, Any] | None, check: bool) -> str:
    """Make one container match ``spec``; returns what was (or would be) done."""
    if state is None:
        outcome = "created"
    elif state["spec"] != spec:
        outcome = "updated"
    elif healthy(state_dir, state):
        return "unchanged"
    else:
        outcome = "repaired"
    if check:
        check_netns_usable()
        return outcome
    if state is not None:
        remove(state_dir, state)
    create(state_dir, spec)
    return outcome


def apply(state_dir: Path, desired: list[dict[str, Any]], check: bool) -> dict[str, Any]:
    if desired:
        check_netns_usable()
    states = read_states(state_dir) if state_dir.is_dir() else {}
    wanted = {spec["name"] for spec in desired}
    result: dict[str, list[str]] = {
        k: [] for k in ("created", "updated", "repaired", "removed", "unchanged")
    }
    for name in sorted(set(states) - wanted):  # removals first: they free vmids and IPs
        if not check:
            remove(state_dir, states[name])
        result["removed"].append(name)
    for spec in desired:
        outcome = ensure(state_dir, spec, states.get(spec["name"]), check)
        result[outcome].append(spec["name"])
    changed = any(result[k] for k in ("created", "updated", "repaired", "removed"))
    return {"changed": changed, "check": check, **result}


def status(state_dir: Path) -> dict[str, Any]:
    states = read_states(state_dir) if state_dir.is_dir() else {}
    containers = []
    for name, state in states.items():
        spec = state["spec"]
        ns, link = recorded_names(state_dir, state)
        containers.append(
            {
                "name": name,
                "hostname": spec["hostname"],
                "ip": spec["ip"],
                "service_port": spec["service_port"],
                "namespace": ns,
                "link": link,
                "namespace_present": ns_exists(ns),
                "link_present": link_exists(link),
                "pid": state.get("pid"),
                "service_running": pid_alive(state.get("pid"), name),
                "service_answering": answering(spec, timeout=0.5),
            }
        )
    return {"changed": False, "containers": containers}


# ---------------------------------------------------------------- the service


def page(name: str, hostname: str, address: str) -> bytes:
    body = (
        "<!doctype html>\n<html><head><title>{h}</title></head><body>\n"
        "<h1>{h}</h1>\n<p>container {n} on {a}, served from inside its namespace.</p>\n"
        "</body></html>\n"
    )
    esc = html.escape
    return body.format(h=esc(hostname), n=esc(name), a=esc(address)).encode()


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN, which hangs without DNS in a namespace.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)


BASELINE_MIB = 64


def used_mib(workload: Path | None) -> float:
    """The workload's memory use in MiB: the number in ``workload``, else the baseline."""
    try:
        return float(workload.read_text().strip()) if workload else BASELINE_MIB
    except (OSError, ValueError):
        return BASELINE_MIB


def metrics(name: str, memory_mib: int, workload: Path | None) -> bytes:
    label = '{container="' + name + '"}'  # a checked name: [a-z0-9-] only
    lines = [
        "# TYPE container_memory_limit_bytes gauge",
        f"container_memory_limit_bytes{label} {memory_mib * 2**20}",
        "# TYPE container_memory_used_bytes gauge",
        f"container_memory_used_bytes{label} {int(used_mib(workload) * 2**20)}",
    ]
    return ("\n".join(lines) + "\n").encode()


def serve(
    bind: str,
    port: int,
    name: str,
    hostname: str,
    memory_mib: int = 512,
    workload: Path | None = None,
) -> None:
    content = page(name, hostname, f"{bind}:{port}")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/metrics":
                body, kind = metrics(name, memory_mib, workload), "text/plain; version=0.0.4"
            else:
                body, kind = content, "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _Server((bind, port), Handler).serve_forever()


# ---------------------------------------------------------------- entry point


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        if args.action == "serve":
            workload = Path(args.workload) if args.workload else None
            serve(args.bind, args.port, args.name, args.hostname, args.memory, workload)
            return 0
        print(json.dumps(run(args), sort_keys=True))
        return 0
    except Failure as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"local_container {args.action}: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    state_dir = Path(args.state_dir).resolve()
    if args.action == "apply":
        return apply(state_dir, parse_desired(args.desired), args.check)
    if args.action == "ensure":
        spec = parse_spec(json.loads(args.spec))
        states = read_states(state_dir) if state_dir.is_dir() else {}
        outcome = ensure(state_dir, spec, states.get(spec["name"]), args.check)
        return {"changed": outcome != "unchanged", outcome: [spec["name"]]}
    if args.action == "remove":
        states = read_states(state_dir) if state_dir.is_dir() else {}
        if args.name not in states:
            return {"changed": False, "removed": []}
        if not args.check:
            remove(state_dir, states[args.name])
        return {"changed": True, "removed": [args.name]}
    if args.action == "remove-all":
        return apply(state_dir, [], check=False)
    return status(state_dir)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = top.add_subparsers(dest="action", required=True)
    for action, extra in (
        ("apply", "--desired"),
        ("ensure", "--spec"),
        ("remove", "--name"),
        ("remove-all", None),
        ("status", None),
    ):
        cmd = sub.add_parser(action)
        cmd.add_argument("--state-dir", required=True)
        if extra:
            cmd.add_argument(extra, required=True)
        if action in ("apply", "ensure", "remove"):
            cmd.add_argument("--check", action="store_true")
    srv = sub.add_parser("serve")
    srv.add_argument("--bind", required=True)
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--name", required=True)
    srv.add_argument("--hostname", required=True)
    srv.add_argument("--memory", type=int, default=512, help="MiB (the metrics' limit)")
    srv.add_argument("--workload", default=None, help="a file holding the MiB in use")
    return top


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
