#!/usr/bin/env python3
"""Speed of infrabot, as ratios against baselines measured in the same run.

1. The seed issue, from `infrabot issue open` to a PR with validation and dry-run,
   against a bare `ansible-playbook --check --diff --limit` of the same hosts and the 5 s
   budget.
2. On an estate of N proxy hosts (default 200), the bot's dry-run of a one-site change
   against a full-estate `ansible-playbook --check` run (the issue asks for < 1/30), the
   bot's overhead over a bare `--limit` run of the same host, and whether the limited
   dry-run predicts the same changes for that host as the full run.

Usage: python scripts/benchmark.py [--hosts 200] [--skip-estate]
Nothing here is a test: it prints figures; it asserts nothing about wall-clock time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.demo import SEED_REQUEST, make_copy  # noqa: E402
from bot.estate import (  # noqa: E402
    apply_changes,
    blast_radius,
    build_estate,
    read_documents,
    write_inventory,
)
from bot.execute import RunRequest  # noqa: E402
from bot.flow.checks import dry_run  # noqa: E402
from bot.flow.trees import estate_of  # noqa: E402
from bot.model import ChangeSet, ResourceChange  # noqa: E402
from bot.wiring import open_services  # noqa: E402

PLAYBOOK_BIN = str(Path(sys.executable).parent / "ansible-playbook")


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "infra/ansible/ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        PATH=f"{Path(sys.executable).parent}:{env.get('PATH', '')}",
    )
    return env


def bare_check(
    playbook_dir: Path, inventory: Path, limit: str | None, json_out: bool = False
) -> tuple[float, dict[str, set[str]]]:
    """Time a raw ansible-playbook --check --diff; return the changed task names per host."""
    cmd = [
        PLAYBOOK_BIN if Path(PLAYBOOK_BIN).exists() else "ansible-playbook",
        "-i",
        str(inventory),
        str(playbook_dir / "site.yml"),
        "--check",
        "--diff",
    ]
    if limit:
        cmd += ["--limit", limit]
    env = ansible_env()
    env["ANSIBLE_CONFIG"] = str(playbook_dir / "ansible.cfg")
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    elapsed = time.monotonic() - started
    if proc.returncode not in (0, 2):
        sys.exit(
            f"ansible-playbook failed ({proc.returncode}):\n{proc.stdout[-2000:]}"
            f"{proc.stderr[-2000:]}"
        )
    return elapsed


def seed_issue(work: Path) -> None:
    repo = work / "seed"
    repo.mkdir()
    make_copy(ROOT, repo)
    cmd = [
        sys.executable,
        "-m",
        "bot.cli",
        "--repo",
        str(repo),
        "-q",
        "issue",
        "open",
        SEED_REQUEST,
        "--as",
        "alice",
        "--json",
    ]
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    bot_s = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"issue open failed: {proc.stderr}")
    pr = json.loads(proc.stdout)["pr"]
    svc = open_services(repo, lambda _m: None)
    check = svc.records.check(pr)
    assert check is not None
    hosts = ",".join(check.dry_run.hosts)
    inventory = svc.paths.artifacts / f"pr-{pr}" / "inventory.yml"
    bare_s = bare_check(repo / "infra/ansible", inventory, hosts)
    print("1. seed issue → PR with validation and dry-run")
    print(f"   infrabot issue open (whole command):       {bot_s:6.2f} s")
    print(f"   bare ansible-playbook --check --limit {hosts}: {bare_s:6.2f} s")
    print(f"   ratio to the 5 s budget:                    {bot_s / 5:6.2f}  (< 1 meets it)")
    print(f"   ratio to the bare dry-run of the same hosts: {bot_s / bare_s:6.2f}x")


def big_estate(work: Path, n: int) -> None:
    repo = work / "big"
    repo.mkdir()
    make_copy(ROOT, repo)
    changes = []
    for i in range(1, n + 1):
        name = f"proxy{i:03d}"
        changes.append(
            ResourceChange(
                action="create",
                kind="Host",
                name=name,
                data={
                    "kind": "Host",
                    "name": name,
                    "owner": "bench",
                    "environment": "lab",
                    "address": "127.0.0.1",
                    "connection": "local",
                    "roles": ["proxy"],
                    "ports": {"http": 20000 + i},
                },
            )
        )
        changes.append(
            ResourceChange(
                action="create",
                kind="Site",
                name=f"site{i:03d}",
                data={
                    "kind": "Site",
                    "name": f"site{i:03d}",
                    "owner": "bench",
                    "domain": f"site{i:03d}.example.com",
                    "upstream": "http://10.77.0.10:8080",
                    "proxy": name,
                },
            )
        )
    apply_changes(repo, ChangeSet(changes=tuple(changes), summary="bench"))
    svc = open_services(repo, lambda _m: None)
    before = estate_of(repo)
    site = before.get("Site", "site007")
    assert site is not None
    data = site.model_dump(mode="json", exclude_none=True) | {"upstream": "http://10.77.0.10:9090"}
    apply_changes(
        repo,
        ChangeSet(
            changes=(ResourceChange(action="update", kind="Site", name="site007", data=data),),
            summary="one site",
        ),
    )
    after = build_estate(read_documents(repo)[0])
    radius = blast_radius(before, after)
    inventory = write_inventory(after, svc.paths.estate_runtime, work / "inventory.yml")
    print(f"\n2. estate of {len(after.hosts())} hosts; one-site change touches {radius}")
    every = tuple(h.name for h in after.hosts())
    started = time.monotonic()
    full = svc.runner.run(
        RunRequest(
            playbook_dir=repo / "infra/ansible",
            inventory=inventory,
            limit=every,
            check=True,
            artifact_dir=work / "full",
            ident="full-estate",
        )
    )
    full_s = time.monotonic() - started
    full_changed = {h: {t.task for t in full.changed() if t.host == h} for h in radius}
    print(f"   full-estate ansible-playbook --check:       {full_s:7.2f} s  ({full.status.value})")
    bare_s = bare_check(repo / "infra/ansible", inventory, ",".join(radius))
    started = time.monotonic()
    run = dry_run(
        svc,
        "bench",
        content=repo,
        after=after,
        hosts=radius,
        head_sha="bench00",
        base_sha="bench00",
    )
    bot_s = time.monotonic() - started
    print(f"   bot dry-run of the change (incl. nginx -t): {bot_s:7.2f} s")
    print(f"   bare ansible-playbook --check --limit:      {bare_s:7.2f} s")
    print(
        f"   bot / full estate:                          {bot_s / full_s:7.3f}  "
        f"(1/{full_s / bot_s:.0f}; the goal is under 1/30)"
    )
    print(
        f"   bot overhead over bare --limit:             {bot_s / bare_s:7.2f}x  "
        "(below 1: the bot's inventory holds only the hosts it runs on)"
    )
    predicted = {t.task for t in run.changed() if t.host in radius}
    in_full = set().union(*full_changed.values())
    print(
        f"   same predicted changes for {', '.join(radius)}: {predicted == in_full} "
        f"({sorted(predicted)} vs {sorted(in_full)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--skip-estate", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="infrabot-bench-"))
    try:
        seed_issue(work)
        if not args.skip_estate:
            big_estate(work, args.hosts)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
