"""Helpers for the alert tests: Alertmanager payloads and intake services over a fake forge."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.alerts.catalog import require_catalog
from bot.alerts.intake import IntakeServices
from bot.alerts.store import AlertStore
from bot.forge.fake import FakeForge

ROOT = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def alert(
    fp: str,
    *,
    status: str = "firing",
    starts: datetime = T0,
    ends: str = "0001-01-01T00:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    base = {
        "alertname": "InvariantViolated",
        "invariant": "site_probe_success",
        "infrabot_kind": "invariant",
        "severity": "ticket",
    }
    return {
        "status": status,
        "labels": base | labels,
        "annotations": {"summary": "Invariant site_probe_success does not hold"},
        "startsAt": starts.isoformat(),
        "endsAt": ends,
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fp,
    }


def payload(group: str, *alerts: dict[str, Any]) -> dict[str, Any]:
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": group,
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "infrabot",
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": alerts[0]["labels"],
        "commonAnnotations": {},
        "externalURL": "http://alertmanager",
        "alerts": list(alerts),
    }


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []

    def __call__(
        self, ticket: int, actor: str, step: str, outcome: str, inputs: Any, detail: Any
    ) -> None:
        self.events.append((ticket, step))


def intake(tmp_path: Path, clock: Clock | None = None) -> IntakeServices:
    clock = clock or Clock()
    return IntakeServices(
        forge=FakeForge(clock=clock),
        store=AlertStore(tmp_path / "alerts.db"),
        catalog=require_catalog(ROOT),
        clock=clock,
        record=Recorder(),
    )


# ---------------------------------------------------------------- the real monitoring


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def eventually(probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            found = probe()
        except OSError:
            found = None
        if found:
            return found
        time.sleep(every)
    raise AssertionError("timed out waiting")


@dataclass
class Monitoring:
    """Debian's Prometheus and Alertmanager on free loopback ports, scratch data dirs."""

    url: str
    procs: list[subprocess.Popen[bytes]]

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def start_monitoring(
    where: Path,
    rules: Path,
    webhook: str,
    token: str,
    *,
    scrape: list[dict[str, Any]] | None = None,
    file_sd: Path | None = None,
    prom_port: int | None = None,
) -> Monitoring:
    """Prometheus (1 s scrapes and evaluations of ``rules``) sending to Alertmanager, which
    posts to ``webhook`` with ``token`` as Alertmanager's http_config sends a bearer token."""
    prom_port, am_port = prom_port or free_port(), free_port()
    am_config = {
        "route": {
            "receiver": "infrabot",
            "group_by": ["alertname", "slo", "invariant"],
            "group_wait": "1s",
            "group_interval": "1s",
            "repeat_interval": "1h",
        },
        "receivers": [
            {
                "name": "infrabot",
                "webhook_configs": [
                    {
                        "url": webhook,
                        "send_resolved": True,
                        "http_config": {"authorization": {"credentials": token}},
                    }
                ],
            }
        ],
    }
    (where / "alertmanager.yml").write_text(json.dumps(am_config))
    jobs: list[dict[str, Any]] = []
    if scrape:
        jobs.append({"job_name": "static", "static_configs": scrape})
    if file_sd:
        jobs.append({"job_name": "estate", "file_sd_configs": [{"files": [str(file_sd)]}]})
    am = f"127.0.0.1:{am_port}"
    prom_config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(rules)],
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [am]}]}]},
        "scrape_configs": jobs,
    }
    (where / "prometheus.yml").write_text(json.dumps(prom_config))
    procs = []
    for argv, log in (
        (
            [
                "prometheus-alertmanager",
                f"--config.file={where / 'alertmanager.yml'}",
                f"--storage.path={where / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",
            ],
            "alertmanager.log",
        ),
        (
            [
                "prometheus",
                f"--config.file={where / 'prometheus.yml'}",
                f"--storage.tsdb.path={where / 'prom-data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
            ],
            "prometheus.log",
        ),
    ):
        with (where / log).open("wb") as out:
            procs.append(subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT))
    monitoring = Monitoring(f"http://127.0.0.1:{prom_port}", procs)
    try:
        eventually(lambda: urllib.request.urlopen(f"{monitoring.url}/-/ready", timeout=2))
    except BaseException:
        monitoring.stop()
        raise
    return monitoring
