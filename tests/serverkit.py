"""Helpers for the server tests: start a real ``infrabot serve`` (or the gated launcher)
on a free port, and talk to it over real HTTP."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.events.signature import sign

ROOT = Path(__file__).resolve().parent.parent
SECRET = "it's a secret to everybody"
ISSUE_OPENED = {"action": "opened", "issue": {"number": 1, "title": "hello"}}


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    host: str
    port: int
    log: Path

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            data = response.read()
        finally:
            conn.close()
        kind = response.getheader("content-type", "")
        return response.status, json.loads(data) if "json" in kind else data.decode()

    def deliver(
        self,
        payload: dict[str, Any] | bytes = ISSUE_OPENED,
        *,
        event: str = "issues",
        delivery: str | None = None,
        secret: str | None = SECRET,
        signature: str | None = None,
    ) -> tuple[int, Any]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "User-Agent": "GitHub-Hookshot/test",
        }
        if signature is not None:
            headers["X-Hub-Signature-256"] = signature
        elif secret is not None:
            headers["X-Hub-Signature-256"] = sign(secret, body)
        return self.request("POST", "/github", body, headers)

    def metric(self, name: str, **labels: str) -> float:
        _, text = self.request("GET", "/metrics")
        want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
        for line in text.splitlines():
            series, _, value = line.rpartition(" ")
            if series == (f"{name}{{{want}}}" if labels else name):
                return float(value)
        return 0.0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def stop_gracefully(self) -> bool:
        """SIGTERM; True if the worker stopped and closed the queue (uvicorn then exits by
        re-raising the signal, as a process manager expects)."""
        code = self.stop()
        return code == -signal.SIGTERM and "the queue is closed" in self.stderr()

    def stderr(self) -> str:
        return self.log.read_text(errors="replace")


def start(
    argv: list[str], workdir: Path, env: dict[str, str] | None = None, name: str = "server"
) -> Server:
    """Run ``argv`` (a server printing 'listening on http://H:P') and wait until it listens."""
    log = workdir / f"{name}.log"
    full_env = {k: v for k, v in os.environ.items() if k != "INFRABOT_WEBHOOK_SECRET"}
    full_env.update(env or {})
    with log.open("wb") as handle:
        proc = subprocess.Popen(argv, cwd=workdir, env=full_env, stdout=handle, stderr=handle)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://([\d.]+):(\d+)", log.read_text(errors="replace"))
        if found:
            return Server(proc, found[1], int(found[2]), log)
        if proc.poll() is not None:
            raise AssertionError(f"server exited {proc.returncode}: {log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"server did not start: {log.read_text()}")


def infrabot_serve(workdir: Path, *extra: str, secret: str | None = SECRET) -> Server:
    env = {"INFRABOT_WEBHOOK_SECRET": secret} if secret is not None else {}
    argv = [sys.executable, "-m", "bot.cli", "serve", "--port", "0", *extra]
    return start(argv, workdir, env)


def gated_serve(workdir: Path, queue: Path, *extra: str, name: str = "server") -> Server:
    """The real server with a ``process`` that waits for ``workdir/gate`` (see serve_gated.py)."""
    argv = [sys.executable, str(ROOT / "tests" / "serve_gated.py"), str(workdir), str(queue)]
    return start([*argv, *extra], workdir, {"INFRABOT_WEBHOOK_SECRET": SECRET}, name)


def wait_for(predicate: Any, timeout: float = 20, what: str = "condition") -> None:
    """Poll ``predicate`` (often an HTTP request to the server) from every 20 ms up to every
    250 ms: a wait of minutes (a draft, an apply) then asks a few hundred times, not ten
    thousand, and leaves the CPU to the work it waits for."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(pause)
        pause = min(pause * 1.5, 0.25)
    raise AssertionError(f"timed out waiting for {what}")
