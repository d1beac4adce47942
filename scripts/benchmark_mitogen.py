#!/usr/bin/env python3
"""Mitogen's strategy for Ansible against the default, on the bot's own runner.

Two estates, each in its own throwaway copy of the project with its services up:

- the seed example (4 hosts: node with a container, proxy, DNS, monitoring);
- 20 proxy hosts with a site each (a "20-host apply").

For each estate and each strategy on a fresh copy (``free``, the default, and ``mitogen``:
the bot's opt-in ``ansible_strategy: mitogen``, which runs Mitogen's ``mitogen_free``): a
dry-run of every host, then an apply. Printed and written as JSON: the seconds of each run,
and whether Mitogen predicted the same changes (task and host) and ended in the same recap
as the default. Needs root (the local estate's container namespaces), nginx and dnsmasq,
and the ``mitogen`` package (``pip install 'infrabot[mitogen]'``).

Usage: python scripts/benchmark_mitogen.py [--json docs/benchmarks/mitogen.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo import free_port, make_copy  # noqa: E402
from bot.estate import apply_changes, write_inventory  # noqa: E402
from bot.execute import AnsibleRunner, RunRequest  # noqa: E402
from bot.execute.ansible import mitogen_strategy_plugins  # noqa: E402
from bot.flow.trees import estate_of  # noqa: E402
from bot.localestate import LocalEstate  # noqa: E402
from bot.model import ChangeSet, DryRun, ResourceChange  # noqa: E402

STRATEGIES = ("free", "mitogen")


def twenty_proxies(repo: Path) -> None:
    changes = []
    for i in range(20):
        name = f"edge{i:02d}"
        host = {
            "kind": "Host",
            "name": name,
            "owner": "bench",
            "address": "127.0.0.1",
            "connection": "local",
            "roles": ["proxy"],
            "ports": {"http": free_port()},
        }
        site = {
            "kind": "Site",
            "name": f"edge-site{i:02d}",
            "owner": "bench",
            "domain": f"edge{i:02d}.bench.example.com",
            "upstream": "http://127.0.0.1:9",
            "proxy": name,
        }
        changes += [
            ResourceChange(action="create", kind="Host", name=name, data=host),
            ResourceChange(action="create", kind="Site", name=site["name"], data=site),
        ]
    apply_changes(repo, ChangeSet(changes=tuple(changes), summary="20 proxies"))


def run(repo: Path, strategy: str, check: bool, hosts: tuple[str, ...]) -> tuple[float, DryRun]:
    estate = estate_of(repo)
    inventory = write_inventory(estate, repo / ".infrabot" / "estate", repo / "inventory.yml")
    request = RunRequest(
        playbook_dir=repo / "infra" / "ansible",
        inventory=inventory,
        limit=hosts,
        check=check,
        artifact_dir=repo / ".infrabot" / "artifacts",
        ident=f"{strategy}-{'check' if check else 'apply'}",
    )
    started = time.perf_counter()
    result = AnsibleRunner(strategy=strategy).run(request)
    return time.perf_counter() - started, result


def outcome(result: DryRun) -> dict[str, Any]:
    return {
        "status": result.status.value,
        "changed": sorted(f"{t.host}: {t.task}" for t in result.changed()),
        "recap": [r.model_dump() for r in sorted(result.recap, key=lambda r: r.host)],
        "error": result.error,
    }


def measure(name: str, strategy: str, work: Path, twenty: bool) -> dict[str, Any]:
    repo = work / f"{name}-{strategy}"
    repo.mkdir()
    make_copy(ROOT, repo)
    if twenty:
        twenty_proxies(repo)
    estate = estate_of(repo)
    hosts = tuple(h.name for h in estate.hosts() if not twenty or h.name.startswith("edge"))
    local = LocalEstate((repo / ".infrabot" / "estate").resolve(), estate.hosts())
    local.up()
    try:
        check_s, check = run(repo, strategy, True, hosts)
        apply_s, applied = run(repo, strategy, False, hosts)
    finally:
        local.down()
    row = {"estate": name, "strategy": strategy, "hosts": len(hosts)}
    row |= {"dry_run_s": check_s, "apply_s": apply_s}
    row |= {"dry_run": outcome(check), "apply": outcome(applied)}
    print(
        f"  {name:<10} {strategy:<13} dry-run {check_s:6.2f} s ({check.status.value})   "
        f"apply {apply_s:6.2f} s ({applied.status.value})",
        flush=True,
    )
    return row


def compare(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name in dict.fromkeys(r["estate"] for r in rows):
        default, mitogen = (
            next(r for r in rows if r["estate"] == name and r["strategy"] == s) for s in STRATEGIES
        )
        same_plan = default["dry_run"]["changed"] == mitogen["dry_run"]["changed"]
        same_recap = default["apply"]["recap"] == mitogen["apply"]["recap"]
        verdict = {
            "estate": name,
            "dry_run_ratio": mitogen["dry_run_s"] / default["dry_run_s"],
            "apply_ratio": mitogen["apply_s"] / default["apply_s"],
            "same_predicted_changes": same_plan,
            "same_apply_recap": same_recap,
        }
        print(
            f"  {name}: Mitogen/default dry-run {verdict['dry_run_ratio']:.2f}x, apply "
            f"{verdict['apply_ratio']:.2f}x; same predicted changes: {same_plan}; "
            f"same recap: {same_recap}"
        )
        out.append(verdict)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=ROOT / "docs/benchmarks/mitogen.json")
    args = parser.parse_args()
    if mitogen_strategy_plugins() is None:
        sys.exit("mitogen is not installed: pip install 'infrabot[mitogen]'")
    from importlib import metadata

    versions = {p: metadata.version(p) for p in ("mitogen", "ansible-core")}
    print(f"mitogen {versions['mitogen']}, ansible-core {versions['ansible-core']}")
    rows = []
    with tempfile.TemporaryDirectory(prefix="mitogen-bench-") as scratch:
        for name, twenty in (("seed", False), ("20 hosts", True)):
            for strategy in STRATEGIES:
                rows.append(measure(name.replace(" ", "-"), strategy, Path(scratch), twenty))
    verdicts = compare(rows)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    figures = {"date": stamp, "versions": versions, "runs": rows, "comparison": verdicts}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
