"""Containers of the local provider, through the script that made them.

``infra/ansible/roles/node/files/local_container.py`` creates the namespaces, links and
services, records each in ``<host root>/containers/<name>.json`` and copies itself to
``containers/bin/``.  Status and teardown run that copy, so the knowledge of what a
container is lives in one place and only what it made is ever removed.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from typing import Any

from pydantic import ValidationError

from bot.errors import InfrabotError
from bot.localestate.layout import HostLayout
from bot.localestate.status import ContainerStatus

UNAVAILABLE = "network namespaces are not available on this machine"


_PROBES = itertools.count()


def netns_available() -> str | None:
    """None if this machine can make network namespaces with veth links, else why not."""
    if shutil.which("ip") is None and shutil.which("ip", path="/usr/sbin:/sbin") is None:
        return "the ip command (iproute2) is not installed"
    suffix = f"{os.getpid() % 10**5}{next(_PROBES) % 100:02d}"  # unique per call
    probe, link = f"infrabot-probe-{suffix}", f"ibprobe{suffix}"
    made = _ip("netns", "add", probe)
    if made:
        return made
    try:
        return _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", probe)
    finally:
        # Deleting the link removes both ends at once; a namespace's own cleanup of its
        # veth happens later, so a quick second probe would find the name still taken.
        _ip("link", "del", link)
        _ip("netns", "del", probe)


def _ip(*args: str) -> str | None:
    """Run ``ip``; None on success, else its first line of complaint."""
    try:
        result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if result.returncode == 0:
        return None
    lines = (result.stderr or result.stdout).strip().splitlines()
    return f"ip {' '.join(args)}: {lines[0] if lines else 'failed'}"


def has_containers(layout: HostLayout) -> bool:
    return layout.containers.is_dir() and any(layout.containers.glob("*.json"))


def container_status(layout: HostLayout) -> tuple[ContainerStatus, ...]:
    if not has_containers(layout):
        return ()
    data = _run_script(layout, "status")
    try:
        return tuple(ContainerStatus.model_validate(c) for c in data.get("containers", []))
    except ValidationError as exc:
        raise InfrabotError(f"container status of {layout.root.name} is malformed: {exc}") from exc


def remove_containers(layout: HostLayout) -> tuple[str, ...]:
    """Remove every container the host's state files record; returns their names."""
    if not has_containers(layout):
        return ()
    removed = _run_script(layout, "remove-all").get("removed", [])
    return tuple(str(name) for name in removed)


def _run_script(layout: HostLayout, action: str) -> dict[str, Any]:
    script = layout.container_script
    if not script.is_file():
        raise InfrabotError(
            f"{layout.containers} records containers but {script} is missing; "
            "remove their ib-* namespaces and ibh* links by hand"
        )
    argv = [sys.executable, str(script), action, "--state-dir", str(layout.containers)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise InfrabotError(f"containers of {layout.root.name}: {action} failed: {exc}") from exc
    if result.returncode != 0:
        why = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise InfrabotError(f"containers of {layout.root.name}: {action} failed: {why}")
    try:
        data: dict[str, Any] = json.loads(result.stdout)
    except ValueError as exc:
        raise InfrabotError(f"containers of {layout.root.name}: {action}: bad output") from exc
    return data
