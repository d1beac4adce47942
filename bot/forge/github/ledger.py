"""Trajectories, plans and the estate's records on GitHub: files on a ledger branch, and
each PR's check hidden in the bot's status comment (``docs/adr/0013``).

Theory of operation
-------------------
The ledger branch (``infrabot/ledger`` by default) is made on first use from a commit
of its own (one README), so it shares no history with the base branch and is never
merged into it.  Files on it are written through the contents API with the blob sha
read as the guard: when another runner wrote the file (or the branch) in between,
GitHub answers 409 (or 422) and the write is redone on what is there now, a bounded
number of times with a growing pause.  An append therefore never loses another
runner's line.  What is written passes the trajectory's redaction first.

A PR's check record rides in the bot's own status comment (``bot.flow.status``) as a
hidden trailer: compressed JSON in base64, slimmed (diffs, rendered files and tool
output dropped; the verdicts kept) when the whole would not fit.  Only the bot's own
comment is read: a record a person pastes into theirs is ignored.  But a person with
write access can *edit* the bot's comment, so the record is also sealed: the bot sets
an ``infrabot/record`` status on the head whose description is the record's digest,
and a status is the one thing nobody else can write in the bot's name.  The record
counts only when the bot's latest statuses on its head carry its seal and agree with
its verdicts (``infrabot/validate``, ``infrabot/dry-run``); missing, unparsable,
edited or disagreeing is None, and the flow re-checks.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import random
import time
import zlib
from collections.abc import Callable
from typing import Any

from github import GithubException, InputGitTreeElement
from github.CommitStatus import CommitStatus
from github.PaginatedList import PaginatedList
from github.Repository import Repository
from pydantic import ValidationError

from bot.errors import InfrabotError
from bot.flow.records import PrCheck
from bot.forge.github.forge import GitHubForge, _errors
from bot.forge.github.refs import _README
from bot.ledger.events import Event
from bot.ledger.trajectory import Trajectory
from bot.model import Plan

STATUS_TOPIC = "status"
"""The topic of the PR's status comment (``bot.flow.status.post_status``)."""
MAX_RECORD = 48_000
"""Characters of hidden record a status comment may carry (GitHub allows 65,536 in all)."""
MAX_INFLATED = 16 << 20
"""Bytes a hidden record may inflate to (a bigger one is not the bot's)."""
RECORD = "infrabot/record"
"""The bot's status on a head that seals the record hidden in the status comment."""
_CONTEXTS = ("infrabot/validate", "infrabot/dry-run")


