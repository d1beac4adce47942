"""``infrabot serve`` as GitHub sees it: the real server on a free port, real HTTP, signed
deliveries, and the ways a delivery is refused, replayed or interrupted."""

from __future__ import annotations

import re
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from serverkit import (
    SECRET,
    Server,
    gated_serve,
    infrabot_serve,
    wait_for,
)

from bot.events.signature import sign

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("serve")
    running = infrabot_serve(workdir, "--queue", str(workdir / "q.db"), "--max-body", "65536")
    yield running
    assert running.stop_gracefully(), running.stderr()


OUTCOMES = ("ok", "failed", "ignored", "refused", "logged", "error")


def _processed(server: Server, event: str = "issues") -> float:
    """Deliveries of ``event`` the worker finished, whatever the router made of them."""
    return sum(server.metric("infrabot_deliveries_total", event=event, outcome=o) for o in OUTCOMES)


def test_a_signed_delivery_is_acknowledged_then_processed(server: Server) -> None:
    before = _processed(server, "pull_request")
    status, body = server.deliver(event="pull_request", delivery="d-signed")
    assert (status, body) == (202, {"status": "queued", "delivery": "d-signed"})
    wait_for(lambda: _processed(server, "pull_request") == before + 1, what="the worker")
    assert server.metric("infrabot_queue_depth") == 0
    assert server.metric("infrabot_work_duration_seconds_count", event="pull_request") >= 1


def test_a_replayed_delivery_is_a_duplicate_and_processed_once(server: Server) -> None:
    assert server.deliver(event="issue_comment", delivery="d-replay")[0] == 202
    wait_for(lambda: _processed(server, "issue_comment") == 1, what="the first delivery")
    status, body = server.deliver(event="issue_comment", delivery="d-replay")
    assert (status, body["status"]) == (200, "duplicate")
    _, health = server.request("GET", "/healthz")
    assert health["status"] == "ok"
    assert _processed(server, "issue_comment") == 1
    assert server.metric("infrabot_webhook_requests_total", source="github", result="duplicate")


@pytest.mark.parametrize(
    ("name", "signature", "why"),
    [
        ("missing", None, "carries no X-Hub-Signature-256"),
        ("sha1", "sha1=" + "0" * 40, "not sha256="),
        ("wrong-secret", sign("another", b'{"action": "opened"}'), "does not match"),
    ],
)
def test_a_bad_signature_is_refused_and_nothing_is_queued(
    server: Server, name: str, signature: str | None, why: str
) -> None:
    payload = {"action": "opened"}
    status, body = server.deliver(payload, delivery=name, secret=None, signature=signature)
    assert status == 401 and why in body["error"]
    # the same id, signed properly, is still new: a refusal remembers nothing
    assert server.deliver(payload, delivery=name)[0] == 202


def test_a_signature_for_another_body_is_refused(server: Server) -> None:
    signature = sign(SECRET, b'{"action": "closed"}')
    status, _ = server.deliver({"action": "opened"}, signature=signature)
    assert status == 401


@pytest.mark.parametrize(
    ("body", "headers", "why"),
    [
        (b"payload=%7B%7D", {}, "not a JSON object"),
        (b"[1, 2]", {}, "not a JSON object"),
        (b"\xff\xfe{", {}, "not a JSON object"),
        (b"{}", {"X-GitHub-Event": ""}, "X-GitHub-Event"),
        (b"{}", {"X-GitHub-Delivery": "../../etc"}, "X-GitHub-Delivery"),
    ],
    ids=["form-encoded", "array", "not-utf8", "no-event", "bad-delivery-id"],
)
def test_bad_input_is_a_clear_400(
    server: Server, body: bytes, headers: dict[str, str], why: str
) -> None:
    base = {"X-GitHub-Event": "issues", "X-GitHub-Delivery": "d-400"}
    base |= headers | {"X-Hub-Signature-256": sign(SECRET, body)}
    status, answer = server.request("POST", "/github", body, base)
    assert status == 400 and why in answer["error"]
    assert "Traceback" not in server.stderr()


def test_a_ping_is_answered_and_not_queued(server: Server) -> None:
    status, body = server.deliver({"zen": "Keep it simple."}, event="ping")
    assert (status, body) == (200, {"status": "pong"})
    assert server.metric("infrabot_deliveries_total", event="ping", outcome="logged") == 0


