#!/usr/bin/env python3
"""Alert intake under a burst: 1,000 alerts in 50 groups must open exactly 50 tickets.

Two measurements.  ``serve`` (what Alertmanager sees): a real ``infrabot serve`` on a
throwaway copy of the repository; the burst is posted to ``/alerts`` over HTTP, one
connection per group at a time as Alertmanager's per-group notifiers do, and we time
until every post is acknowledged (202: on disk) and until the worker has opened all 50
tickets and drained the queue.  Its baseline, in the same run on the same server, is the
webhook route acknowledging as many signed GitHub deliveries of the same size (events the
router ignores, so they cost the worker nothing).  Then the burst is posted again
(Alertmanager's retries): every post must be a duplicate and the tickets stay 50.
``--no-serve`` skips it.

``intake`` (the intake itself, in process):

Alertmanager sends one notification per group holding all of the group's alerts: the
burst arrives as ``--waves`` deliveries per group (default 2: the first half of each
group's alerts after group_wait, all of them after group_interval), the groups
interleaved, on the local forge (SQLite) with the durable alert record.  Then the whole
burst is delivered a second time (Alertmanager retries): nothing may change.  The
baseline, measured in the same run on a fresh local forge, is the forge work intake cannot
avoid: opening one issue per group and editing one comment per later delivery.  The
issue's budget is 5 s for the burst.  ``--waves`` equal to alerts/groups is the worst case
(every alert its own delivery, each durably recorded before its acknowledgement).

Usage: python scripts/benchmark_alerts.py [--alerts 1000] [--groups 50] [--waves 2] [--no-serve]
Nothing here is a test: it prints figures (and exits 1 only if the ticket count is wrong).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.alerts.catalog import require_catalog  # noqa: E402
from bot.alerts.intake import IntakeServices, ingest  # noqa: E402
from bot.alerts.monitoring import start_serve  # noqa: E402
from bot.alerts.store import AlertStore  # noqa: E402
from bot.demo import make_copy  # noqa: E402
from bot.events.signature import sign  # noqa: E402
from bot.forge.base import BOT_LOGIN  # noqa: E402
from bot.forge.local import LocalForge  # noqa: E402

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def alert(group: int, n: int) -> dict[str, Any]:
    labels = {
        "alertname": "InvariantViolated",
        "invariant": "site_probe_success",
        "infrabot_kind": "invariant",
        "severity": "ticket",
        "instance": f"http://site{group}-{n}.example.com/",
        "group": str(group),
    }
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "probe fails"},
        "startsAt": T0.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": f"{group:04d}{n:06d}",
    }


def delivery(group: int, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": f'{{}}:{{group="{group}"}}',
        "status": "firing",
        "receiver": "infrabot",
        "groupLabels": {"group": str(group)},
        "commonLabels": {"group": str(group)},
        "alerts": alerts,
    }


def burst(alerts: int, groups: int, waves: int) -> list[dict[str, Any]]:
    per_group = {g: [alert(g, n) for n in range(alerts) if n % groups == g] for g in range(groups)}
    out = []
    for wave in range(1, waves + 1):
        for g, items in per_group.items():
            upto = len(items) * wave // waves
            out.append(delivery(g, items[:upto]))
    return out


def services(tmp: Path) -> IntakeServices:
    return IntakeServices(
        forge=LocalForge(tmp / "forge.db", {}, tmp),
        store=AlertStore(tmp / "alerts.db"),
        catalog=require_catalog(ROOT),
        clock=lambda: T0,
        record=lambda *args: None,
    )


def baseline(tmp: Path, deliveries: int, groups: int) -> float:
    forge = LocalForge(tmp / "baseline.db", {}, tmp)
    start = time.perf_counter()
    issues = [forge.create_issue(f"g{g}", "body", BOT_LOGIN).number for g in range(groups)]
    for i in range(deliveries - groups):
        forge.ensure_comment(issues[i % groups], "alerts", f"alerts of delivery {i}")
    return time.perf_counter() - start


# --- serve: the burst over HTTP to a real infrabot serve ---------------------------------


def _post(port: int, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    return response.status, time.perf_counter() - started


def _burst(
    port: int, groups: int, requests: list[tuple[int, str, bytes, dict[str, str]]]
) -> tuple[float, list[int], list[float]]:
    """Post ``requests`` (group, path, body, headers), each group's in order, the groups at
    once; the wall time, the statuses and each request's latency."""
    by_group: dict[int, list[tuple[str, bytes, dict[str, str]]]] = {}
    for group, path, body, headers in requests:
        by_group.setdefault(group, []).append((path, body, headers))

    def one_group(items: list[tuple[str, bytes, dict[str, str]]]) -> list[tuple[int, float]]:
        return [_post(port, path, body, headers) for path, body, headers in items]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=groups) as pool:
        answers = [a for got in pool.map(one_group, by_group.values()) for a in got]
    wall = time.perf_counter() - started
    return wall, [status for status, _ in answers], [seconds for _, seconds in answers]


def _until(probe: Callable[[], bool], timeout: float = 600.0) -> float:
    started = time.perf_counter()
    while not probe():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"gave up after {timeout:.0f}s")
        time.sleep(0.05)
    return time.perf_counter() - started


