"""Depth ``pr``: every case through the real pipeline, up to a validated, dry-run PR.

Theory of operation: a *lane* is a scratch copy of the repository (``bot.demo.make_copy``:
its own git repo, local forge, free ports and its own container subnet) whose local estate
is brought up and reconciled to main once.  Each case is then an issue opened on the lane's
forge and handled by ``handle_issue`` exactly as ``infrabot issue open`` does: plan, branch,
PR, and the PR's check (validation with the base's rules, ``ansible-playbook --check
--diff`` on the hosts it touches, ``nginx -t``/``dnsmasq --test`` of what it renders).
Nothing is merged, so main, and the estate with it, stay at the seed for every case; the
validation cache and the running estate are shared by the lane's cases.  Because the estate
is known to be at main, a PR's dry-run is not contrasted with a second run of the base.

The judge reads what a person would: the outcome (a question, a failure, a PR), the
check recorded for the PR, and the PR's diff read back from git, not the engine's draft.
Lanes run in threads (the work is mostly ansible-playbook subprocesses); each has its own
``Services``, so nothing but the engine is shared, and engines keep no state per ticket.
"""

from __future__ import annotations

import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from bot.demo import SEED_NET, make_copy
from bot.engines.base import Engine, EngineContext
from bot.errors import InfrabotError
from bot.estate import read_documents
from bot.evals.corpus import Case
from bot.evals.draft import usages
from bot.evals.judge import Observed
from bot.evals.report import CaseResult, case_result
from bot.flow.apply import reconcile
from bot.flow.services import Services
from bot.flow.tickets import IssueOutcome, handle_issue
from bot.flow.trees import estate_of, snapshot
from bot.forge.base import BOT_LOGIN
from bot.localestate import LocalEstate, netns_available
from bot.model import (
    ChangeAction,
    ChangeSet,
    Clarification,
    Plan,
    ResourceChange,
    RunStatus,
    Stopped,
    Ticket,
)
from bot.wiring import open_services

Drafted = Plan | ChangeSet | Clarification | Stopped
NO_ESTATE = "no local estate"


