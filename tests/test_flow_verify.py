"""The verifier decides the plan's acceptance criteria, word for word: what it probes
(file_sd, a container's address) for resources that were added and for ones removed, and
how it shows a service's page (summarised, never pasted)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bot.engines.planning import acceptance_criteria
from bot.estate import Estate
from bot.flow.verify import LocalVerifier, response_summary
from bot.model import ChangeAction, Container, Host, MonitoringTarget, ResourceChange

MON = Host(name="mon1", address="127.0.0.1", connection="local", roles=("monitoring",))
REMOTE = Host(name="mon2", address="10.0.0.2", roles=("monitoring",))
TARGET = MonitoringTarget(
    name="api", monitor="mon1", targets=("10.77.0.11:8080",), probe="http://api.example.com/"
)


def estate(*resources: Host | MonitoringTarget | Container) -> Estate:
    return Estate(resources={r.key: r for r in resources})


def file_sd(root: Path, scrape: list[str], probe: list[str]) -> None:
    folder = root / "mon1" / "prometheus" / "file_sd"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scrape.json").write_text(json.dumps([{"targets": scrape, "labels": {}}]))
    (folder / "probe.json").write_text(json.dumps([{"targets": probe, "labels": {}}]))


def criteria(action: ChangeAction, resource: MonitoringTarget | Container, where: Estate) -> set:
    change = ResourceChange(
        action=action, kind=resource.kind, name=resource.name, data=resource.model_dump()
    )
    return set(acceptance_criteria([change], where))


def test_a_new_target_in_file_sd_decides_the_plans_criteria(tmp_path: Path) -> None:
    file_sd(tmp_path, ["10.77.0.11:8080"], ["http://api.example.com/"])
    after = estate(MON, TARGET)
    (check,) = LocalVerifier(tmp_path).verify(after, [TARGET], [])
    assert check.ok and check.check == "monitoring: api on mon1"
    assert set(check.criteria) == criteria(ChangeAction.CREATE, TARGET, estate(MON)) != set()


def test_a_target_missing_its_probe_fails(tmp_path: Path) -> None:
    file_sd(tmp_path, ["10.77.0.11:8080"], [])
    (check,) = LocalVerifier(tmp_path).verify(estate(MON, TARGET), [TARGET], [])
    assert not check.ok and "missing from file_sd: http://api.example.com/" in check.detail


@pytest.mark.parametrize(
    ("scrape", "ok"), [([], True), (["10.77.0.11:8080"], False)], ids=["gone", "still-there"]
)
def test_a_removed_target_must_leave_file_sd(tmp_path: Path, scrape: list[str], ok: bool) -> None:
    file_sd(tmp_path, scrape, [])
    (check,) = LocalVerifier(tmp_path).verify(estate(MON), [], [TARGET])
    assert check.ok is ok and check.check == "monitoring: api removed from mon1"
    assert set(check.criteria) == criteria(ChangeAction.DELETE, TARGET, estate(MON, TARGET))


def test_a_removed_container_must_not_answer(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port on which nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    node = Host(
        name="pve1", address="127.0.0.1", connection="local", roles=("node",), provider="local"
    )
    gone = Container(
        name="api", node="pve1", vmid=101, hostname="api", ip="127.0.0.1/8", service_port=port
    )
    (check,) = LocalVerifier(tmp_path).verify(estate(node), [], [gone])
    assert check.ok and "nothing answers" in check.detail
    assert check.criteria == ("container api no longer runs on pve1",)


def test_a_remote_host_is_not_probed_and_decides_nothing(tmp_path: Path) -> None:
    remote = TARGET.model_copy(update={"monitor": "mon2"})
    (check,) = LocalVerifier(tmp_path).verify(estate(REMOTE, remote), [remote], [])
    assert check.ok and check.detail.startswith("not probed") and check.criteria == ()


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (
            "<!doctype html> <title>api-scanner</title> <h1>api-scanner</h1>",
            "200, title 'api-scanner'",
        ),
        ("<TITLE lang=en>\n  A &amp; B\n</TITLE>", "200, title 'A & B'"),
        ("<h1>hello</h1>\n<p>" + "word " * 50, "200, '" + ("hello " + "word " * 50)[:59] + "…'"),
        ("", "200"),
    ],
)
def test_a_service_page_is_summarised(body: str, summary: str) -> None:
    assert response_summary(200, body) == summary


class _Answer(BaseHTTPRequestHandler):
    page = b""

    def do_GET(self) -> None:
        self.send_response(200 if self.page else 404)
        self.send_header("Content-Length", str(len(self.page)))
        self.end_headers()
        self.wfile.write(self.page)

    def log_message(self, *_: object) -> None:
        pass


@pytest.mark.parametrize(
    ("page", "ok"),
    [(b"", True), (b"<title>container api</title> hostname api", False)],
    ids=["a-router-answers-404", "the-container-still-answers"],
)
def test_a_removed_container_is_gone_even_if_something_else_answers(
    tmp_path: Path, page: bytes, ok: bool
) -> None:
    handler = type("Handler", (_Answer,), {"page": page})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        node = Host(
            name="pve1", address="127.0.0.1", connection="local", roles=("node",), provider="local"
        )
        gone = Container(
            name="api",
            node="pve1",
            vmid=101,
            hostname="api",
            ip="127.0.0.1/8",
            service_port=server.server_address[1],
        )
        (check,) = LocalVerifier(tmp_path).verify(estate(node), [], [gone])
    finally:
        server.shutdown()
        server.server_close()
    assert check.ok is ok, check.detail
