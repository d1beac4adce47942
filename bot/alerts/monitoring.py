"""Debian's Prometheus and Alertmanager on loopback, for ``infrabot demo --alert`` and the
loop test: scratch data directories, free ports, 1 s scrapes and evaluations, and
Alertmanager posting every group to a webhook with a bearer token (as its ``http_config``
sends one).  Everything started is stopped by ``Monitoring.stop``."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import InfrabotError

PROGRAMS = ("prometheus", "prometheus-alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    """Poll ``probe`` until it returns something true; InfrabotError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(every)
    raise InfrabotError(f"timed out after {timeout:.0f}s waiting")


@dataclass
class Monitoring:
    url: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def missing_programs() -> list[str]:
    return [p for p in PROGRAMS if shutil.which(p) is None]


def start_monitoring(
    where: Path,
    rules: Path,
    webhook: str,
    token: str,
    *,
    file_sd: Path,
    prom_port: int | None = None,
) -> Monitoring:
    """Prometheus (scraping the targets in ``file_sd``, evaluating ``rules``) sending to
    Alertmanager, which posts to ``webhook``."""
    missing = missing_programs()
    if missing:
        raise InfrabotError(f"{', '.join(missing)} not installed: run ./scripts/setup")
    where.mkdir(parents=True, exist_ok=True)
    prom_port, am_port = prom_port or free_port(), free_port()
    receiver = {"url": webhook, "send_resolved": True}
    receiver["http_config"] = {"authorization": {"credentials": token}}
    am_config = {
        "route": {
            "receiver": "infrabot",
            "group_by": ["alertname", "slo", "invariant"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [{"name": "infrabot", "webhook_configs": [receiver]}],
    }
    (where / "alertmanager.yml").write_text(json.dumps(am_config))
    am = f"127.0.0.1:{am_port}"
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]},
        "scrape_configs": [{"job_name": "estate", "file_sd_configs": [{"files": [str(file_sd)]}]}],
    }
    (where / "prometheus.yml").write_text(json.dumps(prom_config))
    monitoring = Monitoring(f"http://127.0.0.1:{prom_port}")
    argvs = {
        "alertmanager": [
            "prometheus-alertmanager",
            f"--config.file={where / 'alertmanager.yml'}",
            f"--storage.path={where / 'am-data'}",
            f"--web.listen-address={am}",
            "--cluster.listen-address=",
        ],
        "prometheus": [
            "prometheus",
            f"--config.file={where / 'prometheus.yml'}",
            f"--storage.tsdb.path={where / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
    }
    try:
        for name, argv in argvs.items():
            with (where / f"{name}.log").open("wb") as out:
                monitoring.procs.append(
                    subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
                )
        eventually(lambda: urllib.request.urlopen(f"{monitoring.url}/-/ready", timeout=2))
    except BaseException:
        monitoring.stop()
        raise
    return monitoring


@dataclass
class Served:
    """``infrabot serve`` as a child process."""

    proc: subprocess.Popen[bytes]
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_serve(repo: Path, log: Path, env: Mapping[str, str]) -> Served:
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", "0"]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=repo, env=dict(env), stdout=out, stderr=out)

    def listening() -> str | None:
        if proc.poll() is not None:
            raise InfrabotError(f"infrabot serve exited: {log.read_text(errors='replace')}")
        found = re.search(r"listening on (http://[\d.]+:\d+)", log.read_text(errors="replace"))
        return found[1] if found else None

    try:
        url = str(eventually(listening, timeout=30, every=0.1))
    except BaseException:
        Served(proc, "").stop()
        raise
    return Served(proc, url)
