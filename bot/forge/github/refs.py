"""The estate lock and apply intents as git refs on GitHub (``docs/adr/0013``).

Theory of operation
-------------------
GitHub's refs API is the one atomic primitive a workflow run has: ``POST /git/refs``
fails (422) when the ref exists, ``PATCH`` without ``force`` moves a ref only forward,
``DELETE`` removes it.  The state is a commit's message, so it needs no file:

- *Lock*: ``refs/infrabot/lock`` points at a commit whose message names the holder (PR,
  process, machine, since).  Taking it is creating the ref; two runners racing get one
  201 and one 422.  Releasing it is deleting the ref.  A lock whose holder is gone is
  taken over by moving the ref *forward* to a commit whose parent is the stale one: of
  two runners taking over at once only one can fast-forward, the other is refused.
- *Intents*: ``refs/infrabot/intents/<id>`` points at a commit whose message is the
  intent, created before the apply runs and deleted when it ends (the outcome goes in
  the trajectory).  A ref left behind is an apply that never ended.

Whether a holder is still running: on the machine that reads it, its process (pid and
start time, as the local stores judge it); on another machine (another Actions runner)
it cannot be asked, so it holds a *lease*: running until ``since + lease`` (by default
Actions' longest job, 6 hours), gone after.  ``/unlock`` never breaks a live holder's
lock, as locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from github import GithubException, InputGitTreeElement
from github.GitRef import GitRef
from github.Repository import Repository
from pydantic import BaseModel, ConfigDict, ValidationError

from bot.errors import InfrabotError, LockHeld
from bot.execute.redact import redact
from bot.forge.github.forge import _errors
from bot.ledger.intents import ApplyIntent
from bot.ledger.lock import LOCK_NAME, LockState, Unlock, process_alive, start_time

LOCK_REF = "refs/infrabot/lock"
INTENTS = "refs/infrabot/intents/"
_README = (
    "infrabot state (docs/adr/0013): the commits of refs/infrabot/* and of the ledger "
    "branch carry the bot's lock, apply intents and trajectories. Never merge them.\n"
)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Refs:
    """The git data calls the stores make, each one round trip, errors made clear."""

    def __init__(self, repo: Repository) -> None:
        self.repo = repo
        self._tree: Any = None

    def commit(self, message: str, parents: tuple[str, ...] = ()) -> str:
        """A new commit (tree: one README saying what it is) carrying ``message``."""
        with _errors("writing a commit of the bot's state"):
            if self._tree is None:
                readme = InputGitTreeElement("README.md", "100644", "blob", content=_README)
                self._tree = self.repo.create_git_tree([readme])
            above = [self.repo.get_git_commit(p) for p in parents]
            return self.repo.create_git_commit(redact(message), self._tree, above).sha

    def create(self, name: str, sha: str) -> bool:
        """Create ``name`` at ``sha``; False when it already exists."""
        with _errors(f"creating {name}"):
            try:
                self.repo.create_git_ref(name, sha)
            except GithubException as exc:
                if exc.status == 422:
                    return False
                raise
        return True

    def read(self, name: str) -> tuple[str, str] | None:
        """(commit sha, message) that ``name`` points at, or None when there is none."""
        with _errors(f"reading {name}"):
            try:
                sha = self.repo.get_git_ref(name.removeprefix("refs/")).object.sha
                return sha, self.repo.get_git_commit(sha).message
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise

    def _ref(self, name: str) -> GitRef | None:
        """The ref, read (so its ``url`` is GitHub's ``/git/refs/…``, which PATCH and
        DELETE need, not the ``/git/ref/…`` it was asked by), or None."""
        try:
            ref = self.repo.get_git_ref(name.removeprefix("refs/"))
            _ = ref.object  # lazy: fetch now
            return ref
        except GithubException as exc:
            if exc.status == 404:
                return None
            raise

    def advance(self, name: str, sha: str) -> bool:
        """Move ``name`` forward to ``sha``; False when it is not a fast-forward (moved)."""
        with _errors(f"moving {name}"):
            ref = self._ref(name)
            try:
                if ref is None:
                    return False
                ref.edit(sha, force=False)
            except GithubException as exc:
                if exc.status in (404, 409, 422):
                    return False
                raise
        return True

    def delete(self, name: str) -> bool:
        """Delete ``name``; False when it was already gone."""
        with _errors(f"deleting {name}"):
            ref = self._ref(name)
            try:
                if ref is None:
                    return False
                ref.delete()
            except GithubException as exc:
                if exc.status in (404, 422):
                    return False
                raise
        return True

    def matching(self, prefix: str) -> list[tuple[str, str]]:
        """(name, commit sha) of every ref under ``prefix``."""
        with _errors(f"listing {prefix}"):
            found = self.repo.get_git_matching_refs(prefix.removeprefix("refs/"))
            return [(r.ref, r.object.sha) for r in found if r.ref.startswith(prefix)]

    def message(self, sha: str) -> str:
        with _errors(f"reading commit {sha[:7]}"):
            return self.repo.get_git_commit(sha).message


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    holder: int
    pid: int | None
    pid_start: str | None = None
    host: str
    since: datetime


def _body(message: str) -> str:
    """The JSON after the commit message's title line."""
    return message.partition("\n\n")[2].strip()


