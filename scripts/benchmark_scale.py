#!/usr/bin/env python3
"""How infrabot's checks grow with the estate: 200, 2,000 and 20,000 documents.

For each size, beside baselines measured in the same run:

- full validation, cold (`infrabot validate`, no cache), against a bare `yamllint` over the
  same files;
- the same, warm (nothing changed), and with one file changed;
- `infrabot pr open` of a one-file change to a checked PR (validation + dry-run, with the
  cache of main as CI restores it), against a bare `ansible-playbook --check --limit` of the
  same hosts;
- the bot's dry-run of that one-site change, against the same bare `--limit` run.

And once: the seed `issue open` to a checked PR, against its 5 s goal.

Estates are generated once (scripts/scale_estate.py) under --work and reused. The figures go
to --json and a chart (log-scaled size axis) to --png. Nothing here asserts on time: the
goals of issue 9 are printed beside the figures.

Usage: python scripts/benchmark_scale.py [--sizes 200 2000 20000] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from scale_estate import ensure_estate  # noqa: E402

from bot.demo import SEED_REQUEST, make_copy  # noqa: E402
from bot.estate import blast_radius  # noqa: E402
from bot.estate.documents import STATE_DIR  # noqa: E402
from bot.flow.checks import dry_run  # noqa: E402
from bot.flow.records import Records  # noqa: E402
from bot.flow.trees import estate_of  # noqa: E402
from bot.gitrepo import GitRepo  # noqa: E402
from bot.model import ValidationReport  # noqa: E402
from bot.validate import index as index_module  # noqa: E402
from bot.validate import validate_tree  # noqa: E402
from bot.validate.cache import ValidationCache  # noqa: E402
from bot.wiring import open_services  # noqa: E402

BIN = Path(sys.executable).parent
CHANGED_SITE = "infra/state/sites/gen/app00007.yaml"
SERIAL_UP_TO = 2000
"""Sizes up to this are also validated cold on one core, to show what the second one buys."""
GOALS = {
    "one-file validation, 2,000 documents": ("one_file_validate_s", 2000, 0.5),
    "one-file validation, 20,000 documents": ("one_file_validate_s", 20000, 1.0),
    "full validation cold, 20,000 documents": ("full_validate_cold_s", 20000, 10.0),
}


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker processes, commands)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


LAST_CPU: list[float] = [0.0]
"""CPU seconds of the last ``timed`` call: on a shared machine wall time includes waiting for
other people's work; CPU time does not."""


def timed(run: Callable[[], Any]) -> tuple[float, Any]:
    started, cpu = time.perf_counter(), cpu_seconds()
    result = run()
    LAST_CPU[0] = cpu_seconds() - cpu
    return time.perf_counter() - started, result


def record(row: dict[str, Any], key: str, seconds: float) -> float:
    row[key] = seconds
    row[key.removesuffix("_s") + "_cpu_s"] = LAST_CPU[0]
    return seconds


