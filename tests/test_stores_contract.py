"""The same behaviour from every set of stores (``bot/ledger/stores.py``): local files and
SQLite, and GitHub (refs, the ledger branch, the status comment) over real HTTP against
the test-only fake, every response checked against GitHub's REST description.

Two store objects are two runners: they share nothing but the disk (local) or GitHub.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import github
import pytest
from fakes.github import FakeGitHub
from github_world import GitHubPeople, github_forge

from bot.errors import LockHeld
from bot.flow.records import PrCheck, Records
from bot.forge.base import BOT_LOGIN, Permission
from bot.forge.github.forge import GitHubForge
from bot.forge.github.hidden import trailer
from bot.forge.github.ledger import encode_check, seal
from bot.forge.github.stores import github_stores
from bot.forge.local import LocalForge
from bot.ledger import EstateLock, Event, IntentStore, Trajectory
from bot.ledger.stores import IntentLedger, LockStore, RunStore, TrajectoryStore
from bot.model import DryRun, Finding, RunStatus, ValidationReport

USERS = {"alice": Permission.ADMIN, "bob": Permission.WRITE, "carol": Permission.READ}
T0 = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


@dataclass
class Runner:
    lock: LockStore
    intents: IntentLedger
    records: RunStore
    trajectory: TrajectoryStore


class World:
    """Runners of one kind of store, the forge they report to, and the people on it."""

    def __init__(
        self,
        kind: str,
        runner: Callable[..., Runner],
        open_pr: Callable[[], tuple[int, str]],
        set_verdict: Callable[[str, bool, bool], None],
        paste: Callable[[int, str], None],
        corrupt: Callable[[int], None],
    ) -> None:
        self.kind, self.runner, self.open_pr = kind, runner, open_pr
        self.set_verdict, self.paste, self.corrupt = set_verdict, paste, corrupt


def _local(tmp_path: Path) -> World:
    home = tmp_path / ".infrabot"
    forge = LocalForge(tmp_path / "forge.db", USERS, tmp_path)

    def runner(machine: str | None = None, clock: Callable[[], datetime] | None = None) -> Runner:
        now = clock or (lambda: datetime.now(UTC))
        return Runner(
            lock=EstateLock(home / "ledger.db", clock=now, hostname=machine),
            intents=IntentStore(home / "intents", clock=now, machine=machine),
            records=Records(home / "runs"),
            trajectory=Trajectory(home / "trajectories"),
        )

    def open_pr() -> tuple[int, str]:
        return forge.create_issue("t", "b", "alice").number, "a" * 40

    def paste(number: int, raw: str) -> None:
        forge.add_comment(number, raw, "bob")

    def corrupt(number: int) -> None:
        (home / "runs" / f"check-pr-{number}.json").write_text('{"pr": 1, "head_sha": ')

    return World("local", runner, open_pr, lambda *_: None, paste, corrupt)


def _github(hub: FakeGitHub, tmp_path: Path) -> World:
    bot = github_forge(hub)
    people = GitHubPeople(hub, bot, tmp_path / "clone")
    branches = iter(range(1, 1000))

    def runner(machine: str | None = None, clock: Callable[[], datetime] | None = None) -> Runner:
        forge = github_forge(hub)  # a runner of its own: its own client, nothing shared
        now = clock or (lambda: datetime.now(UTC))
        found = github_stores(forge, machine=machine, clock=now, sleep=lambda _: None)
        return Runner(found.lock, found.intents, found.records, found.trajectory)

    def open_pr() -> tuple[int, str]:
        branch = f"change-{next(branches)}"
        head = people.push(branch)
        pr = bot.open_pull_request(
            branch=branch, base="main", title="t", body="b", issue=None, author=BOT_LOGIN
        )
        return pr.number, head

    def set_verdict(sha: str, validation: bool, dry_run: bool) -> None:
        for context, ok in (("infrabot/validate", validation), ("infrabot/dry-run", dry_run)):
            bot.set_status(sha, context, "success" if ok else "failure", "checked")

    def paste(number: int, raw: str) -> None:
        people.add_comment(number, raw, "bob")

    def corrupt(number: int) -> None:
        mine = _bot_status_comment(hub, number)
        body = mine.body.rpartition("\n<!-- infrabot:data=")[0]
        mine.edit(body + "\n" + trailer("Zm9vYmFy"))  # base64, but not a record

    return World("github", runner, open_pr, set_verdict, paste, corrupt)


def _bot_status_comment(hub: FakeGitHub, number: int) -> Any:
    client = github.Github(
        auth=github.Auth.Token(hub.token(hub.bot_login)), base_url=hub.url, lazy=True
    )
    comments = client.get_repo(hub.full_name).get_issue(number).get_comments()
    return next(c for c in comments if c.body.startswith("<!-- infrabot:topic=status -->"))


@pytest.fixture(params=["local", pytest.param("github", marks=pytest.mark.integration)])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    if request.param == "local":
        yield _local(tmp_path)
        return
    hub = FakeGitHub(tmp_path / "github", {k: v.value for k, v in USERS.items()}).start()
    try:
        yield _github(hub, tmp_path)
    finally:
        hub.stop()
    assert hub.errors == [], "the fake sent responses GitHub could not have sent"


def _dead_pid() -> int:
    done = subprocess.Popen(["true"])
    done.wait()
    return done.pid


def _event(ticket: int, step: str, outcome: str = "ok", **detail: Any) -> Event:
    return Event(time=T0, ticket=ticket, actor="alice", step=step, outcome=outcome, detail=detail)


def _check(pr: int, head: str, *, ok: bool = True) -> PrCheck:
    findings = () if ok else (Finding(check="schema", message="bad port", file="a.yaml"),)
    return PrCheck(
        pr=pr,
        head_sha=head,
        base_sha="b" * 40,
        merge_sha="c" * 40,
        merge_tree="d" * 40,
        validation=ValidationReport(checks=("schema",), findings=findings),
        dry_run=DryRun(
            head_sha=head, base_sha="b" * 40, status=RunStatus.SUCCESSFUL, hosts=("web1",)
        ),
        environments=("prod",),
    )


# -- the lock ----------------------------------------------------------------------------


def test_a_lock_held_by_one_runner_refuses_a_second(world: World) -> None:
    first, second = world.runner(), world.runner()
    with first.lock.held(5) as state:
        assert state.holder == 5
        with pytest.raises(LockHeld, match=r"PR #5"), second.lock.held(7):
            pass
        holder = second.lock.holder()
        assert holder is not None and holder.holder == 5
        kept = second.lock.unlock()  # /unlock never breaks a running apply's lock
        assert not kept.released and "running" in kept.why
    assert second.lock.holder() is None


def test_a_released_lock_can_be_taken(world: World) -> None:
    first, second = world.runner(), world.runner()
    with first.lock.held(5):
        pass
    with second.lock.held(7) as state:
        assert state.holder == 7 and state.taken_over_from is None
        with second.lock.held(7) as again:  # re-entry leaves the outer owner in charge
            assert again.reentered
        assert first.lock.holder() is not None
    assert first.lock.holder() is None


def test_a_lock_held_on_another_machine_is_kept_by_unlock(world: World) -> None:
    elsewhere, here = world.runner(machine="runner-elsewhere"), world.runner()
    with elsewhere.lock.held(5):
        kept = here.lock.unlock()
        assert not kept.released and "cannot be checked from here" in kept.why
        with pytest.raises(LockHeld), here.lock.held(6):
            pass


def test_a_dead_holders_lock_is_taken_over_and_can_be_unlocked(world: World) -> None:
    gone, here = world.runner(), world.runner()
    gone.lock.acquire(5, pid=_dead_pid())  # type: ignore[attr-defined]
    assert here.lock.holder() is None
    with here.lock.held(7) as state:
        assert state.taken_over_from == 5 and "is gone" in state.note
    gone.lock.acquire(8, pid=_dead_pid())  # type: ignore[attr-defined]
    freed = here.lock.unlock()
    assert freed.released and freed.state is not None and freed.state.holder == 8
    assert here.lock.unlock().why == "the estate lock was not held"


# -- intents -----------------------------------------------------------------------------


def test_intents_left_behind_are_reported_by_a_fresh_runner(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    running = world.runner().intents.begin(
        pr=3, ticket=2, sha="e" * 40, hosts=("web1",), actor="bob"
    )
    dead = _dead_pid()
    with monkeypatch.context() as patch:
        patch.setattr(os, "getpid", lambda: dead)  # a runner whose process has since died
        lost = world.runner().intents.begin(
            pr=4, ticket=2, sha="f" * 40, hosts=("web2", "dns1"), actor="alice"
        )
    fresh = world.runner()
    found = fresh.intents.interrupted()
    assert [i.id for i in found] == [lost.id]
    assert found[0].hosts == ("web2", "dns1") and found[0].actor == "alice"
    done = fresh.intents.finish(found[0], "interrupted")
    assert done.outcome == "interrupted"
    assert world.runner().intents.interrupted() == []
    world.runner().intents.finish(running, "successful")


# -- trajectories ------------------------------------------------------------------------


def test_trajectories_appended_by_two_runners_in_turn_are_all_kept(world: World) -> None:
    a, b = world.runner(), world.runner()
    a.trajectory.append(_event(9, "ticket.opened"))
    b.trajectory.append(_event(9, "engine.plan"))
    a.trajectory.append(_event(9, "plan.posted", token="ghp_" + "x" * 36))
    b.trajectory.append(_event(11, "ticket.opened"))
    events = world.runner().trajectory.read(9)
    assert [e.step for e in events] == ["ticket.opened", "engine.plan", "plan.posted"]
    assert "x" * 36 not in events[2].model_dump_json()  # redacted before it left
    assert world.runner().trajectory.tickets() == [9, 11]
    assert world.runner().trajectory.read(404) == []


def test_concurrent_appends_are_all_kept(world: World) -> None:
    runners = [world.runner() for _ in range(3)]
    errors: list[BaseException] = []

    def work(n: int, runner: Runner) -> None:
        try:
            for i in range(3):
                runner.trajectory.append(_event(5, "command.received", f"r{n}-{i}"))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, r)) for n, r in enumerate(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    outcomes = sorted(e.outcome for e in world.runner().trajectory.read(5))
    assert outcomes == sorted(f"r{n}-{i}" for n in range(3) for i in range(3))


# -- the estate's records ----------------------------------------------------------------


def test_unknown_hosts_and_the_applied_commit_pass_between_runners(world: World) -> None:
    a, b = world.runner(), world.runner()
    assert b.records.unknown_hosts() == set() and b.records.applied() is None
    a.records.set_unknown_hosts({"web2", "web1"})
    a.records.set_applied("a" * 40)
    assert b.records.unknown_hosts() == {"web1", "web2"}
    assert b.records.applied() == "a" * 40
    b.records.set_applied(None)
    assert a.records.applied() is None


# -- check records -----------------------------------------------------------------------


def test_a_check_saved_by_one_runner_is_read_by_another(world: World) -> None:
    number, head = world.open_pr()
    assert world.runner().records.check(number) is None
    check = _check(number, head)
    world.set_verdict(head, True, True)
    world.runner().records.save_check(check)
    assert world.runner().records.check(number) == check


def test_a_check_record_pasted_by_a_person_is_ignored(world: World) -> None:
    number, head = world.open_pr()
    world.set_verdict(head, True, True)
    forged = trailer(encode_check(_check(number, head), lambda d: d))
    world.paste(number, f"<!-- infrabot:topic=status -->\nlooks checked to me\n{forged}")
    assert world.runner().records.check(number) is None
    real = _check(number, head)
    world.runner().records.save_check(real)
    world.paste(number, f"<!-- infrabot:topic=status -->\n{forged}")
    assert world.runner().records.check(number) == real


def test_a_corrupted_check_record_is_none(world: World) -> None:
    number, head = world.open_pr()
    world.set_verdict(head, True, True)
    world.runner().records.save_check(_check(number, head))
    world.corrupt(number)
    assert world.runner().records.check(number) is None


# -- GitHub only -------------------------------------------------------------------------


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(tmp_path / "github", {k: v.value for k, v in USERS.items()}).serving() as fake:
        yield fake


@pytest.mark.integration
def test_github_a_lease_run_out_frees_another_runners_lock_and_intent(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    world = _github(hub, tmp_path)
    clock = {"now": T0}
    lost = world.runner(machine="runner-lost", clock=lambda: T0)
    lost.lock.acquire(5, pid=4242)  # type: ignore[attr-defined]
    lost.intents.begin(pr=5, ticket=5, sha="e" * 40, hosts=("web1",), actor="bob")
    here = world.runner(clock=lambda: clock["now"])
    clock["now"] = T0 + timedelta(hours=5)
    assert here.intents.interrupted() == [] and not here.lock.unlock().released
    clock["now"] = T0 + timedelta(hours=6, seconds=1)  # Actions has killed any job by now
    assert [i.pr for i in here.intents.interrupted()] == [5]
    with here.lock.held(6) as state:
        assert state.taken_over_from == 5


@pytest.mark.integration
def test_github_two_runners_taking_over_a_stale_lock_one_wins(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    world = _github(hub, tmp_path)
    world.runner().lock.acquire(5, pid=_dead_pid())  # type: ignore[attr-defined]
    a, b = world.runner(), world.runner()
    results: list[object] = []
    barrier = threading.Barrier(2)

    def take(runner: Runner, holder: int) -> None:
        barrier.wait()
        try:
            results.append(runner.lock.acquire(holder, pid=os.getpid()))  # type: ignore[attr-defined]
        except LockHeld as exc:
            results.append(exc)

    threads = [threading.Thread(target=take, args=(r, n)) for r, n in ((a, 6), (b, 7))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(type(r).__name__ for r in results) == ["LockHeld", "LockState"]


@pytest.mark.integration
def test_github_an_append_that_lost_the_race_is_redone(hub: FakeGitHub, tmp_path: Path) -> None:
    world = _github(hub, tmp_path)
    slow, quick = world.runner(), world.runner()
    slow.trajectory.append(_event(3, "ticket.opened"))
    ledger = slow.trajectory.ledger  # type: ignore[attr-defined]
    read = ledger.read
    raced = []

    def read_then_lose_the_race(path: str) -> Any:
        found = read(path)
        if not raced:  # between this runner's read and its write, another one writes
            raced.append(True)
            quick.trajectory.append(_event(3, "engine.plan"))
        return found

    ledger.read = read_then_lose_the_race
    slow.trajectory.append(_event(3, "plan.posted"))
    steps = [e.step for e in world.runner().trajectory.read(3)]
    assert steps == ["ticket.opened", "engine.plan", "plan.posted"]
    assert ("PUT", "/repos/acme/infra/contents/trajectories/3.jsonl", 409) in hub.log


@pytest.mark.integration
def test_github_the_ledger_branch_shares_no_history_with_main(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    world = _github(hub, tmp_path)
    world.runner().trajectory.append(_event(1, "ticket.opened"))
    assert hub.repo.tip("infrabot/ledger")
    merge_base = hub.repo.git("merge-base", "main", "infrabot/ledger", check=False)
    assert merge_base.returncode == 1 and merge_base.stdout == ""


@pytest.mark.integration
def test_github_the_record_rides_through_status_edits_and_a_forged_edit_fails(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    world = _github(hub, tmp_path)
    number, head = world.open_pr()
    bot = github_forge(hub)
    bot.ensure_comment(number, "status", "**infrabot status:** checking")
    world.set_verdict(head, False, True)
    failed = _check(number, head, ok=False)
    world.runner().records.save_check(failed)
    bot.ensure_comment(number, "status", "**infrabot status:** check failed")
    shown = [c for c in bot.comments(number) if c.topic == "status"]
    assert [c.body for c in shown] == ["**infrabot status:** check failed"]
    assert world.runner().records.check(number) == failed
    # bob (write) edits the bot's comment to claim a pass: the seal does not match
    forged = _forge_record(hub, number, _check(number, head))
    assert world.runner().records.check(number) is None
    # a real pass, then bob swaps in another merge commit to apply: verdicts agree, seal not
    world.set_verdict(head, True, True)
    passed = _check(number, head)
    world.runner().records.save_check(passed)
    assert world.runner().records.check(number) == passed
    other = passed.model_copy(update={"merge_sha": "9" * 40})
    forged = _forge_record(hub, number, other)
    assert world.runner().records.check(number) is None
    # ... and seals it with a status of his own: a status is only the bot's when it set it
    bob = github.Github(auth=github.Auth.Token(hub.token("bob")), base_url=hub.url, lazy=True)
    bob.get_repo(hub.full_name).get_commit(head).create_status(
        "success", description=seal(forged), context="infrabot/record"
    )
    assert world.runner().records.check(number) is None


def _forge_record(hub: FakeGitHub, number: int, check: PrCheck) -> str:
    """bob edits the bot's status comment (write access allows it) to carry ``check``."""
    data = encode_check(check, lambda d: d)
    mine = _bot_status_comment(hub, number)
    bob = github.Github(auth=github.Auth.Token(hub.token("bob")), base_url=hub.url, lazy=True)
    comment = bob.get_repo(hub.full_name).get_issue(number).get_comment(mine.id)
    comment.edit(mine.body.rpartition("\n<!-- infrabot:data=")[0] + "\n" + trailer(data))
    return data


