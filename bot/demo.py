"""``infrabot demo``: the seed example end to end in a throwaway copy of this repository.

It is the walk-through a new user would do by hand, run by the same functions the CLI
calls: open the issue, see /apply refused (read-only user, then no approval), approve,
merge, and watch the apply, the verification and the evidence.
"""

from __future__ import annotations

import fcntl
import os
import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from bot.errors import InfrabotError
from bot.estate import apply_changes, build_estate, read_documents
from bot.flow.apply import reconcile
from bot.flow.dispatch import handle_comment, merge_pr
from bot.flow.render import summarize_run
from bot.flow.services import Services
from bot.flow.tickets import handle_issue
from bot.flow.trees import estate_of
from bot.flow.verify import http_get, resolve
from bot.localestate import LocalEstate, render_status
from bot.model import ChangeSet, Host, ResourceChange
from bot.wiring import conversation, open_services

SEED_REQUEST = (
    "Create a container on pve1 for the API scanner and make it accessible at "
    "api-scanner.example.com"
)
COPIED = ("infra", "capabilities", "schemas", "runbooks", "infrabot.yaml", ".yamllint")


def project_root() -> Path:
    root = Path(__file__).resolve().parent.parent
    if not (root / "infra" / "state").is_dir():
        raise InfrabotError(
            f"the seed estate is not beside the package ({root}): run the demo "
            "from a clone of infrabot installed with `pip install -e .`"
        )
    return root


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_copy(source: Path, dest: Path) -> None:
    """Copy the seed repository, give its services free ports, and commit it as main."""
    for name in COPIED:
        src = source / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif src.exists():
            shutil.copy2(src, dest / name)
    (dest / ".gitignore").write_text(".infrabot/\n")
    _free_ports(dest)
    _free_subnet(dest)
    git = ["git", "-c", "user.name=infrabot-demo", "-c", "user.email=demo@infrabot.local"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(dest)], check=True)
    subprocess.run([*git, "-C", str(dest), "add", "-A"], check=True)
    subprocess.run([*git, "-C", str(dest), "commit", "-q", "-m", "Seed estate"], check=True)


def _free_ports(dest: Path) -> None:
    docs, _ = read_documents(dest)
    changes = []
    for host in build_estate(docs).hosts():
        ports = host.ports.model_dump(exclude_none=True)
        if not ports:
            continue
        data = host.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        data |= {
            "kind": "Host",
            "roles": list(host.roles),
            "address": str(host.address),
            "ports": {k: free_port() for k in ports},
        }
        changes.append(ResourceChange(action="update", kind="Host", name=host.name, data=data))
    if changes:
        apply_changes(dest, ChangeSet(changes=tuple(changes), summary="demo ports"))


SEED_NET = "10.77.0."


