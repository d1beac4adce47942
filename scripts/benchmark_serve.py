#!/usr/bin/env python3
"""How fast ``infrabot serve`` acknowledges signed GitHub deliveries, and drains them.

Runs the real server (signature check, JSON check, durable SQLite insert, worker) with a
``process`` that does some work per delivery (parses the body and waits ``--work-ms``, as
a call to GitHub or git would), and, as the baseline measured in the same run, a bare
Starlette endpoint under the same uvicorn that reads the body and answers 202. The same
client drives both over keep-alive connections on loopback:

1. closed loop: ``--concurrency`` connections send back to back (the most it takes);
2. open loop: ``--rate`` deliveries a second for ``--seconds``, each latency measured from
   its scheduled send time (a slow answer cannot hide the ones queued behind it);
3. drain: how fast the worker empties the queue the two phases filled.

Prints the figures and their ratios to the baseline; asserts nothing about time.
Usage: .venv/bin/python scripts/benchmark_serve.py [--rate 200] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.events.signature import sign  # noqa: E402

SECRET = "benchmark secret"


# --- the two servers (this script runs itself as each, in a child process) -------------


def run_baseline() -> int:
    import socket

    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    async def github(request: Request) -> Response:
        await request.body()
        return JSONResponse({"status": "queued"}, 202)

    app = Starlette(routes=[Route("/github", github, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"listening on http://127.0.0.1:{sock.getsockname()[1]}", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
    return 0


def run_infrabot(queue: Path, work_ms: float, work: str, in_thread: bool) -> int:
    from bot.server.queue import Delivery
    from bot.server.serve import serve
    from bot.server.settings import ServerSettings

    def process(delivery: Delivery) -> str:
        json.loads(delivery.body)
        if work == "cpu":  # Python that holds the GIL, as the router's validation does
            until = time.perf_counter() + work_ms / 1000
            while time.perf_counter() < until:
                sum(range(200))
        else:  # waiting on GitHub, git or Ansible: the GIL is free meanwhile
            time.sleep(work_ms / 1000)
        return "worked"

    settings = ServerSettings(port=0, queue_path=queue, secret=SECRET, work_in_child=not in_thread)
    return serve(settings, process)


# --- the client -------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; just enough protocol for these answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def request(self, method: str, path: str, headers: dict[str, str], body: bytes) -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


def payload() -> bytes:
    """About the size of a real issue_comment delivery (8 KB)."""
    user = {"login": "octocat", "id": 1, "type": "User", "site_admin": False}
    return json.dumps(
        {
            "action": "created",
            "issue": {"number": 7, "title": "Add a site", "user": user, "body": "x" * 2000},
            "comment": {"id": 99, "user": user, "body": "/plan"},
            "repository": {"full_name": "acme/infra", "owner": user, "topics": ["x"] * 200},
            "sender": user,
            "filler": "y" * 4000,
        }
    ).encode()


def delivery_headers(body: bytes) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(SECRET, body),
    }


@dataclass
class Phase:
    sent: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.sent / self.seconds

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def closed_loop(port: int, total: int, concurrency: int) -> Phase:
    body = payload()
    latencies: list[float] = []
    errors = 0
    per_conn = total // concurrency

    async def run() -> None:
        nonlocal errors
        conn = await Connection.open(port)
        for _ in range(per_conn):
            started = time.perf_counter()
            status = await conn.request("POST", "/github", delivery_headers(body), body)
            latencies.append(time.perf_counter() - started)
            errors += status != 202
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(run() for _ in range(concurrency)))
    return Phase(per_conn * concurrency, time.perf_counter() - started, latencies, errors)


async def open_loop(port: int, rate: float, seconds: float, connections: int) -> Phase:
    body = payload()
    count = int(rate * seconds)
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(connections):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0

    async def send(scheduled: float) -> None:
        nonlocal errors
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        status = await conn.request("POST", "/github", delivery_headers(body), body)
        latencies.append(time.perf_counter() - scheduled)  # from when it was due
        errors += status != 202
        pool.put_nowait(conn)

    start = time.perf_counter() + 0.05
    await asyncio.gather(*(send(start + n / rate) for n in range(count)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().close()
    return Phase(count, elapsed, latencies, errors)


# --- orchestration ----------------------------------------------------------------------


@dataclass
class Child:
    proc: subprocess.Popen[bytes]
    port: int


def spawn(argv: list[str], log: Path) -> Child:
    env = os.environ | {"PYTHONUNBUFFERED": "1"}
    with log.open("wb") as handle:
        proc = subprocess.Popen(argv, stdout=handle, stderr=handle, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read_text())
        if found:
            return Child(proc, int(found[1]))
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"benchmark: the server did not start:\n{log.read_text()}")


def stop(child: Child) -> None:
    child.proc.send_signal(signal.SIGTERM)
    try:
        child.proc.wait(60)
    except subprocess.TimeoutExpired:
        child.proc.kill()
        child.proc.wait()


async def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = await Connection.open(port)
    conn.writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    raw = await conn.reader.read()
    conn.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


async def queue_states(port: int) -> dict[str, int]:
    status, body = await http_get(port, "/healthz")
    if status != 200:
        return {}  # the baseline has no queue
    states: dict[str, int] = json.loads(body)["queue"]
    return states


async def ack_buckets(port: int) -> dict[float, float]:
    """The server's own ack-time histogram: cumulative count per upper bound (s)."""
    status, body = await http_get(port, "/metrics")
    if status != 200:
        return {}
    found = re.findall(rb'infrabot_ack_duration_seconds_bucket\{le="([^"]+)",[^}]*\} (\S+)', body)
    return {float(le): float(count) for le, count in found}