def _read_answer(conn: socket.socket) -> str:
    """One HTTP answer read off a raw socket: the head, then Content-Length bytes."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(4096) or b"\r\n\r\n"
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"content-length: (\d+)", head, re.I)[1])  # type: ignore[index]
    while len(body) < length and (more := conn.recv(4096)):
        body += more
    return (head + b"\r\n\r\n" + body).decode()


def test_a_huge_declared_body_is_refused_before_it_is_read(server: Server) -> None:
    head = (
        "POST /github HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "X-GitHub-Event: issues\r\nX-GitHub-Delivery: d-huge\r\n"
        f"Content-Length: {200 * 1024 * 1024}\r\n\r\n"
    )
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(head.encode())  # and not a byte of the body: the answer comes first
        answer = _read_answer(conn)
    assert answer.startswith("HTTP/1.1 413") and "byte limit" in answer


def test_a_huge_streamed_body_is_cut_off_at_the_limit(server: Server) -> None:
    head = (
        "POST /github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        "X-GitHub-Event: issues\r\nX-GitHub-Delivery: d-stream\r\n\r\n"
    )
    chunk = b"%x\r\n%s\r\n" % (16384, b"x" * 16384)
    with socket.create_connection((server.host, server.port), timeout=10) as conn:
        conn.sendall(head.encode())
        for _ in range(5):  # 80 KiB, over the server's 64 KiB limit; no final chunk
            conn.sendall(chunk)
        answer = _read_answer(conn)
    assert answer.startswith("HTTP/1.1 413") and "byte limit" in answer
    assert server.deliver(delivery="d-stream")[0] == 202  # nothing was remembered
    assert "Traceback" not in server.stderr()


def test_without_a_secret_every_delivery_is_refused(tmp_path: Path) -> None:
    server = infrabot_serve(tmp_path, "--queue", str(tmp_path / "q.db"), secret=None)
    try:
        assert "INFRABOT_WEBHOOK_SECRET is not set" in server.stderr()
        status, body = server.deliver()  # signed, but the server has nothing to check with
        assert status == 401 and "no webhook secret" in body["error"]
    finally:
        assert server.stop_gracefully()


def test_health_and_metrics_answer(server: Server) -> None:
    status, health = server.request("GET", "/healthz")
    assert status == 200 and set(health["queue"]) == {"queued", "working", "done", "failed"}
    status, text = server.request("GET", "/metrics")
    assert status == 200
    for name in ("infrabot_queue_depth", "infrabot_deliveries_total", "infrabot_webhook_"):
        assert name in text
    assert server.request("GET", "/github")[0] == 405


def test_a_taken_port_or_queue_is_one_clear_error(server: Server, tmp_path: Path) -> None:
    queue = server.stderr().split("queue: ")[1].split(" (")[0]
    for argv in (
        ["--port", str(server.port), "--queue", str(tmp_path / "other.db")],
        ["--port", "0", "--queue", queue],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve", *argv],
            cwd=server.log.parent,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("infrabot: ") and len(done.stderr.splitlines()) == 1


# --- restarts: a process that waits for a gate file decides when work ends -------------


def _work_log(workdir: Path) -> list[str]:
    path = workdir / "work.log"
    return path.read_text().splitlines() if path.exists() else []


def _states(queue: Path) -> dict[str, int]:
    with sqlite3.connect(queue) as conn:
        return dict(conn.execute("SELECT state, count(*) FROM deliveries GROUP BY state"))


def test_a_crash_mid_queue_loses_nothing_and_repeats_nothing_finished(tmp_path: Path) -> None:
    queue = tmp_path / "q.db"
    first = gated_serve(tmp_path, queue, name="first")
    for n in (1, 2, 3):
        assert first.deliver(delivery=f"d{n}")[0] == 202
    wait_for(lambda: "start d1" in _work_log(tmp_path), what="d1 to start")
    assert first.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash: d1 claimed, unfinished
    assert _states(queue) == {"working": 1, "queued": 2}

    (tmp_path / "gate").touch()
    second = gated_serve(tmp_path, queue, name="second")
    try:
        assert "3 waiting, 1 requeued" in second.stderr()
        wait_for(lambda: _states(queue) == {"done": 3}, what="the queue to drain")
        assert second.deliver(delivery="d2")[1]["status"] == "duplicate"
    finally:
        assert second.stop_gracefully()
    log = _work_log(tmp_path)
    assert log.count("start d1") == 2  # requeued after the crash
    assert [log.count(f"done d{n}") for n in (1, 2, 3)] == [1, 1, 1]
    assert log.index("done d1") < log.index("start d2")  # in order


def test_a_graceful_stop_finishes_the_current_delivery_and_keeps_the_rest(
    tmp_path: Path,
) -> None:
    queue = tmp_path / "q.db"
    first = gated_serve(tmp_path, queue, name="first")
    for n in (1, 2):
        assert first.deliver(delivery=f"d{n}")[0] == 202
    wait_for(lambda: "start d1" in _work_log(tmp_path), what="d1 to start")
    first.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "stopping: waiting" in first.stderr(), what="the stop to begin")
    (tmp_path / "gate").touch()
    assert first.proc.wait(30) == -signal.SIGTERM
    assert "the queue is closed" in first.stderr()
    assert _work_log(tmp_path) == ["start d1", "done d1"]
    assert _states(queue) == {"done": 1, "queued": 1}

    second = gated_serve(tmp_path, queue, name="second")
    try:
        wait_for(lambda: _states(queue) == {"done": 2}, what="d2")
    finally:
        assert second.stop_gracefully()
    assert _work_log(tmp_path) == ["start d1", "done d1", "start d2", "done d2"]


def test_work_still_running_after_the_grace_is_requeued(tmp_path: Path) -> None:
    queue = tmp_path / "q.db"
    first = gated_serve(tmp_path, queue, "0.2", name="first")
    assert first.deliver(delivery="d1")[0] == 202
    wait_for(lambda: "start d1" in _work_log(tmp_path), what="d1 to start")
    assert first.stop() == -signal.SIGTERM
    assert "will be requeued on the next start" in first.stderr()
    assert _states(queue) == {"working": 1}

    (tmp_path / "gate").touch()
    second = gated_serve(tmp_path, queue, name="second")
    try:
        wait_for(lambda: _states(queue) == {"done": 1}, what="d1 again")
    finally:
        assert second.stop_gracefully()
    assert _work_log(tmp_path) == ["start d1", "start d1", "done d1"]