def _health(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/healthz")
        return dict(json.loads(conn.getresponse().read()))
    finally:
        conn.close()


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) > 1 else values[0]


def bench_serve(args: argparse.Namespace, posts: list[dict[str, Any]]) -> bool:
    token, secret = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    alert_headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
    bodies = [(int(d["groupLabels"]["group"]), json.dumps(d).encode()) for d in posts]
    alerts = [(g, "/alerts", body, alert_headers) for g, body in bodies]
    github = []
    for g, body in bodies:  # the same sizes, signed, an event the router ignores
        pad = json.dumps({"action": "created", "pad": "x" * max(len(body) - 40, 0)}).encode()
        headers = {
            "Content-Type": "application/json",
            "X-GitHub-Event": "star",
            "X-GitHub-Delivery": str(uuid.uuid4()),
            "X-Hub-Signature-256": sign(secret, pad),
        }
        github.append((g, "/github", pad, headers))
    with tempfile.TemporaryDirectory() as name:
        repo = Path(name) / "repo"
        repo.mkdir()
        make_copy(ROOT, repo)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("INFRABOT_")},
            "INFRABOT_ALERTS_TOKEN": token,
            "INFRABOT_WEBHOOK_SECRET": secret,
        }
        served = start_serve(repo, Path(name) / "serve.log", env)
        try:
            port = int(served.url.rsplit(":", 1)[1])
            forge = LocalForge(repo / ".infrabot" / "forge.db", {}, repo)
            base_s, base_codes, base_lat = _burst(port, args.groups, github)
            _until(lambda: _health(port)["queue"]["queued"] == 0)
            ack_s, codes, lat = _burst(port, args.groups, alerts)
            acked = time.perf_counter()
            _until(lambda: len(forge.list_issues()) >= args.groups)
            tickets_s = ack_s + time.perf_counter() - acked
            _until(lambda: (q := _health(port)["queue"])["queued"] + q["working"] == 0)
            drained_s = ack_s + time.perf_counter() - acked
            again_s, again_codes, _ = _burst(port, args.groups, alerts)
            time.sleep(0.5)
            tickets = len(forge.list_issues())
            health = _health(port)
        finally:
            served.stop()
    ok = (
        codes.count(202) == len(alerts)
        and base_codes.count(202) == len(github)
        and again_codes.count(200) == len(alerts)
        and tickets == args.groups
        and health["queue"]["failed"] == 0
    )
    print(f"serve: {len(alerts)} posts to /alerts ({args.alerts} alerts in {args.groups} groups)")
    print(
        f"  acknowledged      {ack_s:7.2f} s  (p50 {statistics.median(lat) * 1000:.0f} ms,"
        f" p99 {_p99(lat) * 1000:.0f} ms; {codes.count(202)} x 202)"
    )
    print(
        f"  webhook baseline  {base_s:7.2f} s  (p50 {statistics.median(base_lat) * 1000:.0f}"
        f" ms, p99 {_p99(base_lat) * 1000:.0f} ms; the same count and sizes to /github)"
    )
    print(f"  ratio             {ack_s / base_s:7.2f}x the baseline")
    print(f"  budget            {ack_s / 5:7.2f} of the issue's 5 s (acknowledged)")
    print(f"  50 tickets after  {tickets_s:7.2f} s  (queue drained after {drained_s:.2f} s)")
    print(f"  re-posted         {again_s:7.2f} s, {again_codes.count(200)} x 200 duplicate")
    print(f"  tickets           {tickets} (expected {args.groups}); queue {health['queue']}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--waves", type=int, default=2)
    ap.add_argument("--no-serve", action="store_true", help="only the in-process intake")
    args = ap.parse_args()
    posts = burst(args.alerts, args.groups, args.waves)
    served_ok = True if args.no_serve else bench_serve(args, posts)
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        base = baseline(tmp, len(posts), args.groups)
        svc = services(tmp)
        start = time.perf_counter()
        results = [ingest(svc, d) for d in posts]
        burst_s = time.perf_counter() - start
        start = time.perf_counter()
        again = [ingest(svc, d) for d in posts]
        retry_s = time.perf_counter() - start
        assert isinstance(svc.forge, LocalForge)
        tickets = len(svc.forge.list_issues())
    opened = sum(r.opened for r in results)
    changed_on_retry = sum(r.new for r in again)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"intake: {args.alerts} alerts in {args.groups} groups, {len(posts)} deliveries")
    print(f"  load average      {load} (1, 5, 15 min) on {os.cpu_count()} cores")
    print(f"  intake            {burst_s:7.2f} s  ({args.alerts / burst_s:,.0f} alerts/s)")
    print(f"  forge baseline    {base:7.2f} s  (issue per group, comment edit per later delivery)")
    print(f"  ratio             {burst_s / base:7.2f}x the baseline")
    print(f"  budget            {burst_s / 5:7.2f} of the issue's 5 s")
    print(f"  tickets           {tickets} (opened {opened}; expected {args.groups})")
    print(f"  re-delivered      {retry_s:7.2f} s, {changed_on_retry} new alerts recorded")
    return 0 if served_ok and tickets == args.groups and changed_on_retry == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