class Liveness:
    """Whether a process recorded by some runner still runs (see the module docstring)."""

    def __init__(self, machine: str, lease: timedelta, clock: Callable[[], datetime]) -> None:
        self.machine, self.lease, self.clock = machine, lease, clock

    def judge(self, pid: int | None, start: str | None, host: str, since: datetime) -> str | None:
        """Why the holder counts as running, or None when it is gone."""
        if pid is None:
            return "it was taken without a process: only a release or /unlock ends it"
        if host == self.machine:
            alive = process_alive(pid, start)
            return f"it belongs to a process that is running (process {pid})" if alive else None
        until = since + self.lease
        if self.clock() < until:
            return (
                f"it is held by process {pid} on {host}, which cannot be checked from here; "
                f"its lease runs until {until:%Y-%m-%d %H:%M:%S %Z}"
            )
        return None


class GitHubLock:
    """``LockStore`` on ``refs/infrabot/lock``."""

    def __init__(self, refs: Refs, liveness: Liveness) -> None:
        self.refs, self.live = refs, liveness

    def _message(self, record: _Record) -> str:
        return f"infrabot estate lock: PR #{record.holder}\n\n{record.model_dump_json()}\n"

    def _read(self) -> tuple[str, _Record | None] | None:
        found = self.refs.read(LOCK_REF)
        if found is None:
            return None
        try:
            return found[0], _Record.model_validate_json(_body(found[1]))
        except ValidationError:
            return found[0], None  # a ref someone else made: held, by nobody we know

    @staticmethod
    def _state(record: _Record, **extra: Any) -> LockState:
        return LockState(
            holder=record.holder,
            pid=record.pid,
            host=record.host,
            since=record.since,
            **extra,
        )

    def acquire(self, holder: int, *, pid: int | None = None) -> LockState:
        mine = _Record(
            holder=holder,
            pid=pid,
            pid_start=start_time(pid),
            host=self.live.machine,
            since=self.live.clock(),
        )
        for _ in range(4):
            if self.refs.create(LOCK_REF, self.refs.commit(self._message(mine))):
                return self._state(mine)
            found = self._read()
            if found is None:
                continue  # released between the two calls: try again
            sha, record = found
            if record is None:
                raise LockHeld(
                    f"the estate lock ({LOCK_REF}) names no holder the bot wrote: "
                    "comment /unlock to release it"
                )
            why = self.live.judge(record.pid, record.pid_start, record.host, record.since)
            if why is not None:
                if (record.holder, record.host, record.pid) == (holder, mine.host, pid):
                    # the same process asking again; another runner working on the same
                    # PR is refused like anyone else (two jobs of one PR can run at once)
                    return self._state(record, reentered=True)
                raise LockHeld(f"the estate lock is held by {self._state(record).describe()}")
            takeover = self.refs.commit(self._message(mine), parents=(sha,))
            if self.refs.advance(LOCK_REF, takeover):
                note = (
                    f"took over the estate lock from PR #{record.holder}: its process "
                    f"{record.pid} on {record.host} is gone"
                )
                return self._state(mine, taken_over_from=record.holder, note=note)
        raise LockHeld("the estate lock changed hands while it was being taken: try again")

    def release(self, holder: int) -> None:
        found = self._read()
        if found is None or found[1] is None:
            return
        record = found[1]
        if record.holder == holder and record.host == self.live.machine:
            self.refs.delete(LOCK_REF)

    def holder(self) -> LockState | None:
        found = self._read()
        if found is None:
            return None
        record = found[1]
        if record is None:
            epoch = datetime.fromtimestamp(0, UTC)
            return LockState(holder=0, pid=None, host="unknown", since=epoch, note="unreadable")
        why = self.live.judge(record.pid, record.pid_start, record.host, record.since)
        return self._state(record) if why is not None else None

    def unlock(self) -> Unlock:
        found = self._read()
        if found is None:
            return Unlock(state=None, released=False, why="the estate lock was not held")
        record = found[1]
        if record is None:
            self.refs.delete(LOCK_REF)
            return Unlock(state=None, released=True, why="it named no holder the bot wrote")
        state = self._state(record)
        why = self.live.judge(record.pid, record.pid_start, record.host, record.since)
        if why is not None and record.pid is not None:
            return Unlock(state=state, released=False, why=f"{why}: wait for it to finish")
        self.refs.delete(LOCK_REF)
        gone = (
            "it was held without a running process"
            if record.pid is None
            else f"its process {record.pid} on {record.host} is gone"
        )
        return Unlock(state=state, released=True, why=gone)

    @contextmanager
    def held(self, holder: int) -> Iterator[LockState]:
        state = self.acquire(holder, pid=os.getpid())
        try:
            yield state
        finally:
            if not state.reentered:
                self.release(holder)


