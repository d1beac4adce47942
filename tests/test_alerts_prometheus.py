"""The alert loop with the real thing: Debian's Prometheus evaluates the generated rules
(short windows through configuration) against a metrics endpoint the test controls; the
SLO alert fires; Alertmanager posts it to a receiver that calls ``ingest``; ``run_check``
queries the same Prometheus; a Prometheus that is down opens nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from conftest_alerts import intake

from bot.alerts.check import run_check
from bot.alerts.intake import IntakeServices, ingest
from bot.alerts.monitoring import eventually, free_port
from bot.alerts.prometheus import HttpPrometheus
from bot.alerts.rules import render_rules
from bot.alerts.slo import Alerting, BurnTier
from bot.forge.fake import FakeForge

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        not (shutil.which("prometheus") and shutil.which("prometheus-alertmanager")),
        reason="needs Debian's prometheus and prometheus-alertmanager (./scripts/setup)",
    ),
]
# Short windows through configuration (the same generator): pages within seconds of the
# errors, and the acceptance criterion (page tier's long window) can hold seconds later.
SHORT = Alerting(
    tiers=(
        BurnTier(severity="page", burn_rate=14.4, long="6s", short="2s"),
        BurnTier(severity="ticket", burn_rate=3, long="12s", short="4s"),
    )
)


def serve(handler: Callable[[BaseHTTPRequestHandler], None]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            handler(self)

        def do_POST(self) -> None:
            handler(self)

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class Service:
    """A tiny API whose request counters grow at every scrape; ``failing`` adds errors."""

    def __init__(self) -> None:
        self.good = 0
        self.bad = 0
        self.failing = False
        self.server = serve(self.metrics)

    def metrics(self, req: BaseHTTPRequestHandler) -> None:
        self.good += 10
        self.bad += 10 if self.failing else 0
        body = (
            f'http_requests_total{{service="api-scanner",code="200"}} {self.good}\n'
            f'http_requests_total{{service="api-scanner",code="500"}} {self.bad}\n'
        ).encode()
        req.send_response(200)
        req.send_header("Content-Type", "text/plain; version=0.0.4")
        req.end_headers()
        req.wfile.write(body)


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.loads(resp.read())


def start(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def svc(tmp_path: Path) -> IntakeServices:
    base = intake(tmp_path)
    short = base.catalog.slos.model_copy(update={"alerting": SHORT})
    return IntakeServices(
        forge=base.forge,
        store=base.store,
        catalog=type(base.catalog)(slos=short, runbooks=base.catalog.runbooks),
        clock=base.clock,
        record=base.record,
    )


@pytest.fixture
def monitoring(tmp_path: Path, svc: IntakeServices) -> Iterator[dict[str, Any]]:
    service = Service()
    deliveries: list[int] = []

    def receiver(req: BaseHTTPRequestHandler) -> None:
        data = json.loads(req.rfile.read(int(req.headers["Content-Length"])))
        result = ingest(svc, data)  # recorded durably before the 2xx below
        deliveries.append(result.ticket or 0)
        req.send_response(200)
        req.end_headers()

    hook = serve(receiver)
    prom_port, am_port = free_port(), free_port()
    (tmp_path / "rules.yml").write_text(render_rules(svc.catalog.slos))
    (tmp_path / "alertmanager.yml").write_text(
        json.dumps(
            {
                "route": {
                    "receiver": "infrabot",
                    "group_by": ["alertname", "slo", "invariant"],
                    "group_wait": "1s",
                    "group_interval": "2s",
                    "repeat_interval": "1h",
                },
                "receivers": [
                    {
                        "name": "infrabot",
                        "webhook_configs": [{"url": f"http://127.0.0.1:{hook.server_port}/alerts"}],
                    }
                ],
            }
        )
    )
    (tmp_path / "prometheus.yml").write_text(
        json.dumps(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(tmp_path / "rules.yml")],
                "alerting": {
                    "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]
                },
                "scrape_configs": [
                    {
                        "job_name": "api",
                        "static_configs": [
                            {"targets": [f"127.0.0.1:{service.server.server_port}"]}
                        ],
                    }
                ],
            }
        )
    )
    am = start(
        [
            "prometheus-alertmanager",
            f"--config.file={tmp_path / 'alertmanager.yml'}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        tmp_path / "alertmanager.log",
    )
    prom = start(
        [
            "prometheus",
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ],
        tmp_path / "prometheus.log",
    )
    url = f"http://127.0.0.1:{prom_port}"
    try:
        eventually(lambda: urllib.request.urlopen(f"{url}/-/ready", timeout=2).status == 200)
        yield {"url": url, "service": service, "deliveries": deliveries}
    finally:
        stop(prom)
        stop(am)
        service.server.shutdown()
        hook.shutdown()


def firing(url: str, severity: str) -> list[dict[str, Any]]:
    alerts = get_json(f"{url}/api/v1/alerts")["data"]["alerts"]
    return [
        a
        for a in alerts
        if a["labels"].get("alertname") == "SLOErrorBudgetBurn"
        and a["labels"].get("severity") == severity
        and a["state"] == "firing"
    ]


def test_errors_fire_the_slo_alert_and_alertmanager_opens_one_ticket(
    monitoring: dict[str, Any], svc: IntakeServices
) -> None:
    url, service = monitoring["url"], monitoring["service"]
    time.sleep(3)  # a few healthy scrapes first
    assert firing(url, "page") == []
    healthy = run_check(svc, HttpPrometheus(url))
    assert healthy.prometheus == "up" and healthy.ok, healthy

    service.failing = True
    page = eventually(lambda: firing(url, "page"))
    assert page[0]["labels"]["slo"] == "availability"

    forge = svc.forge
    assert isinstance(forge, FakeForge)
    issues = eventually(lambda: forge.list_issues())
    eventually(lambda: len(monitoring["deliveries"]) >= 1)
    assert len(issues) == 1
    body = issues[0].body
    assert "SLO `availability` of `api-scanner`: 99.9%" in body
    assert "the error ratio over 6s is at most the error budget (0.001" in body
    assert "`error-budget-burn`" in body

    report = run_check(svc, HttpPrometheus(url))
    page_item = next(i for i in report.items if i.name == "availability/page")
    # the check sees the same burn: it is Alertmanager's ticket's work, not a second ticket
    assert page_item.state == "violated" and page_item.ticket == issues[0].number
    assert len(forge.list_issues()) == 1
    again = run_check(svc, HttpPrometheus(url))
    assert len(forge.list_issues()) == 1
    assert next(i for i in again.items if i.name == "availability/page").ticket == page_item.ticket

    # The service recovers: the alerts resolve, and each ticket closes only once the error
    # ratio has stayed within the budget for the required 6 s (a follow-up check, no sleep).
    service.failing = False

    def closed() -> bool:
        run_check(svc, HttpPrometheus(url))
        return all(i.state == "closed" for i in forge.list_issues())

    eventually(closed, timeout=90)
    for issue in forge.list_issues():
        last = forge.comments(issue.number)[-1].body
        assert last.startswith("### Acceptance criteria met") and "it held for 6s" in last


def test_a_query_prometheus_rejects_is_a_clear_error(monitoring: dict[str, Any]) -> None:
    result = HttpPrometheus(monitoring["url"]).query("sum(rate(http_requests_total[5m])")
    assert result.kind == "rejected"  # type: ignore[union-attr]
    assert "parse error" in result.message  # type: ignore[union-attr]


def test_prometheus_down_opens_and_resolves_nothing(svc: IntakeServices) -> None:
    report = run_check(svc, HttpPrometheus(f"http://127.0.0.1:{free_port()}", timeout=2))
    assert report.prometheus == "down" and not report.ok
    assert "nothing was opened" in report.message
    assert isinstance(svc.forge, FakeForge) and svc.forge.list_issues() == []