class LedgerBranch:
    """Files on one branch, each write guarded by the file's blob sha and retried."""

    def __init__(
        self,
        repo: Repository,
        branch: str,
        *,
        attempts: int = 8,
        pause: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repo, self.branch = repo, branch
        self.attempts, self.pause, self.sleep = attempts, pause, sleep

    def read(self, path: str) -> tuple[bytes, str] | None:
        """(content, blob sha) of ``path``, or None when it (or the branch) is not there."""
        with _errors(f"reading {path} on {self.branch}"):
            try:
                found = self.repo.get_contents(path, ref=self.branch)
            except GithubException as exc:
                if exc.status == 404:
                    return None
                raise
        if isinstance(found, list):
            raise InfrabotError(f"{path} on {self.branch} is a folder, not a file")
        if found.encoding != "base64":  # GitHub sends no content for a file over 1 MB
            raise InfrabotError(
                f"{path} on {self.branch} is over the contents API's 1 MB: move it aside"
            )
        return found.decoded_content, found.sha

    def names(self, folder: str) -> list[str]:
        with _errors(f"listing {folder} on {self.branch}"):
            try:
                found = self.repo.get_contents(folder, ref=self.branch)
            except GithubException as exc:
                if exc.status == 404:
                    return []
                raise
        return [f.name for f in found] if isinstance(found, list) else []

    def update(self, path: str, change: Callable[[bytes | None], bytes], message: str) -> None:
        """Write ``change(current content)`` to ``path``, redone when someone wrote first
        (``change`` may run more than once); nothing when it changes nothing."""
        for attempt in range(self.attempts):
            current = self.read(path)
            content = change(current[0] if current else None)
            if current is not None and content == current[0]:
                return  # nothing changed: no commit
            if self._put(path, content, current[1] if current else None, message):
                return
            self.sleep(self.pause * (attempt + 1) * (1 + random.random()))
        raise InfrabotError(
            f"could not write {path} on {self.branch}: other runners kept writing it "
            f"({self.attempts} attempts); try again"
        )

    def _put(self, path: str, content: bytes, sha: str | None, message: str) -> bool:
        """True once written; False when the guard failed (re-read and redo)."""
        with _errors(f"writing {path} on {self.branch}"):
            try:
                if sha is None:
                    self.repo.create_file(path, message, content, branch=self.branch)
                else:
                    self.repo.update_file(path, message, content, sha, branch=self.branch)
                return True
            except GithubException as exc:
                if exc.status not in (404, 409, 422):
                    raise
        if sha is None:
            self._ensure_branch()  # a first write: the branch may not exist yet
        return False

    def _ensure_branch(self) -> None:
        with _errors(f"creating the ledger branch {self.branch}"):
            try:
                self.repo.get_git_ref(f"heads/{self.branch}").object.sha  # noqa: B018
                return
            except GithubException as exc:
                if exc.status != 404:
                    raise
            readme = InputGitTreeElement("README.md", "100644", "blob", content=_README)
            tree = self.repo.create_git_tree([readme])
            root = self.repo.create_git_commit("infrabot ledger: never merge this branch", tree, [])
            try:
                self.repo.create_git_ref(f"refs/heads/{self.branch}", root.sha)
            except GithubException as exc:
                if exc.status != 422:  # 422: another runner made it first
                    raise


class GitHubTrajectory:
    """``TrajectoryStore``: ``trajectories/<ticket>.jsonl`` on the ledger branch."""

    def __init__(self, ledger: LedgerBranch, scrubber: Trajectory) -> None:
        self.ledger, self.scrubber = ledger, scrubber

    @staticmethod
    def path(ticket: int) -> str:
        return f"trajectories/{ticket}.jsonl"

    def append(self, event: Event) -> None:
        line = self.scrubber.clean(event).model_dump_json().encode() + b"\n"

        def add(current: bytes | None) -> bytes:
            text = current or b""
            return (text if not text or text.endswith(b"\n") else text + b"\n") + line

        self.ledger.update(
            self.path(event.ticket), add, f"trajectory #{event.ticket}: {event.step}"
        )

    def read(self, ticket: int) -> list[Event]:
        found = self.ledger.read(self.path(ticket))
        events = []
        for line in found[0].splitlines() if found else []:
            try:
                events.append(Event.model_validate_json(line))
            except ValidationError:
                continue
        return events

    def tickets(self) -> list[int]:
        stems = (n.removesuffix(".jsonl") for n in self.ledger.names("trajectories"))
        return sorted(int(s) for s in stems if s.lstrip("-").isdigit())


class GitHubRecords:
    """``RunStore``: plans and the estate's records on the ledger branch, each PR's check
    in its status comment."""

    def __init__(self, ledger: LedgerBranch, forge: GitHubForge, scrubber: Trajectory) -> None:
        self.ledger, self.forge, self.scrubber = ledger, forge, scrubber

    def _json(self, path: str) -> Any:
        found = self.ledger.read(path)
        if found is None:
            return None
        try:
            return json.loads(found[0])
        except ValueError:
            return None

    def _write(self, path: str, value: Any, message: str) -> None:
        data = json.dumps(value, indent=1, sort_keys=True).encode() + b"\n"
        self.ledger.update(path, lambda _: data, message)

    def save_plan(self, plan: Plan) -> None:
        clean = self.scrubber.clean_data(plan.model_dump(mode="json"))
        self._write(f"plans/{plan.ticket}.json", clean, f"plan of #{plan.ticket}")

    def plan(self, ticket: int) -> Plan | None:
        data = self._json(f"plans/{ticket}.json")
        try:
            return Plan.model_validate(data) if data is not None else None
        except ValidationError:
            return None

    def applied(self) -> str | None:
        data = self._json("estate/applied.json")
        sha = data.get("sha") if isinstance(data, dict) else None
        return str(sha) if sha else None

    def set_applied(self, sha: str | None) -> None:
        self._write("estate/applied.json", {"sha": sha}, f"estate applied at {sha or 'unknown'}")

    def unknown_hosts(self) -> set[str]:
        data = self._json("estate/unknown-hosts.json")
        return {str(h) for h in data} if isinstance(data, list) else set()

    def set_unknown_hosts(self, hosts: set[str]) -> None:
        self._write("estate/unknown-hosts.json", sorted(hosts), "hosts whose state is unknown")

    # -- checks: hidden in the status comment ------------------------------------------

    def save_check(self, check: PrCheck) -> None:
        data = encode_check(check, self.scrubber.clean_data)
        placeholder = f"**infrabot status:** checked head `{check.head_sha[:7]}`"
        self.forge.ensure_hidden(check.pr, STATUS_TOPIC, data, placeholder)
        self.forge.set_status(check.head_sha, RECORD, "success", seal(data))

    def check(self, pr: int) -> PrCheck | None:
        data = self.forge.hidden(pr, STATUS_TOPIC)
        found = decode_check(data)
        if data is None or found is None or found.pr != pr:
            return None
        latest = self._bots_statuses(found.head_sha)
        if latest.get(RECORD) != ("success", seal(data)):
            return None  # not the record the bot sealed on this head: edited, or older
        verdicts = (found.validation.ok, found.dry_run.ok)
        agree = all(
            latest.get(c, ("", ""))[0] == ("success" if ok else "failure")
            for c, ok in zip(_CONTEXTS, verdicts, strict=True)
        )
        return found if agree else None

    def _bots_statuses(self, sha: str) -> dict[str, tuple[str, str]]:
        """The latest status per context, kept only when the bot set it: a newer status by
        anyone else (a person with write access can set one) voids that context."""
        latest: dict[str, tuple[str, str]] = {}
        seen: set[str] = set()
        with _errors(f"reading the statuses of {sha[:7]}"):
            try:
                repo = self.forge.repo  # the documented list (PyGithub asks a legacy path)
                url = f"{repo.url}/commits/{sha}/statuses"
                rows = list(PaginatedList(CommitStatus, repo.requester, url, None))
            except GithubException as exc:
                if exc.status in (404, 422):
                    return {}
                raise
            for row in rows:  # newest first
                if row.context in seen:
                    continue
                seen.add(row.context)
                if row.creator is not None and row.creator.login == self.forge.bot_login:
                    latest[row.context] = (row.state, row.description or "")
        return latest


def seal(data: str) -> str:
    """What the bot's ``infrabot/record`` status says of the record it hid: its digest."""
    return f"check record sha256:{hashlib.sha256(data.encode()).hexdigest()[:48]}"


def encode_check(check: PrCheck, clean: Callable[[dict[str, Any]], dict[str, Any]]) -> str:
    """The hidden form of a check: redacted, compressed, base64; slimmed to fit, and an
    empty record when even that would not fit (the flow then re-checks)."""
    for candidate in (check, slim(check)):
        raw = json.dumps(clean(candidate.model_dump(mode="json")), separators=(",", ":"))
        data = base64.b64encode(zlib.compress(raw.encode(), 9)).decode()
        if len(data) <= MAX_RECORD:
            return data
    return base64.b64encode(zlib.compress(b"null")).decode()


def decode_check(data: str | None) -> PrCheck | None:
    if data is None:
        return None
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.b64decode(data, validate=True), MAX_INFLATED)
        if inflate.unconsumed_tail or raw == b"null":
            return None
        return PrCheck.model_validate_json(raw)
    except (binascii.Error, zlib.error, ValueError):
        return None


def slim(check: PrCheck) -> PrCheck:
    """The check without what only a comment shows (diffs, rendered files, tool output);
    what the gate reads — shas, verdicts, hosts, environments — is kept."""
    run = check.dry_run
    tasks = tuple(t.model_copy(update={"diff": "", "message": t.message[:200]}) for t in run.tasks)
    drift = tuple(t.model_copy(update={"diff": "", "message": t.message[:200]}) for t in run.drift)
    run = run.model_copy(
        update={
            "tasks": tasks,
            "drift": drift,
            "rendered": {},
            "rendered_dns": {},
            "nginx_check": (run.nginx_check or "")[:500] or run.nginx_check,
            "dnsmasq_check": (run.dnsmasq_check or "")[:500] or run.dnsmasq_check,
        }
    )
    report = check.validation
    errors_first = sorted(report.findings, key=lambda f: f.severity != "error")[:200]
    findings = tuple(f.model_copy(update={"message": f.message[:300]}) for f in errors_first)
    report = report.model_copy(update={"findings": findings})
    return check.model_copy(update={"dry_run": run, "validation": report})