def sh(cmd: list[str], cwd: Path, ok: tuple[int, ...] = (0,)) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", ANSIBLE_NOCOLOR="1")
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in ok:
        sys.exit(f"{' '.join(cmd[:4])} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def infrabot(repo: Path, *args: str) -> tuple[float, str]:
    """Seconds the command took, and what it printed."""
    cmd = [sys.executable, "-m", "bot.cli", "--repo", str(repo), "-q", *args]
    seconds, proc = timed(lambda: sh(cmd, ROOT))
    return seconds, proc.stdout


def bare_yamllint(repo: Path) -> float:
    return timed(lambda: sh([str(BIN / "yamllint"), "-c", ".yamllint", "infra/state"], repo))[0]


def bare_check(repo: Path, inventory: Path, hosts: tuple[str, ...]) -> float:
    cmd = [str(BIN / "ansible-playbook"), "-i", str(inventory), "infra/ansible/site.yml"]
    cmd += ["--check", "--diff", "--limit", ",".join(hosts)]
    env_cfg = ["env", f"ANSIBLE_CONFIG={repo / 'infra/ansible/ansible.cfg'}"]
    return timed(lambda: sh([*env_cfg, *cmd], repo, ok=(0, 2)))[0]


def change_site(path: Path) -> None:
    text = path.read_text()
    path.write_text(text.replace(':8080"', ':9090"', 1))


def drop_cache(repo: Path) -> None:
    shutil.rmtree(repo / ".infrabot" / "cache", ignore_errors=True)


def validate_in_process(repo: Path, cache: Path, *, serial: bool = False) -> float:
    """``validate_tree`` with a new cache object on ``cache`` (as a new process would open it)."""
    saved = index_module.PARALLEL_FROM
    index_module.PARALLEL_FROM = 10**9 if serial else saved

    def validate() -> ValidationReport:  # as `infrabot validate` does: git's blob ids
        git = GitRepo(repo)
        blobs = git.blob_ids(None, STATE_DIR)
        return validate_tree(repo, cache=ValidationCache(cache), blobs=blobs)

    try:
        seconds, report = timed(validate)
    finally:
        index_module.PARALLEL_FROM = saved
    if not report.ok:
        sys.exit(f"the generated estate does not validate: {report.errors()[:3]}")
    return seconds


def measure_validation(repo: Path, row: dict[str, Any]) -> None:
    """In process (the validation itself), then through the CLI (plus start-up)."""
    drop_cache(repo)
    home = repo / ".infrabot" / "cache"
    home.mkdir(parents=True)
    if row["documents"] <= SERIAL_UP_TO:
        serial = validate_in_process(repo, home / "s", serial=True)
        record(row, "full_validate_cold_serial_s", serial)
    record(row, "full_validate_cold_s", validate_in_process(repo, home / "validation.sqlite"))
    record(row, "full_validate_warm_s", validate_in_process(repo, home / "validation.sqlite"))
    record(row, "cli_validate_warm_s", infrabot(repo, "validate")[0])
    site = repo / CHANGED_SITE
    original = site.read_text()
    change_site(site)
    try:
        record(row, "one_file_validate_s", validate_in_process(repo, home / "validation.sqlite"))
        record(row, "cli_one_file_validate_s", infrabot(repo, "validate")[0])
    finally:
        site.write_text(original)
    record(row, "bare_yamllint_s", bare_yamllint(repo))


def measure_pr(repo: Path, size: int, row: dict[str, Any]) -> None:
    """pr open of a one-file change on a clone whose cache holds main's verdicts."""
    branch = f"bench-{time.monotonic_ns()}"
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@infrabot.local", "-C", str(repo)]
    sh([*git, "checkout", "-q", "-b", branch], repo)
    change_site(repo / CHANGED_SITE)
    sh([*git, "commit", "-qam", "one site"], repo)
    sh([*git, "checkout", "-q", "main"], repo)
    infrabot(repo, "validate")  # main's verdicts, as a CI cache restore would bring them
    # The steady state: the estate was applied at main. (Otherwise the check also dry-runs
    # the base, to tell drift from the change: a second dry-run of the same hosts.)
    main_sha = sh(["git", "-C", str(repo), "rev-parse", "main"], repo).stdout.strip()
    Records(open_services(repo, lambda _m: None).paths.runs).set_applied(main_sha)
    bot_s, out = infrabot(repo, "pr", "open", branch, "--as", "alice", "--json")
    record(row, "pr_open_s", bot_s)
    svc = open_services(repo, lambda _m: None)
    pr = json.loads(out)["number"]
    check = Records(svc.paths.runs).check(pr)
    if check is None or not check.validation.ok:
        sys.exit(f"{size} documents: the PR check did not validate: {check}")
    hosts = check.dry_run.hosts
    inventory = svc.paths.artifacts / f"pr-{pr}" / "inventory.yml"
    row |= {"pr_hosts": list(hosts), "pr_dry_run": check.dry_run.status.value}
    record(row, "bare_check_limit_s", bare_check(repo, inventory, hosts))


def measure_dry_run(repo: Path, row: dict[str, Any]) -> None:
    svc = open_services(repo, lambda _m: None)
    before = estate_of(repo, svc.cache)
    site = repo / CHANGED_SITE
    original = site.read_text()
    change_site(site)
    try:
        after = estate_of(repo, svc.cache)
    finally:
        site.write_text(original)
    hosts = blast_radius(before, after)
    bot_s, run = timed(
        lambda: dry_run(
            svc,
            "bench",
            content=repo,
            after=after,
            hosts=hosts,
            head_sha="bench00",
            base_sha="bench00",
        )
    )
    record(row, "dry_run_s", bot_s)
    inventory = svc.paths.artifacts / "bench" / "inventory.yml"
    row |= {"dry_run_status": run.status.value, "dry_run_hosts": list(hosts)}
    record(row, "dry_run_bare_limit_s", bare_check(repo, inventory, hosts))


def measure_size(work: Path, size: int) -> dict[str, Any]:
    estate = ensure_estate(work / f"estate-{size}", size, ROOT)
    repo = work / f"run-{size}"
    shutil.rmtree(repo, ignore_errors=True)
    sh(["git", "clone", "-q", str(estate), str(repo)], work)
    row: dict[str, Any] = {"documents": size, "load_before": os.getloadavg()[0]}
    print(f"\n{size} documents (load average {row['load_before']:.1f})", flush=True)
    measure_validation(repo, row)
    lint = ("bare_yamllint_s", "bare yamllint")
    if "full_validate_cold_serial_s" in row:
        _show(row, "full_validate_cold_serial_s", "validation, cold, 1 core", *lint)
    _show(row, "full_validate_cold_s", "validation, cold, cores", *lint)
    _show(row, "full_validate_warm_s", "validation, warm", *lint)
    _show(row, "one_file_validate_s", "one-file change", *lint)
    _show(row, "cli_validate_warm_s", "infrabot validate, warm", *lint)
    _show(row, "cli_one_file_validate_s", "infrabot validate, 1 file", *lint)
    measure_pr(repo, size, row)
    limit = ("bare_check_limit_s", "bare --check --limit")
    _show(row, "pr_open_s", "pr open → checked PR", *limit)
    print(f"    bot adds {row['pr_open_s'] - row['bare_check_limit_s']:+.2f} s over bare --limit")
    measure_dry_run(repo, row)
    _show(row, "dry_run_s", "one-site dry-run", "dry_run_bare_limit_s", "bare --check --limit")
    row["load_after"] = os.getloadavg()[0]
    print(f"  (load average {row['load_before']:.1f} before, {row['load_after']:.1f} after)")
    shutil.rmtree(repo, ignore_errors=True)
    return row


def _show(row: dict[str, Any], key: str, label: str, base: str, base_label: str) -> None:
    ratio = row[key] / row[base] if row[base] else float("nan")
    cpu = row[key.removesuffix("_s") + "_cpu_s"]
    print(
        f"  {label:<26} {row[key]:7.2f} s (cpu {cpu:6.2f})   {base_label}: {row[base]:6.2f} s"
        f"   ({ratio:.2f}x)",
        flush=True,
    )


def measure_seed(work: Path) -> dict[str, float]:
    repo = work / "seed"
    shutil.rmtree(repo, ignore_errors=True)
    repo.mkdir()
    make_copy(ROOT, repo)
    bot_s, out = infrabot(repo, "issue", "open", SEED_REQUEST, "--as", "alice", "--json")
    seed_cpu = LAST_CPU[0]
    svc = open_services(repo, lambda _m: None)
    pr = json.loads(out)["pr"]
    check = Records(svc.paths.runs).check(pr)
    assert check is not None
    inventory = svc.paths.artifacts / f"pr-{pr}" / "inventory.yml"
    bare = bare_check(repo, inventory, check.dry_run.hosts)
    shutil.rmtree(repo, ignore_errors=True)
    print(f"\nseed issue open → checked PR: {bot_s:.2f} s (goal < 5 s); bare --limit {bare:.2f} s")
    return {
        "seed_issue_open_s": bot_s,
        "seed_issue_open_cpu_s": seed_cpu,
        "seed_bare_check_limit_s": bare,
        "seed_bare_check_limit_cpu_s": LAST_CPU[0],
    }


def verdict(value: float, goal: float) -> str:
    return "met" if value < goal else "NOT met"


def print_goals(rows: list[dict[str, Any]], seed: dict[str, float] | None) -> None:
    print("\nGoals of issue 9 (printed, not asserted; wall time, and CPU time in brackets):")
    by_size = {r["documents"]: r for r in rows}
    for label, (key, size, goal) in GOALS.items():
        if size in by_size:
            wall, cpu = by_size[size][key], by_size[size][key.removesuffix("_s") + "_cpu_s"]
            print(f"  {label}: {wall:.2f} s ({cpu:.2f}), goal < {goal} s: {verdict(wall, goal)}")
    if 2000 in by_size:
        row = by_size[2000]
        added = row["pr_open_s"] - row["bare_check_limit_s"]
        added_cpu = row["pr_open_cpu_s"] - row["bare_check_limit_cpu_s"]
        print(
            f"  pr open adds over bare --limit, 2,000 documents: {added:+.2f} s "
            f"({added_cpu:+.2f}), goal <= 1 s: {verdict(added, 1.0 + 1e-9)}"
        )
    if seed:
        wall, cpu = seed["seed_issue_open_s"], seed["seed_issue_open_cpu_s"]
        print(
            f"  seed issue open → checked PR: {wall:.2f} s ({cpu:.2f}), goal < 5 s: "
            f"{verdict(wall, 5.0)}"
        )


SERIES = (
    ("full_validate_cold_s", "full validation, cold (bot)", "-o"),
    ("full_validate_warm_s", "full validation, nothing changed (bot)", "-x"),
    ("bare_yamllint_s", "bare yamllint, same files", "--o"),
    ("one_file_validate_s", "one-file change validation (bot)", "-s"),
    ("pr_open_s", "pr open → checked PR (bot)", "-^"),
    ("bare_check_limit_s", "bare ansible-playbook --check --limit", "--^"),
    ("dry_run_s", "one-site dry-run (bot)", "-d"),
)


def draw(rows: list[dict[str, Any]], png: Path, stamp: str) -> None:
    """Two panels over a log-scaled size axis: wall time (what a reviewer waits, on a shared
    machine) and CPU time (the work itself, which other people's load does not inflate)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [r["documents"] for r in rows]
    fig, axes = plt.subplots(1, 2, figsize=(12, 5), dpi=110, sharey=True)
    for ax, suffix, title in ((axes[0], "_s", "wall time"), (axes[1], "_cpu_s", "CPU time")):
        for key, label, style in SERIES:
            ax.plot(sizes, [r[key.removesuffix("_s") + suffix] for r in rows], style, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.set_xlabel("documents in infra/state (log scale)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("seconds (log scale)")
    axes[1].legend(fontsize=8, loc="upper left")
    load = max(r["load_before"] for r in rows)
    fig.suptitle(
        f"infrabot checks against estate size ({stamp}; 2 cores shared, load average up to "
        f"{load:.0f})",
        fontsize=11,
    )
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000, 20000])
    parser.add_argument("--work", type=Path, default=ROOT / ".infrabot" / "bench")
    parser.add_argument("--json", type=Path, default=ROOT / "docs/benchmarks/scale.json")
    parser.add_argument("--png", type=Path, default=ROOT / "docs/benchmarks/scale.png")
    parser.add_argument("--skip-seed", action="store_true")
    parser.add_argument("--plot-only", action="store_true", help="redraw --png from --json")
    args = parser.parse_args()
    if args.plot_only:
        figures = json.loads(args.json.read_text())
        draw(figures["sizes"], args.png, figures["date"])
        return 0
    args.work.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    rows = [measure_size(args.work, size) for size in sorted(args.sizes)]
    with tempfile.TemporaryDirectory(prefix="seed-", dir=args.work) as scratch:
        seed = None if args.skip_seed else measure_seed(Path(scratch))
    print_goals(rows, seed)
    figures = {"date": stamp, "cpus": os.cpu_count(), "sizes": rows, "seed": seed}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(figures, indent=2) + "\n")
    draw(rows, args.png, stamp)
    print(f"\nfigures: {args.json}\nchart:   {args.png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