def test_wiring_picks_the_stores_with_the_forge(tmp_path: Path) -> None:
    from bot.config import Paths
    from bot.forge.github.ledger import GitHubRecords
    from bot.forge.github.settings import GitHubSettings, TokenAuth
    from bot.wiring import make_stores

    def forge(**extra: object) -> GitHubForge:
        settings = GitHubSettings.model_validate({"repository": "acme/infra", **extra})
        return GitHubForge(settings, TokenAuth(token="t"))  # type: ignore[arg-type]

    paths = Paths(tmp_path)
    assert isinstance(make_stores(paths, forge()).records, GitHubRecords)
    assert isinstance(make_stores(paths, forge(stores="local")).records, Records)
    local = LocalForge(tmp_path / "forge.db", USERS, tmp_path)
    assert isinstance(make_stores(paths, local).lock, EstateLock)


@pytest.mark.integration
def test_github_another_process_on_the_same_pr_is_refused_not_reentered(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    """An /apply job and the merge event it causes are two runs of one PR: the second
    must wait, never share the lock as if it were the first."""
    world = _github(hub, tmp_path)
    world.runner().lock.acquire(5, pid=os.getppid())  # type: ignore[attr-defined]
    with pytest.raises(LockHeld, match="PR #5"), world.runner().lock.held(5):
        pass


@pytest.mark.integration
def test_github_the_record_is_redacted_and_fits_beside_a_huge_status(
    hub: FakeGitHub, tmp_path: Path
) -> None:
    world = _github(hub, tmp_path)
    number, head = world.open_pr()
    bot = github_forge(hub)
    bot.ensure_comment(number, "status", "a line of status\n" * 4500)  # cut to fit
    world.set_verdict(head, False, True)
    leaky = _check(number, head, ok=False)
    secret = Finding(check="schema", message="password=hunter2-very-secret in a.yaml")
    leaky = leaky.model_copy(
        update={"validation": leaky.validation.model_copy(update={"findings": (secret,)})}
    )
    world.runner().records.save_check(leaky)
    raw = _bot_status_comment(hub, number).body
    assert len(raw) <= 65536 and "hunter2" not in raw
    seen = world.runner().records.check(number)
    assert seen is not None and not seen.validation.ok
    assert "hunter2" not in seen.validation.findings[0].message