def _routed_prefixes() -> str:
    try:
        done = subprocess.run(
            ["ip", "-4", "route", "show", "table", "all"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout


SUBNET_LEDGER = Path(tempfile.gettempdir()) / "infrabot-subnets"
"""One file per 10.77.N.0/24 handed out on this machine, its mtime when it was."""


def _free_subnet(dest: Path) -> None:
    """Move the copy's containers to a /24 no other estate on this machine routes, so a demo
    (or a test run) beside another estate never steals its container routes."""
    net = f"10.77.{pick_subnet(_routed_prefixes())}."
    for path in (dest / "infra" / "state").rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        if SEED_NET in text:
            path.write_text(text.replace(SEED_NET, net), encoding="utf-8")


def pick_subnet(routes: str) -> int:
    """N of a 10.77.N.0/24 not in ``routes``, and of those the one handed out longest ago.

    A copy routes its subnet only once its estate is up, seconds or minutes after it was
    made; copies made meanwhile (parallel tests, eval lanes, a demo) must not pick the
    same one.  So the choice is taken under a lock and remembered (``SUBNET_LEDGER``): the
    next copy gets the least recently handed out, and a clash needs 254 copies made while
    one of them is still not routed.  Without a writable ledger, a random free one."""
    taken = {n for n in range(256) if f"10.77.{n}." in routes}
    free = [n for n in range(1, 255) if n not in taken]
    if not free:
        raise InfrabotError("every 10.77.N.0/24 is routed on this machine: run `estate down`")
    try:
        SUBNET_LEDGER.mkdir(exist_ok=True)
        with (SUBNET_LEDGER / ".lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)

            def handed_out(n: int) -> float:
                try:
                    return (SUBNET_LEDGER / str(n)).stat().st_mtime
                except FileNotFoundError:
                    return 0.0

            n = min(free, key=lambda n: (handed_out(n), random.random()))
            mark = SUBNET_LEDGER / str(n)
            mark.touch()
            # stamped from the fine clock: the kernel stamps a touch from its coarse one (a
            # tick), and marks made within one tick would tie
            os.utime(mark, ns=(time.time_ns(), time.time_ns()))
            return n
    except OSError:
        return random.choice(free)


class Narrator:
    def __init__(self) -> None:
        self.n = 0

    def step(self, title: str) -> None:
        self.n += 1
        print(f"\n[{self.n}] {title}", flush=True)

    def say(self, text: str) -> None:
        for line in text.splitlines():
            print(f"    {line}", flush=True)


@dataclass
class Scratch:
    """A demo's throwaway copy: where it is, its services, narrator and local estate, and
    what to stop (last started, first stopped) before the estate goes down."""

    dest: Path
    svc: Services
    tell: Narrator
    estate: LocalEstate
    stops: list[Callable[[], None]] = field(default_factory=list)


@contextmanager
def scratch_copy(
    directory: Path | None,
    *,
    prefix: str,
    keep: bool,
    quiet: bool,
    what: str = "",
    prepare: Callable[[Path], None] | None = None,
) -> Iterator[Scratch]:
    """A throwaway copy of this repository in ``directory`` (a new temporary one if None;
    it must be empty), ``prepare``d before its services open; on the way out, everything in
    ``stops`` is stopped and, unless ``keep``, the estate taken down and the copy removed."""
    dest = directory or Path(tempfile.mkdtemp(prefix=prefix))
    dest.mkdir(parents=True, exist_ok=True)
    if any(dest.iterdir()):
        raise InfrabotError(f"{dest} is not empty: give --dir an empty or new directory")
    tell = Narrator()
    tell.step(f"A throwaway copy of the repository in {dest}{what}")
    make_copy(project_root(), dest)
    if prepare is not None:
        prepare(dest)
    progress: Callable[[str], None] = (lambda _m: None) if quiet else tell.say
    svc = open_services(dest, progress)
    estate = LocalEstate(
        svc.paths.estate_runtime, [h for h in estate_of(dest).hosts() if h.connection == "local"]
    )
    scratch = Scratch(dest, svc, tell, estate)
    try:
        yield scratch
    finally:
        for stop in reversed(scratch.stops):
            stop()
        if keep:
            tell.step("Left the copy and its estate running (--keep)")
            tell.say(f"cd {dest} && infrabot estate status   # and `infrabot estate down`")
        else:
            tell.step(
                "Cleaning up: "
                + ("everything it started stopped, " if scratch.stops else "")
                + "estate down, copy removed"
            )
            estate.down()
            shutil.rmtree(dest, ignore_errors=True)


def run_demo(*, keep: bool, directory: Path | None, quiet: bool) -> int:
    with scratch_copy(directory, prefix="infrabot-demo-", keep=keep, quiet=quiet) as s:
        return _walk(s.svc, s.tell, s.estate)


def _walk(svc: Services, tell: Narrator, estate: LocalEstate) -> int:
    tell.step("infrabot estate up: nginx, dnsmasq and the container node on loopback")
    tell.say(render_status(estate.up()))
    tell.step("Bring the estate to main (the existing status-page container and site)")
    result = reconcile(svc)
    tell.say(summarize_run(result.apply or result.check))

    tell.step(f"@alice opens an issue: {SEED_REQUEST!r}")
    issue = svc.forge.create_issue(SEED_REQUEST, "and set up monitoring", "alice")
    svc.record(issue.number, "alice", "ticket.opened", "ok", {"title": SEED_REQUEST})
    started = time.monotonic()
    outcome = handle_issue(svc, issue.number)
    if outcome.pr is None:
        raise InfrabotError(f"the bot did not open a PR: {outcome.message}")
    pr = outcome.pr
    check = svc.records.check(pr)
    if check is None:
        raise InfrabotError(f"PR #{pr} has no validation or dry-run recorded")
    tell.say(f"the bot posted a plan and opened PR #{pr} in {time.monotonic() - started:.1f}s")
    tell.say(
        f"validation: {'passed' if check.validation.ok else 'FAILED'}; dry-run "
        f"{check.dry_run.status.value} on {', '.join(check.dry_run.hosts)}; "
        f"{len(check.dry_run.changed())} change(s), "
        f"{len(check.dry_run.unverified())} unverified in check mode; nginx -t "
        f"{'ok' if check.dry_run.nginx_ok else 'not ok'}"
    )
    for change in check.dry_run.changed()[:8]:
        tell.say(f"  would change {change.host}: {change.task}")

    for user in ("carol", "bob"):
        tell.step(f"@{user} comments /apply on PR #{pr}")
        conversation(svc).add_comment(pr, "/apply", user)
        tell.say(handle_comment(svc, pr, "/apply", user).message)

    tell.step(f"@bob approves PR #{pr}")
    conversation(svc).add_review(pr, "bob", "approved")

    tell.step(f"@alice merges PR #{pr}: apply, verify, evidence")
    merged = merge_pr(svc, pr, "alice")
    tell.say(merged.message)
    for c in svc.forge.comments(pr):
        if c.topic and c.topic.startswith("evidence"):
            tell.say(
                "\n".join(
                    line
                    for line in c.body.splitlines()
                    if line.startswith("| ✅") or line.startswith("| ❌")
                )
            )
    tell.step("As a user: resolve the name in dnsmasq, then ask nginx for the site")
    ok = _show_site(svc, tell)
    tell.step(f"The trajectory of issue #{issue.number}")
    tell.say(
        "\n".join(
            f"{e.step:<16} {e.outcome:<10} @{e.actor}" for e in svc.trajectory.read(issue.number)
        )
    )
    state = svc.forge.issue(issue.number).state
    tell.say(f"issue #{issue.number} is {state}")
    return 0 if merged.ok and ok and state == "closed" else 1


def _show_site(svc: Services, tell: Narrator) -> bool:
    estate = estate_of(svc.root)
    dns_host = next(h for h in estate.hosts_with_role("dns") if isinstance(h, Host))
    proxy = next(h for h in estate.hosts_with_role("proxy") if isinstance(h, Host))
    if not dns_host.ports.dns or not proxy.ports.http:
        raise InfrabotError("the seed estate's dns and proxy hosts need ports.dns and ports.http")
    name = "api-scanner.example.com"
    addresses = resolve(name, dns_host.ports.dns)
    tell.say(f"dig @127.0.0.1 -p {dns_host.ports.dns} {name}  →  {', '.join(addresses)}")
    if not addresses:
        return False
    status, body = http_get(addresses[0], proxy.ports.http, name)
    tell.say(f"curl -H 'Host: {name}' http://{addresses[0]}:{proxy.ports.http}/  →  HTTP {status}")
    tell.say(" ".join(body.split())[:200])
    return status == 200 and "api-scanner" in body