def server_p99(before: dict[float, float], after: dict[float, float]) -> str:
    """The bucket the 99th percentile of the server-side ack times fell in."""
    counts = {le: after[le] - before.get(le, 0.0) for le in sorted(after)}
    total = counts.get(float("inf"), 0.0)
    for le, count in counts.items():
        if total and count >= 0.99 * total:
            return f"<= {le * 1000:g} ms" if le != float("inf") else "> 1 s"
    return "n/a"


async def drain(port: int, limit: float) -> tuple[int, float, int]:
    """(deliveries processed, seconds, still waiting) from now until the queue is empty."""
    first = await queue_states(port)
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        now = await queue_states(port)
        if now["queued"] == 0 and now["working"] == 0:
            break
        await asyncio.sleep(0.05)
    return now["done"] - first["done"], time.perf_counter() - started, now["queued"]


async def measure(port: int, args: argparse.Namespace, seen: dict[str, Any]) -> tuple[Phase, Phase]:
    """Closed loop, then open loop; ``seen`` gets the queue depth and the server's own
    ack-time p99 around the open loop."""
    await closed_loop(port, 200, args.concurrency)  # warm up
    closed = await closed_loop(port, args.total, args.concurrency)
    depth_before, buckets = (await queue_states(port)).get("queued", 0), await ack_buckets(port)
    opened = await open_loop(port, args.rate, args.seconds, args.concurrency)
    seen["depth"] = (depth_before, (await queue_states(port)).get("queued", 0))
    seen["server_p99"] = server_p99(buckets, await ack_buckets(port))
    return closed, opened


