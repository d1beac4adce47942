#!/usr/bin/env python3
"""Alert intake under a burst: 1,000 alerts in 50 groups must open exactly 50 tickets.

Alertmanager sends one notification per group holding all of the group's alerts: the
burst arrives as ``--waves`` deliveries per group (default 2: the first half of each
group's alerts after group_wait, all of them after group_interval), the groups
interleaved, on the local forge (SQLite) with the durable alert record.  Then the whole
burst is delivered a second time (Alertmanager retries): nothing may change.  The
baseline, measured in the same run on a fresh local forge, is the forge work intake cannot
avoid: opening one issue per group and editing one comment per later delivery.  The
issue's budget is 5 s for the burst.  ``--waves`` equal to alerts/groups is the worst case
(every alert its own delivery, each durably recorded before its acknowledgement).

Usage: python scripts/benchmark_alerts.py [--alerts 1000] [--groups 50] [--waves 2]
Nothing here is a test: it prints figures (and exits 1 only if the ticket count is wrong).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.alerts.catalog import require_catalog  # noqa: E402
from bot.alerts.intake import IntakeServices, ingest  # noqa: E402
from bot.alerts.store import AlertStore  # noqa: E402
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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alerts", type=int, default=1000)
    ap.add_argument("--groups", type=int, default=50)
    ap.add_argument("--waves", type=int, default=2)
    args = ap.parse_args()
    posts = burst(args.alerts, args.groups, args.waves)
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
    print(f"burst: {args.alerts} alerts in {args.groups} groups, {len(posts)} deliveries")
    print(f"  load average      {load} (1, 5, 15 min) on {os.cpu_count()} cores")
    print(f"  intake            {burst_s:7.2f} s  ({args.alerts / burst_s:,.0f} alerts/s)")
    print(f"  forge baseline    {base:7.2f} s  (issue per group, comment edit per later delivery)")
    print(f"  ratio             {burst_s / base:7.2f}x the baseline")
    print(f"  budget            {burst_s / 5:7.2f} of the issue's 5 s")
    print(f"  tickets           {tickets} (opened {opened}; expected {args.groups})")
    print(f"  re-delivered      {retry_s:7.2f} s, {changed_on_retry} new alerts recorded")
    return 0 if tickets == args.groups and changed_on_retry == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