class GitHubIntents:
    """``IntentLedger`` on ``refs/infrabot/intents/<id>``."""

    def __init__(self, refs: Refs, liveness: Liveness) -> None:
        self.refs, self.live = refs, liveness

    def begin(
        self, *, pr: int, ticket: int, sha: str, hosts: tuple[str, ...], actor: str
    ) -> ApplyIntent:
        pid, started = os.getpid(), self.live.clock()
        intent = ApplyIntent(
            id=f"{started:%Y%m%dT%H%M%S%f}-{pr}-{sha[:12]}",
            pr=pr,
            ticket=ticket,
            sha=sha,
            hosts=hosts,
            actor=actor,
            pid=pid,
            pid_start=start_time(pid),
            machine=self.live.machine,
            started=started,
        )
        title = f"infrabot apply intent: PR #{pr} at {sha[:12]}"
        commit = self.refs.commit(f"{title}\n\n{intent.model_dump_json()}\n")
        if not self.refs.create(INTENTS + intent.id, commit):
            raise InfrabotError(f"apply intent {intent.id} already exists: try again")
        return intent

    def finish(self, intent: ApplyIntent, outcome: str) -> ApplyIntent:
        self.refs.delete(INTENTS + intent.id)  # already gone: another runner closed it
        return intent.model_copy(update={"outcome": outcome, "finished": self.live.clock()})

    def open(self) -> list[ApplyIntent]:
        found = []
        for name, sha in self.refs.matching(INTENTS):
            try:
                found.append(ApplyIntent.model_validate_json(_body(self.refs.message(sha))))
            except ValidationError:
                raise InfrabotError(
                    f"unreadable apply intent {name}: delete the ref once its hosts are checked"
                ) from None
        return sorted(found, key=lambda i: i.started)

    def interrupted(self) -> list[ApplyIntent]:
        """Open intents whose process is gone: here, no such process; elsewhere, the lease
        ran out."""
        return [
            i
            for i in self.open()
            if self.live.judge(i.pid, i.pid_start, i.machine, i.started) is None
        ]


__all__ = ["INTENTS", "LOCK_NAME", "LOCK_REF", "GitHubIntents", "GitHubLock", "Liveness", "Refs"]