def fsync_latency(directory: Path, count: int = 200) -> tuple[float, float]:
    """p50 and p99 (ms) of one fsync'd SQLite insert on the queue's disk, now: the floor
    under every durable acknowledgement."""
    conn = sqlite3.connect(directory / "fsync.db", isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)")
    body, times = payload(), []
    for _ in range(count):
        started = time.perf_counter()
        conn.execute("INSERT INTO t (body) VALUES (?)", (body,))
        times.append(time.perf_counter() - started)
        time.sleep(0.002)
    conn.close()
    times.sort()
    return times[count // 2] * 1000, times[int(count * 0.99)] * 1000


def line(name: str, real: float, base: float, unit: str) -> str:
    ratio = real / base
    return f"  {name:<26} {real:8.1f} {unit:<3} baseline {base:8.1f} {unit:<3} ({ratio:.2f} x)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200.0, help="open-loop deliveries/s")
    parser.add_argument("--seconds", type=float, default=5.0, help="open-loop duration")
    parser.add_argument("--total", type=int, default=2000, help="closed-loop deliveries")
    parser.add_argument("--concurrency", type=int, default=8, help="connections")
    parser.add_argument("--work-ms", type=float, default=2.0, help="work per delivery (ms)")
    parser.add_argument(
        "--work",
        choices=["sleep", "cpu"],
        default="sleep",
        help="the work waits (sleep: I/O) or computes in Python holding the GIL (cpu)",
    )
    parser.add_argument(
        "--compare-thread",
        action="store_true",
        help="also measure the server with the work in a thread beside the event loop",
    )
    parser.add_argument("--in-thread", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--role", choices=["baseline", "infrabot"], help=argparse.SUPPRESS)
    parser.add_argument("--queue", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "baseline":
        return run_baseline()
    if args.role == "infrabot":
        return run_infrabot(args.queue, args.work_ms, args.work, args.in_thread)

    me = [sys.executable, str(Path(__file__).resolve())]
    with tempfile.TemporaryDirectory(prefix="infrabot-bench-serve-") as tmp:
        work = Path(tmp)
        fsync_p50, fsync_p99 = fsync_latency(work)
        base = spawn([*me, "--role", "baseline"], work / "baseline.log")
        try:
            base_closed, base_open = asyncio.run(measure(base.port, args, {}))
        finally:
            stop(base)
        argv = [*me, "--role", "infrabot", "--work-ms", str(args.work_ms), "--work", args.work]
        real = spawn([*argv, "--queue", str(work / "q.db")], work / "infrabot.log")
        try:
            seen: dict[str, Any] = {}
            closed, opened = asyncio.run(measure(real.port, args, seen))
            drained, drain_s, left = asyncio.run(drain(real.port, limit=120))
            total = asyncio.run(queue_states(real.port))
        finally:
            stop(real)
        threaded: tuple[Phase, Phase] | None = None
        if args.compare_thread:
            argv += ["--in-thread", "--queue", str(work / "thread.db")]
            other = spawn(argv, work / "thread.log")
            try:
                threaded = asyncio.run(measure(other.port, args, {}))
            finally:
                stop(other)

    cores, load = os.cpu_count(), os.getloadavg()[0]
    print(f"infrabot serve on {cores} cores (load average {load:.1f} at the end of the run):")
    print(f"signed {len(payload())}-byte deliveries, ", end="")
    kind = "computing in Python" if args.work == "cpu" else "waiting"
    print(f"work behind the queue {args.work_ms:g} ms each ({kind}); ", end="")
    print("baseline: a bare Starlette endpoint")
    print(f"one fsync'd insert on this disk now: p50 {fsync_p50:.1f} ms, p99 {fsync_p99:.1f} ms")
    print(f"closed loop, {args.concurrency} connections, {closed.sent} deliveries:")
    print(line("acknowledged", closed.rate, base_closed.rate, "/s"))
    print(line("p50 ack", closed.pct(0.50), base_closed.pct(0.50), "ms"))
    print(line("p99 ack", closed.pct(0.99), base_closed.pct(0.99), "ms"))
    print(f"open loop, {args.rate:g}/s for {args.seconds:g} s ({opened.sent} deliveries):")
    print(line("acknowledged", opened.rate, base_open.rate, "/s"))
    print(line("p50 ack (from when due)", opened.pct(0.50), base_open.pct(0.50), "ms"))
    print(line("p99 ack (from when due)", opened.pct(0.99), base_open.pct(0.99), "ms"))
    print(f"  {'max ack':<26} {max(opened.latencies) * 1000:8.1f} ms")
    print(f"  {'p99 ack inside the server':<26} {seen['server_p99']} (its own histogram)")
    before, after = seen["depth"]
    print(f"  queue depth {before} when it began, {after} when it ended (work behind it)")
    print(
        f"drain: the worker processed {drained} deliveries in {drain_s:.1f} s after the "
        f"load stopped ({drained / drain_s:.0f}/s, {left} left); {total['done']} done in all"
    )
    if threaded is not None:
        t_closed, t_open = threaded
        print("the same server with the work in a thread beside the event loop (as before):")
        print(
            line("closed loop acknowledged", t_closed.rate, closed.rate, "/s").replace(
                "baseline", "in child"
            )
        )
        print(
            line("open loop p50 ack", t_open.pct(0.50), opened.pct(0.50), "ms").replace(
                "baseline", "in child"
            )
        )
        print(
            line("open loop p99 ack", t_open.pct(0.99), opened.pct(0.99), "ms").replace(
                "baseline", "in child"
            )
        )
    errors = closed.errors + opened.errors
    print(f"answers other than 202: {errors}")
    met = opened.rate >= 0.98 * args.rate and opened.pct(0.99) < 50 and errors == 0
    target = f">= {args.rate:g}/s acknowledged with p99 < 50 ms and no errors"
    print(f"target ({target}): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
