"""The process edge of the local estate: pid files, daemons, ports (Linux /proc)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from bot.errors import InfrabotError

SBIN = "/usr/local/sbin:/usr/sbin:/sbin"


def find_binary(name: str) -> str | None:
    """``name`` on PATH, or in the sbin directories a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path=SBIN)


def read_pid(path: Path) -> int | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def running(pid: int | None, marker: Path) -> bool:
    """True if ``pid`` is alive and its command line names ``marker`` (our config file)."""
    if pid is None:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return str(marker).encode() in cmdline and alive(pid)


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def stop(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM, then SIGKILL for it and its children if it has not gone within ``timeout``."""
    kids = children(pid)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if _wait_gone(pid, timeout):
        return
    for victim in (pid, *kids):
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    _wait_gone(pid, 2.0)


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def port_in_use(port: int, proto: Literal["tcp", "udp"]) -> bool:
    """True if something on this machine holds ``127.0.0.1:port`` for ``proto``."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        if proto == "tcp":  # as the daemons do: a TIME_WAIT socket is no conflict
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def start_daemon(argv: Sequence[str], what: str) -> None:
    """Run a command that daemonizes itself; a failure becomes one clear line."""
    try:
        result = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfrabotError(f"{what} did not start: {exc}") from exc
    if result.returncode != 0:
        lines = [ln for ln in (result.stderr + result.stdout).splitlines() if ln.strip()]
        raise InfrabotError(f"{what} did not start: {lines[-1] if lines else 'no output'}")


def wait_for_pid(path: Path, marker: Path, what: str, timeout: float = 5.0) -> int:
    """The pid a daemon wrote to ``path`` once it is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid = read_pid(path)
        if running(pid, marker) and pid is not None:
            return pid
        time.sleep(0.05)
    raise InfrabotError(f"{what} started but wrote no live pid to {path} within {timeout:.0f}s")
