"""``POST /alerts``: Alertmanager's credentials are checked (failing closed), the payload is
checked at the edge, and an accepted post is written to the server's durable queue and
answered 202 with its delivery id before any work; the worker then opens the ticket
through the router.  A retry (the same bytes) is a duplicate and queues nothing; a refusal
queues nothing; a queue that cannot be written is 503 (Alertmanager retries); alerts
queued when the server stops are each worked once after the restart."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest_alerts import alert, payload
from serverkit import SECRET, Server, start, wait_for

from bot.demo import make_copy
from bot.forge.local import LocalForge
from bot.server.alerts import ALERTMANAGER, AlertCredentials, alert_delivery, authorised
from bot.server.app import Parts, build_app
from bot.server.commit import GroupCommit
from bot.server.intake import Answer
from bot.server.metrics import ServerMetrics
from bot.server.queue import Delivery, DeliveryQueue
from bot.server.settings import ServerSettings
from bot.server.worker import Worker, log_delivery

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "alertmanager-token"
BEARER = f"Bearer {TOKEN}"
ENV = {"INFRABOT_WEBHOOK_SECRET": SECRET, "INFRABOT_ALERTS_TOKEN": TOKEN}


def body_of(group: str, fp: str | None = None) -> bytes:
    return json.dumps(payload(group, alert(fp or group.strip("{}:")))).encode()


# --- the edge, pure ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "header", "ok"),
    [
        ({}, BEARER, False),  # nothing configured: closed
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, None, False),
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, "Bearer wrong", False),
        ({"INFRABOT_ALERTS_TOKEN": TOKEN}, BEARER, True),
        ({"INFRABOT_ALERTS_BASIC": "am:pw"}, "Basic " + base64.b64encode(b"am:pw").decode(), True),
        ({"INFRABOT_ALERTS_BASIC": "am:pw"}, "Basic " + base64.b64encode(b"am:px").decode(), False),
        ({"INFRABOT_ALERTS_BASIC": "am:pw", "INFRABOT_ALERTS_TOKEN": TOKEN}, BEARER, True),
    ],
)
def test_alert_credentials(environ: dict[str, str], header: str | None, ok: bool) -> None:
    assert authorised(environ, header) is ok


CREDENTIALS = AlertCredentials.from_environ({"INFRABOT_ALERTS_TOKEN": TOKEN})
GOOD = body_of('{}:{alertname="SiteDown"}')
JSON = {"authorization": BEARER, "content-type": "application/json; charset=utf-8"}


def test_an_accepted_post_is_a_delivery_keyed_by_its_content() -> None:
    headers = JSON | {"user-agent": "Alertmanager/0.25.0"}
    delivery = alert_delivery(CREDENTIALS, headers, GOOD, 12.5)
    assert isinstance(delivery, Delivery)
    assert (delivery.source, delivery.event, delivery.body) == (ALERTMANAGER, "alert", GOOD)
    assert delivery.id == hashlib.sha256(GOOD).hexdigest()
    assert delivery.headers == {
        "user-agent": "Alertmanager/0.25.0",
        "content-type": "application/json; charset=utf-8",
    }  # the credential is never queued
    other = alert_delivery(CREDENTIALS, headers, GOOD + b" ", 13.0)
    assert isinstance(other, Delivery) and other.id != delivery.id


@pytest.mark.parametrize(
    ("credentials", "headers", "body", "status", "says"),
    [
        (AlertCredentials(), JSON, GOOD, 401, "no alert credential configured"),
        (CREDENTIALS, {"content-type": "application/json"}, GOOD, 401, "missing or wrong"),
        (CREDENTIALS, JSON | {"authorization": "Bearer nope"}, GOOD, 401, "missing or wrong"),
        (CREDENTIALS, JSON | {"content-type": "text/plain"}, GOOD, 415, "application/json"),
        (CREDENTIALS, {"authorization": BEARER}, GOOD, 415, "application/json"),
        (CREDENTIALS, JSON, b"not json", 400, "invalid JSON"),
        (CREDENTIALS, JSON, b'{"version": "4"}', 400, "groupKey"),
        (CREDENTIALS, JSON, b"\xff\xfe", 400, "not an Alertmanager webhook payload"),
        # wrong credentials are refused before the body is read: a bad body says nothing
        (CREDENTIALS, JSON | {"authorization": "Bearer x"}, b"junk", 401, "missing or wrong"),
    ],
)
def test_everything_else_is_answered_without_queueing(
    credentials: AlertCredentials,
    headers: dict[str, str],
    body: bytes,
    status: int,
    says: str,
) -> None:
    answer = alert_delivery(credentials, headers, body, 0.0)
    assert isinstance(answer, Answer) and answer.status == status
    assert says in answer.message, answer.message


# --- the app, in process: a queue that cannot be written is 503 -------------------------


def _post(app: Any, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """One request through the ASGI app (lifespan started and stopped around it)."""

    async def run() -> tuple[int, Any]:
        sent: list[dict[str, Any]] = []
        lifespan = asyncio.Queue[dict[str, Any]]()
        await lifespan.put({"type": "lifespan.startup"})

        async def life_send(message: dict[str, Any]) -> None:
            sent.append(message)

        task = asyncio.create_task(
            app({"type": "lifespan", "asgi": {"version": "3.0"}}, lifespan.get, life_send)
        )
        while not any(m["type"] == "lifespan.startup.complete" for m in sent):
            await asyncio.sleep(0.01)
        answer: list[dict[str, Any]] = []
        chunks = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return chunks.pop(0) if chunks else {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            answer.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        await lifespan.put({"type": "lifespan.shutdown"})
        await task
        status = next(m["status"] for m in answer if m["type"] == "http.response.start")
        data = b"".join(m.get("body", b"") for m in answer if m["type"] == "http.response.body")
        return status, json.loads(data)

    return asyncio.run(run())


def test_a_queue_that_cannot_be_written_is_a_503_and_nothing_is_queued(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    queue = DeliveryQueue.open(path)
    settings = ServerSettings(queue_path=path, alerts=CREDENTIALS, grace=1)
    metrics = ServerMetrics(lambda: 0)
    worker = Worker(queue, log_delivery, metrics, idle_wait=0.05)
    app = build_app(Parts(settings, queue, GroupCommit(queue), worker, metrics))
    queue.close()  # every write now fails inside SQLite, as a failed disk would
    status, answer = _post(app, "/alerts", GOOD, JSON)
    assert status == 503 and "could not queue it" in answer["error"], answer
    reopened = DeliveryQueue.open(path)
    try:
        assert reopened.states() == {"queued": 0, "working": 0, "done": 0, "failed": 0}
    finally:
        reopened.close()


# --- the real server: acknowledged at once, worked by the worker -------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    repo = tmp_path_factory.mktemp("alerts") / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", "0", "--max-body", "65536"]
    srv = start(argv, repo, ENV)
    yield srv, repo
    srv.stop()


def post(
    srv: Server, body: bytes, auth: str | None, content_type: str = "application/json"
) -> tuple[int, Any]:
    headers = {"Content-Type": content_type}
    if auth:
        headers["Authorization"] = auth
    return srv.request("POST", "/alerts", body, headers)


def _received(srv: Server) -> int:
    """Every delivery the queue holds, whatever its state."""
    _, health = srv.request("GET", "/healthz")
    return sum(health["queue"].values())


def test_alerts_need_the_token_and_a_refusal_queues_nothing(server: tuple[Server, Path]) -> None:
    srv, _ = server
    before = _received(srv)
    assert post(srv, GOOD, None)[0] == 401
    assert post(srv, GOOD, "Bearer nope")[0] == 401
    assert post(srv, GOOD, "Basic " + base64.b64encode(b"a:b").decode())[0] == 401
    assert _received(srv) == before
    assert srv.metric(
        "infrabot_webhook_requests_total", source="alertmanager", result="unauthorized"
    )
    assert "Traceback" not in srv.stderr()


def test_an_alert_group_is_acknowledged_then_its_ticket_opens_and_a_retry_queues_nothing(
    server: tuple[Server, Path],
) -> None:
    srv, repo = server
    body = body_of('{}:{alertname="SiteDown"}', "site-down")
    status, answer = post(srv, body, BEARER)
    assert (status, answer) == (
        202,
        {"status": "queued", "delivery": hashlib.sha256(body).hexdigest()},
    )
    # the ticket is the worker's, after the answer
    wait_for(lambda: len(_issues(repo)) == 1, timeout=60, what="the ticket")
    received = _received(srv)
    status, answer = post(srv, body, BEARER)  # Alertmanager's retry: the same bytes
    assert (status, answer["status"]) == (200, "duplicate")
    assert _received(srv) == received
    assert srv.metric("infrabot_ack_duration_seconds_count", source="alertmanager") >= 1
    _, health = srv.request("GET", "/healthz")
    assert set(health["queued"]) == {"github", "alertmanager"}
    wait_for(lambda: _worked(srv) >= 1, timeout=120, what="the worker to finish")
    assert _issues(repo) == ["Alert: InvariantViolated (site_probe_success)"]


def test_a_payload_that_is_not_alertmanagers_is_refused_and_queues_nothing(
    server: tuple[Server, Path],
) -> None:
    srv, _ = server
    before = _received(srv)
    for body in (b"not json", b'{"version": "4"}', b"\xff\xfe", b"[]"):
        status, answer = post(srv, body, BEARER)
        assert status == 400 and "Alertmanager" in answer["error"], (body, answer)
    assert post(srv, GOOD, BEARER, "application/x-www-form-urlencoded")[0] == 415
    status, answer = post(srv, b"{" + b" " * 70_000 + b"}", BEARER)
    assert status == 413 and "byte limit" in answer["error"]
    assert _received(srv) == before
    assert "Traceback" not in srv.stderr()


def _worked(srv: Server) -> float:
    outcomes = ("ok", "failed", "refused", "error")
    return sum(srv.metric("infrabot_deliveries_total", event="alert", outcome=o) for o in outcomes)


def _issues(repo: Path) -> list[str]:
    forge = LocalForge(repo / ".infrabot/forge.db", {}, repo)
    return [i.title for i in forge.list_issues()]


# --- a restart with alerts queued: each worked once ---------------------------------------


def _child(pid: int) -> int:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_alerts_queued_when_the_server_dies_are_each_worked_once_after_it_restarts(
    tmp_path: Path,
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    make_copy(ROOT, repo)
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", "0"]
    first = start(argv, repo, ENV, name="first")
    work = _child(first.proc.pid)
    os.kill(work, signal.SIGSTOP)  # the work is stuck: what arrives stays queued
    groups = [f'{{}}:{{alertname="Down{n}"}}' for n in range(3)]
    bodies = [body_of(g, f"fp{n}") for n, g in enumerate(groups)]
    try:
        for body in bodies:
            assert post(first, body, BEARER)[0] == 202
    finally:
        first.stop(signal.SIGKILL)  # a crash; the stopped child dies with its parent
    assert _issues(repo) == []

    second = start(argv, repo, ENV, name="second")
    try:
        assert "3 waiting" in second.stderr(), second.stderr()
        wait_for(lambda: len(_issues(repo)) == 3, timeout=120, what="three tickets")
        wait_for(lambda: _worked(second) == 3, timeout=120, what="the queue to drain")
        for body in bodies:  # still remembered after the restart
            assert post(second, body, BEARER)[1]["status"] == "duplicate"
        _, health = second.request("GET", "/healthz")
        assert health["queue"]["done"] == 3 and health["queued"]["alertmanager"] == 0
    finally:
        second.stop()
    assert len(_issues(repo)) == 3


# --- the README's Alertmanager receiver is one Alertmanager accepts ----------------------


@pytest.mark.skipif(not shutil.which("amtool"), reason="needs Debian's amtool (./scripts/setup)")
def test_the_readme_receiver_passes_amtool(tmp_path: Path) -> None:
    """The receiver the README shows is valid Alertmanager configuration; its ``timeout``
    needs 0.28 or later, and the Alertmanager Debian ships refuses it, as the README says."""
    readme = (ROOT / "README.md").read_text()
    (block,) = [b for b in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "/alerts" in b]
    config = tmp_path / "alertmanager.yml"
    token = tmp_path / "token"
    token.write_text("t")
    text = block.replace("/etc/alertmanager/infrabot-token", str(token))
    version = subprocess.run(["amtool", "--version"], capture_output=True, text=True).stdout
    old = re.search(r"version (\d+)\.(\d+)", version + " version 0.0")
    assert old is not None
    if (int(old[1]), int(old[2])) < (0, 28):
        config.write_text(text)
        assert _amtool(config).returncode != 0  # the field the README warns about
        text = "\n".join(ln for ln in text.splitlines() if "timeout:" not in ln)
    config.write_text(text)
    done = _amtool(config)
    assert done.returncode == 0, done.stdout + done.stderr


def _amtool(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["amtool", "check-config", str(config)], capture_output=True, text=True, check=False
    )