class Recorded:
    """The engine as the evaluation drives it: every call passes through, and what the
    roles returned is kept for the judge (the plan's refusals, the question, the usage)."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.name = engine, engine.name
        self.returned: list[Drafted] = []

    def architect(self, ticket: Ticket, ctx: EngineContext) -> Plan | Clarification | Stopped:
        result = self.engine.architect(ticket, ctx)
        self.returned.append(result)
        return result

    def implement(
        self, ticket: Ticket, plan: Plan, ctx: EngineContext
    ) -> ChangeSet | Clarification | Stopped:
        result = self.engine.implement(ticket, plan, ctx)
        self.returned.append(result)
        return result


@dataclass(frozen=True)
class Lane:
    svc: Services
    recorded: Recorded
    net: str
    """The copy's container subnet prefix (the seed's ``10.77.0.`` moved elsewhere)."""
    estate: str
    """What the dry-runs run against."""


def run_prs(
    engine: Engine,
    cases: list[Case],
    root: Path,
    *,
    lanes: int,
    estate: bool,
    progress: Callable[[str], None],
) -> tuple[list[CaseResult], str, int]:
    """The results in the cases' order, what the dry-runs ran against, and how many lanes
    started."""
    todo: queue.SimpleQueue[tuple[int, Case]] = queue.SimpleQueue()
    for item in enumerate(cases):
        todo.put(item)
    results: dict[int, CaseResult] = {}
    notes: list[str] = []
    """What each lane that started ran its dry-runs against."""
    stop, gate = threading.Event(), threading.Lock()
    count = max(1, min(lanes, len(cases)))

    def work(number: int, scratch: Path) -> None:
        dest = scratch / f"lane-{number + 1}"
        starting = "a scratch copy and its estate" if estate else "a scratch copy"
        progress(f"lane {number + 1}: starting {starting} in {dest}")
        with lane(engine, root, dest, estate=estate, gate=gate, wanted=todo.qsize) as it:
            if it is None:
                return  # the other lanes took every case while this one waited to start
            notes.append(it.estate)
            progress(f"lane {number + 1}: {it.estate}")
            while not stop.is_set():
                try:
                    index, case = todo.get_nowait()
                except queue.Empty:
                    return
                results[index] = run_case(it, case)
                done = results[index]
                verdict = "passed" if done.ok else f"FAILED: {done.why}"
                progress(f"[{len(results)}/{len(cases)}] {case.id}: {verdict} ({done.seconds}s)")

    with (
        tempfile.TemporaryDirectory(prefix="infrabot-eval-") as tmp,
        ThreadPoolExecutor(count, thread_name_prefix="eval-lane") as pool,
    ):
        futures = [pool.submit(work, n, Path(tmp)) for n in range(count)]
        try:
            for future in futures:
                future.result()
        except BaseException:
            stop.set()  # the lanes finish the case in hand, then tear down their estates
            raise
    return [results[i] for i in range(len(cases))], "; ".join(sorted(set(notes))), len(notes)


@contextmanager
def lane(
    engine: Engine,
    root: Path,
    dest: Path,
    *,
    estate: bool,
    gate: threading.Lock,
    wanted: Callable[[], int],
) -> Iterator[Lane | None]:
    """A scratch copy with its estate up (when it can run here); always torn down.  None
    when, by the time it could start, ``wanted()`` says no case is left for it."""
    recorded = Recorded(engine)
    local: LocalEstate | None = None
    try:
        # One copy at a time, each made after the previous one's estate routes its subnet,
        # so two lanes never pick the same subnet.
        with gate:
            if not wanted():
                yield None
                return
            dest.mkdir(parents=True)
            make_copy(root, dest)
            svc = replace(open_services(dest, lambda _m: None), engine=recorded)
            note = f"{NO_ESTATE} (asked for none)"
            if estate:
                hosts = [h for h in estate_of(dest).hosts() if h.connection == "local"]
                local = LocalEstate(svc.paths.estate_runtime, hosts)
                note = _bring_up(svc, local)
        yield Lane(svc=svc, recorded=recorded, net=_subnet(dest), estate=note)
    finally:
        if local is not None:
            local.down()
        shutil.rmtree(dest, ignore_errors=True)


def _bring_up(svc: Services, local: LocalEstate) -> str:
    """Start the lane's estate and bring it to main.  Where this machine cannot make
    network namespaces the dry-runs run without it (each is then contrasted with a run of
    main, twice the work); any other failure to start is an error, not a quiet fallback."""
    why_not = netns_available()
    if why_not:
        return f"{NO_ESTATE}: {why_not}; each dry-run is contrasted with a dry-run of main"
    local.up()
    result = reconcile(svc, BOT_LOGIN, ticket=False)
    if not result.ok:
        run = result.apply or result.check
        failed = run.failed()
        why = run.error or (f"{failed[0].host}: {failed[0].message}" if failed else "")
        if run.status is RunStatus.SUCCESSFUL:
            why = "it applied, but what it applied did not verify"
        raise InfrabotError(
            f"the eval's local estate could not be brought to main ({run.status.value}"
            f"{': ' + why if why else ''}); or run with --no-estate"
        )
    return "dry-runs against a running local estate at main"


def _subnet(tree: Path) -> str:
    """The copy's container subnet, which ``make_copy`` moved away from the seed's."""
    for container in estate_of(tree).containers():
        return str(container.ip.ip).rsplit(".", 1)[0] + "."
    return SEED_NET


def run_case(it: Lane, case: Case) -> CaseResult:
    case = case.renumbered(SEED_NET, it.net)
    svc, started = it.svc, time.monotonic()
    it.recorded.returned.clear()
    outcome: IssueOutcome | None = None
    try:
        issue = svc.forge.create_issue(case.request, case.body, case.author)
        svc.record(issue.number, case.author, "ticket.opened", "ok", {"title": case.request})
        outcome = handle_issue(svc, issue.number)
        seen = observed(svc, outcome, tuple(it.recorded.returned))
    except InfrabotError as exc:
        seen = Observed(got="failed", said=f"error: {exc}", usage=usages(*it.recorded.returned))
    pr = outcome.pr if outcome is not None else None
    return case_result(case, seen, time.monotonic() - started, pr)


def observed(svc: Services, outcome: IssueOutcome, returned: tuple[Drafted, ...]) -> Observed:
    usage = usages(*returned)
    if outcome.kind == "asked":
        question = next((r for r in reversed(returned) if isinstance(r, Clarification)), None)
        said = " ".join((*question.questions, question.reason)) if question else outcome.message
        return Observed(got="question", said=said, usage=usage)
    if outcome.pr is None:
        stopped = any(isinstance(r, Stopped) for r in returned)
        return Observed(got="stopped" if stopped else "failed", said=outcome.message, usage=usage)
    pr = svc.forge.pull_request(outcome.pr)
    check = svc.records.check(outcome.pr)
    plan = next((r for r in returned if isinstance(r, Plan)), None)
    return Observed(
        got="pr",
        declined=plan.declined if plan else (),
        changes=pr_diff(svc, pr.base_sha, pr.head_sha),
        validation=check.validation if check else None,
        dry_run=check.dry_run if check else None,
        usage=usage,
    )


def pr_diff(svc: Services, base: str, head: str) -> tuple[ResourceChange, ...]:
    """What the PR changes, document by document, read from git (data: the document as
    the head writes it; for a removal, as the base did)."""
    with snapshot(svc, base) as before_tree, snapshot(svc, head) as after_tree:
        before, after = documents(before_tree), documents(after_tree)
    changes = []
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        action = (
            ChangeAction.CREATE
            if old is None
            else ChangeAction.DELETE
            if new is None
            else ChangeAction.UPDATE
        )
        data = new if new is not None else old
        changes.append(ResourceChange(action=action, kind=key[0], name=key[1], data=data or {}))
    return tuple(changes)


def documents(tree: Path) -> dict[tuple[str, str], dict[str, Any]]:
    docs, _ = read_documents(tree)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in docs:
        data = _plain(doc.data)
        if isinstance(data, dict):
            found.setdefault((str(data.get("kind")), str(data.get("name"))), data)
    return found


def _plain(data: object) -> object:
    """ruamel's commented containers and scalar strings as plain Python values."""
    if isinstance(data, dict):
        return {str(k): _plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data
